"""Clip ids from relative paths (no collisions across folders) and labels from sidecars or folder names."""

from __future__ import annotations

import json

import pytest

from index_builder.errors import ConfigError
from index_builder.ingest import IngestConfig, ingest
from index_builder.ingest.labels import clip_labels, find_clips, label_text

CONFIG = IngestConfig(source="studio", licence="CC BY 4.0 (test)", workers=1)


@pytest.fixture()
def library(bvh_rigs, tmp_path):
    """library/{walk,dance}/take.bvh (same file name in two folders), one JSON sidecar, one labels.csv."""
    root = tmp_path / "library"
    clip = (bvh_rigs / "mocapbank.bvh").read_bytes()
    for folder in ("Walk Cycles", "dance", "sessions/2019"):
        (root / folder).mkdir(parents=True)
        (root / folder / "take.bvh").write_bytes(clip)
    (root / "dance" / "take.json").write_text(json.dumps({"content": "Dance-Spin", "style": "Energetic"}))
    (root / "sessions" / "labels.csv").write_text("clip,content,style,dataset\n2019/take,jump,tired,Studio B\n")
    (root / "README.txt").write_text("not a motion file")
    return root


def test_ids_are_relative_paths_and_never_collide(library):
    ids = [task.clip_id for task, _ in find_clips([library])]
    assert ids == ["library/Walk Cycles/take", "library/dance/take", "library/sessions/2019/take"]


def test_the_same_id_from_two_inputs_is_refused(library, tmp_path):
    other = tmp_path / "elsewhere" / "library"
    (other / "dance").mkdir(parents=True)
    (other / "dance" / "take.bvh").write_bytes((library / "dance" / "take.bvh").read_bytes())
    with pytest.raises(ConfigError, match="library/dance/take"):
        find_clips([library, other])


def test_labels_from_sidecar_csv_and_folders(library):
    assert clip_labels(library / "dance" / "take.bvh", library).__dict__ == {
        "dataset": "library", "content": "dance-spin", "style": "energetic"}
    assert clip_labels(library / "sessions" / "2019" / "take.bvh", library).__dict__ == {
        "dataset": "studio_b", "content": "jump", "style": "exhausted"}  # the Bandai alias
    assert clip_labels(library / "Walk Cycles" / "take.bvh", library).__dict__ == {
        "dataset": "library", "content": "walk_cycles", "style": "unlabelled"}


def test_labels_are_normalised_like_bandai():
    assert label_text("dataset-1_masculinity") == "masculine"
    assert label_text(" Walk Left ") == "walk_left"
    assert label_text("") == "unlabelled"


def test_bandai_style_integer_labels(bvh_rigs, tmp_path):
    root = tmp_path / "bandai-like"
    (root / "cfg").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "cfg" / "content_label.txt").write_text("dataset-1_bow\ndataset-1_walk\n")
    (root / "cfg" / "style_label.txt").write_text("dataset-1_old\ndataset-1_normal\n")
    (root / "data" / "clip.bvh").write_bytes((bvh_rigs / "mocapbank.bvh").read_bytes())
    (root / "data" / "clip.json").write_text(json.dumps({"content": 1, "style": 0}))
    labels = clip_labels(root / "data" / "clip.bvh", root)
    assert (labels.content, labels.style) == ("walk", "elderly")


def test_database_carries_labels_licence_and_source(library):
    run = ingest([library], CONFIG, progress=False)
    db = run.db
    assert list(db.clips.name) == ["library/Walk Cycles/take", "library/dance/take", "library/sessions/2019/take"]
    assert list(db.clips.content) == ["walk_cycles", "dance-spin", "jump"]
    assert db.source == "studio" and db.licence == "CC BY 4.0 (test)"
    assert set(db.clips.split) <= {"train", "val", "test"} and (db.clips.fps == 30.0).all()
    assert len(db) == 3 * 455 and not run.skipped
