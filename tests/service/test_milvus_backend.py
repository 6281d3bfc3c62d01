"""The Milvus index backend over real HTTP against a real Milvus gRPC server (milvus-lite on 127.0.0.1): the same
top-10 as FAISS on the same data, filters and grouping included; /readyz and /info report it; a reload swaps the
serving alias; an outage makes /readyz fail and /retrieve answer 503 with a JSON body; bad configuration fails at
start-up. (The shared retrieval tests also run on both backends: ``BOTH_BACKENDS`` in test_endpoints.py.)"""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from pydantic import ValidationError

from index_builder.bundle.library_update import copy_to_milvus, remove_clips
from index_builder.bundle.milvus_collection import MilvusTarget
from model.runtime.bundle_format import read_manifest
from service.config import Settings
from service.main import create_app
from tests.milvus_lite_server import milvus_lite_server
from tests.service.live_server import ADMIN_KEY, make_settings, serve
from tests.service.poses import project

QUERIES = 12
FILTERS = [None, {"include": {"content": ["walk"]}}, {"exclude": {"content": ["walk"], "style": ["normal"]}},
           {"include": {"dataset": ["dataset-2"]}, "exclude": {"content": ["walk"]}}]


@pytest.fixture(scope="module")
def queries(database):
    """2D views of evenly spaced database poses (h36m17 pixels)."""
    poses, rotations, _ = database
    rows = np.linspace(0, len(poses) - 1, QUERIES).astype(int)
    return [{"keypoints": project(poses[r].astype(np.float64), rotations[(i * 3) % len(rotations)]).tolist()}
            for i, r in enumerate(rows)]


def top(url: str, query: dict, **extra) -> list[dict]:
    r = httpx.post(f"{url}/retrieve", json={"query": query, "k": 10, "include_pose3d": False, **extra}, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()["results"]


@pytest.mark.parametrize("filters", FILTERS)
@pytest.mark.parametrize("mode", [{"rerank": False}, {"rerank": True}, {"rerank": False, "group_by_clip": True}])
def test_milvus_gives_the_faiss_top_10(server, milvus_server, queries, filters, mode):
    recall = []
    for query in queries:
        extra = {**mode, **({"filters": filters} if filters else {})}
        faiss_top, milvus_top = top(server.url, query, **extra), top(milvus_server.url, query, **extra)
        assert faiss_top, "the filter left nothing to compare"
        recall.append(len({x["id"] for x in faiss_top} & {x["id"] for x in milvus_top}) / len(faiss_top))
        assert faiss_top[0]["id"] == milvus_top[0]["id"]
        same = {x["id"]: x["score"] for x in faiss_top}
        for x in milvus_top:
            if x["id"] in same:
                assert x["score"] == pytest.approx(same[x["id"]], abs=1e-5)
        if "group_by_clip" in mode:  # each clip's matching segment, re-scored from vectors read back from Milvus
            assert [(x["metadata"]["clip"], x["start"], x["end"]) for x in faiss_top] == \
                   [(x["metadata"]["clip"], x["start"], x["end"]) for x in milvus_top]
    assert np.mean(recall) >= 0.95


def test_readyz_and_info_name_the_backend(milvus_server, milvus_bundle):
    ready = httpx.get(f"{milvus_server.url}/readyz")
    assert ready.status_code == 200 and ready.json()["index_backend"] == "milvus"
    info = httpx.get(f"{milvus_server.url}/info").json()
    manifest = read_manifest(milvus_bundle)
    assert info["index"]["served_by"] == "milvus" and info["index"]["backend"]["collection"] == \
        manifest.index.backend.collection
    assert not (milvus_bundle / "index.faiss").exists()


def test_bad_backend_configuration_fails_at_start(tiny_bundle, milvus_bundle, milvus_uri):
    with pytest.raises(ValidationError, match="UNIHPR_MILVUS_URI"):
        Settings(index_backend="milvus")
    with pytest.raises(ValidationError, match="credentials"):
        Settings(index_backend="milvus", milvus_uri="http://user:secret@127.0.0.1:19530")
    with pytest.raises(RuntimeError, match="failed to start"):  # a FAISS bundle under the Milvus backend
        with serve(create_app(make_settings(tiny_bundle, index_backend="milvus", milvus_uri=milvus_uri))):
            pass
    with pytest.raises(RuntimeError, match="failed to start"):  # a Milvus bundle under the FAISS backend
        with serve(create_app(make_settings(milvus_bundle))):
            pass


@pytest.fixture(scope="module")
def own_milvus(tiny_bundle, tmp_path_factory):
    """A second milvus-lite server that this module stops (the outage), with two versions of the tiny library."""
    root = tmp_path_factory.mktemp("milvus-outage")
    with milvus_lite_server(root / "data") as (uri, process):
        target = MilvusTarget(uri)
        first = copy_to_milvus(tiny_bundle, target, root / "bundles" / "v1").out
        clip = str(np.load(first / "metadata.npz")["clip_name"][0])
        second = remove_clips(first, [clip], root / "bundles" / "v2", milvus=target).out
        yield uri, process, first, second, clip


def test_reload_swaps_the_alias_and_an_outage_answers_503(own_milvus, queries):
    from pymilvus import MilvusClient

    from tests.milvus_lite_server import stop

    uri, process, first, second, removed = own_milvus
    settings = make_settings(first, index_backend="milvus", milvus_uri=uri, admin_key=ADMIN_KEY,
                             milvus_alias="unihpr_test", milvus_timeout_s=2.0)
    with serve(create_app(settings)) as live:
        client = MilvusClient(uri=uri)
        assert client.describe_alias("unihpr_test")["collection_name"] == read_manifest(first).index.backend.collection
        assert any(x["metadata"]["clip"] == removed for x in top(live.url, queries[0], filters={
            "include": {"clip": [removed]}}))
        r = httpx.post(f"{live.url}/admin/reload", json={"bundle": second.name}, headers={"X-API-Key": ADMIN_KEY},
                       timeout=60)
        assert r.status_code == 200, r.text
        assert client.describe_alias("unihpr_test")["collection_name"] == \
            read_manifest(second).index.backend.collection
        assert top(live.url, queries[0], filters={"include": {"clip": [removed]}}) == []
        client.close()

        stop(process)  # the outage
        ready = httpx.get(f"{live.url}/readyz", timeout=30)
        assert ready.status_code == 503 and ready.json()["error"]["code"] == "index_unavailable"
        assert uri.split("//")[1] not in ready.text  # no internals in an open probe
        r = httpx.post(f"{live.url}/retrieve", json={"query": queries[0], "k": 5}, timeout=30)
        assert r.status_code == 503 and r.headers["content-type"].startswith("application/json")
        assert r.json()["error"]["code"] == "index_unavailable"
        assert httpx.get(f"{live.url}/healthz").status_code == 200  # alive, only not ready
