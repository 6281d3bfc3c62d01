"""The two joint conventions over HTTP: `h36m17` (the field's, the default) and `unihpr17` (ours), in and out."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from index_builder.config import get_paths
from index_builder.datasets.motion_database import MotionDatabase
from model.pose.joint_conventions import FIELD, OURS, SHARED_INDEX, convert_joints, with_derived
from model.pose.skeleton import H36M17
from tests.service.poses import camera_pose, project

J = H36M17.index
DERIVED = [J(n) for n in ("spine", "thorax", "neck_nose", "head_top")]


@pytest.fixture(scope="module")
def both_conventions():
    """One real Bandai pose in both conventions (world mm, root-relative) and a camera rotation to see it with."""
    db = MotionDatabase.load(get_paths().sample)
    row = len(db) // 3
    ours = db.poses[row].astype(np.float64)
    field = with_derived(ours, db.field_joints[row].astype(np.float64))
    angle = np.deg2rad(30.0)
    # world Y up -> OpenCV camera (y down, z forward), turned 30 degrees about the vertical
    rotation = np.array([[np.cos(angle), 0, -np.sin(angle)], [0, -1, 0], [-np.sin(angle), 0, -np.cos(angle)]])
    return {"ours": ours - ours[0], "field": field - field[0], "rotation": rotation}


def post(client: httpx.Client, path: str, body: dict, **params) -> dict:
    r = client.post(path, json=body, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def test_h36m17_input_is_converted_exactly_as_documented(client, both_conventions):
    """The field's 2D and 3D reach the encoders as their unihpr17 conversion: the same embedding."""
    field2d = project(both_conventions["field"], both_conventions["rotation"])
    as_field = post(client, "/embed", {"inputs": [{"keypoints": field2d.tolist(), "layout": "h36m17"}]})
    converted = convert_joints(field2d, FIELD, OURS)
    as_ours = post(client, "/embed", {"inputs": [{"keypoints": converted.tolist(), "layout": "unihpr17"}]})
    np.testing.assert_allclose(as_field["embeddings"], as_ours["embeddings"], atol=1e-5)
    field3d = camera_pose(both_conventions["field"], both_conventions["rotation"])
    as_field = post(client, "/embed", {"inputs": [{"modality": "pose3d", "keypoints": field3d.tolist()}]})
    as_ours = post(client, "/embed", {"inputs": [{"modality": "pose3d", "layout": "unihpr17",
                                                  "keypoints": convert_joints(field3d, FIELD, OURS).tolist()}]})
    np.testing.assert_allclose(as_field["embeddings"], as_ours["embeddings"], atol=1e-5)
    # and a unihpr17 pose declared as such is not converted
    ours2d = project(both_conventions["ours"], both_conventions["rotation"])
    declared = post(client, "/embed", {"inputs": [{"keypoints": ours2d.tolist(), "layout": "unihpr17"}]})
    mistaken = post(client, "/embed", {"inputs": [{"keypoints": ours2d.tolist()}]})  # the default: h36m17
    assert not np.allclose(declared["embeddings"], mistaken["embeddings"], atol=1e-3)


def test_lift3d_answers_in_the_asked_convention_and_names_it(client, both_conventions):
    body = {"keypoints": project(both_conventions["ours"], both_conventions["rotation"]).tolist(),
            "layout": "unihpr17", "image_size": [1000, 1000]}
    default = post(client, "/lift3d", body)
    ours = post(client, "/lift3d", body, layout="unihpr17")
    assert default["layout"] == "h36m17" and ours["layout"] == "unihpr17"
    field_pose, ours_pose = np.array(default["pose3d"]), np.array(ours["pose3d"])
    np.testing.assert_allclose(field_pose[list(SHARED_INDEX)], ours_pose[list(SHARED_INDEX)], atol=1e-3)
    np.testing.assert_allclose(field_pose, convert_joints(ours_pose, OURS, FIELD), atol=0.01)
    assert np.linalg.norm(field_pose[J("thorax")] - ours_pose[J("thorax")]) > 1.0  # neck base, not mid-shoulders
    batch = post(client, "/lift3d", {"inputs": [body, body]}, layout="unihpr17")
    assert [o["layout"] for o in batch["outputs"]] == ["unihpr17", "unihpr17"]


def test_retrieve_and_clip_motion_name_their_convention(client, both_conventions):
    query = {"modality": "pose3d", "layout": "unihpr17",
             "keypoints": camera_pose(both_conventions["ours"], both_conventions["rotation"]).tolist()}
    default = post(client, "/retrieve", {"query": query, "k": 3})
    ours = post(client, "/retrieve", {"query": query, "k": 3}, layout="unihpr17")
    assert default["layout"] == "h36m17" and ours["layout"] == "unihpr17"
    for a, b in zip(default["results"], ours["results"]):
        assert a["id"] == b["id"]
        library = np.array(b["pose3d"])
        np.testing.assert_allclose(a["pose3d"], convert_joints(library, OURS, FIELD), atol=0.01)
        np.testing.assert_allclose(library[J("thorax")], (library[J("l_shoulder")] + library[J("r_shoulder")]) / 2,
                                   atol=0.01)
    clip = ours["results"][0]["metadata"]["clip"]
    motion = client.get(f"/clips/{clip}/motion").json()
    motion_ours = client.get(f"/clips/{clip}/motion", params={"layout": "unihpr17"}).json()
    assert motion["layout"] == "h36m17" and motion_ours["layout"] == "unihpr17"
    poses = np.array(motion_ours["pose3d"])
    np.testing.assert_allclose(motion["pose3d"], convert_joints(poses, OURS, FIELD), atol=0.02)  # both rounded
    assert not np.allclose(np.array(motion["pose3d"])[:, DERIVED], poses[:, DERIVED], atol=1.0)


@pytest.mark.parametrize("path", ["/lift3d", "/retrieve"])
def test_an_unknown_output_convention_is_a_422_naming_it(client, both_conventions, path):
    query = {"keypoints": project(both_conventions["ours"], both_conventions["rotation"]).tolist()}
    body = query if path == "/lift3d" else {"query": query}
    r = client.post(path, json=body, params={"layout": "mpii16"})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == "layout"


def test_an_unknown_3d_convention_is_a_422_naming_the_field(client, both_conventions):
    pose = camera_pose(both_conventions["ours"], both_conventions["rotation"]).tolist()
    r = client.post("/embed", json={"inputs": [{"modality": "pose3d", "keypoints": pose, "layout": "coco17"}]})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == "inputs[0].layout"


def test_a_misspelt_query_parameter_is_a_422_not_the_default(client, both_conventions):
    """`?layuot=unihpr17` must not silently answer in h36m17."""
    body = {"keypoints": project(both_conventions["ours"], both_conventions["rotation"]).tolist()}
    r = client.post("/lift3d", json=body, params={"layuot": "unihpr17"})
    assert r.status_code == 422, r.text
    assert r.json()["error"] == {"code": "unknown_field", "field": "layuot",
                                 "message": "unknown query parameter 'layuot' (this route takes: layout)"}
    assert client.get("/clips/no-such-clip/motion", params={"stat": 1}).status_code == 422
