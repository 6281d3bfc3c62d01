"""Requests an attacker or a careless client sends, over real HTTP to the open server (default limits): each is
refused quickly with a 4xx naming the limit or the field, or answered correctly; and the OpenAPI document says
what the server does (security, statuses, examples that are accepted)."""

from __future__ import annotations

import time

import httpx
import numpy as np
import pytest

from service.main import create_app
from tests.service.live_server import ADMIN_KEY, READ_KEY, keyed_settings
from tests.service.poses import COCO_STANDING

KP = COCO_STANDING.tolist()
FAST_S = 2.0  # a refusal that parses nothing should take well under this on 2 cores


def timed_post(client: httpx.Client, path: str, **kwargs) -> tuple[httpx.Response, float]:
    start = time.perf_counter()
    r = client.post(path, **kwargs)
    return r, time.perf_counter() - start


def test_millions_of_empty_arrays_are_refused_before_parsing(client):
    body = b'{"inputs": [' + b"[]," * 5_500_000 + b"[]]}"  # 16.5 MB, under the 16 MiB body limit
    r, seconds = timed_post(client, "/embed", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large", r.text
    assert "at most 1000000" in r.json()["error"]["message"]
    assert seconds < FAST_S, f"refused after {seconds:.1f} s"
    assert client.get("/healthz").status_code == 200


def test_a_hundred_thousand_inputs_are_refused_as_a_batch(client):
    r, seconds = timed_post(client, "/embed", json={"inputs": [{"embedding": [0.1]}] * 100_000})
    assert r.status_code == 413 and r.json()["error"]["code"] == "batch_too_large", r.text
    assert r.json()["error"]["field"] == "inputs" and "at most 256" in r.json()["error"]["message"]
    assert seconds < FAST_S


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_a_50_mb_body_is_refused(client, declared):
    chunk = b" " * (1 << 20)

    def stream():
        yield b'{"inputs": ['
        for _ in range(50):
            yield chunk
        yield b"]}"

    content = b"".join(stream()) if declared else stream()
    r, seconds = timed_post(client, "/embed", content=content, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large", r.text
    assert str(16 << 20) in r.json()["error"]["message"]


def test_an_answer_over_the_result_limit_is_refused_before_any_work(client):
    queries = [{"embedding": [0.1] * 32}] * 256
    r, seconds = timed_post(client, "/retrieve", json={"queries": queries, "k": 1000})
    assert r.status_code == 413 and r.json()["error"]["code"] == "result_too_large", r.text
    assert r.json()["error"]["field"] == "k" and "32768" in r.json()["error"]["message"]
    assert seconds < FAST_S
    allowed = client.post("/retrieve", json={"queries": queries, "k": 100})  # the load that must stay accepted
    assert allowed.status_code == 200 and all(len(b["results"]) == 100 for b in allowed.json()["batches"])


def test_an_embedding_of_huge_values_is_a_direction(client):
    dim = client.get("/info").json()["embedding"]["dim"]
    direction = np.random.default_rng(4).normal(size=dim)
    huge = client.post("/retrieve", json={"query": {"embedding": (direction * 1e307).tolist()}, "k": 5})
    plain = client.post("/retrieve", json={"query": {"embedding": direction.tolist()}, "k": 5})
    assert huge.status_code == plain.status_code == 200, huge.text
    assert [x["id"] for x in huge.json()["results"]] == [x["id"] for x in plain.json()["results"]]
    np.testing.assert_allclose([x["score"] for x in huge.json()["results"]],
                               [x["score"] for x in plain.json()["results"]], atol=1e-5)
    assert max(abs(x["score"]) for x in huge.json()["results"]) > 0.01


def test_an_unknown_label_is_not_echoed_in_full(client):
    label = "x" * 100_000
    r = client.post("/retrieve", json={"query": {"keypoints": KP, "layout": "coco17"},
                                       "filters": {"include": {"content": [label]}}})
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_label"
    assert len(r.text) < 2000 and label not in r.text


def test_the_document_of_an_open_server_has_no_admin_and_no_key(client):
    spec = client.get("/openapi.json").json()
    assert "/admin/reload" not in spec["paths"]
    assert "securitySchemes" not in spec.get("components", {})
    assert all("security" not in op for ops in spec["paths"].values() for op in ops.values())
    assert spec["components"]["schemas"]["EmbedRequest"]["properties"]["inputs"]["maxItems"] == 256
    assert "results of one /retrieve (k x queries x people): 32768" in spec["info"]["description"]


def test_the_document_of_a_keyed_server_declares_its_scheme_and_statuses(tiny_bundle):
    spec = create_app(keyed_settings(tiny_bundle)).openapi()
    assert spec["components"]["securitySchemes"]["ApiKey"] == {
        "type": "apiKey", "in": "header", "name": "X-API-Key",
        "description": "a read key (or the admin key) for the read routes, the admin key for /admin"}
    for path in ("/embed", "/retrieve", "/lift3d", "/info", "/admin/reload"):
        (operation,) = spec["paths"][path].values()
        assert operation["security"] == [{"ApiKey": []}] and "401" in operation["responses"], path
    assert {"401", "403", "404", "422"} <= set(spec["paths"]["/admin/reload"]["post"]["responses"])
    assert spec["components"]["schemas"]["EmbedRequest"]["properties"]["inputs"]["maxItems"] == 8


@pytest.mark.parametrize("path", ["/embed", "/retrieve", "/lift3d"])
def test_every_documented_example_is_accepted(client, path):
    spec = client.get("/openapi.json").json()
    examples = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]["examples"]
    assert "image" in examples  # a real photo, not a placeholder
    for name, example in examples.items():
        r = client.post(path, json=example["value"])
        assert r.status_code == 200, (name, r.text)


def test_admin_routes_stay_closed_on_an_open_server(client):
    for headers in ({}, {"X-API-Key": ADMIN_KEY}, {"X-API-Key": READ_KEY}):
        r = client.post("/admin/reload", json={}, headers=headers)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
