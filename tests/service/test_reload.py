"""Hot reload: atomic under load, refusal of a corrupt bundle, only under the bundles root, recorded across a
restart, closed without an admin key; and a server that starts without a bundle."""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
import time

import httpx
import numpy as np
import pytest

from model.runtime.bundle_format import read_manifest
from service.main import create_app
from tests.service.live_server import ADMIN_KEY, READ_KEY, copy_bundle, make_settings, serve
from tests.service.poses import COCO_STANDING

CLIENTS = 20
B_SUFFIX = "~b"  # bundle B's clip names end with this, so every result id says which bundle produced it
ADMIN = {"X-API-Key": ADMIN_KEY}


@pytest.fixture(scope="module")
def root(tiny_bundle, tmp_path_factory):
    """A bundles root holding `a` (the tiny bundle) and `b` (a copy with renamed clips and its own version)."""
    root = tmp_path_factory.mktemp("bundles-root")
    shutil.copytree(tiny_bundle, root / "a")
    copy_bundle(tiny_bundle, root / "b", "-b", clip_suffix=B_SUFFIX)
    return root


@pytest.fixture(scope="module")
def bundle_b(root):
    return root / "b"


def admin_settings(root, state_file, **overrides):
    return make_settings(root / "a", api_keys=[READ_KEY], admin_key=ADMIN_KEY, bundles_root=root,
                         state_file=state_file, **overrides)


@pytest.fixture()
def admin_server(root, tmp_path):
    with serve(create_app(admin_settings(root, tmp_path / "served"))) as live:
        yield live


def test_reload_under_load_never_fails_or_mixes_bundles(admin_server, tiny_bundle, bundle_b):
    version_a, version_b = read_manifest(tiny_bundle).model_version, read_manifest(bundle_b).model_version
    query = {"query": {"keypoints": COCO_STANDING.tolist(), "layout": "coco17"}, "k": 20}
    stop = threading.Event()
    seen: list[tuple[str, str, list[str]]] = []
    failures: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        with httpx.Client(base_url=admin_server.url, timeout=60, headers={"X-API-Key": READ_KEY}) as c:
            while not stop.is_set():
                try:
                    r = c.post("/retrieve", json=query)
                except httpx.HTTPError as err:
                    with lock:
                        failures.append(repr(err))
                    continue
                with lock:
                    if r.status_code != 200:
                        failures.append(f"{r.status_code} {r.text[:200]}")
                    else:
                        body = r.json()
                        seen.append((r.headers["x-model-version"], body["model_version"],
                                     [x["id"] for x in body["results"]]))

    threads = [threading.Thread(target=worker) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    try:
        with httpx.Client(base_url=admin_server.url, timeout=120, headers=ADMIN) as admin:
            for target, version in (("b", version_b), ("a", version_a), ("b", version_b)):
                time.sleep(0.4)
                r = admin.post("/admin/reload", json={"bundle": target})
                assert r.status_code == 200, r.text
                assert r.json()["model_version"] == version == r.headers["x-model-version"]
            time.sleep(0.4)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert not failures, failures[:5]
    assert len(seen) > CLIENTS
    counts = {version_a: 0, version_b: 0}
    for header, body_version, ids in seen:
        assert header == body_version and body_version in counts
        assert len(ids) == 20
        from_b = [i.split("#")[0].endswith(B_SUFFIX) for i in ids]
        assert all(from_b) if body_version == version_b else not any(from_b), (body_version, ids[:3])
        counts[body_version] += 1
    assert counts[version_a] > 0 and counts[version_b] > 0, counts


@pytest.mark.parametrize("fault", ["changed_file", "edited_manifest", "missing_dir"])
def test_corrupt_bundle_is_refused_and_the_old_one_keeps_serving(admin_server, tiny_bundle, root, fault):
    version = read_manifest(tiny_bundle).model_version
    bad = root / f"bad-{fault}"
    if fault != "missing_dir":
        copy_bundle(tiny_bundle, bad, "-bad")
    if fault == "changed_file":
        poses = np.load(bad / "poses.npy")
        poses[0, 1, 0] += 1.0
        np.save(bad / "poses.npy", poses)  # same size, other hash
    elif fault == "edited_manifest":
        text = (bad / "manifest.json").read_text()
        (bad / "manifest.json").write_text(text.replace('"views": 8', '"views": 4'))
    with httpx.Client(base_url=admin_server.url, timeout=120, headers=ADMIN) as admin:
        r = admin.post("/admin/reload", json={"bundle": bad.name})
        assert r.status_code == 422, r.text
        error = r.json()["error"]
        assert error["code"] == "bundle_rejected" and error["field"] == "bundle"
        assert {"changed_file": "poses.npy", "edited_manifest": "manifest.json",
                "missing_dir": "not a bundle directory"}[fault] in error["message"]
        assert str(root) not in error["message"]  # no server paths in answers
        assert r.headers["x-model-version"] == version
        assert admin.get("/readyz").json()["model_version"] == version
        served = admin.post("/retrieve", json={"query": {"keypoints": COCO_STANDING.tolist(), "layout": "coco17"}})
        assert served.status_code == 200 and served.json()["model_version"] == version
        assert 'unihpr_bundle_reloads_total{outcome="refused"}' in admin.get("/metrics").text


def test_a_manifest_with_a_valid_hash_but_a_missing_field_is_refused_with_the_field(admin_server, root):
    bad = root / "bad-field"
    copy_bundle(root / "a", bad, "-bad")
    data = json.loads((bad / "manifest.json").read_text())
    del data["index"]["operating_point"]["nprobe"]
    text = json.dumps(data)
    (bad / "manifest.json").write_text(text)
    (bad / "manifest.sha256").write_text(hashlib.sha256(text.encode()).hexdigest())
    with httpx.Client(base_url=admin_server.url, timeout=120, headers=ADMIN) as admin:
        r = admin.post("/admin/reload", json={"bundle": bad.name})
        assert r.status_code == 422, r.text
        error = r.json()["error"]
        assert error["code"] == "bundle_rejected" and "index.operating_point.nprobe" in error["message"]
        assert admin.get("/readyz").status_code == 200  # the old bundle keeps serving


def test_reload_without_body_reloads_the_configured_bundle(admin_server):
    with httpx.Client(base_url=admin_server.url, timeout=120, headers=ADMIN) as admin:
        r = admin.post("/admin/reload")
        assert r.status_code == 200, r.text
        assert r.json()["model_version"] == r.json()["previous_model_version"]
        assert r.json()["bundle"] == "a"


@pytest.mark.parametrize("name", ["..", "../..", "/etc", "/", "a/../../x", ".", "/nonexistent/deep/path"])
def test_reload_reads_only_under_the_bundles_root_and_says_nothing_of_other_paths(admin_server, name):
    with httpx.Client(base_url=admin_server.url, timeout=60, headers=ADMIN) as admin:
        r = admin.post("/admin/reload", json={"bundle": name})
        assert r.status_code == 422, r.text
        error = r.json()["error"]
        assert error["code"] == "bundle_rejected" and error["field"] == "bundle"
        assert error["message"] == "`bundle` must name a directory inside the bundles root (e.g. \"default\")"


def test_admin_is_closed_without_an_admin_key(tiny_bundle, root):
    settings = make_settings(tiny_bundle, api_keys=[READ_KEY], bundles_root=root)
    with serve(create_app(settings)) as live, httpx.Client(base_url=live.url, timeout=60) as c:
        for headers in ({}, {"X-API-Key": READ_KEY}, {"X-API-Key": "anything"}):
            r = c.post("/admin/reload", json={"bundle": "b"}, headers=headers)
            assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", r.text
        assert c.get("/readyz").json()["model_version"] == read_manifest(tiny_bundle).model_version


def test_a_reloaded_bundle_survives_a_restart(root, tmp_path, bundle_b):
    state = tmp_path / "served"
    version_b = read_manifest(bundle_b).model_version
    with serve(create_app(admin_settings(root, state))) as live, httpx.Client(base_url=live.url, timeout=120) as c:
        assert c.post("/admin/reload", json={"bundle": "b"}, headers=ADMIN).json()["model_version"] == version_b
    assert not list(tmp_path.glob("*.tmp"))  # written under a temporary name and renamed
    with serve(create_app(admin_settings(root, state))) as live, httpx.Client(base_url=live.url, timeout=120) as c:
        assert c.get("/readyz").json()["model_version"] == version_b
    state.write_text('{"bundle": "/etc"}')  # a record outside the root is ignored: the configured bundle serves
    with serve(create_app(admin_settings(root, state))) as live, httpx.Client(base_url=live.url, timeout=120) as c:
        assert c.get("/readyz").json()["model_version"] != version_b


def test_not_ready_until_a_bundle_is_loaded(root, tmp_path):
    settings = make_settings(root / "nothing-here", require_bundle=False, admin_key=ADMIN_KEY,
                             state_file=tmp_path / "served")
    with serve(create_app(settings)) as live, httpx.Client(base_url=live.url, timeout=120) as c:
        assert c.get("/healthz").json() == {"status": "ok", "model_version": None}
        r = c.get("/readyz")
        assert r.status_code == 503 and r.json()["error"]["code"] == "not_ready"
        assert "x-model-version" not in r.headers
        r = c.post("/embed", json={"inputs": [{"keypoints": COCO_STANDING.tolist(), "layout": "coco17"}]})
        assert r.status_code == 503 and r.json()["error"]["code"] == "not_ready"
        r = c.post("/admin/reload", json={"bundle": "a"}, headers=ADMIN)
        assert r.status_code == 200 and r.json()["previous_model_version"] is None
        assert c.get("/readyz").status_code == 200


def test_a_required_bundle_that_fails_stops_start_up(tmp_path):
    with pytest.raises(RuntimeError, match="failed to start"):
        with serve(create_app(make_settings(tmp_path / "nothing-here"))):
            pass
