"""The motion-search protocol of ``unihpr-build evaluate`` (``index_builder.evaluation.motion.protocol``) on the
shipped sample with the tiny model: its 3D alignment, the oracle (exact, cached atomically), every method's
numbers and the report section with its plot."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from index_builder.evaluation.motion.aligned_error import align_3d, best_yaw, rotate_y, squared_costs, yaw_free_costs
from index_builder.evaluation.motion.protocol import PROTOCOL, motion_search_protocol
from index_builder.evaluation.motion.queries import SPEEDS
from index_builder.evaluation.report.figures import save_figure
from index_builder.evaluation.report.motion import MOTION_PLOT, motion_markdown, plot_motion
from index_builder.training.checkpoint import load_unihpr


def test_yaw_free_costs_bound_every_rotation_and_best_yaw_recovers_one():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(6, 17, 3)) * 300, rng.normal(size=(9, 17, 3)) * 300
    bound = yaw_free_costs(a, b)
    for angle in np.linspace(0, 2 * math.pi, 13):
        assert (bound <= squared_costs(rotate_y(a, angle), b) + 1e-6).all()
    pair = np.array([best_yaw(a[i : i + 1], b[j : j + 1]) for i in range(6) for j in range(9)]).reshape(6, 9)
    exact = np.array([[squared_costs(rotate_y(a[i : i + 1], pair[i, j]), b[j : j + 1])[0, 0] for j in range(9)]
                      for i in range(6)])
    assert np.allclose(bound, exact, rtol=1e-6, atol=1e-6)  # the bound is attained by each pair's own rotation
    assert best_yaw(rotate_y(a, -0.7), a) == pytest.approx(0.7)


def test_align_3d_finds_a_rotated_replayed_segment():
    rng = np.random.default_rng(1)
    clip = np.cumsum(rng.normal(size=(60, 17, 3)) * 30, axis=0)
    clip -= clip[:, :1]
    query = rotate_y(clip[20:40:2], 1.1)  # 2x, turned by 63 degrees
    other = rng.normal(size=(60, 17, 3)) * 300
    found, wrong = align_3d(query, [clip, other])
    assert found.mpjpe < 1e-6 and found.first == 20 and found.last == 38
    assert found.yaw == pytest.approx(-1.1, abs=1e-6) and wrong.mpjpe > 100


@pytest.fixture(scope="module")
def protocol(tiny_run, sample_db, tmp_path_factory):
    torch.set_num_threads(1)
    model, _, _ = load_unihpr(tiny_run)
    cache = tmp_path_factory.mktemp("motion_cache")
    first = motion_search_protocol(model, sample_db, 3, 0, cache, progress=False)
    again = motion_search_protocol(model, sample_db, 3, 0, cache, progress=False)
    return first, again, cache


def test_every_number_of_the_protocol(protocol):
    result, again, cache = protocol
    assert result["status"] == "computed" and result["queries_per_speed"] == 3
    assert not result["oracle"]["cached"] and again["oracle"]["cached"]  # computed once, then read back
    assert list(cache.iterdir()) == [cache / result["oracle"]["cache"]]  # no temporary file left behind
    assert again["results"] == result["results"]  # seeded: the same queries and answers
    lib = result["library"]
    assert lib["views"] == 8 and lib["fps"] == 10.0 and lib["train_poses"] < lib["poses"]
    for condition in ("clean", "detector"):
        for speed in SPEEDS:
            row = result["results"]["held_out"][condition][f"{speed:g}"]
            assert row["queries"] == 3
            for method in ("unihpr", "voting", "dtw_2d"):
                e = row[method]
                assert 0 <= e["hit_at_1"] <= e["hit_at_5"] <= e["hit_at_10"] <= 1
                # the oracle is the least aligned 3D cost over the library: nothing beats it by much in MPJPE
                assert e["top1_error_mm"] >= 0.9 * row["oracle"]["error_mm"]
            assert row["oracle"]["proven"] == 1.0 and row["oracle"]["error_mm"] > 0
            own = result["results"]["own_clip"][condition][f"{speed:g}"]
            for method in ("unihpr", "voting"):
                assert 0 <= own[method]["hit_at_1"] <= own[method]["top1_same_clip"] <= 1
    assert {t["met"] for t in result["targets"]} <= {True, False, None} and len(result["targets"]) == 24
    assert all(v > 0 for v in result["ms_per_query"].values())


def test_the_report_section_and_plot(protocol, tmp_path):
    result, _, _ = protocol
    r = {"motion_search": result, "protocols": {"motion_search": PROTOCOL}}
    path = tmp_path / MOTION_PLOT
    plot_motion(result, path, save_figure)
    with Image.open(path) as image:
        assert image.format == "PNG" and np.asarray(image.convert("L")).std() > 5
    text = "\n".join(motion_markdown(r, MOTION_PLOT))
    assert "## Motion search" in text and f"]({MOTION_PLOT})" in text and "target (issue #19)" in text
    assert "per-frame voting" in text and "2D DTW" in text and "3D oracle" in text
    skipped = motion_markdown({"motion_search": {"status": "skipped", "note": "no test clips"}}, None)
    assert "Skipped: no test clips." in skipped
