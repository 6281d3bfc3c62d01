"""A user's folder -> `unihpr-build ingest` -> `unihpr-build index --poses` -> a verified bundle, as a user runs it."""

from __future__ import annotations

import json

from index_builder.cli import main
from index_builder.datasets.motion_database import MotionDatabase
from model.runtime.bundle_format import verify_bundle
from tests.index_builder.ingest_fixtures import CMU_BVH, copy_into


def test_folder_to_database_to_bundle(bvh_rigs, tiny_run, blazepose_files, tmp_path, capsys):
    library = copy_into([bvh_rigs / "mixamo_freebvh.bvh", bvh_rigs / "mocapbank.bvh", CMU_BVH], tmp_path / "library")
    (library / "broken.bvh").write_text("HIERARCHY\nROOT Hips\n{\n")
    db_path = tmp_path / "library.npz"
    assert main(["ingest", str(library), "--out", str(db_path), "--licence", "test fixtures only",
                 "--source", "studio"]) == 0
    out = capsys.readouterr().out
    assert "3 clips ingested, 1 skipped" in out and "broken.bvh" in out
    for kind in ("mixamo", "mocapbank", "cmu"):
        assert f"\n{kind} " in out
    db = MotionDatabase.load(db_path)
    assert len(db.clips) == 3 and len(db) == 69 + 455 + 2 and db.licence == "test fixtures only"
    report = json.loads(db_path.with_suffix(".ingest.json").read_text())
    assert [c["kind"] for c in report["clips"]] == ["cmu", "mixamo", "mocapbank"]
    assert report["skipped"][0]["error"] == "BvhParseError"

    bundle = tmp_path / "bundle"
    assert main(["index", "--poses", str(db_path), "--weights", str(tiny_run), "--out", str(bundle),
                 "--views", "2"]) == 0
    manifest = verify_bundle(bundle).manifest
    assert manifest.licence == "test fixtures only" and manifest.database.source == "studio"
    assert manifest.database.poses == len(db) and manifest.index.ntotal == 2 * len(db)
    assert main(["verify", str(bundle)]) == 0


def test_ingest_without_any_good_clip_is_one_error_line(tmp_path, capsys):
    (tmp_path / "bad.bvh").write_text("HIERARCHY\n")
    assert main(["ingest", str(tmp_path), "--out", str(tmp_path / "db.npz"), "--licence", "x"]) == 1
    captured = capsys.readouterr()
    assert "no clip could be ingested" in captured.err and not (tmp_path / "db.npz").exists()


def test_missing_pose_database_is_one_error_line(tiny_run, tmp_path, capsys):
    assert main(["index", "--poses", str(tmp_path / "nope.npz"), "--weights", str(tiny_run),
                 "--out", str(tmp_path / "b")]) == 1
    assert "no such pose database" in capsys.readouterr().err
