"""The builder's pose file format, the shipped sample and the split rule."""

from dataclasses import replace

import numpy as np
import pytest

from index_builder.config import get_paths
from index_builder.datasets.motion_database import MotionDatabase, assign_splits
from index_builder.datasets.sample import make_sample
from index_builder.errors import DataFileError
from model.runtime.motion_sources import ClipSources, compress_source


def test_shipped_sample_is_small_labelled_and_licensed(sample_db):
    assert get_paths().sample.stat().st_size < 5e6
    assert sample_db.poses.shape[1:] == (17, 3) and sample_db.poses.dtype == np.float32
    assert set(sample_db.clips.split.tolist()) == {"train", "val", "test"}
    assert set(sample_db.clips.dataset.tolist()) == {"dataset-1", "dataset-2"}
    assert "CC BY-NC 4.0" in sample_db.licence and "Non-commercial" in sample_db.licence
    assert (get_paths().sample.parent / "NOTICE.md").read_text().count("CC BY-NC 4.0") >= 1
    assert np.allclose(sample_db.clips.fps, 10.0)


def test_save_load_round_trip(sample_db, tmp_path):
    path = tmp_path / "db.npz"
    sample_db.save(path)
    back = MotionDatabase.load(path)
    np.testing.assert_array_equal(back.poses, sample_db.poses)
    np.testing.assert_array_equal(back.clips.name, sample_db.clips.name)
    assert back.licence == sample_db.licence
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left behind


def test_sources_round_trip_and_follow_clip_selection(sample_db, tmp_path):
    assert sample_db.sources is None  # a file written before sources existed still loads
    texts = [f"HIERARCHY clip {i}\n".encode() * (i + 1) if i % 3 else None for i in range(len(sample_db.clips))]
    sources = ClipSources.from_blobs(["bvh"] * len(texts), [compress_source(t) if t else None for t in texts])
    db = replace(sample_db, sources=sources)
    db.save(tmp_path / "db.npz", compress=True)
    back = MotionDatabase.load(tmp_path / "db.npz")
    assert back.sources.format.tolist() == ["bvh" if t else "" for t in texts]
    assert [back.sources.text(i) for i in range(len(texts))] == texts
    keep = np.arange(len(texts)) % 2 == 1
    picked = back.select_clips(keep).every_nth_frame(2)
    assert [picked.sources.text(i) for i in range(int(keep.sum()))] == [t for t, k in zip(texts, keep) if k]


def test_select_and_subsample_keep_clips_contiguous(sample_db):
    test = sample_db.split("test")
    assert set(test.clips.split.tolist()) == {"test"}
    np.testing.assert_array_equal(np.repeat(np.arange(len(test.clips)), test.clips.length), test.clip)
    for i in range(len(test.clips)):
        rows = slice(test.clips.start[i], test.clips.start[i] + test.clips.length[i])
        assert (test.clip[rows] == i).all()
    half = sample_db.every_nth_frame(2)
    assert len(half) == int((sample_db.frame % 2 == 0).sum())
    np.testing.assert_allclose(half.clips.fps, 5.0)


def test_make_sample_is_deterministic(sample_db):
    a, b = (make_sample(sample_db, clip_fraction=0.2, frame_step=2) for _ in range(2))
    np.testing.assert_array_equal(a.clips.name, b.clips.name)
    assert 0 < len(a.clips) < len(sample_db.clips)


def test_split_never_puts_a_clip_on_two_sides_and_small_strata_train():
    names = [f"clip{i}" for i in range(40)] + ["lonely_a", "lonely_b"]
    strata = ["big"] * 40 + ["small"] * 2
    splits = assign_splits(names, strata)
    assert splits == assign_splits(list(names), list(strata))
    assert splits[-2:] == ["train", "train"]
    assert splits[:40].count("test") == 6 and splits[:40].count("val") == 4


@pytest.mark.parametrize(
    "arrays, problem",
    [
        ({"poses": np.zeros((3, 16, 3), np.float32)}, "missing"),
        (None, "poses must be (N, 17, 3) float32"),
        ("text", "cannot read motion database"),
    ],
)
def test_bad_files_are_named(tmp_path, sample_db, arrays, problem):
    path = tmp_path / "bad.npz"
    if arrays is None:
        sample_db.save(path)
        data = dict(np.load(path))
        data["poses"] = data["poses"][:, :16]
        np.savez(path, **data)
    elif arrays == "text":
        path.write_text("not an npz")
    else:
        np.savez(path, **arrays)
    with pytest.raises(DataFileError) as err:
        MotionDatabase.load(path)
    assert str(path) in str(err.value) and problem in str(err.value)
