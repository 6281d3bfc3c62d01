"""Camera-aware 2D over real HTTP: the perspective crop makes the same body at the image edge and at the centre
embed alike, /lift3d answers in the real camera's frame, lens distortion is undone, the defaults (default field of
view, on the axis, EXIF) are named in the answer, and bad cameras are 422s naming their field."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from model.pose.perspective_crop import Intrinsics, focal_from_fov, perspective_crop, rays_to_pixels
from tests.service.poses import COCO_STANDING

EXAMPLE_PHOTO = Path(__file__).resolve().parents[2] / "service" / "data" / "example_person.jpg"
FOCAL, SIZE, DISTANCE_MM = 1145.0, 1000.0, 5000.0
CENTRE = np.array([SIZE / 2, SIZE / 2])
CAMERA = {"focal": [FOCAL, FOCAL], "principal_point": CENTRE.tolist()}
TURN_DEG = 20.0
LENS = np.array([-0.12, 0.03, 0.001, -0.0005, 0.004])  # k1, k2, p1, p2, k3: a wide-angle lens's barrel


def pan(deg: float) -> np.ndarray:
    """(3, 3) rotation of camera coordinates when the camera turns ``deg`` about its y axis (a pan)."""
    a = np.deg2rad(deg)
    return np.array([[np.cos(a), 0.0, np.sin(a)], [0.0, 1.0, 0.0], [-np.sin(a), 0.0, np.cos(a)]])


def intrinsics(distortion=None) -> Intrinsics:
    return Intrinsics(np.array([[FOCAL, FOCAL]]), CENTRE[None], np.zeros((1, 5)) if distortion is None
                      else np.asarray(distortion, float)[None])


def pixels(camera_mm: np.ndarray, distortion=None) -> np.ndarray:
    """(17, 3) camera-frame points, mm -> (17, 2) pixels of the test camera (with its lens distortion)."""
    rays = camera_mm[:, :2] / camera_mm[:, 2:3]
    return rays_to_pixels(rays[None], intrinsics(distortion))[0]


@pytest.fixture(scope="module")
def scene(database):
    """A real Bandai pose 5 m in front of a camera aimed at it, and seen by the same camera turned by TURN_DEG."""
    poses, rotations, _ = database
    world = poses[len(poses) // 2].astype(np.float64)
    body = world @ rotations[0].T + np.array([0.0, 0.0, DISTANCE_MM])  # camera frame, pelvis on the axis
    turn = pan(TURN_DEG)
    centre, edge = pixels(body), pixels(body @ turn.T)
    assert np.abs(centre.mean(0) - CENTRE).max() < 150  # near the middle
    assert edge[:, 0].min() > SIZE * 0.8 and edge[:, 0].max() < SIZE  # near the right edge, still inside
    return {"body": body, "turn": turn, "centre": centre, "edge": edge}


def pose2d(kp: np.ndarray, **fields) -> dict:
    return {"modality": "pose2d", "keypoints": np.asarray(kp).tolist(), "layout": "unihpr17", **fields}


def embed(client, *inputs) -> np.ndarray:
    r = client.post("/embed", json={"inputs": list(inputs)})
    assert r.status_code == 200, r.text
    return np.array(r.json()["embeddings"])


def lift(client, *inputs) -> list[dict]:
    r = client.post("/lift3d", json={"inputs": list(inputs)})
    assert r.status_code == 200, r.text
    return r.json()["outputs"]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_the_same_body_at_the_edge_and_at_the_centre_embeds_and_lifts_alike(client, scene):
    centre = pose2d(scene["centre"], image_size=[SIZE, SIZE], camera=CAMERA)
    edge = pose2d(scene["edge"], image_size=[SIZE, SIZE], camera=CAMERA)
    a, b = embed(client, centre, edge)
    assert cosine(a, b) > 0.999
    # without the crop (the old behaviour: box-normalised pixels) the edge view is another 2D shape
    plain = embed(client, pose2d(scene["centre"]), pose2d(scene["edge"]))
    assert 1 - cosine(*plain) > 3 * (1 - cosine(a, b))

    lifted_centre, lifted_edge = lift(client, centre, edge)
    assert lifted_edge["camera"] == {**CAMERA, "distortion": [0.0] * 5, "source": "request"}
    # the edge camera sees the body turned by R: its lift is R times the centre's (the two crops' virtual cameras
    # differ by the box centre's shift under the turn, well under 0.1 degree here: ~1 mm at the extremities)
    expected = np.array(lifted_centre["pose3d"]) @ scene["turn"].T
    error = np.linalg.norm(np.array(lifted_edge["pose3d"]) - expected, axis=1)
    assert error.max() < 2.0, error.round(2)
    # the rotation back is exact: the edge view's crop sent as an on-axis pose lifts to the same pose in the
    # virtual camera, and the crop's rotation turns it into the edge answer
    crop, rotation, _ = perspective_crop(scene["edge"][None], intrinsics())
    (virtual,) = lift(client, pose2d(crop[0] * FOCAL))
    assert virtual["camera"]["source"] == "none"
    np.testing.assert_allclose(np.array(virtual["pose3d"]) @ rotation[0], lifted_edge["pose3d"], atol=0.02)
    np.testing.assert_allclose(embed(client, pose2d(crop[0] * FOCAL)), b[None], atol=1e-5)


def test_lens_distortion_is_undone(client, scene):
    for view in ("centre", "edge"):
        body = scene["body"] if view == "centre" else scene["body"] @ scene["turn"].T
        distorted = pixels(body, LENS)
        assert np.abs(distorted - scene[view]).max() > (5 if view == "edge" else 0.2)  # the lens moves the joints
        clean = embed(client, pose2d(scene[view], image_size=[SIZE, SIZE], camera=CAMERA))
        undone = embed(client, pose2d(distorted, image_size=[SIZE, SIZE],
                                      camera={**CAMERA, "distortion": LENS.tolist()}))
        ignored = embed(client, pose2d(distorted, image_size=[SIZE, SIZE], camera=CAMERA))
        np.testing.assert_allclose(undone, clean, atol=1e-5)
        assert 1 - cosine(ignored[0], clean[0]) > 10 * (1 - cosine(undone[0], clean[0]))
    four = embed(client, pose2d(pixels(scene["body"], [*LENS[:4], 0.0]), image_size=[SIZE, SIZE],
                                camera={**CAMERA, "distortion": LENS[:4].tolist()}))
    np.testing.assert_allclose(four, embed(client, pose2d(scene["centre"], image_size=[SIZE, SIZE],
                                                          camera=CAMERA)), atol=1e-5)


def test_without_a_camera_the_default_fov_or_the_optical_axis_is_assumed(client, scene):
    sized, bare, fov = lift(client, pose2d(scene["edge"], image_size=[SIZE, 800.0]), pose2d(scene["edge"]),
                            pose2d(scene["edge"], image_size=[SIZE, 800.0], fov_deg=90))
    f60 = float(focal_from_fov(SIZE, 60.0))
    assert sized["camera"] == {"focal": [round(f60, 4)] * 2, "principal_point": [500.0, 400.0],
                               "distortion": [0.0] * 5, "source": "default_fov"}
    assert bare["camera"] == {"focal": None, "principal_point": None, "distortion": None, "source": "none"}
    assert fov["camera"]["source"] == "fov_deg" and fov["camera"]["focal"] == [500.0, 500.0]
    for answer in (sized, bare, fov):
        pose = np.array(answer["pose3d"])
        assert pose.shape == (17, 3) and answer["frame"] == "camera"
        np.testing.assert_array_equal(pose[0], 0.0)
    # a camera's principal point alone places the axis: the width is twice its x
    (pp_only,) = lift(client, pose2d(scene["edge"], camera={"principal_point": [500.0, 400.0]}))
    assert pp_only["camera"] == sized["camera"]
    np.testing.assert_allclose(pp_only["pose3d"], sized["pose3d"], atol=0.01)
    # normalised coordinates with a camera and the image size are the same pixels
    (normalised,) = lift(client, pose2d(scene["edge"] / SIZE, image_size=[SIZE, SIZE], coordinates="normalized",
                                        camera=CAMERA))
    (in_pixels,) = lift(client, pose2d(scene["edge"], image_size=[SIZE, SIZE], camera=CAMERA))
    np.testing.assert_allclose(normalised["pose3d"], in_pixels["pose3d"], atol=0.01)
    # 3D poses carry no camera
    (pose3d,) = lift(client, {"modality": "pose3d", "keypoints": (scene["body"] - scene["body"][0]).tolist(),
                              "layout": "unihpr17"})
    assert pose3d["camera"] is None


def test_retrieve_aligned_poses_face_like_the_query_in_its_real_camera(client, scene):
    def top(kp):
        r = client.post("/retrieve", json={"query": pose2d(kp, image_size=[SIZE, SIZE], camera=CAMERA), "k": 1,
                                           "align_to_query": True})
        assert r.status_code == 200, r.text
        return r.json()["results"][0]

    centre, edge = top(scene["centre"]), top(scene["edge"])
    assert centre["id"] == edge["id"] and centre["metadata"]["view"] == edge["metadata"]["view"]
    expected = np.array(centre["pose3d"]) @ scene["turn"].T
    assert np.linalg.norm(np.array(edge["pose3d"]) - expected, axis=1).max() < 2.0


KP = np.asarray(COCO_STANDING).tolist()


@pytest.mark.parametrize(("item", "field", "code"), [
    ({"image_size": [1000, 1000], "camera": {"focal": [-800, 800]}}, "inputs[0].camera.focal[0]", "out_of_range"),
    ({"image_size": [1000, 1000], "camera": {"focal": [0, 800]}}, "inputs[0].camera.focal[0]", "out_of_range"),
    ({"image_size": [1000, 1000], "fov_deg": 0}, "inputs[0].fov_deg", "out_of_range"),
    ({"image_size": [1000, 1000], "fov_deg": 200}, "inputs[0].fov_deg", "out_of_range"),
    ({"image_size": [1000, 1000], "camera": {"focal": [800, 800]}, "fov_deg": 50}, "inputs[0].fov_deg",
     "invalid_request"),
    ({"image_size": [1000, 1000], "camera": {"distortion": [0.1, 0.01, 0.0]}}, "inputs[0].camera.distortion",
     "invalid_request"),
    ({"image_size": [1000, 1000], "camera": {"distortion": [0.1] * 6}}, "inputs[0].camera.distortion",
     "invalid_request"),
    ({"image_size": [1000, 1000], "camera": {"distortion": [40.0, -900.0, 0.0, 0.0, 2000.0]}},
     "inputs[0].camera.distortion", "invalid_camera"),
    ({"coordinates": "normalized", "camera": {"focal": [800, 800]}}, "inputs[0].image_size", "invalid_camera"),
    ({"camera": {"focal": [800, 800]}}, "inputs[0].camera", "invalid_camera"),
    ({"fov_deg": 50}, "inputs[0].fov_deg", "invalid_camera"),
    ({"camera": {"principal_point": [-10, 400]}}, "inputs[0].camera.principal_point", "invalid_camera"),
    ({"image_size": [1000, 1000], "camera": {"zoom": 2}}, "inputs[0].camera.zoom", "unknown_field"),
])
def test_a_bad_camera_is_a_422_naming_its_field(client, item, field, code):
    keypoints = KP if item.get("coordinates") != "normalized" else (np.array(KP) / 1000).tolist()
    r = client.post("/embed", json={"inputs": [{"keypoints": keypoints, "layout": "coco17", **item}]})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field and r.json()["error"]["code"] == code, r.json()
    assert client.post("/embed", json={"inputs": [{"keypoints": KP, "layout": "coco17"}]}).status_code == 200


def test_non_finite_camera_values_are_refused(client):
    body = ('{"inputs": [{"keypoints": %s, "layout": "coco17", "image_size": [1000, 1000], '
            '"camera": {"principal_point": [NaN, 500]}}]}' % json.dumps(KP))
    r = client.post("/embed", content=body.encode(), headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "inputs[0].camera.principal_point[0]"
    body = '{"keypoints": %s, "layout": "coco17", "image_size": [1000, 1000], "fov_deg": Infinity}' % json.dumps(KP)
    r = client.post("/lift3d", content=body.encode(), headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "fov_deg"


@pytest.fixture(scope="module")
def photo() -> bytes:
    return EXAMPLE_PHOTO.read_bytes()


def test_an_image_with_fov_deg_by_json_and_by_multipart(client, photo):
    width = Image.open(io.BytesIO(photo)).size[0]
    b64 = base64.b64encode(photo).decode()
    by_json = client.post("/lift3d", json={"image_b64": b64, "fov_deg": 40})
    by_form = client.post("/lift3d", files={"image": ("p.jpg", photo, "image/jpeg")}, data={"fov_deg": "40"})
    default = client.post("/lift3d", json={"image_b64": b64})
    for r in (by_json, by_form, default):
        assert r.status_code == 200, r.text
    focal = round(float(focal_from_fov(width, 40.0)), 4)
    assert by_json.json()["camera"]["source"] == "fov_deg" and by_json.json()["camera"]["focal"] == [focal, focal]
    assert by_form.json()["camera"] == by_json.json()["camera"]
    assert by_form.json()["people"] == by_json.json()["people"]  # keypoints stay the image's pixels
    np.testing.assert_allclose(by_form.json()["pose3d"], by_json.json()["pose3d"], atol=0.01)
    assert default.json()["camera"]["source"] == "default_fov"
    assert default.json()["people"] == by_json.json()["people"]

    camera = {"focal": [300.0, 300.0], "principal_point": [60.0, 70.0], "distortion": [0.0, 0.0, 0.0, 0.0]}
    form = client.post("/embed", files={"image": ("p.jpg", photo, "image/jpeg")}, data={"camera": json.dumps(camera)})
    as_json = client.post("/embed", json={"inputs": [{"image_b64": b64, "camera": camera}]})
    assert form.status_code == 200 and as_json.status_code == 200, (form.text, as_json.text)
    np.testing.assert_allclose(form.json()["embeddings"], as_json.json()["embeddings"], atol=1e-6)
    retrieved = client.post("/retrieve", files={"image": ("p.jpg", photo, "image/jpeg")},
                            data={"camera": json.dumps(camera), "k": "2", "align_to_query": "true"})
    assert retrieved.status_code == 200, retrieved.text

    both = client.post("/lift3d", files={"image": ("p.jpg", photo, "image/jpeg")},
                       data={"fov_deg": "40", "camera": json.dumps({"focal": [300, 300]})})
    assert both.status_code == 422 and both.json()["error"]["field"] == "fov_deg"
    bad = client.post("/embed", files={"image": ("p.jpg", photo, "image/jpeg")}, data={"fov_deg": "0"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "inputs[0].fov_deg"
    wild = client.post("/embed", json={"inputs": [{"image_b64": b64, "camera": {
        "distortion": [40.0, -900.0, 0.0, 0.0, 2000.0]}}]})
    assert wild.status_code == 422 and wild.json()["error"]["field"] == "inputs[0].camera.distortion"


def with_exif(photo: bytes, focal_35mm: int, portrait: bool = False) -> tuple[bytes, tuple[int, int]]:
    """The photo re-encoded by Pillow with FocalLengthIn35mmFilm set; ``portrait``: padded to a portrait image
    stored sideways with EXIF orientation 6 (as phones do). Returns the JPEG and the upright (width, height)."""
    image = Image.open(io.BytesIO(photo)).convert("RGB")
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0xA405] = focal_35mm
    if portrait:
        upright = Image.new("RGB", (image.width, image.height * 3 // 2), (120, 120, 120))
        upright.paste(image, (0, image.height // 4))
        image = upright.transpose(Image.Transpose.ROTATE_90)  # stored turned; orientation 6 turns it back
        exif[0x0112] = 6
        size = upright.size
    else:
        size = image.size
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=95, exif=exif)
    return buf.getvalue(), size


def test_the_exif_35mm_focal_length_is_used(client, photo):
    data, (width, height) = with_exif(photo, 28)
    r = client.post("/lift3d", files={"image": ("exif.jpg", data, "image/jpeg")})
    assert r.status_code == 200, r.text
    focal = round(28 / 36 * max(width, height), 4)
    assert r.json()["camera"] == {"focal": [focal, focal], "principal_point": [width / 2, height / 2],
                                  "distortion": [0.0] * 5, "source": "exif"}
    # fov_deg and camera.focal outrank EXIF
    r = client.post("/lift3d", json={"image_b64": base64.b64encode(data).decode(), "fov_deg": 50})
    assert r.json()["camera"]["source"] == "fov_deg"

    data, (width, height) = with_exif(photo, 28, portrait=True)
    r = client.post("/lift3d", json={"image_b64": base64.b64encode(data).decode()})
    assert r.status_code == 200, r.text
    assert height > width  # upright: portrait
    focal = round(28 / 36 * height, 4)  # 36 mm is the long side of the 35 mm frame
    assert r.json()["camera"]["focal"] == [focal, focal]
    assert r.json()["camera"]["principal_point"] == [width / 2, height / 2]
