"""Every endpoint over real HTTP (uvicorn on loopback) with the tiny bundle: values, shapes and headers. The
retrieval tests run against both index backends (``BOTH_BACKENDS``: FAISS in process, Milvus on a milvus-lite gRPC
server)."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest

from model.pose.joint_formulas import layout_to_unihpr17
from model.runtime.bundle_format import read_manifest
from tests.service.live_server import BOTH_BACKENDS
from tests.service.poses import COCO_STANDING, camera_pose, coco_to_blazepose, distinct_poses, project


@pytest.fixture(scope="module")
def manifest(tiny_bundle):
    return read_manifest(tiny_bundle).model_dump(mode="json")


@pytest.fixture(scope="module")
def probe(tiny_bundle, manifest, database):
    """A database pose that stands apart, with its id and a virtual view to see it from."""
    poses, rotations, meta = database
    n = distinct_poses(tiny_bundle, manifest["database"]["views"])[0]
    clip = int(meta["clip"][n])
    return {"n": n, "view": 3, "world": poses[n].astype(np.float64), "rotation": rotations[3], "r0": rotations[0],
            "id": f"{meta['clip_name'][clip]}#{int(meta['frame'][n])}", "clip": str(meta["clip_name"][clip]),
            "frame": int(meta["frame"][n]), "fps": float(meta["clip_fps"][clip]),
            "content": str(meta["clip_content"][clip])}


def embed(client: httpx.Client, *inputs) -> np.ndarray:
    r = client.post("/embed", json={"inputs": list(inputs)})
    assert r.status_code == 200, r.text
    return np.array(r.json()["embeddings"])


def test_probes_info_and_headers(client, manifest):
    version = manifest["model_version"]
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok", "model_version": version}
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json()["status"] == "ready"
    assert r.headers["x-model-version"] == version
    info = client.get("/info").json()
    assert info["model_version"] == version
    assert info["embedding"]["dim"] == manifest["embedding"]["dim"]
    assert "CC BY-NC 4.0" in info["licence"] and info["licence"] == manifest["licence"]
    assert info["database"]["poses"] == manifest["database"]["poses"]
    assert info["index"]["ntotal"] == manifest["database"]["poses"] * manifest["database"]["views"]
    assert set(info["labels"]["content"]) == set(manifest["database"]["contents"])
    assert info["limits"]["k"] == [1, 1000] and info["limits"]["image_formats"] == ["JPEG", "PNG"]


def test_request_ids_are_echoed_or_made(client):
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"
    made = client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"}).headers["x-request-id"]
    assert made != "bad id\twith spaces" and len(made) == 32
    assert client.get("/healthz").headers["x-request-id"] != client.get("/healthz").headers["x-request-id"]


def test_embed_pose2d_is_unit_length_with_the_bundle_dimension(client, manifest, probe):
    kp = project(probe["world"], probe["rotation"])
    r = client.post("/embed", json={"inputs": [{"modality": "pose2d", "keypoints": kp.tolist(), "layout": "h36m17",
                                                "image_size": [1000, 1000]}]})
    assert r.status_code == 200
    body = r.json()
    emb = np.array(body["embeddings"])
    assert emb.shape == (1, manifest["embedding"]["dim"]) and body["dim"] == emb.shape[1]
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert body["people"] == [None]
    assert body["model_version"] == r.headers["x-model-version"] == manifest["model_version"]
    assert "encoder;dur=" in r.headers["server-timing"]


def test_coco17_blazepose33_and_unihpr17_of_the_same_person_agree(client):
    ours = layout_to_unihpr17(COCO_STANDING[None], "coco17")[0]
    coco = embed(client, {"keypoints": COCO_STANDING.tolist(), "layout": "coco17"})
    blaze = embed(client, {"keypoints": coco_to_blazepose(COCO_STANDING).tolist(), "layout": "blazepose33"})
    direct = embed(client, {"keypoints": ours.tolist(), "layout": "unihpr17"})
    np.testing.assert_allclose(coco, blaze, atol=1e-5)
    np.testing.assert_allclose(coco, direct, atol=1e-5)


def test_missing_joints_null_or_zero_confidence_and_normalised_coordinates(client, probe):
    kp = project(probe["world"], probe["rotation"])
    with_null = kp.tolist()
    with_null[16] = None
    with_c0 = [[x, y, 1.0] for x, y in kp.tolist()]
    with_c0[16] = [123.0, 456.0, 0.0]
    a, b = embed(client, {"keypoints": with_null}), embed(client, {"keypoints": with_c0})
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert not np.allclose(a, embed(client, {"keypoints": kp.tolist()}), atol=1e-3)  # the joint mattered
    size = np.array([1000.0, 800.0])
    pixels = embed(client, {"keypoints": kp.tolist(), "image_size": size.tolist()})
    normalised = embed(client, {"keypoints": (kp / size).tolist(), "image_size": size.tolist(),
                                "coordinates": "normalized"})
    np.testing.assert_allclose(pixels, normalised, atol=1e-5)


def test_pose3d_units_and_world_frame(client, probe):
    cam = camera_pose(probe["world"], probe["rotation"])
    mm = embed(client, {"modality": "pose3d", "keypoints": cam.tolist()})
    metres = embed(client, {"modality": "pose3d", "keypoints": (cam / 1000).tolist(), "units": "m"})
    np.testing.assert_allclose(mm, metres, atol=1e-5)
    # a world Y-up pose is seen through the first virtual view
    world = embed(client, {"modality": "pose3d", "keypoints": probe["world"].tolist(), "frame": "world_yup"})
    view0 = embed(client, {"modality": "pose3d", "keypoints": camera_pose(probe["world"], probe["r0"]).tolist()})
    np.testing.assert_allclose(world, view0, atol=1e-5)
    assert not np.allclose(world, embed(client, {"modality": "pose3d", "keypoints": probe["world"].tolist()}),
                           atol=1e-3)  # the same numbers read as a camera-frame pose are another pose


def test_embed_batch_matches_single_calls(client, probe):
    kp = project(probe["world"], probe["rotation"]).tolist()
    cam = camera_pose(probe["world"], probe["rotation"]).tolist()
    items = [{"keypoints": kp}, {"modality": "pose3d", "keypoints": cam}, {"keypoints": COCO_STANDING.tolist(),
                                                                          "layout": "coco17"}]
    batch = embed(client, *items)
    singles = np.concatenate([embed(client, item) for item in items])
    np.testing.assert_allclose(batch, singles, atol=1e-5)


@BOTH_BACKENDS
def test_retrieve_a_database_pose_by_its_own_3d_returns_it_first(client, probe, manifest):
    cam = camera_pose(probe["world"], probe["rotation"])
    r = client.post("/retrieve", json={"query": {"modality": "pose3d", "keypoints": cam.tolist(), "layout": "unihpr17"},
                                       "k": 5}, params={"layout": "unihpr17"})
    assert r.status_code == 200, r.text
    body = r.json()
    top = body["results"][0]
    assert top["id"] == probe["id"] and top["score"] > 0.9999
    meta = top["metadata"]
    assert (meta["clip"], meta["frame"], meta["fps"]) == (probe["clip"], probe["frame"], probe["fps"])
    assert meta["time"] == pytest.approx(probe["frame"] / probe["fps"])
    assert meta["labels"]["content"] == probe["content"] and meta["source"] == "bandai-namco-motion"
    assert meta["view"] == probe["view"] and meta["view_azimuth_deg"] == pytest.approx(45.0 * probe["view"])
    # default: root-relative world Y-up, exactly the stored pose
    np.testing.assert_allclose(top["pose3d"], probe["world"], atol=0.01)
    assert body["pose_frame"] == "world_yup" and body["licence"] == manifest["licence"]
    assert body["model_version"] == r.headers["x-model-version"] and body["k"] == 5
    assert len(body["results"]) == 5
    # aligned: the matched view's camera frame, facing like the query
    query = {"modality": "pose3d", "keypoints": cam.tolist(), "layout": "unihpr17"}
    aligned = client.post("/retrieve", json={"query": query, "k": 1, "align_to_query": True},
                          params={"layout": "unihpr17"}).json()
    assert aligned["pose_frame"] == "camera"
    np.testing.assert_allclose(aligned["results"][0]["pose3d"], cam, atol=0.01)


@BOTH_BACKENDS
def test_retrieve_world_frame_query_matches_view0(client, probe):
    r = client.post("/retrieve", json={"query": {"modality": "pose3d", "keypoints": probe["world"].tolist(),
                                                 "frame": "world_yup"}, "k": 1})
    top = r.json()["results"][0]
    assert top["id"] == probe["id"] and top["metadata"]["view"] == 0 and top["score"] > 0.9999


@BOTH_BACKENDS
def test_retrieve_by_embedding_equals_retrieve_by_pose(client, probe):
    query = {"keypoints": project(probe["world"], probe["rotation"]).tolist()}
    # the cosine order (an embedding has no geometry to re-rank by: tests/service/test_rerank.py)
    by_pose = client.post("/retrieve", json={"query": query, "k": 10, "rerank": False}).json()["results"]
    vector = embed(client, query)[0] * 3.0  # any length: the service normalises it
    by_vector = client.post("/retrieve", json={"query": {"embedding": vector.tolist()}, "k": 10}).json()["results"]
    assert [x["id"] for x in by_pose] == [x["id"] for x in by_vector]
    np.testing.assert_allclose([x["score"] for x in by_pose], [x["score"] for x in by_vector], atol=1e-5)


@BOTH_BACKENDS
def test_results_are_deduplicated_sorted_and_grouped_by_clip(client, probe):
    """In the cosine order (`rerank: false`; the re-ranked order: tests/service/test_rerank.py)."""
    query = {"keypoints": project(probe["world"], probe["rotation"]).tolist()}
    results = client.post("/retrieve", json={"query": query, "k": 50, "rerank": False}).json()["results"]
    ids = [x["id"] for x in results]
    scores = [x["score"] for x in results]
    assert len(ids) == 50 and len(set(ids)) == 50
    assert scores == sorted(scores, reverse=True) and all(-1.0001 <= s <= 1.0001 for s in scores)
    grouped = client.post("/retrieve", json={"query": query, "k": 10, "group_by_clip": True,
                                             "rerank": False}).json()["results"]
    clips = [x["metadata"]["clip"] for x in grouped]
    assert len(clips) == 10 and len(set(clips)) == 10
    assert grouped[0]["score"] == pytest.approx(results[0]["score"], abs=1e-6)
    best_per_clip = {}
    for x in results:
        best_per_clip.setdefault(x["metadata"]["clip"], x["score"])
    for x in grouped:  # each clip's best frame
        if x["metadata"]["clip"] in best_per_clip:
            assert x["score"] == pytest.approx(best_per_clip[x["metadata"]["clip"]], abs=1e-6)


@BOTH_BACKENDS
def test_filters_are_respected(client, probe, database):
    _, _, meta = database
    query = {"keypoints": project(probe["world"], probe["rotation"]).tolist()}

    def ask(filters, k=30):
        r = client.post("/retrieve", json={"query": query, "k": k, "filters": filters})
        assert r.status_code == 200, r.text
        return r.json()["results"]

    walk = ask({"include": {"content": ["Walk"]}})
    assert walk and all(x["metadata"]["labels"]["content"] == "walk" for x in walk)
    not_walk = ask({"exclude": {"content": ["walk"], "style": ["normal"]}})
    assert not_walk and all(x["metadata"]["labels"]["content"] != "walk"
                            and x["metadata"]["labels"]["style"] != "normal" for x in not_walk)
    one_clip = ask({"include": {"clip": [probe["clip"]]}}, k=1000)
    frames_in_clip = int((meta["clip"] == list(meta["clip_name"]).index(probe["clip"])).sum())
    assert len(one_clip) == frames_in_clip and {x["metadata"]["clip"] for x in one_clip} == {probe["clip"]}
    assert one_clip[0]["id"] == ask({"include": {"clip": [probe["clip"]]}}, k=1)[0]["id"]
    both = ask({"include": {"content": ["walk"], "dataset": ["dataset-2"]}, "exclude": {"clip": [probe["clip"]]}})
    assert all(x["metadata"]["labels"]["dataset"] == "dataset-2" and x["metadata"]["clip"] != probe["clip"]
               for x in both)
    assert ask({"include": {"clip": ["no-such-clip"]}}) == []


@BOTH_BACKENDS
def test_retrieve_batch(client, probe):
    cam = camera_pose(probe["world"], probe["rotation"])
    queries = [{"modality": "pose3d", "keypoints": cam.tolist()},
               {"keypoints": project(probe["world"], probe["rotation"]).tolist()}]
    r = client.post("/retrieve", json={"queries": queries, "k": 4, "include_pose3d": False})
    body = r.json()
    assert r.status_code == 200 and "results" not in body and len(body["batches"]) == 2
    assert all(len(b["results"]) == 4 for b in body["batches"])
    assert body["batches"][0]["results"][0]["id"] == probe["id"]
    assert "pose3d" not in body["batches"][1]["results"][0] and body["licence"]


def test_lift3d_single_and_batch(client, probe):
    kp = project(probe["world"], probe["rotation"])
    r = client.post("/lift3d", json={"keypoints": kp.tolist(), "layout": "h36m17", "image_size": [1000, 1000]})
    assert r.status_code == 200, r.text
    body = r.json()
    pose = np.array(body["pose3d"])
    assert pose.shape == (17, 3) and body["units"] == "mm" and body["frame"] == "camera"
    np.testing.assert_array_equal(pose[0], 0.0)
    assert pose[10, 1] < pose[3, 1] and pose[10, 1] < pose[6, 1]  # head above the ankles: y points down
    height = np.ptp(pose[:, 1])
    assert 800 < height < 2500, height  # a person, in mm
    batch = client.post("/lift3d", json={"inputs": [{"keypoints": kp.tolist(), "image_size": [1000, 1000]},
                                                    {"keypoints": COCO_STANDING.tolist(), "layout": "coco17"}]})
    outputs = batch.json()["outputs"]
    assert len(outputs) == 2 and all(np.array(o["pose3d"]).shape == (17, 3) for o in outputs)
    np.testing.assert_allclose(outputs[0]["pose3d"], pose, atol=0.05)
    assert batch.json()["model_version"] == batch.headers["x-model-version"]


def test_v1_aliases(client, probe):
    kp = project(probe["world"], probe["rotation"]).tolist()
    assert client.get("/v1/healthz").json()["status"] == "ok"
    assert client.get("/v1/readyz").status_code == 200
    assert client.get("/v1/info").json()["model_version"] == client.get("/info").json()["model_version"]
    np.testing.assert_allclose(client.post("/v1/embed", json={"inputs": [{"keypoints": kp}]}).json()["embeddings"],
                               embed(client, {"keypoints": kp}), atol=1e-6)
    assert client.post("/v1/retrieve", json={"query": {"keypoints": kp}, "k": 2}).json()["results"][0]["id"]
    assert np.array(client.post("/v1/lift3d", json={"keypoints": kp}).json()["pose3d"]).shape == (17, 3)
    assert "unihpr_requests_total" in client.get("/v1/metrics").text


def test_metrics(client, manifest):
    client.post("/embed", json={"inputs": [{"keypoints": COCO_STANDING.tolist(), "layout": "coco17"}] * 3})
    text = client.get("/metrics").text
    total = manifest["database"]["poses"] * manifest["database"]["views"]
    assert f"unihpr_index_vectors {float(total)}" in text
    assert f'unihpr_bundle_info{{index_type="flat",model_version="{manifest["model_version"]}"}} 1.0' in text
    assert 'unihpr_requests_total{endpoint="/embed",method="POST",status="200"}' in text
    assert 'unihpr_request_duration_seconds_bucket{endpoint="/embed"' in text
    assert 'unihpr_request_items_bucket{endpoint="/embed",le="4.0"}' in text
    assert 'unihpr_microbatch_rows_count{graph="encoder_pose2d"}' in text


def test_openapi_and_docs(client):
    spec = client.get("/openapi.json").json()
    for path in ("/embed", "/retrieve", "/lift3d"):
        content = spec["paths"][path]["post"]["requestBody"]["content"]
        assert content["application/json"]["examples"] and "multipart/form-data" in content
    assert "Pose2DInput" in spec["components"]["schemas"]
    assert "keypoints" in spec["components"]["schemas"]["Pose2DInput"]["properties"]
    assert "/healthz" in spec["paths"] and "/v1/embed" not in spec["paths"]  # aliases are not listed twice
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_cors_preflight(keyed_server):
    r = httpx.options(f"{keyed_server.url}/embed", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "X-API-Key, Content-Type"})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://app.example"
    other = httpx.options(f"{keyed_server.url}/embed", headers={"Origin": "https://evil.example",
                                                               "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in other.headers


def test_json_body_roundtrip_has_no_nan(client, probe):
    """Responses are strict JSON (no NaN), even for a pose with missing joints."""
    kp = project(probe["world"], probe["rotation"]).tolist()
    kp[3] = None
    r = client.post("/lift3d", json={"keypoints": kp})
    json.loads(r.text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
