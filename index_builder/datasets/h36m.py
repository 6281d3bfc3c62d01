"""Human3.6M in the VideoPose3D npz form, for users who hold a Human3.6M licence.

Two files, both written by VideoPose3D's ``data/prepare_data_h36m.py`` and friends:

- ``data_3d_h36m.npz``: key ``positions_3d``, a pickled dict subject -> action -> (T, 32, 3) float metres in the
  H36M world frame (Z up), 50 fps. ``load_h36m_3d`` turns it into a ``MotionDatabase``.
- ``data_2d_h36m_<name>.npz``: keys ``positions_2d`` (pickled dict subject -> action -> list of 4 arrays
  (T, J, 2) pixels, one per camera, in the order of ``index_builder.datasets.h36m_cameras.INTRINSICS``) and ``metadata``
  (pickled dict with ``layout_name``, ``num_joints``, ``keypoints_symmetry``). ``load_h36m_2d`` reads it.

Both need ``np.load(..., allow_pickle=True)``: unpickling can run code, so read only files you trust. That stays in
the builder; the service never unpickles anything. A file must be a zip archive (npz) before it is opened, so a
plain pickle passed by mistake is refused instead of being unpickled.

Joints. The 17 joints kept are VideoPose3D's subset of the 32 (``H36M32_TO_H36M17``), in h36m17 order: Human3.6M's
own marker-based joints, the field's ``h36m17`` convention (``model.pose.joint_conventions``), not our shared-formula
``unihpr17`` (``model.pose.joint_formulas``; H36M's 3D has no ears or nose, so the formulas cannot be applied to it).
The loaders convert them to ``unihpr17`` as the service converts a request (exact for the thorax and spine; the
nose and head top estimated on the head axis) and keep the field's four trunk and head joints as they are
(``MotionDatabase.field_joints``). Besides those four, H36M's root (joint 0, "Hips") is a point of its pelvis
segment near the mid-hip where ours is exactly the mid-hip, and its limb joints are joint centres from markers
where ours are labelled or detected points; these agree up to the usual marker/label offsets.

Frames and units. Metres become millimetres (``MM_PER_M``) and the H36M world frame (Z up) becomes our Y-up world
frame with ``ZUP_TO_YUP``: ``(x, y, z)_ours = (x, z, -y)_h36m``, a rotation of -90 degrees about x (determinant +1,
so the frame stays right-handed and the poses are not mirrored). The published camera extrinsics are in the H36M
frame; ``index_builder.datasets.h36m_cameras`` gives them in either frame.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index_builder.datasets.motion_database import ClipTable, MotionDatabase
from index_builder.errors import DataFileError
from model.pose.joint_conventions import DERIVED_INDEX, FIELD, OURS, convert_joints
from model.pose.joint_formulas import layout_to_unihpr17
from model.pose.skeleton import NUM_JOINTS
from model.pose.units import MM_PER_M

SOURCE = "human36m"
LICENCE = (
    "Derived from Human3.6M (Ionescu, Papava, Olaru and Sminchisescu, 'Human3.6M: Large Scale Datasets and "
    "Predictive Methods for 3D Human Sensing in Natural Environments', TPAMI 2014). The Human3.6M licence applies "
    "(http://vision.imar.ro/human3.6m/): use requires your own licence from its authors, and derived poses, "
    "weights and bundles carry its terms (academic, non-commercial use)."
)

H36M_FPS = 50.0
NUM_H36M_JOINTS = 32
NUM_CAMERAS = 4

# VideoPose3D's 17 of the 32 H36M joints, in h36m17 order: hip, rhip, rknee, rfoot, lhip, lknee, lfoot, spine,
# thorax, neck/nose, head, lshoulder, lelbow, lwrist, rshoulder, relbow, rwrist.
H36M32_TO_H36M17 = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)

# (x, y, z)_ours = ZUP_TO_YUP @ (x, y, z)_h36m = (x, z, -y): -90 degrees about x, det +1.
ZUP_TO_YUP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
ZUP_TO_YUP.setflags(write=False)

# The standard protocol: train on S1, S5, S6, S7, S8; test on S9, S11.
SUBJECT_SPLITS = {"S1": "train", "S5": "train", "S6": "train", "S7": "train", "S8": "train",
                  "S9": "test", "S11": "test"}

# S1 names two actions differently from the other subjects.
ACTION_ALIASES = {"TakingPhoto": "Photo", "WalkingDog": "WalkDog"}

_TAKE_NUMBER = re.compile(r"\s+\d+$")


def action_content(action: str) -> str:
    """The content label of an action: 'Walking 1' -> 'Walking', 'TakingPhoto' -> 'Photo'."""
    base = _TAKE_NUMBER.sub("", action.strip())
    return ACTION_ALIASES.get(base, base)


def h36m32_to_h36m17(positions: np.ndarray) -> np.ndarray:
    """Keep VideoPose3D's 17 joints, convert metres to mm and the Z-up world to our Y-up world.

    positions: (T, 32, 3) float, metres, H36M world frame (Z up).
    returns: (T, 17, 3) float32, mm, our world frame (Y up), h36m17 order.
    """
    assert positions.ndim == 3 and positions.shape[1:] == (NUM_H36M_JOINTS, 3), positions.shape
    joints = positions[:, H36M32_TO_H36M17].astype(np.float64)  # (T, 17, 3)
    return (joints @ ZUP_TO_YUP.T * MM_PER_M)  # VideoPose3D stores metres.astype(np.float32)


def _read_pickled(path: Path, keys: tuple[str, ...]) -> dict[str, object]:
    """The named keys of an npz, each a pickled 0-d object array, unpickled; DataFileError on any problem."""
    if not path.is_file():
        raise DataFileError(str(path), "no such file")
    if not zipfile.is_zipfile(path):
        raise DataFileError(str(path), "not an npz file (not a zip archive)")
    out: dict[str, object] = {}
    try:
        with np.load(path, allow_pickle=True) as data:
            missing = [k for k in keys if k not in data.files]
            if missing:
                raise DataFileError(str(path), f"missing key(s) {missing}; the file has {sorted(data.files)}")
            for key in keys:
                array = data[key]
                if array.dtype != object or array.shape != ():
                    raise DataFileError(
                        str(path), f"{key!r} must be a pickled dict, got a {array.dtype} array of shape {array.shape}"
                    )
                out[key] = array.item()
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError, ImportError,
            AttributeError) as err:
        raise DataFileError(str(path), f"cannot read npz: {err}") from err
    for key in keys:
        if not isinstance(out[key], dict):
            raise DataFileError(str(path), f"{key!r} must be a dict, got {type(out[key]).__name__}")
    return out


def _subject_order(subject: str) -> tuple[int, str]:
    digits = subject.lstrip("S")
    return (int(digits) if digits.isdigit() else 10**6, subject)


def _as_array(path: Path, where: str, value: object) -> np.ndarray:
    try:
        return np.asarray(value)
    except ValueError as err:  # ragged nested lists
        raise DataFileError(str(path), f"{where} is not an array: {err}") from err


def _check_actions(path: Path, key: str, subjects: object) -> None:
    """positions[subject][action] must be a dict of dicts with string keys."""
    for subject, actions in subjects.items():
        if not isinstance(subject, str) or not isinstance(actions, dict):
            raise DataFileError(str(path), f"{key}: expected subject name -> dict of actions, got {subject!r}")
        for action in actions:
            if not isinstance(action, str):
                raise DataFileError(str(path), f"{key}[{subject!r}]: action names must be strings, got {action!r}")


def load_h36m_3d(path: str | Path) -> MotionDatabase:
    """Read ``data_3d_h36m.npz`` into a database, one clip per (subject, action), split by subject.

    returns: poses (N, 17, 3) float32, mm, our Y-up world frame, H36M's own joints (see the module docstring);
        clips named 'S1/Walking 1' with dataset = subject, content = ``action_content(action)``, style = '',
        fps 50, split from ``SUBJECT_SPLITS``; clips sorted by subject number, then action name.
    raises: DataFileError naming the file and the problem (not an npz, missing key, wrong shape, non-finite
        values, a subject outside the standard protocol, no clips).
    """
    path = Path(path)
    positions = _read_pickled(path, ("positions_3d",))["positions_3d"]
    _check_actions(path, "positions_3d", positions)
    clips: list[tuple[str, str, np.ndarray]] = []
    for subject in sorted(positions, key=_subject_order):
        if subject not in SUBJECT_SPLITS:
            raise DataFileError(
                str(path), f"subject {subject!r} is not in the standard protocol ({', '.join(SUBJECT_SPLITS)})"
            )
        for action in sorted(positions[subject]):
            where = f"positions_3d[{subject!r}][{action!r}]"
            raw = _as_array(path, where, positions[subject][action])
            if raw.ndim != 3 or raw.shape[1:] != (NUM_H36M_JOINTS, 3) or raw.shape[0] == 0:
                raise DataFileError(str(path), f"{where} must be (T, {NUM_H36M_JOINTS}, 3) with T > 0, got {raw.shape}")
            if not np.issubdtype(raw.dtype, np.floating):
                raise DataFileError(str(path), f"{where} must be floats (metres), got {raw.dtype}")
            if not np.isfinite(raw).all():
                raise DataFileError(str(path), f"{where} has non-finite values")
            clips.append((subject, action, h36m32_to_h36m17(raw).astype(np.float64)))
    if not clips:
        raise DataFileError(str(path), "positions_3d holds no clips")

    lengths = np.array([len(poses) for _, _, poses in clips], dtype=np.int64)
    table = ClipTable(
        name=np.array([f"{subject}/{action}" for subject, action, _ in clips]),
        dataset=np.array([subject for subject, _, _ in clips]),
        content=np.array([action_content(action) for _, action, _ in clips]),
        style=np.array(["" for _ in clips]),
        split=np.array([SUBJECT_SPLITS[subject] for subject, _, _ in clips]),
        fps=np.full(len(clips), H36M_FPS, dtype=np.float32),
        start=np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64),
        length=lengths,
    )
    field = np.concatenate([poses for _, _, poses in clips])  # (N, 17, 3) mm, the field's h36m17
    return MotionDatabase(
        poses=convert_joints(field, FIELD, OURS).astype(np.float32),
        field_joints=field[:, list(DERIVED_INDEX)].astype(np.float32),
        clip=np.repeat(np.arange(len(clips), dtype=np.int32), lengths),
        frame=np.concatenate([np.arange(n, dtype=np.int32) for n in lengths]),
        clips=table,
        source=SOURCE,
        licence=LICENCE,
    )


# VideoPose3D's 2D layout names and the layout of ours that each one is.
_LAYOUTS_2D = {"h36m": "h36m17", "coco": "coco17"}


@dataclass(frozen=True)
class H36mKeypoints2d:
    """The 2D keypoints of one ``data_2d_h36m_<name>.npz``.

    name: the ``<name>`` part of the file name (e.g. 'gt', 'cpn_ft_h36m_dbb').
    layout_name, num_joints, keypoints_symmetry: the file's metadata as written by VideoPose3D ('h36m' means
        H36M's own 17 joints in h36m17 order, 'coco' means COCO-17); symmetry is (left indices, right indices).
    keypoints: (subject, action, camera index 0-3) -> (T, J, 2) float32 pixels (x right, y down) in that
        camera's image; the camera index follows ``index_builder.datasets.h36m_cameras.INTRINSICS``.
    """

    name: str
    layout_name: str
    num_joints: int
    keypoints_symmetry: tuple[tuple[int, ...], tuple[int, ...]]
    keypoints: dict[tuple[str, str, int], np.ndarray]

    def __len__(self) -> int:
        return len(self.keypoints)

    def to_unihpr17(self, key: tuple[str, str, int]) -> np.ndarray:
        """The keypoints of ``key`` as the encoders read them.

        returns: (T, 17, 2) float64 pixels in unihpr17: 'h36m' files (H36M's own joints, the field's h36m17)
            converted (``model.pose.joint_conventions``), 'coco' files through the shared joint formulas.
        raises: KeyError for a layout with no mapping.
        """
        if self.layout_name not in _LAYOUTS_2D:
            raise KeyError(f"no mapping for layout {self.layout_name!r}; known: {', '.join(_LAYOUTS_2D)}")
        return np.asarray(layout_to_unihpr17(self.keypoints[key].astype(np.float64), _LAYOUTS_2D[self.layout_name]))


def _read_metadata(path: Path, metadata: dict) -> tuple[str, int, tuple[tuple[int, ...], tuple[int, ...]]]:
    missing = [k for k in ("layout_name", "num_joints", "keypoints_symmetry") if k not in metadata]
    if missing:
        raise DataFileError(str(path), f"metadata lacks {missing}")
    try:
        num_joints = int(metadata["num_joints"])
        left, right = metadata["keypoints_symmetry"]
        symmetry = (tuple(int(i) for i in left), tuple(int(i) for i in right))
    except (TypeError, ValueError) as err:
        raise DataFileError(str(path), f"metadata: bad num_joints or keypoints_symmetry: {err}") from err
    if num_joints <= 0:
        raise DataFileError(str(path), f"metadata: num_joints must be positive, got {num_joints}")
    return str(metadata["layout_name"]), num_joints, symmetry


def load_h36m_2d(path: str | Path) -> H36mKeypoints2d:
    """Read ``data_2d_h36m_<name>.npz`` (ground-truth projections or detections, 4 cameras per action).

    returns: an ``H36mKeypoints2d``; every array (T, num_joints, 2) float32 pixels.
    raises: DataFileError naming the file and the problem (not an npz, missing key or metadata field, not 4
        cameras, wrong shapes, a joint count that contradicts a known layout).
    """
    path = Path(path)
    data = _read_pickled(path, ("positions_2d", "metadata"))
    layout_name, num_joints, symmetry = _read_metadata(path, data["metadata"])
    if layout_name in _LAYOUTS_2D and num_joints != NUM_JOINTS:
        raise DataFileError(str(path), f"metadata: layout {layout_name!r} has {NUM_JOINTS} joints, not {num_joints}")
    positions = data["positions_2d"]
    _check_actions(path, "positions_2d", positions)
    keypoints: dict[tuple[str, str, int], np.ndarray] = {}
    for subject in sorted(positions, key=_subject_order):
        for action in sorted(positions[subject]):
            views = positions[subject][action]
            where = f"positions_2d[{subject!r}][{action!r}]"
            if not isinstance(views, (list, tuple)) or len(views) != NUM_CAMERAS:
                count = len(views) if isinstance(views, (list, tuple)) else type(views).__name__
                raise DataFileError(str(path), f"{where} must be a list of {NUM_CAMERAS} arrays, one per camera, "
                                               f"got {count}")
            for camera, view in enumerate(views):
                view = _as_array(path, f"{where}[{camera}]", view)
                if view.ndim != 3 or view.shape[1:] != (num_joints, 2):
                    raise DataFileError(
                        str(path), f"{where}[{camera}] must be (T, {num_joints}, 2), got {view.shape}"
                    )
                if not np.issubdtype(view.dtype, np.floating):
                    raise DataFileError(str(path), f"{where}[{camera}] must be floats (pixels), got {view.dtype}")
                keypoints[(subject, action, camera)] = view.astype(np.float32)
    if not keypoints:
        raise DataFileError(str(path), "positions_2d holds no clips")
    name = path.stem.removeprefix("data_2d_h36m_")
    return H36mKeypoints2d(name=name, layout_name=layout_name, num_joints=num_joints, keypoints_symmetry=symmetry,
                           keypoints=keypoints)
