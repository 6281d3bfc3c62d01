"""Geometric re-ranking and result confidence over real HTTP (the tiny bundle, calibrated when it was built):
fields, order, `rerank: false`, filters and grouping, bundles built before it."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from model.retrieval.lifted_candidates import LIFTED_CANDIDATES, DescriptorIndex
from model.retrieval.rerank import CANDIDATES, METHODS
from model.runtime.bundle_format import MANIFEST, parse_manifest, read_manifest, write_manifest
from service.main import create_app
from tests.service.live_server import copy_bundle, make_settings, serve
from tests.service.poses import camera_pose, distinct_poses, project

CAMERA = {"focal": [1145.0, 1145.0], "principal_point": [500.0, 500.0]}


@pytest.fixture(scope="module")
def probe(tiny_bundle, database):
    poses, rotations, meta = database
    n = distinct_poses(tiny_bundle, len(rotations))[0]
    clip = int(meta["clip"][n])
    return {"world": poses[n].astype(np.float64), "rotation": rotations[3],
            "id": f"{meta['clip_name'][clip]}#{int(meta['frame'][n])}", "clip": str(meta["clip_name"][clip])}


def query2d(probe, **extra) -> dict:
    return {"keypoints": project(probe["world"], probe["rotation"]).tolist(), "layout": "unihpr17",
            "image_size": [1000, 1000], "camera": CAMERA, **extra}


def retrieve(client: httpx.Client, **body) -> dict:
    r = client.post("/retrieve", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def test_the_bundle_is_calibrated_for_every_method(tiny_bundle):
    rerank = read_manifest(tiny_bundle).rerank
    assert rerank is not None and rerank.candidates == CANDIDATES and set(rerank.methods) == set(METHODS)
    for entry in rerank.methods.values():
        curve = entry.calibration
        assert entry.weight >= 0 and len(curve.residual) == len(curve.expected_error_mm) >= 2
        assert np.all(np.diff(curve.residual) > 0) and np.all(np.diff(curve.expected_error_mm) >= 0)
        assert str(entry.weight) in {str(float(w)) for w in entry.validation["weights"]}


def test_info_shows_the_reranking(client, tiny_bundle):
    info = client.get("/info").json()["rerank"]
    manifest = read_manifest(tiny_bundle).rerank
    assert info["candidates"] == manifest.candidates
    assert {m: e["weight"] for m, e in info["methods"].items()} == {m: e.weight for m, e in manifest.methods.items()}


def test_results_carry_the_fit_and_are_ordered_by_rank_score(client, probe):
    body = retrieve(client, query=query2d(probe), k=10)
    results = body["results"]
    assert body["reranked"] is True and len(results) == 10 and len({x["id"] for x in results}) == 10
    ranks = [x["rank_score"] for x in results]
    assert ranks == sorted(ranks, reverse=True)
    for x in results:
        assert x["fit_residual"] >= 0 and x["rank_score"] <= x["score"] + 1e-6
        assert x["confidence"]["expected_error_mm"] > 0 and isinstance(x["confidence"]["far_from_library"], bool)
    top = results[0]  # the pose itself, seen by a camera: a pinhole fit explains it (nearly) exactly
    assert top["id"] == probe["id"] and top["fit_residual"] < 0.005 and not top["confidence"]["far_from_library"]
    expected = [x["confidence"]["expected_error_mm"] for x in results]
    assert expected[0] == min(expected)


def test_rerank_false_gives_the_cosine_order_without_fit(client, probe):
    plain = retrieve(client, query=query2d(probe), k=10, rerank=False)
    results = plain["results"]
    assert plain["reranked"] is False
    scores = [x["score"] for x in results]
    assert scores == sorted(scores, reverse=True)
    assert all(x["fit_residual"] is None and x["confidence"] is None and x["rank_score"] == x["score"]
               for x in results)
    # the cosine order is the embedding's: the same ids as a search by the query's own embedding
    vector = client.post("/embed", json={"inputs": [query2d(probe)]}).json()["embeddings"][0]
    by_vector = retrieve(client, query={"embedding": vector}, k=10)
    assert [x["id"] for x in by_vector["results"]] == [x["id"] for x in results]
    assert all(x["fit_residual"] is None for x in by_vector["results"])  # an embedding has no geometry



def test_reranking_picks_from_the_cosine_and_the_lifted_candidates(client, probe, database, tiny_bundle):
    """The candidates: the 100 best by cosine, and the 100 poses nearest the query's lift by joint distances
    (``model.retrieval.lifted_candidates``; the lift is what /lift3d answers, in another frame: the distances do
    not see frames)."""
    poses, _, meta = database
    rerank = read_manifest(tiny_bundle).rerank
    assert rerank.lifted_candidates == LIFTED_CANDIDATES
    assert client.get("/info").json()["rerank"]["lifted_candidates"] == LIFTED_CANDIDATES
    top100 = {x["id"] for x in retrieve(client, query=query2d(probe), k=100, rerank=False)["results"]}
    lifted = client.post("/lift3d?layout=unihpr17", json=query2d(probe)).json()["pose3d"]
    near = DescriptorIndex(poses).search(np.array([lifted]), LIFTED_CANDIDATES)[0]
    ids = {f"{meta['clip_name'][meta['clip'][n]]}#{int(meta['frame'][n])}" for n in near}
    reranked = {x["id"] for x in retrieve(client, query=query2d(probe), k=10)["results"]}
    assert reranked <= top100 | ids and len(ids) == LIFTED_CANDIDATES


def test_2d_without_image_geometry_and_3d_queries_are_reranked(client, probe):
    on_axis = retrieve(client, query={"keypoints": project(probe["world"], probe["rotation"]).tolist(),
                                      "layout": "unihpr17"}, k=5)
    assert on_axis["reranked"] and on_axis["results"][0]["id"] == probe["id"]
    assert on_axis["results"][0]["fit_residual"] < 0.02  # weak perspective of a pinhole view: small, not zero
    cam = camera_pose(probe["world"], probe["rotation"])
    three_d = retrieve(client, query={"modality": "pose3d", "keypoints": cam.tolist(), "layout": "unihpr17"},
                       k=5)["results"]
    assert three_d[0]["id"] == probe["id"] and three_d[0]["fit_residual"] < 0.01  # PA-MPJPE of itself, mm
    assert all(x["fit_residual"] > 0.01 for x in three_d[1:])
    residuals = [x["fit_residual"] for x in three_d]
    assert residuals == sorted(residuals)  # the 3D weight makes PA-MPJPE decide


def test_rerank_works_with_filters_grouping_and_batches(client, probe, database):
    _, _, meta = database
    walk = retrieve(client, query=query2d(probe), k=20, filters={"include": {"content": ["walk"]}})["results"]
    assert walk and all(x["metadata"]["labels"]["content"] == "walk" and x["confidence"] for x in walk)
    others = retrieve(client, query=query2d(probe), k=5, filters={"exclude": {"clip": [probe["clip"]]}})["results"]
    assert others and all(x["metadata"]["clip"] != probe["clip"] for x in others)
    grouped = retrieve(client, query=query2d(probe), k=8, group_by_clip=True)["results"]
    clips = [x["metadata"]["clip"] for x in grouped]
    assert len(clips) == len(set(clips)) == 8 and grouped[0]["metadata"]["clip"] == probe["clip"]
    assert [x["rank_score"] for x in grouped] == sorted((x["rank_score"] for x in grouped), reverse=True)
    assert all(x["start"] is not None and x["end"] >= x["start"] for x in grouped)
    dim = client.get("/info").json()["embedding"]["dim"]
    batch = retrieve(client, queries=[query2d(probe), {"embedding": [1.0] * dim}], k=3)
    first, second = (b["results"] for b in batch["batches"])
    assert first[0]["id"] == probe["id"] and first[0]["confidence"] is not None
    assert all(x["fit_residual"] is None and x["rank_score"] == x["score"] for x in second)


def test_an_image_query_is_reranked_with_its_detected_joints(client):
    """The photo the OpenAPI examples use (BlazePose finds one person): the image method, visibility-weighted."""
    from service.examples import EXAMPLE_IMAGE_B64

    body = retrieve(client, query={"image_b64": EXAMPLE_IMAGE_B64}, k=3)
    assert body["reranked"] and len(body["results"]) == 3
    assert all(x["fit_residual"] is not None and x["confidence"]["expected_error_mm"] > 0 for x in body["results"])
    ranks = [x["rank_score"] for x in body["results"]]
    assert ranks == sorted(ranks, reverse=True)


def test_a_query_far_from_the_library_says_so(client, probe):
    """A 2D 'pose' no body makes (the joints scattered at random): every candidate fits it badly."""
    rng = np.random.default_rng(0)
    scattered = rng.uniform(300, 700, (17, 2))
    results = retrieve(client, query={"keypoints": scattered.tolist(), "image_size": [1000, 1000]}, k=3)["results"]
    assert results[0]["confidence"]["far_from_library"] is True
    near = retrieve(client, query=query2d(probe), k=1)["results"][0]
    assert results[0]["confidence"]["expected_error_mm"] > near["confidence"]["expected_error_mm"]


def test_bundles_built_before_reranking_load_and_answer_in_cosine_order(tiny_bundle, tmp_path, probe):
    data = read_manifest(tiny_bundle).model_dump(mode="json", exclude_none=True)
    data.pop("rerank")
    assert parse_manifest(data).rerank is None  # the manifest of an older bundle is valid
    old = copy_bundle(tiny_bundle, tmp_path / "old", "-old")
    write_manifest(old, read_manifest(old).model_copy(update={"rerank": None}))
    assert '"rerank"' not in (old / MANIFEST).read_text()
    with serve(create_app(make_settings(old))) as live, httpx.Client(base_url=live.url, timeout=60) as c:
        body = retrieve(c, query=query2d(probe), k=5)
        assert body["reranked"] is False
        assert all(x["confidence"] is None and x["fit_residual"] is None for x in body["results"])
        scores = [x["score"] for x in body["results"]]
        assert scores == sorted(scores, reverse=True)
