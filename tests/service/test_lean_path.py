"""The lean request path (issue 18): its shortcuts give what the general path gives, and its one read dependency
checks in the same order as the separate ones did."""

from __future__ import annotations

import json

import numpy as np
import pytest

from service.body import check_json_items
from service.camera import ON_AXIS, _without_geometry, pose2d_cameras
from service.errors import BodyTooLargeError
from service.inputs import _uniform_rows, pose2d_to_features
from service.schemas.requests import EMBED_ADAPTER

RNG = np.random.default_rng(18)
GOOD = {"inputs": [{"keypoints": (RNG.uniform(100, 900, (17, 2))).tolist(), "layout": "h36m17"}]}


def pose_items(*extras: dict):
    request = EMBED_ADAPTER.validate_python({"inputs": [
        {"modality": "pose2d", "keypoints": RNG.uniform(100, 900, (17, 2)).tolist(), "layout": "h36m17", **extra}
        for extra in extras]})
    return request.items, request.item_fields


@pytest.mark.parametrize("body", [b"", b"{}", b'{"a": [1, 2, {"b": [3]}], "c": ",[{"}', json.dumps(GOOD).encode()])
def test_json_items_are_the_commas_and_brackets(body):
    expected = body.count(b",") + body.count(b"[") + body.count(b"{")
    check_json_items(body, expected)
    if expected:
        with pytest.raises(BodyTooLargeError, match=f"about {expected} JSON values"):
            check_json_items(body, expected - 1)


def test_uniform_rows_read_the_keypoints_as_numpy_does():
    items, _ = pose_items({}, {}, {})
    rows = _uniform_rows(items, 17)
    np.testing.assert_array_equal(rows, np.array([item.keypoints for item in items]))
    assert rows.dtype == np.float64 and rows.shape == (3, 17, 2)


@pytest.mark.parametrize("change", ["null", "short row", "wide row", "fewer joints"])
def test_uneven_keypoints_leave_the_uniform_path(change):
    items, _ = pose_items({}, {})
    keypoints = items[1].keypoints
    if change == "null":
        keypoints[3] = None
    elif change == "short row":
        keypoints[3] = keypoints[3][:1]
    elif change == "wide row":
        keypoints[3] = [*keypoints[3], 1.0]
    else:
        del keypoints[3]
    assert _uniform_rows(items, 17) is None


def test_poses_without_geometry_skip_only_what_the_cameras_would_not_change():
    plain, fields = pose_items({}, {})
    cameras, errors = pose2d_cameras(plain, fields)
    assert _without_geometry(plain) and not errors and cameras.on_axis.all()
    chosen = [cameras.choice(i) for i in range(len(plain))]
    assert chosen == pose2d_to_features(plain, fields, 8).cameras == [ON_AXIS] * 2
    for extra in ({"image_size": [1000, 1000]}, {"fov_deg": 60.0}, {"camera": {"focal": [900, 900]}}):
        assert not _without_geometry(pose_items({}, extra)[0])


def test_a_plain_batch_embeds_as_each_pose_alone():
    items, fields = pose_items({}, {}, {})
    batch = pose2d_to_features(items, fields, 8)
    for i in range(len(items)):
        alone = pose2d_to_features(items[i : i + 1], fields[i : i + 1], 8)
        np.testing.assert_array_equal(batch.features[i], alone.features[0])
        np.testing.assert_array_equal(batch.crop[i], np.eye(3))
        assert np.isnan(batch.frames[i]).all()


@pytest.mark.parametrize("headers, query, body, status, code, field", [
    ({"X-API-Key": ""}, "?layuot=x", b"not json", 401, "missing_api_key", "X-API-Key"),  # the key first
    ({}, "?layuot=x", b"not json", 422, "unknown_field", "layuot"),  # then the query
    ({}, "", b"not json", 400, "malformed_json", None),  # then the body
])
def test_a_read_route_checks_key_query_and_body_in_order(keyed_client, headers, query, body, status, code, field):
    r = keyed_client.post(f"/retrieve{query}", content=body, headers={"Content-Type": "application/json", **headers})
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code and r.json()["error"]["field"] == field


def test_a_clip_route_checks_the_key_and_the_query(keyed_client):
    r = keyed_client.get("/clips/any", headers={"X-API-Key": ""})
    assert r.status_code == 401 and r.json()["error"]["code"] == "missing_api_key"
    r = keyed_client.get("/clips/any?strat=1")
    assert r.status_code == 422 and r.json()["error"]["field"] == "strat"
