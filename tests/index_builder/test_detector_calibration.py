"""The detector noise calibration (index_builder/training/detector_calibration.py, `unihpr-build calibrate`) and the
noise model it fits.

The estimators are checked on synthetic matches with known noise (no photos needed); the calibration itself runs
on the real labelled photos and must reproduce the committed ``data/detector_noise.json`` and
``data/detector_calibration.json``. Those tests skip only when ../shared/data/pose-images or the BlazePose models
are unavailable.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from index_builder.bundle.blazepose_assets import fetch_blazepose_models
from index_builder.cli import main
from index_builder.config import BuildPaths, get_paths
from index_builder.datasets.labelled_photos import LabelledPerson, Match
from index_builder.errors import ArtifactError
from index_builder.training.detector_calibration import MIRROR, calibrate, estimate
from index_builder.training.detector_noise import DetectorNoise
from model.pose.skeleton import H36M17

J = H36M17.index
LIMBS = [n for n in H36M17.names if n[:2] in ("l_", "r_")]
# a standing person in normalised units (x right, y down), left and right apart so that a swap shows
TEMPLATE = np.array([
    (0.0, 0.1), (-0.15, 0.1), (-0.17, 0.5), (-0.18, 0.95), (0.15, 0.1), (0.17, 0.5), (0.18, 0.95), (0.0, -0.2),
    (0.0, -0.5), (0.0, -0.7), (0.0, -0.95), (0.25, -0.5), (0.4, -0.2), (0.45, 0.1), (-0.25, -0.5), (-0.4, -0.2),
    (-0.45, 0.1),
])
assert TEMPLATE.shape == (H36M17.num_joints, 2)


# --- the estimators on synthetic matches ---------------------------------------------------------------------

def synthetic_matches(rng: np.random.Generator, people: int, sigma: float, swapped: int, hidden_prob: float,
                      hidden_sigma: float) -> list[Match]:
    """Detections = label + N(0, sigma) per axis, visibility U(0.8, 1); a hidden joint instead gets
    N(0, hidden_sigma) and U(0, 0.4); the first ``swapped`` people are mirrored before the noise."""
    matches = []
    for i in range(people):
        label = TEMPLATE + rng.normal(scale=0.03, size=TEMPLATE.shape)
        hidden = rng.random(len(label)) < hidden_prob
        noise = rng.normal(size=label.shape) * np.where(hidden, hidden_sigma, sigma)[:, None]
        detection = (label[MIRROR] if i < swapped else label) + noise
        visibility = np.where(hidden, rng.uniform(0, 0.4, len(label)), rng.uniform(0.8, 1.0, len(label)))
        person = LabelledPerson(dataset="mpii", image=Path(f"{i}.jpg"), box=np.zeros(4), joints=label * 100,
                                occluded=np.zeros(len(label), bool))
        matches.append(Match(person=person, label=label, detection=detection, visibility=visibility, own={},
                             scale=100.0, box_size=np.array([100.0, 200.0])))
    return matches


def test_estimate_recovers_known_noise():
    rng = np.random.default_rng(0)
    matches = synthetic_matches(rng, people=200, sigma=0.03, swapped=6, hidden_prob=0.1, hidden_sigma=0.2)
    noise, report = estimate(matches)
    assert report["swaps"]["whole_body"] == 6
    assert noise.swap_prob == pytest.approx(6 / 200)
    assert noise.hidden_prob == pytest.approx(0.1, abs=0.015)
    assert noise.hidden_sigma == pytest.approx(0.2, rel=0.1)
    np.testing.assert_allclose(noise.joint_sigma, 0.03, rtol=0.12)  # ~300 samples per mirrored pair
    assert noise.visible_range == pytest.approx((0.82, 0.98), abs=0.015)
    assert noise.hidden_range == pytest.approx((0.04, 0.36), abs=0.03)
    assert report["people"] == 200 and report["joints"] == 200 * H36M17.num_joints
    assert all(v["n"] == 200 for v in report["per_joint"].values())


def test_estimate_pools_mirrors_and_shrinks_sparse_joints():
    rng = np.random.default_rng(1)
    matches = synthetic_matches(rng, people=20, sigma=0.03, swapped=0, hidden_prob=0.0, hidden_sigma=0.2)
    for i, m in enumerate(matches):
        m.label[J("head_top")] = np.nan  # never comparable: takes the median joint sigma
        if i >= 3:
            m.label[J("neck_nose")] = np.nan  # 3 samples: shrunk towards the median
        m.detection[J("l_wrist")] = m.label[J("l_wrist")] + rng.normal(scale=0.09, size=2)
    noise, report = estimate(matches)
    sigma = dict(zip(H36M17.names, noise.joint_sigma))
    assert sigma["l_wrist"] == sigma["r_wrist"]  # one sigma per mirrored pair ...
    assert sigma["l_wrist"] == pytest.approx(np.sqrt((0.09 ** 2 + 0.03 ** 2) / 2), rel=0.25)  # ... pooled
    assert sigma["head_top"] == pytest.approx(report["median_sigma"])
    assert report["per_joint"]["head_top"]["n"] == 0 and report["per_joint"]["neck_nose"]["n"] == 3
    s3 = report["per_joint"]["neck_nose"]["sigma_joint"]
    expected = np.sqrt((3 * s3 ** 2 + 5 * report["median_sigma"] ** 2) / 8)
    assert sigma["neck_nose"] == pytest.approx(expected, abs=2e-5)  # both rounded to 5 decimals


def test_estimate_without_people_fails_loudly():
    with pytest.raises(ValueError, match="no labelled person"):
        estimate([])


# --- DetectorNoise.apply against the calibrated sigmas -------------------------------------------------------

def test_apply_matches_the_calibrated_sigmas():
    noise = DetectorNoise.load()
    rng = np.random.default_rng(0)
    n = 20_000
    clean = np.broadcast_to(TEMPLATE, (n, H36M17.num_joints, 2)).astype(np.float32)
    sigma = np.asarray(noise.joint_sigma)

    # per-joint Gaussian alone: per-axis std = sigma (std of a std estimate from 40k values: ~0.4%)
    plain = replace(noise, swap_prob=0.0, hidden_prob=0.0)
    out, vis = plain.apply(clean, rng)
    np.testing.assert_allclose((out - clean).std(axis=(0, 2)), sigma, rtol=0.03)
    assert ((vis >= noise.visible_range[0]) & (vis <= noise.visible_range[1])).all()

    # with hidden joints: the mixture's variance, and the low visibilities on the hidden ones
    mixed = replace(noise, swap_prob=0.0)
    out, vis = mixed.apply(clean, rng)
    expected = np.sqrt((1 - noise.hidden_prob) * sigma ** 2 + noise.hidden_prob * noise.hidden_sigma ** 2)
    np.testing.assert_allclose((out - clean).std(axis=(0, 2)), expected, rtol=0.06)
    low = vis < noise.visible_range[0]
    assert low.mean() == pytest.approx(noise.hidden_prob, abs=4 * np.sqrt(noise.hidden_prob / low.size))

    # whole-body swaps: the left hip lands on the right side with swap_prob
    swaps = replace(noise, hidden_prob=0.0, joint_sigma=(1e-4,) * H36M17.num_joints)
    out, _ = swaps.apply(clean, rng)
    swapped = out[:, J("l_hip"), 0] < 0
    assert np.array_equal(swapped, out[:, J("l_wrist"), 0] < 0)  # the whole body at once
    assert swapped.mean() == pytest.approx(noise.swap_prob, abs=4 * np.sqrt(noise.swap_prob / n) + 1e-3)


# --- the calibration on the real photos ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def calibration() -> tuple[DetectorNoise, dict]:
    pose_images = BuildPaths().pose_images
    if not (pose_images / "README.md").is_file():
        pytest.skip(f"labelled photos not found at {pose_images} (set UNIHPR_SHARED_DATA)")
    try:
        files = fetch_blazepose_models()
    except ArtifactError as exc:  # no network and no cache
        pytest.skip(f"BlazePose models unavailable: {exc}")
    return calibrate(pose_images, files)


def test_calibration_is_sensible(calibration):
    noise, report = calibration
    assert len(noise.joint_sigma) == H36M17.num_joints
    assert all(0.005 < s < 0.5 for s in noise.joint_sigma), noise.joint_sigma
    assert report["people"] >= 8 and report["joints"] >= 8 * 12
    assert report["per_dataset"]["mpii"]["people_found"] == 5
    assert report["per_dataset"]["mpii"]["rms_per_axis_seen_limbs"] < 0.15
    for name in LIMBS:  # mirrored joints share one sigma
        assert noise.joint_sigma[J(name)] == noise.joint_sigma[MIRROR[J(name)]]
    assert 0.01 <= noise.swap_prob <= 0.5 and 0.01 <= noise.hidden_prob <= 0.5
    assert max(noise.joint_sigma) < noise.hidden_sigma < 1.0
    lo, hi = noise.visible_range
    assert 0.5 <= lo < hi <= 1.0
    assert 0.0 <= noise.hidden_range[0] < noise.hidden_range[1] <= 1.0 and noise.hidden_range[0] < lo
    assert report["hidden"]["median_error_hidden"] > 2 * report["hidden"]["median_error_seen"]
    assert noise.source.startswith(f"calibrated on {report['people']} people / {report['joints']} joints from MPII")


def test_formula_offsets_on_the_labelled_photos(calibration):
    offsets = calibration[1]["formula_offsets"]
    mpii = offsets["mpii"]
    # MPII's own pelvis and thorax are the mid-hips and mid-shoulders: our formulas on its labels land on them
    for pair in ("pelvis-pelvis", "thorax-thorax"):
        assert mpii[pair]["labels"]["n"] == 5
        assert abs(mpii[pair]["labels"]["dx"]) < 0.01 and abs(mpii[pair]["labels"]["dy"]) < 0.01
        assert abs(mpii[pair]["detection"]["dx"]) < 0.1 and abs(mpii[pair]["detection"]["dy"]) < 0.1
    # our head_top (2 mid_ears - thorax) on BlazePose lands on the head: within 0.15 of the labelled head top
    head = mpii["head_top-head_top"]["detection"]
    assert head["n"] == 5 and np.hypot(head["dx"], head["dy"]) < 0.15
    assert abs(offsets["crowdpose"]["head_top-head"]["detection"]["along_trunk"]) < 0.15


def test_committed_calibration_matches_a_fresh_run(calibration):
    noise, report = calibration
    assert get_paths().detector_noise.is_file(), "run `unihpr-build calibrate`"
    committed = DetectorNoise.load(get_paths().detector_noise)
    assert committed.source == noise.source  # same people and joints
    np.testing.assert_allclose(committed.joint_sigma, noise.joint_sigma, atol=1e-3)
    for name in ("swap_prob", "hidden_prob", "hidden_sigma"):
        assert getattr(committed, name) == pytest.approx(getattr(noise, name), abs=1e-3), name
    np.testing.assert_allclose(committed.visible_range, noise.visible_range, atol=1e-3)
    np.testing.assert_allclose(committed.hidden_range, noise.hidden_range, atol=1e-3)
    saved = json.loads(get_paths().detector_calibration_report.read_text())
    assert saved["people"] == report["people"] and saved["joints"] == report["joints"]
    assert saved["swaps"] == report["swaps"]
    assert {k: v["n"] for k, v in saved["per_joint"].items()} == {k: v["n"] for k, v in report["per_joint"].items()}


def test_calibrate_command_writes_the_noise_model_and_report(calibration, tmp_path, capsys):
    noise, report = calibration
    noise_out, report_out = tmp_path / "noise.json", tmp_path / "report.json"
    assert main(["calibrate", "--noise-out", str(noise_out), "--report-out", str(report_out)]) == 0
    assert DetectorNoise.load(noise_out) == noise
    assert json.loads(report_out.read_text())["swaps"] == report["swaps"]
    out = capsys.readouterr().out
    assert f"{noise_out}: {noise.source}" in out and "sigma: pelvis" in out


def test_calibrate_command_without_the_photos_fails_in_one_line(tmp_path, capsys):
    assert main(["calibrate", "--pose-images", str(tmp_path / "none"), "--noise-out", str(tmp_path / "n.json")]) == 1
    assert "labelled photos not found" in capsys.readouterr().err
    assert not (tmp_path / "n.json").exists()
