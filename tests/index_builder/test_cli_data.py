"""`unihpr-build cache | sample | show` as a user runs them."""

import json

import numpy as np
from PIL import Image

from index_builder.cli import main
from index_builder.datasets.motion_database import MotionDatabase


def test_cache_sample_show_on_dataset_1(bandai_archives, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("UNIHPR_CACHE_DIR", str(tmp_path))
    from index_builder.config import get_paths

    get_paths.cache_clear()
    cache = tmp_path / "d1.npz"
    assert main(["cache", "--archives", str(bandai_archives[0]), "--out", str(cache)]) == 0
    out = capsys.readouterr().out
    assert "174 clips, 31914 frames" in out and "r_hip-r_knee" in out
    report = json.loads(cache.with_suffix(".checks.json").read_text())
    assert report["clips"] == 174
    sample = tmp_path / "sample.npz"
    assert main(["sample", "--source", str(cache), "--out", str(sample)]) == 0
    assert 0 < len(MotionDatabase.load(sample)) < 31914
    png = tmp_path / "poses.png"
    assert main(["show", "--sample", "--out", str(png), "--count", "2"]) == 0
    with Image.open(png) as image:
        assert image.format == "PNG" and image.size[0] > 400
        assert np.asarray(image.convert("L")).std() > 5  # something is drawn
    get_paths.cache_clear()


def test_missing_archive_is_one_clear_line(tmp_path, capsys):
    assert main(["cache", "--archives", str(tmp_path / "nope.tar.xz"), "--out", str(tmp_path / "c.npz")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "nope.tar.xz" in err and "archive not found" in err
    assert not (tmp_path / "c.npz").exists()


def test_unknown_command_is_a_usage_error(capsys):
    assert main(["frobnicate"]) == 2
