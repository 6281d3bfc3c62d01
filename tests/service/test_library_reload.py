"""A living library over real HTTP: `unihpr-build remove` and `add` write new bundles that a running service
takes with /admin/reload; removed clips disappear from /clips and /retrieve, re-added ones come back with the
same ids and the same results."""

from __future__ import annotations

import shutil

import httpx
import numpy as np
import pytest

from index_builder.cli import main as build_cli
from service.main import create_app
from tests.service.live_server import ADMIN_KEY, make_settings, serve

ADMIN = {"X-API-Key": ADMIN_KEY}


def top_ids(client: httpx.Client, queries: list[dict], k: int = 10) -> list[list[tuple[str, float]]]:
    body = client.post("/retrieve", json={"queries": queries, "k": k}).json()
    return [[(r["id"], r["score"]) for r in batch["results"]] for batch in body["batches"]]


@pytest.fixture(scope="module")
def library(tiny_bundle, sample_db, tmp_path_factory):
    """A bundles root with the tiny bundle as `base`, and a pose database of the two clips the tests remove."""
    root = tmp_path_factory.mktemp("library")
    shutil.copytree(tiny_bundle, root / "base")
    with np.load(tiny_bundle / "metadata.npz") as meta:
        names = [str(n) for n in meta["clip_name"]]
    removed = names[1:3]
    db = root / "removed.npz"
    sample_db.select_clips(np.isin(sample_db.clips.name, removed)).save(db)
    return root, removed, db


def test_remove_then_add_with_hot_reload(library, database, tmp_path):
    root, removed, db = library
    poses, rotations, metadata = database
    rows = np.flatnonzero(np.isin(metadata["clip"], [1, 2]))  # poses of the two clips removed below
    queries = [{"modality": "pose3d", "keypoints": (poses[i] @ rotations[0].T).tolist()}
               for i in [0, 40, *rows[::25]]]
    settings = make_settings(root / "base", admin_key=ADMIN_KEY, bundles_root=root, state_file=tmp_path / "served")
    with serve(create_app(settings)) as live, httpx.Client(base_url=live.url, timeout=120) as c:
        before = top_ids(c, queries)
        assert c.get(f"/clips/{removed[0]}").status_code == 200

        assert build_cli(["remove", str(root / "base"), "--clip", removed[0], "--clip", removed[1],
                          "--out", str(root / "smaller")]) == 0
        r = c.post("/admin/reload", json={"bundle": "smaller"}, headers=ADMIN)
        assert r.status_code == 200, r.text
        assert all(c.get(f"/clips/{name}").status_code == 404 for name in removed)
        without = top_ids(c, queries)
        assert not any(i.split("#")[0] in removed for row in without for i, _ in row)

        assert build_cli(["add", str(root / "smaller"), str(db), "--out", str(root / "again")]) == 0
        r = c.post("/admin/reload", json={"bundle": "again"}, headers=ADMIN)
        assert r.status_code == 200, r.text
        assert all(c.get(f"/clips/{name}").status_code == 200 for name in removed)
        after = top_ids(c, queries)
    assert [[i for i, _ in row] for row in after] == [[i for i, _ in row] for row in before]
    np.testing.assert_allclose([[s for _, s in row] for row in after], [[s for _, s in row] for row in before],
                               atol=1e-6)
