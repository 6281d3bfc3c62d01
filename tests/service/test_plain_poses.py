"""2D poses sent as plain numbers, read as one array (``service.plain_poses``, issue 18): the reader takes only what
the request models take, the features and errors are the general path's, and the answers of `/embed` and `/lift3d`
over HTTP are the same byte for byte."""

from __future__ import annotations

import json

import httpx
import numpy as np
import orjson
import pytest

from service import plain_poses
from service.deps import EMBED_BODY, LIFT_BODY
from service.errors import BatchTooLargeError, InvalidPoseError, UnihprError
from service.inputs import pose2d_to_features
from service.main import create_app
from service.plain_poses import PlainPose2D, plain_pose2d_features
from service.schemas.requests import EMBED_ADAPTER, EmbedRequest
from tests.service.live_server import make_settings, serve
from tests.service.test_read_dispatch import comparable

RNG = np.random.default_rng(181)


def poses(n: int, joints: int = 17, width: int = 2) -> np.ndarray:
    """(n, joints, width) pixels, with confidences in (0.2, 1] when width is 3."""
    out = RNG.uniform(100, 900, (n, joints, width))
    if width == 3:
        out[..., 2] = RNG.uniform(0.2, 1, (n, joints))
    return out


def body(keypoints: np.ndarray, **fields) -> dict:
    return {"inputs": [{"modality": "pose2d", "keypoints": k.tolist(), **fields} for k in keypoints]}


def encoded(data: object) -> bytes:
    """JSON as clients send it (``json`` writes NaN and any integer, as some clients do)."""
    return json.dumps(data).encode()


def read_plain_embed(data: object) -> PlainPose2D | None:
    return plain_poses.read_plain_embed(encoded(data))


def read_plain_lift(data: object) -> PlainPose2D | None:
    return plain_poses.read_plain_lift(encoded(data))


def general_features(data: dict) -> np.ndarray:
    request = EMBED_ADAPTER.validate_python(data)
    return pose2d_to_features(request.items, request.item_fields, 8).features


@pytest.mark.parametrize("layout, joints, width", [("h36m17", 17, 2), ("h36m17", 17, 3), ("unihpr17", 17, 2),
                                                    ("coco17", 17, 3), ("blazepose33", 33, 2)])
def test_plain_poses_give_the_general_paths_features(layout, joints, width):
    keypoints = poses(5, joints, width)
    if width == 3:
        keypoints[1, 4, 2] = 0.0  # a joint not seen
    data = body(keypoints, layout=layout)
    plain = read_plain_embed(data)
    assert isinstance(plain, PlainPose2D) and plain.layout == layout and len(plain) == 5
    np.testing.assert_array_equal(plain_pose2d_features(plain, 8), general_features(data))


def test_modality_and_layout_may_be_left_out_as_the_models_allow():
    data = {"inputs": [{"keypoints": k.tolist()} for k in poses(2)]}
    plain = read_plain_embed(data)
    assert plain is not None and plain.layout == "h36m17"
    np.testing.assert_array_equal(plain_pose2d_features(plain, 8), general_features(data))


def integer_pixels() -> dict:
    data = body(poses(2))
    data["inputs"][0]["keypoints"] = np.round(poses(1)[0]).astype(int).tolist()  # JSON integers: numbers too
    return data


def test_integers_are_numbers_with_the_same_values():
    data = integer_pixels()
    plain = read_plain_embed(data)
    assert plain is not None
    np.testing.assert_array_equal(plain_pose2d_features(plain, 8), general_features(data))


def test_decimal_text_reads_as_pythons_float():
    """msgspec parses the numbers itself: every form of JSON number a client writes must give Python's float (the
    models' values), to the last bit."""
    rng = np.random.default_rng(11)
    texts = []
    for i in range(17 * 2 * 40):
        value = float(rng.uniform(-9e6, 9e6) * 10.0 ** -rng.integers(0, 12))
        texts.append([repr(value), f"{value:.{rng.integers(0, 25)}f}", f"{value:.{rng.integers(0, 25)}e}",
                      str(int(value))][i % 4])
    joints = [f"[{x}, {y}]" for x, y in zip(texts[::2], texts[1::2])]
    poses = [f'{{"keypoints": [{", ".join(joints[j : j + 17])}]}}' for j in range(0, len(joints), 17)]
    plain = plain_poses.read_plain_embed(f'{{"inputs": [{", ".join(poses)}]}}'.encode())
    assert plain is not None
    np.testing.assert_array_equal(plain.xy.reshape(-1), np.array([float(t) for t in texts]))


def changed(change) -> dict:
    data = body(poses(3, width=3))
    change(data["inputs"])
    return data


NOT_PLAIN = {  # each goes to the request models (valid or not)
    "a camera field": lambda items: items[1].update(image_size=[1000, 1000]),
    "an unknown field": lambda items: items[1].update(colour="red"),
    "another modality": lambda items: items[1].update(modality="pose3d"),
    "two layouts": lambda items: items[1].update(layout="coco17"),
    "an unknown layout": lambda items: items[1].update(layout="smpl24"),
    "a null layout": lambda items: [item.update(layout=None) for item in items],
    "a null joint": lambda items: items[1]["keypoints"].__setitem__(3, None),
    "a joint of another width": lambda items: items[1]["keypoints"][3].pop(),
    "a joint too few": lambda items: items[1]["keypoints"].pop(),
    "a joint as a string": lambda items: items[1]["keypoints"].__setitem__(3, "abc"),
    "a joint as an object": lambda items: items[1]["keypoints"].__setitem__(3, {"x": 1, "y": 2, "c": 1}),
    "a joint of lists": lambda items: items[1]["keypoints"].__setitem__(3, [[1, 2], [3, 4], [5, 6]]),
    "a number as a joint": lambda items: items[1]["keypoints"].__setitem__(3, 7.0),
    "empty joints": lambda items: [item.update(keypoints=[[] for _ in range(17)]) for item in items],
    "a bool": lambda items: items[1]["keypoints"][3].__setitem__(0, True),
    "a numeric string": lambda items: items[1]["keypoints"][3].__setitem__(0, "250.5"),
    "NaN": lambda items: items[1]["keypoints"][3].__setitem__(0, float("nan")),
    "an out-of-range value": lambda items: items[1]["keypoints"][3].__setitem__(1, 1e8),
    "an integer beyond float64": lambda items: items[1]["keypoints"][3].__setitem__(1, 10**400),
    "a confidence over 1": lambda items: items[1]["keypoints"][3].__setitem__(2, 1.5),
    "a negative confidence": lambda items: items[1]["keypoints"][3].__setitem__(2, -0.1),
    "keypoints not a list": lambda items: items[1].update(keypoints={"x": 1}),
    "an item not an object": lambda items: items.__setitem__(1, [1, 2]),
    "no items": lambda items: items.clear(),
}


SETTINGS = make_settings(".")


@pytest.mark.parametrize("name", NOT_PLAIN)
def test_anything_but_plain_numbers_goes_to_the_models(name):
    data = changed(NOT_PLAIN[name])
    assert read_plain_embed(data) is None
    try:
        assert isinstance(EMBED_BODY._from_json(encoded(data), SETTINGS), EmbedRequest)
    except UnihprError:
        pass  # the models' error, as before


@pytest.mark.parametrize("body", [b'{"inputs": [], "extra": 1}', b'{"input": []}', b"[]", b'"inputs"', b"not json",
                                  b"", b'{"inputs": [{"keypoints": [[1, 2]]}]} trailing'])
def test_other_bodies_go_to_the_models(body):
    assert plain_poses.read_plain_embed(body) is None and plain_poses.read_plain_lift(body) is None


def test_a_plain_batch_over_the_limit_is_refused_as_before():
    body = encoded({"inputs": [{"keypoints": k.tolist()} for k in poses(3)]})
    for route in (EMBED_BODY, LIFT_BODY):
        assert isinstance(route._from_json(body, SETTINGS), PlainPose2D)
        with pytest.raises(BatchTooLargeError, match="3 items; at most 2 per request"):
            route._from_json(body, make_settings(".", max_batch=2))


@pytest.mark.parametrize("change, message", [
    (lambda k: k[1, 2:, 2].__imul__(0), "2 of 17 h36m17 joints are visible; at least 8 needed"),
    (lambda k: k[1, :, :2].__imul__(0), "the visible keypoints all lie on one point"),
])
def test_plain_poses_are_refused_as_the_general_path_refuses_them(change, message):
    keypoints = poses(3, width=3)
    change(keypoints)
    data = body(keypoints)
    with pytest.raises(InvalidPoseError) as plain:
        plain_pose2d_features(read_plain_embed(data), 8)
    with pytest.raises(InvalidPoseError) as general:
        general_features(data)
    assert (plain.value.message, plain.value.field) == (general.value.message, general.value.field)
    assert plain.value.message == message and plain.value.field == "inputs[1].keypoints"


def one_pose(keypoints: np.ndarray, **fields) -> dict:
    return {"keypoints": keypoints.tolist(), **fields}


REQUESTS = [  # (route, body)
    ("/embed", body(poses(1))),
    ("/embed", body(poses(64, width=3), layout="coco17")),
    ("/embed", body(poses(2, 33), layout="blazepose33")),
    ("/embed", integer_pixels()),
    ("/embed", body(np.zeros((2, 17, 2)))),  # all on one point: a 422 naming inputs[0].keypoints
    ("/lift3d", one_pose(poses(1)[0])),
    ("/lift3d", one_pose(poses(1, width=3)[0], layout="unihpr17", modality="pose2d")),
    ("/lift3d", body(poses(5, width=3))),
    ("/lift3d", one_pose(np.zeros((17, 2)))),  # a 422 naming keypoints
    ("/lift3d?layout=unihpr17", body(poses(3))),
]


def test_lift_bodies_of_plain_poses_are_read_as_one_array():
    single = read_plain_lift(one_pose(poses(1)[0]))
    assert single is not None and single.single and single.item_fields == [""]
    batch = read_plain_lift(body(poses(3)))
    assert batch is not None and not batch.single and batch.item_fields == ["inputs[0]", "inputs[1]", "inputs[2]"]
    for other in ({"inputs": body(poses(2))["inputs"], "layout": "h36m17"}, one_pose(poses(1)[0], fov_deg=60.0),
                  {"embedding": [1.0, 0.0]}, [1, 2]):
        assert read_plain_lift(other) is None


def test_plain_requests_are_answered_as_through_the_models(tiny_bundle, monkeypatch):
    def answers() -> list[tuple]:
        with (serve(create_app(make_settings(tiny_bundle))) as live,
              httpx.Client(base_url=live.url, timeout=60) as client):
            return [comparable(client.post(route, content=orjson.dumps(data),
                                           headers={"Content-Type": "application/json", "X-Request-ID": "fixed"}))
                    for route, data in REQUESTS]

    decode, read = plain_poses.decode_plain, []
    monkeypatch.setattr(plain_poses, "decode_plain", lambda *args, **kw: read.append(decode(*args, **kw)) or read[-1])
    plain = answers()
    assert len(read) == len(REQUESTS) and all(isinstance(r, PlainPose2D) for r in read)
    assert [answer[0] for answer in plain] == [200, 200, 200, 200, 422, 200, 200, 200, 422, 200]
    monkeypatch.setattr(plain_poses, "decode_plain", lambda *args, **kw: None)
    for mine, theirs in zip(plain, answers(), strict=True):
        assert mine == theirs
