"""2D poses sent as plain numbers, read as one array instead of one validated model per pose and per value.

Most `/embed` and `/lift3d` requests carry poses like ``{"modality": "pose2d", "keypoints": [[x, y], ...],
"layout": "h36m17"}``: nothing but numbers, no camera or image size. Parsing such a body into Python objects,
validating one model per pose and a float per value, and reading the values back out into arrays cost a 64-pose
batch about 0.6 ms of 3 in process. ``read_plain_embed`` and ``read_plain_lift`` decode such a body with msgspec
against a schema of exactly those fields (typed decoding in one pass, no intermediate dicts) straight into one
array. They accept only what the request models accept, with the same values: no fields but ``modality``
("pose2d"), ``keypoints`` and ``layout``; one layout; every pose with the layout's joint count; every joint as
[x, y] or every one as [x, y, c]; every value a JSON number (msgspec reads decimal text as Python's ``float``
does), finite and in range; every confidence in [0, 1]. Anything else (a null joint, a camera, a string or
``true`` where a number belongs, NaN, malformed JSON) returns None, and the body is parsed and validated by the
request models as before, so the error table does not change. ``plain_pose2d_features`` then makes the encoder's
features with the same checks and functions as ``service.inputs.pose2d_to_features``
(`tests/service/test_plain_poses.py` compares the two, and the answers of both routes over HTTP).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain
from typing import Literal

import msgspec
import numpy as np

from model.pose.features import pose2d_rows
from model.pose.joint_layouts import LAYOUTS, REQUEST_LAYOUTS_2D
from service.errors import InvalidPoseError, UnihprError, raise_first, subfield
from service.inputs import uniform_keypoints, visibility_errors
from service.schemas.inputs import Pose2DInput

DEFAULT_LAYOUT = Pose2DInput.model_fields["layout"].default
WIDTHS = (2, 3)  # [x, y] or [x, y, c]


def _decoders(width: int) -> tuple[msgspec.json.Decoder, msgspec.json.Decoder]:
    """Decoders of one plain pose and of ``{"inputs": [plain poses]}`` whose joints have ``width`` numbers each;
    any other field is an error (msgspec's ``float`` takes JSON numbers, not ``true`` or strings)."""
    pose = msgspec.defstruct(
        f"PlainPose{width}", [("keypoints", list[tuple[(float,) * width]]),
                              ("modality", Literal["pose2d"], "pose2d"),
                              ("layout", Literal[REQUEST_LAYOUTS_2D], DEFAULT_LAYOUT)],
        forbid_unknown_fields=True)
    batch = msgspec.defstruct(f"PlainPoses{width}", [("inputs", list[pose])], forbid_unknown_fields=True)
    return msgspec.json.Decoder(pose), msgspec.json.Decoder(batch)


DECODERS = {width: _decoders(width) for width in WIDTHS}  # width -> (one pose, a batch)


@dataclass(frozen=True)
class PlainPose2D:
    """A request's 2D poses, read by ``read_plain_embed`` or ``read_plain_lift``.

    xy: (N, K, 2) float64 pixels, NaN where a confidence is 0. confidence: (N, K). layout: the poses' joint layout
    (K joints). field: the request field that lists them (errors name ``field[i].keypoints``); None for a body that
    is one pose (errors name ``keypoints``).
    """

    xy: np.ndarray
    confidence: np.ndarray
    layout: str
    field: str | None

    def __len__(self) -> int:
        return len(self.xy)

    @property
    def single(self) -> bool:
        """The body was one pose, not a list of them."""
        return self.field is None

    @property
    def item_fields(self) -> list[str]:
        return [""] if self.single else [f"{self.field}[{i}]" for i in range(len(self))]


def read_plain_embed(body: bytes) -> PlainPose2D | None:
    """An `/embed` body of plain poses, ``{"inputs": [...]}``, as a ``PlainPose2D``; None for any other body
    (validated by ``service.schemas.requests.EmbedRequest``)."""
    return decode_plain(body, one_pose=False)


def read_plain_lift(body: bytes) -> PlainPose2D | None:
    """A `/lift3d` body of plain poses, ``{"inputs": [...]}`` or one pose, as a ``PlainPose2D``; None for any other
    body (validated by ``LiftBatchRequest`` or the one input's model)."""
    return decode_plain(body, one_pose=True)


def decode_plain(body: bytes, one_pose: bool) -> PlainPose2D | None:
    """``body`` (JSON bytes) as plain poses: ``{"inputs": [poses]}``, or with ``one_pose`` also one pose; None
    when it is anything else (see the module's docstring). A decoder that does not fit stops at the first field
    or joint it does not expect."""
    for width, (pose, batch) in DECODERS.items():
        for decoder in (batch, pose) if one_pose else (batch,):
            try:
                decoded = decoder.decode(body)
            except msgspec.DecodeError:  # validation errors are decode errors too
                continue
            if decoder is batch:
                return _as_array(decoded.inputs, width, "inputs")
            return _as_array([decoded], width, None)
    return None


def _as_array(poses: list, width: int, field: str | None) -> PlainPose2D | None:
    """Decoded plain poses -> ``PlainPose2D`` when they share a layout with its joint count and their values are in
    range (``service.inputs.uniform_keypoints``); None otherwise."""
    if not poses:
        return None
    layout = poses[0].layout
    size = LAYOUTS[layout].size
    if any(pose.layout != layout or len(pose.keypoints) != size for pose in poses):
        return None
    count = len(poses) * size * width
    values = np.fromiter(chain.from_iterable(chain.from_iterable(pose.keypoints for pose in poses)), np.float64,
                         count=count)
    parsed = uniform_keypoints(values.reshape(len(poses), size, width))
    if parsed is None:
        return None
    return PlainPose2D(*parsed, layout, field)


def plain_pose2d_features(poses: PlainPose2D, min_visible: int) -> np.ndarray:
    """(N, 17, 3) float32 pose2d-encoder features of plain poses, as ``service.inputs.pose2d_to_features`` makes
    them for the same poses (on the optical axis: no image geometry), with the same errors."""
    rows = pose2d_rows(poses.xy, poses.confidence, poses.layout)
    errors: list[tuple[int, UnihprError]] = []
    fields = poses.item_fields
    visibility_errors(rows, fields, min_visible, errors)
    raise_first(errors)
    out = rows.features
    if not np.isfinite(out).all():
        i = int(np.flatnonzero(~np.isfinite(out).all(axis=(1, 2)))[0])
        raise InvalidPoseError("the keypoints do not normalise to finite values", subfield(fields[i], "keypoints"))
    return out
