"""CMU motions as exponential-map arrays (the DMGNN / Convolutional-Seq2seq form) with ``dmgnn-cmu-skeleton.json``
beside them -> ``MotionClip``.

Each text row holds 117 comma-separated numbers: the root translation (columns 0-2) and, for each of the 38
joints, an exponential map (axis times angle, rad). Row 0 of every file is a constant pose that is not part of the
motion and is dropped. Forward kinematics as in the skeleton file (row vectors): ``p_i = offset_i @ R_parent +
p_parent``, ``R_i = expmap(r_i) @ R_parent``, root position ``offset_0 + [col2, col1, col0]``. The rotation that
acts on column vectors is the transpose, which is what ``JointTransforms`` holds. CMU ASF units (1/0.45 inch), Y up,
+X the subject's left, feet along +Z; 120 Hz. Joint names are the skeleton file's inferred labels.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index_builder.errors import DataFileError
from index_builder.ingest.bvh import JointTransforms, chain_transforms
from index_builder.ingest.config import UNIT_TO_MM, IngestConfig
from index_builder.ingest.mocap_skeletons import TPOSE_HEAD, MocapMapping, limb_joints, mocap_landmarks
from index_builder.ingest.motion_clip import MotionClip
from index_builder.ingest.rotations import expmap_to_matrix
from index_builder.ingest.skeleton_files import require_finite, skeleton_for
from model.pose.joint_formulas import landmarks_to_h36m17

SKELETON_FILE = "dmgnn-cmu-skeleton.json"
ROOT_COLUMNS = 3
FIRST_ROW_IS_REST = True  # see the module docstring

CMU_EXPMAP = MocapMapping(
    name="cmu-expmap",
    limbs=limb_joints("{side}_hip", "{side}_knee", "{side}_ankle", "{side}_shoulder", "{side}_elbow",
                      "{side}_wrist", left="l", right="r"),
    head="head_base",
    head_frame=TPOSE_HEAD,
)
TOES = ("l_toe_base", "r_toe_base")


@dataclass(frozen=True)
class ExpmapSkeleton:
    """names (J,), parents (J,) -1 for the root, offsets (J, 3) file units, fps of the rows."""

    names: tuple[str, ...]
    parents: tuple[int, ...]
    offsets: np.ndarray
    fps: float

    @property
    def columns(self) -> int:
        return ROOT_COLUMNS + 3 * len(self.names)


def find_skeleton(arrays: Path) -> Path | None:
    """``dmgnn-cmu-skeleton.json`` in the array's folder or an ancestor."""
    return next((f / SKELETON_FILE for f in arrays.parents if (f / SKELETON_FILE).is_file()), None)


def load_skeleton(path: Path) -> ExpmapSkeleton:
    try:
        data = json.loads(path.read_text())
        names = tuple(re.sub(r"\(=.*\)$", "", n) for n in data["position_labels_inferred"])
        skeleton = ExpmapSkeleton(names=names, parents=tuple(int(p) for p in data["parents"]),
                                  offsets=np.array(data["offsets"], dtype=np.float64),
                                  fps=float(data["frame_rate_hz"]))
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DataFileError(str(path), f"not a CMU exponential-map skeleton: {err}") from err
    if skeleton.offsets.shape != (len(names), 3) or len(skeleton.parents) != len(names):
        raise DataFileError(str(path), "parents, offsets and labels disagree in length")
    return skeleton


def forward_kinematics(skeleton: ExpmapSkeleton, rows: np.ndarray, scale: float) -> JointTransforms:
    """rows: (T, columns) float64; scale: file unit -> output unit. returns positions (T, J, 3), rotations acting
    on column vectors (joint frame -> world)."""
    count = len(rows)
    expmaps = rows[:, ROOT_COLUMNS:].reshape(count, len(skeleton.names), 3)  # (T, J, 3)
    local = np.swapaxes(expmap_to_matrix(expmaps), -1, -2)  # (T, J, 3, 3): the file's row-vector convention turned
    translations = np.broadcast_to(skeleton.offsets * scale, (count, len(skeleton.names), 3)).copy()
    for i, parent in enumerate(skeleton.parents):
        if parent < 0:
            translations[:, i] = (skeleton.offsets[i] + rows[:, [2, 1, 0]]) * scale
    return chain_transforms(skeleton.parents, translations, local)


def read_cmu_expmap_clip(path: Path, config: IngestConfig) -> MotionClip:
    """One exponential-map text file; its skeleton is found with ``find_skeleton``."""
    skeleton = skeleton_for(path, find_skeleton, load_skeleton, "exponential-map array", SKELETON_FILE)
    try:
        rows = np.loadtxt(path, delimiter=",", dtype=np.float64, ndmin=2)
    except ValueError as err:
        raise DataFileError(str(path), f"not a comma-separated array: {err}") from err
    if rows.size and rows.shape[1] != skeleton.columns:
        raise DataFileError(str(path), f"rows of {rows.shape[1]} values; the skeleton needs {skeleton.columns}")
    rows = rows[1:] if FIRST_ROW_IS_REST else rows
    rows = rows.reshape(-1, skeleton.columns)
    require_finite(path, rows, "rows")
    scale = UNIT_TO_MM["cmu"]
    transforms = forward_kinematics(skeleton, rows, scale)
    return MotionClip(
        joints=landmarks_to_h36m17(mocap_landmarks(transforms, skeleton.names, CMU_EXPMAP)),
        toes=transforms.positions[:, [skeleton.names.index(t) for t in TOES]],
        times_s=np.arange(len(rows)) / skeleton.fps, kind="cmu-expmap", unit="cmu", up="y", rigid=True,
    )
