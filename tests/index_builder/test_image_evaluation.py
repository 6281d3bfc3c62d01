"""Image -> lift3d on the labelled photos and the detector error statistics (index_builder/evaluation/images.py).

The scale + translation fit and the scoring are checked on synthetic cases with exact answers; the whole section
runs on the real photos with a tiny UniHPR trained here, and skips only when ../shared/data/pose-images or the
BlazePose models are unavailable.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from index_builder.bundle.blazepose_assets import fetch_blazepose_models
from index_builder.config import BuildPaths, get_paths
from index_builder.datasets.labelled_photos import DATASETS, LabelledPerson, Match, photos_present
from index_builder.errors import ArtifactError
from index_builder.evaluation.images import (
    PCK_FRACTIONS,
    SCORED,
    evaluate_images,
    fit_scale_translation,
    image_sections,
    joint_errors,
    score_matches,
)
from index_builder.evaluation.report.images import image_markdown
from index_builder.training.config import TINY
from index_builder.training.loop import train_unihpr
from model.pose.features import image_features
from model.pose.skeleton import H36M17

J = H36M17.index
# a standing person in normalised units (x right, y down)
TEMPLATE = np.array([
    (0.0, 0.1), (-0.15, 0.1), (-0.17, 0.5), (-0.18, 0.95), (0.15, 0.1), (0.17, 0.5), (0.18, 0.95), (0.0, -0.2),
    (0.0, -0.5), (0.0, -0.7), (0.0, -0.95), (0.25, -0.5), (0.4, -0.2), (0.45, 0.1), (-0.25, -0.5), (-0.4, -0.2),
    (-0.45, 0.1),
])


# --- the fit and the scoring on synthetic cases --------------------------------------------------------------

def test_fit_recovers_a_known_scale_and_translation_exactly():
    rng = np.random.default_rng(0)
    source = rng.normal(size=(17, 2)) * 300.0  # e.g. mm
    s, t = 0.37, np.array([412.5, -88.25])
    fs, ft = fit_scale_translation(source, s * source + t)
    assert fs == pytest.approx(s, rel=1e-12)
    np.testing.assert_allclose(ft, t, rtol=0, atol=1e-9)
    # a subset of the joints (the ones a label defines) recovers the same
    fs, ft = fit_scale_translation(source[[0, 3, 5, 9]], s * source[[0, 3, 5, 9]] + t)
    assert fs == pytest.approx(s, rel=1e-12) and np.allclose(ft, t, atol=1e-9)


def test_fit_is_least_squares_and_never_flips_the_pose():
    rng = np.random.default_rng(1)
    source = rng.normal(size=(12, 2))
    target = 0.5 * source + rng.normal(scale=0.3, size=(12, 2)) + 2.0  # noisy: no exact fit exists
    s, t = fit_scale_translation(source, target)
    # the normal equations of min |s x + t - y|^2 over (s, tx, ty)
    A = np.zeros((24, 3))
    A[:, 0] = source.reshape(-1)
    A[0::2, 1] = A[1::2, 2] = 1.0
    ref = np.linalg.lstsq(A, target.reshape(-1), rcond=None)[0]
    np.testing.assert_allclose([s, *t], ref, atol=1e-12)
    assert s > 0
    # an upside-down source: the best scale would be negative, so it is 0 and the pose collapses to the mean
    s, t = fit_scale_translation(-TEMPLATE, TEMPLATE + 3.0)
    assert s == 0.0 and np.allclose(t, TEMPLATE.mean(0) + 3.0)


def test_image_features_ignore_the_frame_the_detection_is_given_in():
    """image_features normalises over the detection's own box: the frame it is given in does not matter (lift_matches
    crops in pixels, ``images.detection_pixels``; the scoring works in label-normalised units)."""
    rng = np.random.default_rng(2)
    pixels = TEMPLATE[None] * 140.0 + np.array([320.0, 250.0]) + rng.normal(size=(1, 17, 2))
    vis = rng.uniform(0.2, 1.0, size=(1, 17))
    moved = (pixels - np.array([300.0, 200.0])) / 97.0
    np.testing.assert_allclose(image_features(moved, vis), image_features(pixels, vis), atol=1e-6)


def synthetic_match(dataset: str, label_px: np.ndarray, detection: np.ndarray, box: np.ndarray) -> Match:
    """label_px: (17, 2) px (NaN = not labelled); detection: (17, 2) normalised units; scale 100 px, centre 0."""
    person = LabelledPerson(dataset=dataset, image=Path("x.jpg"), box=box, joints=label_px,
                            occluded=np.zeros(17, bool))
    return Match(person=person, label=label_px / 100.0, detection=detection, visibility=np.ones(17), own={},
                 scale=100.0, box_size=np.array([100.0, 200.0]))


def test_scoring_a_perfect_lift_and_a_shifted_detection():
    label = TEMPLATE * 100.0  # px
    label[J("neck_nose")] = np.nan  # not labelled: not scored
    box = np.array([-60.0, -100.0, 60.0, 100.0])  # diagonal 233.2 px = 2.332 normalised units
    shift = 0.2  # normalised units: 0.2 / 2.332 = 0.086 of the diagonal, inside PCK@0.1, outside PCK@0.05
    match = synthetic_match("mpii", label, TEMPLATE + shift, box)
    lifted = np.zeros((1, 17, 3), np.float32)
    lifted[0, :, :2] = TEMPLATE * 800.0  # mm: the label up to scale and translation
    lifted[0, :, 2] = 3000.0
    (row,) = score_matches([match], lifted)
    assert row["dataset"] == "mpii" and J("neck_nose") not in row["joints"] and len(row["joints"]) == 16
    np.testing.assert_allclose(row["errors"]["lifted"], 0.0, atol=1e-6)
    np.testing.assert_allclose(row["errors"]["detector_fitted"], 0.0, atol=1e-9)  # the fit removes the shift
    expected = shift * np.sqrt(2) / (np.hypot(120.0, 200.0) / 100.0)
    np.testing.assert_allclose(row["errors"]["detector"], expected, rtol=1e-9)
    assert joint_errors(np.zeros((1, 2)), np.array([[3.0, 4.0]]), 10.0)[0] == pytest.approx(0.5)


# --- the section on the real photos ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def photos_and_models():
    pose_images = BuildPaths().pose_images
    if not photos_present(pose_images):
        pytest.skip(f"labelled photos not found at {pose_images} (set UNIHPR_SHARED_DATA)")
    try:
        files = fetch_blazepose_models()
    except ArtifactError as exc:  # no network and no cache
        pytest.skip(f"BlazePose models unavailable: {exc}")
    return pose_images, files


@pytest.fixture(scope="module")
def tiny_model(sample_db, tmp_path_factory):
    """A tiny UniHPR on the shipped sample, one torch thread (seconds)."""
    from index_builder.training.checkpoint import load_unihpr

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    path = tmp_path_factory.mktemp("image_eval") / "unihpr.pt"
    start = time.perf_counter()
    train_unihpr(TINY, sample_db.split("train"), sample_db.split("val"), path, progress=False)
    print(f"\ntiny UniHPR trained in {time.perf_counter() - start:.1f} s")
    model, _, _ = load_unihpr(path)
    yield model
    torch.set_num_threads(previous)


def test_image_lifting_on_the_labelled_photos(tiny_model, photos_and_models):
    pose_images, files = photos_and_models
    result = evaluate_images(tiny_model, pose_images, files)
    json.dumps(result, allow_nan=False)  # what eval.json needs
    photos = result["image_lifting"]
    assert photos["status"] == "computed" and set(photos["per_dataset"]) == set(DATASETS)
    pooled = photos["pooled"]
    assert pooled["people"] > 0 and pooled["joints"] >= 2 * pooled["people"]
    assert pooled["people_labelled"] == sum(d["people_labelled"] for d in photos["per_dataset"].values())
    assert pooled["people"] == sum(d["people"] for d in photos["per_dataset"].values())
    assert photos["per_dataset"]["mpii"]["people"] == 5  # the calibration finds all five MPII people
    keys = ["pck"] + [f"pck_at_{f:g}" for f in PCK_FRACTIONS[1:]]
    for block in [pooled, *photos["per_dataset"].values(), *photos["per_joint"].values()]:
        assert 0 <= block["people"] <= block.get("people_labelled", block["people"])
        for key in keys:
            assert set(block[key]) == set(SCORED)
            for value in block[key].values():
                assert (value is None) == (block["joints"] == 0)
                assert value is None or 0.0 <= value <= 1.0
    for key in keys[1:]:  # a stricter threshold never scores higher
        assert all(pooled[key][m] <= pooled["pck"][m] for m in SCORED)
    assert sum(b["joints"] for b in photos["per_joint"].values()) == pooled["joints"]

    errors = result["detector_errors"]
    assert errors["source"].startswith("recomputed") and errors["agrees_with_committed_calibration"]
    assert set(errors["per_joint"]) == set(H36M17.names)
    assert sum(d["people_found"] for d in errors["per_dataset"].values()) == pooled["people"]
    markdown = "\n".join(image_markdown(result, {"image": "eval_image_pck.png"}))
    assert "## Image -> lift3d" in markdown and "PCK@0.1 lifted" in markdown and "| pooled |" in markdown
    assert "## Detector error statistics" in markdown and "recomputed" in markdown


def test_without_photos_the_section_is_a_note(tmp_path):
    result = image_sections(torch.nn.Module(), tmp_path, None)  # the model is never touched
    assert result["image_lifting"]["status"] == "skipped"
    assert str(tmp_path) in result["image_lifting"]["note"]
    if get_paths().detector_calibration_report.is_file():
        errors = result["detector_errors"]
        assert errors["source"].startswith("read from the committed") and errors["people"] > 0
    markdown = "\n".join(image_markdown(result, {}))
    assert "Skipped: image -> lift3d" in markdown
