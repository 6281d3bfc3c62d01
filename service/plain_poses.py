"""2D poses sent as plain numbers, read as one array instead of one validated model per pose and per value.

Most `/embed` and `/lift3d` requests carry poses like ``{"modality": "pose2d", "keypoints": [[x, y], ...],
"layout": "h36m17"}``: nothing but numbers, no camera or image size. Validating one such pose costs pydantic a
model and a float check per value, and the service then reads the values back out into arrays and makes one
prepared input per pose (a 64-pose batch: about 0.5 ms of 3 in process). ``read_plain_pose2d`` reads such poses
straight into one array. It accepts only what the request models accept with the same values: items with no
fields but ``modality`` ("pose2d"), ``keypoints`` and ``layout``; one layout; every pose with the layout's joint
count, every joint as [x, y] or every one as [x, y, c]; every value a JSON number, finite, in range; every
confidence in [0, 1]. Anything else (a null joint, a camera, a string where a number belongs, a NaN) returns
None, and the request goes through the models, whose error table is unchanged. ``plain_pose2d_features`` then
makes the encoder's features with the same checks and functions as ``service.inputs.pose2d_to_features``
(`tests/service/test_plain_poses.py` compares the two, and the answers of both routes over HTTP).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain

import numpy as np

from model.pose.features import pose2d_features
from model.pose.joint_formulas import layout_to_unihpr17
from model.pose.joint_layouts import LAYOUTS, REQUEST_LAYOUTS_2D
from service.errors import InvalidPoseError, UnihprError, subfield
from service.inputs import uniform_keypoints, visible_confidence
from service.schemas.inputs import Pose2DInput

PLAIN_FIELDS = frozenset({"modality", "keypoints", "layout"})
DEFAULT_LAYOUT = Pose2DInput.model_fields["layout"].default
NUMBERS = frozenset({int, float})  # bool is an int to isinstance, not to type(): true and false go to the models


@dataclass(frozen=True)
class PlainPose2D:
    """A request's 2D poses, read by ``read_plain_pose2d``.

    xy: (N, K, 2) float64 pixels, NaN where a confidence is 0. confidence: (N, K). layout: the poses' joint layout
    (K joints). field: the request field that lists them (errors name ``field[i].keypoints``); None for a body that
    is one pose (errors name ``keypoints``).
    """

    xy: np.ndarray
    confidence: np.ndarray
    layout: str
    field: str

    def __len__(self) -> int:
        return len(self.xy)

    @property
    def single(self) -> bool:
        """The body was one pose, not a list of them."""
        return self.field is None

    @property
    def item_fields(self) -> list[str]:
        return [""] if self.single else [f"{self.field}[{i}]" for i in range(len(self))]


def read_plain_pose2d(items: object, field: str | None) -> PlainPose2D | None:
    """The poses of ``items`` (a request's parsed JSON list, listed by ``field``; None: the body's one pose) as one
    ``PlainPose2D``, or None when any of them is more than a plain pose (see the module's docstring)."""
    if type(items) is not list or not items:
        return None
    layout = None
    for item in items:
        if type(item) is not dict or "keypoints" not in item or not item.keys() <= PLAIN_FIELDS:
            return None
        if item.get("modality", "pose2d") != "pose2d":
            return None
        given = item.get("layout", DEFAULT_LAYOUT)
        if given != layout:
            if layout is not None:
                return None
            layout = given
    if type(layout) is not str or layout not in REQUEST_LAYOUTS_2D:
        return None
    size = LAYOUTS[layout].size
    poses = [item["keypoints"] for item in items]
    if any(type(pose) is not list or len(pose) != size for pose in poses):
        return None
    joints = list(chain.from_iterable(poses))
    try:
        widths = set(map(len, joints))
    except TypeError:  # a null or a number where a joint belongs
        return None
    if len(widths) != 1:
        return None
    values = list(chain.from_iterable(joints))  # a string or an object joint gives strings here: refused next
    if not set(map(type, values)) <= NUMBERS:
        return None
    try:
        values = np.fromiter(values, np.float64, count=len(values))
    except OverflowError:  # an integer beyond float64: the models refuse it
        return None
    (width,) = widths
    parsed = uniform_keypoints(values.reshape(len(items), size, width))
    if parsed is None:
        return None
    return PlainPose2D(*parsed, layout, field)


def plain_pose2d_features(poses: PlainPose2D, min_visible: int) -> np.ndarray:
    """(N, 17, 3) float32 pose2d-encoder features of plain poses, as ``service.inputs.pose2d_to_features`` makes
    them for the same poses (on the optical axis: no image geometry), with the same errors."""
    joints, confidence = layout_to_unihpr17(poses.xy, poses.layout, poses.confidence)  # (N, 17, 2), (N, 17)
    errors: list[tuple[int, UnihprError]] = []
    fields = poses.item_fields
    confidence = visible_confidence(joints, confidence, fields, min_visible, errors)
    if errors:
        raise min(errors, key=lambda e: e[0])[1]
    out = pose2d_features(joints, confidence)
    if not np.isfinite(out).all():
        i = int(np.flatnonzero(~np.isfinite(out).all(axis=(1, 2)))[0])
        raise InvalidPoseError("the keypoints do not normalise to finite values", subfield(fields[i], "keypoints"))
    return out


def read_plain_embed(data: object) -> PlainPose2D | None:
    """An `/embed` body (parsed JSON) of plain poses, ``{"inputs": [...]}``, as a ``PlainPose2D``; None for any
    other body (validated by ``service.schemas.requests.EmbedRequest``)."""
    if type(data) is not dict or data.keys() != {"inputs"}:
        return None
    return read_plain_pose2d(data["inputs"], "inputs")


def read_plain_lift(data: object) -> PlainPose2D | None:
    """A `/lift3d` body (parsed JSON) of plain poses, ``{"inputs": [...]}`` or one pose, as a ``PlainPose2D``; None
    for any other body (validated by ``service.schemas.requests.LiftBatchRequest`` or the one input's model)."""
    if type(data) is not dict:
        return None
    if "inputs" in data:
        return read_plain_pose2d(data["inputs"], "inputs") if data.keys() == {"inputs"} else None
    return read_plain_pose2d([data], None)
