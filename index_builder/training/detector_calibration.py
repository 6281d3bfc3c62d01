"""Calibrate the detector noise model on the real labelled photos (SPEC sections 3-5); numpy only.

Every labelled person that BlazePose finds (``index_builder.datasets.labelled_photos``: loading, matching and the
label's normalised units, 1 = the longer half-side of the label pose's box, the units of ``DetectorNoise``) contributes
the error of each h36m17 joint that both sides make with the same shared formula. The estimates:

- whole-body left/right swap: the mirrored detection halves the mean error of the labelled left/right pairs (and
  that error exceeds ``SWAP_MIN_ERROR``); swapped people are compared mirrored from then on, as the noise model
  swaps before adding noise. ``swap_prob`` = swaps / people, at least ``SWAP_FLOOR``.
- unseen joints: BlazePose's own visibility below ``VISIBLE`` (0.5, MediaPipe's cut), or |error| >
  ``GROSS_ERROR``. ``hidden_prob`` = their share (at least ``HIDDEN_FLOOR``), ``hidden_sigma`` = their RMS per
  axis, ``hidden_range`` = the ``VISIBILITY_PERCENTILES`` of their visibility; ``visible_range`` likewise of the
  seen joints. Not gross errors alone: on these photos 2 of 115 joints are off by > 0.5, while 12 have a
  visibility < 0.5 and 4x the median error of the rest. Calling those hidden reproduces both how often BlazePose
  reports a low visibility and what that visibility says about the error, which the image encoder has to learn;
  the gross-only figures stay in the report (``hidden.gross_only``).
- ``joint_sigma``: RMS per axis of the seen joints' errors. Mirrored joints share one sigma (the detector has no
  handedness and this doubles the samples); a joint with fewer than ``MIN_SAMPLES`` samples is shrunk towards
  the median sigma of the well-sampled joints, sigma^2 = (n s^2 + (MIN_SAMPLES - n) median^2) / MIN_SAMPLES.
  The per-joint mean error (``bias_dx``, ``bias_dy``: label conventions differ from BlazePose's) is reported,
  not modelled; the RMS includes it.

``formula_offsets`` (SPEC: "measure the offset [each formula] leaves on the labelled photos"): per dataset, the
mean signed offset of our formula joint minus the dataset's own point (MPII pelvis / thorax / head_top, CrowdPose
neck / head), from BlazePose landmarks and, where the label has the landmarks, from the labels themselves.

``unihpr-build calibrate`` rewrites ``data/detector_noise.json`` (``DetectorNoise``) and
``data/detector_calibration.json`` (the report).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from index_builder.atomic_files import atomic_path
from index_builder.bundle.blazepose_assets import BlazePoseFiles
from index_builder.datasets import labelled_photos
from index_builder.training.detector_noise import DetectorNoise
from model.pose.joint_formulas import FORMULAS_VERSION
from model.pose.skeleton import H36M17

LOG = logging.getLogger(__name__)

GROSS_ERROR = 0.5  # normalised units: a joint this far off was not seen, whatever its visibility
VISIBLE = 0.5  # BlazePose visibility below this: the detector says it did not see the joint (MediaPipe's cut)
MIN_SAMPLES = 8  # per joint (after mirror pooling); fewer are shrunk towards the median joint sigma
SWAP_RATIO = 0.5  # a whole-body swap: the mirrored detection at most halves the error of the L/R pairs ...
SWAP_MIN_ERROR = 0.1  # ... whose direct mean error exceeds this (normalised units)
SWAP_FLOOR = 0.01  # the photo set is small: never calibrate swaps away
HIDDEN_FLOOR = 0.01
VISIBILITY_PERCENTILES = (10, 90)
DECIMALS = 5  # of the numbers written to JSON

# dataset -> (our h36m17 joint, the dataset's own labelled point) pairs measured by ``formula_offsets``
OFFSET_PAIRS = {
    "mpii": (("pelvis", "pelvis"), ("thorax", "thorax"), ("head_top", "head_top")),
    "crowdpose": (("thorax", "neck"), ("head_top", "head")),
}
J = H36M17.index
MIRROR = H36M17.mirror_permutation()
PAIRED = np.array(H36M17.left + H36M17.right)  # joints that a left/right swap moves




def _swap_errors(match: labelled_photos.Match) -> tuple[float, float]:
    """Mean error of the left/right joints labelled on both sides: (as detected, mirrored)."""
    pairs = np.isfinite(match.label[PAIRED]).all(axis=1) & np.isfinite(match.label[MIRROR[PAIRED]]).all(axis=1)
    use = PAIRED[pairs]
    if use.size == 0:
        return 0.0, 0.0
    direct = np.linalg.norm(match.detection[use] - match.label[use], axis=1).mean()
    mirrored = np.linalg.norm(match.detection[MIRROR][use] - match.label[use], axis=1).mean()
    return float(direct), float(mirrored)


def _partial_swaps(match: labelled_photos.Match) -> list[str]:
    """Left/right pairs (hip, knee, ...) whose crossed assignment halves their error, for the report."""
    found = []
    for left, right in zip(H36M17.left, H36M17.right):
        if not np.isfinite(match.label[[left, right]]).all():
            continue
        det, lab = match.detection, match.label
        direct = np.linalg.norm(det[left] - lab[left]) + np.linalg.norm(det[right] - lab[right])
        crossed = np.linalg.norm(det[right] - lab[left]) + np.linalg.norm(det[left] - lab[right])
        if direct / 2 > SWAP_MIN_ERROR and crossed < SWAP_RATIO * direct:
            found.append(H36M17.names[left][2:])
    return found


def _offset_stats(values: list[np.ndarray]) -> dict:
    """values: (4,) per person: dx, dy (normalised), dx, dy as a fraction of the box width / height, along."""
    v = np.array(values)
    mean, std = v.mean(axis=0), v.std(axis=0)
    keys = ("dx", "dy", "dx_box", "dy_box", "along_trunk")
    return {"n": len(values), **{k: _r(m) for k, m in zip(keys, mean)},
            **{f"{k}_std": _r(s) for k, s in zip(keys, std)}}


def formula_offsets(matches: list[labelled_photos.Match]) -> dict:
    """Per dataset, our formula joint minus the dataset's own point, mean (and std) over the found people.

    dx, dy: normalised units (1 = the label box's longer half-side), x right, y down; dx_box, dy_box: the same
    as a fraction of the label box's width / height; along_trunk: the component along the labelled
    pelvis -> thorax direction (positive = towards the head). ``detection``: our formula on BlazePose;
    ``labels``: our formula on the labelled landmarks (absent where the layout lacks them, e.g. ears).
    """
    out: dict = {}
    for dataset, pairs in OFFSET_PAIRS.items():
        for ours, theirs in pairs:
            per_source: dict[str, list[np.ndarray]] = {"detection": [], "labels": []}
            for m in (m for m in matches if m.person.dataset == dataset and theirs in m.own):
                up = m.label[J("thorax")] - m.label[J("pelvis")]
                up = up / np.linalg.norm(up) if np.isfinite(up).all() and np.linalg.norm(up) > 0 else None
                for source, pose in (("detection", m.detection), ("labels", m.label)):
                    d = pose[J(ours)] - m.own[theirs]
                    if not np.isfinite(d).all():
                        continue
                    along = float(d @ up) if up is not None else np.nan
                    per_source[source].append(np.array([*d, *(d * m.scale / m.box_size), along]))
            out.setdefault(dataset, {})[f"{ours}-{theirs}"] = {
                source: _offset_stats(v) for source, v in per_source.items() if v}
    return out


def _r(x: float) -> float | None:
    """A number for the JSON files; None where it is undefined (JSON has no NaN)."""
    return round(float(x), DECIMALS) if np.isfinite(x) else None


def _range(values: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(values, VISIBILITY_PERCENTILES)
    return _r(lo), _r(hi)


def _rms(error: np.ndarray) -> float:
    """RMS per axis of (M, 2) errors."""
    return float(np.sqrt((error ** 2).mean())) if len(error) else float("nan")


@dataclass(frozen=True)
class JointErrors:
    """Every compared joint of every match, one row each (M rows)."""

    dataset: np.ndarray  # (M,) str
    joint: np.ndarray  # (M,) int, h36m17 index
    error: np.ndarray  # (M, 2) detection - label, normalised units
    visibility: np.ndarray  # (M,) BlazePose's visibility of the joint
    occluded: np.ndarray  # (M,) bool: the label marks it not visible

    @classmethod
    def of(cls, matches: list[labelled_photos.Match]) -> JointErrors:
        rows = [(m.person.dataset, j, m.detection[j] - m.label[j], m.visibility[j], m.person.occluded[j])
                for m in matches for j in range(H36M17.num_joints) if np.isfinite(m.label[j]).all()]
        dataset, joint, error, visibility, occluded = zip(*rows)
        return cls(np.array(dataset), np.array(joint), np.array(error), np.array(visibility), np.array(occluded))

    @property
    def norm(self) -> np.ndarray:
        return np.linalg.norm(self.error, axis=1)


def joint_sigmas(errors: JointErrors, seen: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """RMS per axis of the ``seen`` errors of each joint, pooled with its mirror joint, then shrunk towards the
    median of the joints with >= MIN_SAMPLES samples where it has fewer.

    returns: sigma (17,), the pooled sample counts (17,), that median.
    """
    nj = H36M17.num_joints
    n = np.bincount(errors.joint[seen], minlength=nj).astype(float)
    sum_sq = np.bincount(errors.joint[seen], weights=(errors.error[seen] ** 2).sum(axis=1), minlength=nj)
    paired = MIRROR != np.arange(nj)
    n = np.where(paired, n + n[MIRROR], n)
    sum_sq = np.where(paired, sum_sq + sum_sq[MIRROR], sum_sq)
    rms = np.sqrt(sum_sq / np.maximum(2 * n, 1))
    if not (n >= MIN_SAMPLES).any():
        raise ValueError(f"no joint has {MIN_SAMPLES} samples: too few people found")
    median = float(np.median(rms[n >= MIN_SAMPLES]))
    short = np.clip(MIN_SAMPLES - n, 0, None)
    return np.sqrt((n * rms ** 2 + short * median ** 2) / (n + short)), n, median


def _undo_swaps(matches: list[labelled_photos.Match]) -> tuple[list[labelled_photos.Match], dict[str, int]]:
    """Mirror the detections of whole-body swaps; count the left/right pairs swapped alone in the others."""
    out, partial = [], {}
    for m in matches:
        direct, mirrored = _swap_errors(m)
        if direct > SWAP_MIN_ERROR and mirrored < SWAP_RATIO * direct:
            m = replace(m, detection=m.detection[MIRROR], visibility=m.visibility[MIRROR], swapped=True)
        else:
            for pair in _partial_swaps(m):
                partial[pair] = partial.get(pair, 0) + 1
        out.append(m)
    return out, partial


def estimate(matches: list[labelled_photos.Match]) -> tuple[DetectorNoise, dict]:
    """The noise model and the report from matched people (see the module docstring for the estimators)."""
    if not matches:
        raise ValueError("no labelled person was found by the detector: nothing to calibrate on")
    matches, partial = _undo_swaps(matches)
    swaps = sum(m.swapped for m in matches)
    errors = JointErrors.of(matches)
    norm, vis = errors.norm, errors.visibility
    gross = norm > GROSS_ERROR
    seen = (vis >= VISIBLE) & ~gross
    sigma, pooled_n, median_sigma = joint_sigmas(errors, seen)

    per_joint = {}
    for j, name in enumerate(H36M17.names):
        rows, good = errors.joint == j, (errors.joint == j) & seen
        e = errors.error[good]
        per_joint[name] = {
            "n": int(rows.sum()), "n_seen": int(good.sum()), "n_gross": int((rows & gross).sum()),
            "sigma": _r(sigma[j]), "pooled_n": int(pooled_n[j]),
            "sigma_joint": _r(_rms(e)) if len(e) else None,  # this joint alone, RMS per axis
            "sigma_mad": _r(1.4826 * np.median(np.abs(e - np.median(e)))) if len(e) else None,
            "bias_dx": _r(e[:, 0].mean()) if len(e) else None, "bias_dy": _r(e[:, 1].mean()) if len(e) else None,
            "median_error": _r(np.median(norm[rows])) if rows.any() else None,
        }
    per_dataset = {}
    for dataset in labelled_photos.DATASETS:
        rows = errors.dataset == dataset
        per_dataset[dataset] = {
            "people_found": sum(m.person.dataset == dataset for m in matches), "joints": int(rows.sum()),
            "swaps": sum(m.swapped for m in matches if m.person.dataset == dataset),
            "hidden": int((rows & ~seen).sum()), "gross": int((rows & gross).sum()),
            "median_error": _r(np.median(norm[rows])) if rows.any() else None,
            "rms_per_axis_seen": _r(_rms(errors.error[rows & seen])),
            "rms_per_axis_seen_limbs": _r(_rms(errors.error[rows & seen & np.isin(errors.joint, PAIRED)])),
        }

    hidden = ~seen
    n_people, n_joints = len(matches), len(norm)
    titles = labelled_photos.DATASET_TITLES
    contributed = [titles[d] for d in labelled_photos.DATASETS if per_dataset[d]["people_found"]]
    missing = [titles[d] for d in labelled_photos.DATASETS if not per_dataset[d]["people_found"]]
    source = (f"calibrated on {n_people} people / {n_joints} joints from {', '.join(contributed)} with BlazePose "
              f"full" + (f" ({', '.join(missing)}: no labelled person found)" if missing else ""))
    noise = DetectorNoise(
        joint_sigma=tuple(_r(s) for s in sigma),
        swap_prob=_r(max(SWAP_FLOOR, swaps / n_people)),
        hidden_prob=_r(max(HIDDEN_FLOOR, hidden.mean())),
        hidden_sigma=_r(_rms(errors.error[hidden])) if hidden.any() else DetectorNoise.hidden_sigma,
        visible_range=_range(vis[seen]),
        hidden_range=_range(vis[hidden]) if hidden.sum() >= 3 else DetectorNoise.hidden_range,
        source=source,
    )
    head = np.array([m.detection[J("head_top")] - m.own[k] for m in matches for k in ("head_top", "head")
                     if k in m.own]).reshape(-1, 2)
    report = {
        "source": source, "formulas_version": FORMULAS_VERSION,
        "units": "normalised: 1 = the longer half-side of the label pose's box; x right, y down",
        "settings": {"found_iou": labelled_photos.FOUND_IOU, "gross_error": GROSS_ERROR, "visible": VISIBLE,
                     "min_samples": MIN_SAMPLES, "swap_ratio": SWAP_RATIO, "swap_min_error": SWAP_MIN_ERROR,
                     "swap_floor": SWAP_FLOOR, "hidden_floor": HIDDEN_FLOOR,
                     "visibility_percentiles": list(VISIBILITY_PERCENTILES)},
        "people": n_people, "joints": n_joints, "median_sigma": _r(median_sigma),
        "per_joint": per_joint, "per_dataset": per_dataset,
        "swaps": {"whole_body": swaps, "people": n_people, "partial_pairs": partial},
        "hidden": {
            "hidden": int(hidden.sum()), "low_visibility": int((vis < VISIBLE).sum()), "gross": int(gross.sum()),
            "joints": n_joints,
            "median_error_hidden": _r(np.median(norm[hidden])) if hidden.any() else None,
            "median_error_seen": _r(np.median(norm[seen])),
            # the alternative that calls only the gross errors hidden
            "gross_only": {"hidden_prob": _r(gross.mean()), "hidden_sigma": _r(_rms(errors.error[gross]))
                           if gross.any() else None, "visibility": [_r(v) for v in sorted(vis[gross])]},
            "label_occluded": int(errors.occluded.sum()),
            "label_occluded_median_error": _r(np.median(norm[errors.occluded])) if errors.occluded.any() else None,
        },
        "formula_offsets": formula_offsets(matches),
        # spread (about its mean) of our head_top on BlazePose around the labelled head tops: an upper bound on
        # the head_top sigma, which no label layout here measures with the same formula often enough
        "head_top_spread": _r(_rms(head - head.mean(axis=0))) if len(head) else None,
        "people_detail": [{"dataset": m.person.dataset, "image": m.person.image.name, "swapped": m.swapped,
                           "scale_px": _r(m.scale),
                           "median_error": _r(np.nanmedian(np.linalg.norm(m.detection - m.label, axis=1)))}
                          for m in matches],
    }
    return noise, report


def calibrate(pose_images_dir: Path, blazepose_files: BlazePoseFiles) -> tuple[DetectorNoise, dict]:
    """Run BlazePose (one thread: deterministic) on the labelled photos and fit ``DetectorNoise``.

    pose_images_dir: the ``pose-images`` folder (mpii/, ochuman/, crowdpose/, humanart/ with their label files).
    returns: the calibrated noise model and the report (JSON-ready dict; see ``estimate``).
    """
    people, matches = labelled_photos.find_labelled_people(pose_images_dir, blazepose_files)
    noise, report = estimate(matches)
    report["people_labelled"] = labelled_photos.people_per_dataset(people)
    LOG.info("%s", noise.source)
    return noise, report


def save_report(report: dict, path: Path) -> None:
    with atomic_path(path, suffix=".json") as tmp:
        tmp.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
