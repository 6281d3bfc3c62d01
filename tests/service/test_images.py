"""The real photo path: an MPII photo through /embed, /lift3d and /retrieve, as base64 JSON and as multipart.

The photo's labelled joints say where the person is: the returned box must overlap the labelled box and the
returned h36m17 keypoints must lie near the labelled joints. Skips when ../shared/data/pose-images is absent.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
MPII = REPO_ROOT.parent / "shared" / "data" / "pose-images" / "mpii"
PHOTO = "052475643.jpg"  # one person, fully in view, 854 x 480
# MPII-16 index -> h36m17 index for the joints both have
MPII_TO_H36M = {0: 3, 1: 2, 2: 1, 3: 4, 4: 5, 5: 6, 6: 0, 10: 16, 11: 15, 12: 14, 13: 11, 14: 12, 15: 13}
MAX_JOINT_ERROR = 0.1  # of the labelled box's diagonal


@pytest.fixture(scope="module")
def photo():
    path = MPII / PHOTO
    if not path.is_file():
        pytest.skip(f"{path} not found (the shared pose-images folder is absent)")
    label = next(a for a in json.loads((MPII / "test_mpii.json").read_text()) if a["image"] == PHOTO)
    joints = np.array(label["joints"], float)
    labelled = (joints > 0).all(axis=1)
    box = np.concatenate([joints[labelled].min(0), joints[labelled].max(0)])
    return {"bytes": path.read_bytes(), "joints": joints, "labelled": labelled, "box": box}


def iou(a, b) -> float:
    lo, hi = np.maximum(a[:2], b[:2]), np.minimum(a[2:], b[2:])
    inter = np.prod(np.clip(hi - lo, 0, None))
    return float(inter / (np.prod(a[2:] - a[:2]) + np.prod(b[2:] - b[:2]) - inter))


def check_person(person: dict, photo: dict) -> None:
    box, kp, vis = np.array(person["box"]), np.array(person["keypoints"]), np.array(person["visibility"])
    assert box.shape == (4,) and kp.shape == (17, 2) and vis.shape == (17,)
    assert ((vis >= 0) & (vis <= 1)).all() and 0 <= person["score"] <= 1
    assert iou(box, photo["box"]) > 0.5, (box, photo["box"])
    diag = np.linalg.norm(photo["box"][2:] - photo["box"][:2])
    errors = [np.linalg.norm(kp[h] - photo["joints"][m]) / diag for m, h in MPII_TO_H36M.items()
              if photo["labelled"][m]]
    assert np.median(errors) < MAX_JOINT_ERROR / 2 and max(errors) < MAX_JOINT_ERROR, np.round(errors, 3)


def test_photo_through_every_endpoint(client, photo):
    b64 = base64.b64encode(photo["bytes"]).decode()
    upload = {"image": (PHOTO, photo["bytes"], "image/jpeg")}

    embedded = client.post("/embed", json={"inputs": [{"modality": "image", "image_b64": b64}]})
    assert embedded.status_code == 200, embedded.text
    emb = np.array(embedded.json()["embeddings"])
    assert emb.shape == (1, embedded.json()["dim"]) and abs(np.linalg.norm(emb) - 1) < 1e-5
    (person,) = embedded.json()["people"][0]
    check_person(person, photo)
    timing = embedded.headers["server-timing"]
    assert all(f"{stage};dur=" in timing for stage in ("decode", "detector", "landmarks", "encoder"))

    multipart = client.post("/embed", files=upload)
    assert multipart.status_code == 200
    np.testing.assert_allclose(multipart.json()["embeddings"], emb, atol=1e-6)
    assert multipart.json()["people"] == embedded.json()["people"]

    for lifted in (client.post("/lift3d", json={"image_b64": b64}), client.post("/lift3d", files=upload)):
        assert lifted.status_code == 200, lifted.text
        pose = np.array(lifted.json()["pose3d"])
        assert pose.shape == (17, 3) and lifted.json()["units"] == "mm" and lifted.json()["frame"] == "camera"
        np.testing.assert_array_equal(pose[0], 0.0)
        check_person(lifted.json()["people"][0], photo)

    by_json = client.post("/retrieve", json={"query": {"image_b64": b64}, "k": 5,
                                             "filters": {"include": {"content": ["walk"]}}})
    by_upload = client.post("/retrieve", files=upload, data={"k": "5", "filters": json.dumps(
        {"include": {"content": ["walk"]}})})
    for r in (by_json, by_upload):
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["results"]) == 5 and body["licence"]
        assert all(x["metadata"]["labels"]["content"] == "walk" for x in body["results"])
        check_person(body["people"][0], photo)
    assert [x["id"] for x in by_json.json()["results"]] == [x["id"] for x in by_upload.json()["results"]]


def test_all_people_gives_each_person_a_result(client, photo):
    r = client.post("/embed", files={"image": (PHOTO, photo["bytes"], "image/jpeg")}, data={"all_people": "true"})
    assert r.status_code == 200, r.text
    people = r.json()["people"][0]
    assert len(people) >= 1 and all(len(p["embedding"]) == r.json()["dim"] for p in people)
    np.testing.assert_allclose(people[0]["embedding"], r.json()["embeddings"][0], atol=1e-6)
    lifted = client.post("/lift3d", json={"image_b64": base64.b64encode(photo["bytes"]).decode(),
                                          "all_people": True}).json()
    assert all(np.array(p["pose3d"]).shape == (17, 3) for p in lifted["people"])
