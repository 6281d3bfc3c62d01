"""2D pose parsing: the whole-batch path gives exactly what the per-pose path gives, and leaves every fault to
the per-pose path, which names its field."""

from __future__ import annotations

import numpy as np
import pytest

from service import inputs
from service.body import validate
from service.errors import InvalidPoseError
from service.schemas.requests import EMBED_ADAPTER


def request(keypoints, **fields):
    return validate(EMBED_ADAPTER, {"inputs": [{"modality": "pose2d", "keypoints": k, **fields} for k in keypoints]})


def per_pose(req):
    return [inputs._parse_pose2d(item, field) for item, field in zip(req.inputs, req.item_fields)]


@pytest.mark.parametrize("width", [2, 3])
@pytest.mark.parametrize("fields", [{}, {"coordinates": "normalized", "image_size": [640, 480]},
                                    {"layout": "coco17"}, {"layout": "blazepose33"}])
def test_the_batch_path_equals_the_per_pose_path(width, fields):
    joints = {"coco17": 17, "blazepose33": 33}.get(fields.get("layout"), 17)
    rng = np.random.default_rng(width)
    kp = rng.uniform(0.2, 0.8, (12, joints, width)) * (1 if "image_size" in fields else 1000)
    if width == 3:
        kp[..., 2] = rng.uniform(0, 1, kp.shape[:2])
        kp[:, 4, 2] = 0.0  # a missing joint
    req = request(kp.tolist(), **fields)
    batch = inputs._parse_uniform(req.inputs)
    assert batch is not None
    assert batch[0].shape == (12, joints, 2) and batch[1].shape == (12, joints)
    for xy, conf, (xy_ref, conf_ref) in zip(*batch, per_pose(req)):
        np.testing.assert_array_equal(xy, xy_ref)
        np.testing.assert_array_equal(conf, conf_ref)


@pytest.mark.parametrize(("bad", "field"), [
    (lambda kp: kp[3].__setitem__(2, None), "inputs[3].keypoints[2]"),  # a null joint: per-pose path, valid
    (lambda kp: kp[5][1].__setitem__(0, float("nan")), "inputs[5].keypoints[1]"),
    (lambda kp: kp[2][0].__setitem__(0, 1e8), "inputs[2].keypoints[0]"),
    (lambda kp: kp[7][6].append(1.5), "inputs[7].keypoints[6]"),
])
def test_a_fault_anywhere_falls_back_and_is_named(bad, field):
    kp = np.random.default_rng(0).uniform(100, 900, (8, 17, 2)).tolist()
    bad(kp)
    req = request(kp)
    assert inputs._parse_uniform(req.inputs) is None
    if field == "inputs[3].keypoints[2]":  # a missing joint is allowed: the per-pose path parses it
        assert inputs.pose2d_to_features(req.inputs, req.item_fields, 8).features.shape == (8, 17, 3)
        return
    with pytest.raises(InvalidPoseError) as caught:
        inputs.pose2d_to_features(req.inputs, req.item_fields, 8)
    assert caught.value.field == field
