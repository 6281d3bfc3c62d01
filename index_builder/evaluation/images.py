"""Image -> lift3d on the real labelled photos, and the detector's error statistics, for the evaluation report.

Every labelled person of ``../shared/data/pose-images`` that BlazePose finds (the calibration's own loading and
one-to-one IoU >= 0.5 matching: ``index_builder.datasets.labelled_photos``) is featurised as the service does
(33 landmarks -> h36m17 by ``layout_to_unihpr17(kp, "blazepose33", visibility)``, in pixels -> the perspective crop
with the photo's intrinsics as the service takes them (``photo_intrinsics``: the EXIF focal length where present,
else the default field of view of the width) -> ``cropped_image_features``), lifted by the UniHPR image encoder
and 3D decoder, rotated back into the photo's camera frame (``to_real_camera``), and that 3D projected
orthographically (x, y; OpenCV axes, so x right and y down as in the image) with a scale >= 0 and a translation
fitted by least squares onto the labelled 2D joints.
PCK@0.1: a joint is correct within 0.1 of the label box's diagonal (also PCK@0.05 and the mean error as a
fraction of that diagonal, because PCK@0.1 is near 1 for every pose on these photos).

The joints compared are those the label defines with the shared formulas (``LabelledPerson.joints``: COCO-17 by
``layout_to_unihpr17(..., "coco17")``, MPII-16 and CrowdPose-14 their limbs plus pelvis / thorax / spine from the
labelled hips and shoulders), plus, where the formula head top is missing, the dataset's own labelled head top
(MPII head_top, CrowdPose head) as head_top: the same points that set the label's normalising box.

Three 2D poses are scored on the same joints, so the reader sees what the lifting loses:

- ``lifted``: the projected lifted pose (its 3 fit parameters use the label, as a 2D evaluation of a
  root-relative 3D pose must);
- ``detector_fitted``: BlazePose's own h36m17 2D with the same scale + translation fit (the like-for-like
  reference for ``lifted``: the lifting sees nothing but these keypoints and their visibilities);
- ``detector``: BlazePose's h36m17 2D as detected, no fit.

Whole-body left/right swaps are scored as detected (the calibration mirrors them only to estimate sigmas).
All 2D scoring happens in the label's normalised units (``Match``: 1 = the longer half-side of the label pose's
box); PCK and the least-squares fit are invariant to that similarity. The lifting alone reads the detection back
in pixels, because the perspective crop needs the pixels and the photo's intrinsics.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from index_builder.bundle.blazepose_assets import BlazePoseFiles
from index_builder.config import get_paths, portable_path
from index_builder.datasets import labelled_photos
from index_builder.training.detector_calibration import estimate
from model.nn.networks import UniHPR
from model.pose.features import cropped_image_features
from model.pose.normalization import normalize_2d
from model.pose.perspective_crop import Intrinsics, default_intrinsics, focal_from_35mm, to_real_camera
from model.pose.skeleton import H36M17

LOG = logging.getLogger(__name__)

PCK_FRACTION = 0.1  # a joint is correct within this fraction of the label box's diagonal (the headline)
PCK_FRACTIONS = (PCK_FRACTION, 0.05)  # also reported: 0.1 saturates on these photos
SCORED = ("lifted", "detector_fitted", "detector")  # the 2D poses scored, see the module docstring
OWN_HEAD_TOP = ("head_top", "head")  # dataset points used as head_top where the formula has none
J = H36M17.index
DECIMALS = 5
EXIF_IFD = 0x8769
EXIF_FOCAL_35MM = 0xA405  # FocalLengthIn35mmFilm


def fit_scale_translation(source: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    """Least-squares s >= 0 and t minimising sum_j |s source_j + t - target_j|^2.

    source, target: (K, 2) float, the same K >= 2 joints (no NaN).
    returns: s (the scale; 0 when the best unconstrained scale is negative, i.e. the poses are upside down
        relative to each other) and t (2,), so that ``s * source + t`` is the fitted pose.
    """
    assert source.shape == target.shape and source.ndim == 2 and source.shape[1] == 2, (source.shape, target.shape)
    assert len(source) >= 2 and np.isfinite(source).all() and np.isfinite(target).all()
    ps, pt = source - source.mean(0), target - target.mean(0)
    denom = float((ps * ps).sum())
    s = max(0.0, float((ps * pt).sum()) / denom) if denom > 0 else 0.0
    return s, target.mean(0) - s * source.mean(0)


def joint_errors(pred: np.ndarray, label: np.ndarray, diagonal: float) -> np.ndarray:
    """pred, label: (K, 2) in one unit; diagonal: the label box's diagonal in that unit.

    returns: (K,) |pred - label| / diagonal; PCK@f counts the joints with error <= f.
    """
    assert pred.shape == label.shape, (pred.shape, label.shape)
    assert diagonal > 0, diagonal
    return np.linalg.norm(pred - label, axis=1) / diagonal


def target_joints(match: labelled_photos.Match) -> np.ndarray:
    """(17, 2) the label's h36m17 joints (normalised units) that are compared, NaN elsewhere (module docstring)."""
    label = match.label.copy()
    if not np.isfinite(label[J("head_top")]).all():
        for name in OWN_HEAD_TOP:
            if name in match.own:
                label[J("head_top")] = match.own[name]
                break
    return label


@torch.no_grad()
def lift_camera_frame(model: UniHPR, pixels: np.ndarray, visibility: np.ndarray,
                      intrinsics: Intrinsics) -> np.ndarray:
    """The service's image path: detector h36m17 pixels (M, 17, 2) and visibilities (M, 17), the photos'
    intrinsics (M rows) -> perspective crop -> image encoder -> 3D decoder -> (M, 17, 3) float64 mm, root-relative,
    in the photo's camera frame (OpenCV axes)."""
    features, rotation = cropped_image_features(np.asarray(pixels, np.float64), visibility, intrinsics)
    model.eval()
    virtual = model.decoder3d(model.encode(torch.from_numpy(features), "image")).numpy()
    return to_real_camera(virtual.astype(np.float64), rotation)


def detection_pixels(match: labelled_photos.Match) -> np.ndarray:
    """(17, 2) BlazePose's h36m17 of a match back in the photo's pixels (``Match.detection`` is in the label's
    normalised units: the same normalisation of the label's box points undone)."""
    _, centre, scale = normalize_2d(match.person.box_points()[None])
    return match.detection * float(scale[0]) + centre[0]


def photo_intrinsics(image: Image.Image) -> tuple[Intrinsics, str]:
    """One row of intrinsics for an opened photo, by the service's rules (``service/camera.py``), and their source:
    ``exif`` (FocalLengthIn35mmFilm of the Exif IFD, or of the main IFD: f35 / 36 mm x the long side) or
    ``default_fov`` (``default_intrinsics``: 60 degrees over the width); principal point at the centre, no lens
    distortion. The photo is taken as stored (the labels are in that orientation)."""
    size = np.array([image.size], dtype=np.float64)
    intrinsics = default_intrinsics(size)
    try:
        exif = image.getexif()
        f35 = float(exif.get_ifd(EXIF_IFD).get(EXIF_FOCAL_35MM, exif.get(EXIF_FOCAL_35MM)) or 0.0)
    except Exception:  # a broken EXIF block only means no focal length
        f35 = 0.0
    if not f35 > 0:
        return intrinsics, "default_fov"
    focal = focal_from_35mm(size.max(axis=1), f35)
    return Intrinsics(np.stack([focal, focal], -1), intrinsics.principal_point, intrinsics.distortion), "exif"


def lift_matches(model: UniHPR, matches: list[labelled_photos.Match]) -> tuple[np.ndarray, list[str]]:
    """The service's image path on each match: (M, 17, 3) float64 mm, root-relative, the photo's camera frame, and
    each photo's intrinsics source.

    The detection goes back to pixels (``detection_pixels``) and through ``lift_camera_frame`` with the photo's
    intrinsics (``photo_intrinsics``), as the service lifts a photo sent without a camera.
    """
    pixels = np.stack([detection_pixels(m) for m in matches])  # (M, 17, 2)
    visibility = np.stack([m.visibility for m in matches])  # (M, 17)
    cameras = {}
    for m in matches:
        if m.person.image not in cameras:
            with Image.open(m.person.image) as image:
                cameras[m.person.image] = photo_intrinsics(image)
    rows = [cameras[m.person.image][0] for m in matches]
    intrinsics = Intrinsics(*(np.concatenate([getattr(r, f) for r in rows])
                              for f in ("focal", "principal_point", "distortion")))
    return lift_camera_frame(model, pixels, visibility, intrinsics), [cameras[m.person.image][1] for m in matches]


def score_matches(matches: list[labelled_photos.Match], lifted: np.ndarray) -> list[dict]:
    """Per match: the compared joints and, for each of ``SCORED``, their errors as a fraction of the label box's
    diagonal.

    lifted: (M, 17, 3) mm from ``lift_matches``.
    returns: one dict per match: dataset, joints (K,) h36m17 indices and ``errors[name]`` (K,) per scored pose;
        matches with fewer than 2 compared joints are left out.
    """
    assert len(lifted) == len(matches), (lifted.shape, len(matches))
    rows = []
    for m, pose3d in zip(matches, lifted):
        label = target_joints(m)
        use = np.nonzero(np.isfinite(label).all(axis=1))[0]
        if len(use) < 2:
            continue
        x0, y0, x1, y1 = m.person.box
        diagonal = float(np.hypot(x1 - x0, y1 - y0)) / m.scale  # px -> normalised units
        poses = {}
        for name, source in (("lifted", pose3d[:, :2].astype(np.float64)), ("detector_fitted", m.detection)):
            s, t = fit_scale_translation(source[use], label[use])
            poses[name] = s * source[use] + t
        poses["detector"] = m.detection[use]
        rows.append({"dataset": m.person.dataset, "joints": use,
                     "errors": {name: joint_errors(p, label[use], diagonal) for name, p in poses.items()}})
    return rows


def _r(x: float) -> float:
    return round(float(x), DECIMALS)


def _pck_block(rows: list[dict], joint: int | None = None) -> dict:
    """people, joints and, per scored pose, PCK at each of ``PCK_FRACTIONS`` and the mean error (fraction of the
    diagonal) over ``rows`` (one joint only when ``joint`` is given); None where no joint is compared."""
    pick = [r["joints"] == joint if joint is not None else np.ones(len(r["joints"]), bool) for r in rows]
    errors = {name: np.concatenate([r["errors"][name][p] for r, p in zip(rows, pick)] or [np.zeros(0)])
              for name in SCORED}
    n = int(sum(p.sum() for p in pick))
    block = {"people": sum(bool(p.any()) for p in pick), "joints": n}
    for f in PCK_FRACTIONS:
        key = "pck" if f == PCK_FRACTION else f"pck_at_{f:g}"
        block[key] = {name: _r((e <= f).mean()) if n else None for name, e in errors.items()}
    block["mean_error"] = {name: _r(e.mean()) if n else None for name, e in errors.items()}
    return block


def pck_summary(rows: list[dict], people_labelled: dict[str, int]) -> dict:
    """PCK per dataset (with found / labelled people), pooled, and per h36m17 joint pooled over datasets."""
    per_dataset = {}
    for dataset in labelled_photos.DATASETS:
        mine = [r for r in rows if r["dataset"] == dataset]
        per_dataset[dataset] = {"title": labelled_photos.DATASET_TITLES[dataset],
                                "people_labelled": people_labelled[dataset], **_pck_block(mine)}
    per_joint = {name: _pck_block(rows, j) for j, name in enumerate(H36M17.names)}
    return {"per_dataset": per_dataset,
            "pooled": {"people_labelled": int(sum(people_labelled.values())), **_pck_block(rows)},
            "per_joint": {k: v for k, v in per_joint.items() if v["joints"]}}


def detector_errors(report: dict, source: str) -> dict:
    """The detector's error statistics from a calibration report (``detector_calibration.estimate``'s form).

    Per h36m17 joint: n (compared), n_seen, sigma (the noise model's, mirror-pooled and shrunk), sigma_joint
    (this joint alone, seen joints, RMS per axis), median_error (all compared); per dataset: found / labelled
    people, joints, median error, RMS per axis of the seen joints, whole-body swaps. Normalised units.
    """
    keep = ("n", "n_seen", "sigma", "sigma_joint", "median_error")
    labelled = report.get("people_labelled", {})
    return {
        "source": source, "units": report["units"], "calibration": report["source"],
        "people": report["people"], "joints": report["joints"],
        "per_joint": {name: {k: row[k] for k in keep} for name, row in report["per_joint"].items()},
        "per_dataset": {d: {"title": labelled_photos.DATASET_TITLES[d], "people_labelled": labelled.get(d),
                            **{k: row[k] for k in ("people_found", "joints", "median_error", "rms_per_axis_seen",
                                                   "swaps")}}
                        for d, row in report["per_dataset"].items()},
    }


def committed_detector_errors() -> dict:
    """``detector_errors`` of the committed calibration report (when the photos are not at hand)."""
    path = get_paths().detector_calibration_report
    return detector_errors(json.loads(path.read_text()),
                           f"read from the committed calibration report {path.name}")


def evaluate_images(model: UniHPR, pose_images: Path, blazepose_files: BlazePoseFiles) -> dict:
    """Run BlazePose (one thread) on the labelled photos; lift, project and score the found people; recompute the
    detector's error statistics on the same matches with the calibration's estimator.

    returns: ``{"image_lifting": ..., "detector_errors": ...}``, JSON-ready (None where a dataset has no person
        found).
    """
    start = time.perf_counter()
    people, matches = labelled_photos.find_labelled_people(pose_images, blazepose_files)
    labelled = labelled_photos.people_per_dataset(people)
    if not matches:
        raise ValueError(f"{pose_images}: BlazePose found none of the {len(people)} labelled people")
    lifted, sources = lift_matches(model, matches)
    rows = score_matches(matches, lifted)
    _, report = estimate(matches)
    report["people_labelled"] = labelled
    committed_path = get_paths().detector_calibration_report
    committed = json.loads(committed_path.read_text()) if committed_path.is_file() else None
    errors = detector_errors(report, "recomputed by index_builder.training.detector_calibration.estimate on the "
                                     "matches of this run")
    errors["agrees_with_committed_calibration"] = bool(committed and committed["source"] == report["source"])
    lifting = {
        "status": "computed", "pose_images": portable_path(pose_images), "pck_fraction": PCK_FRACTION,
        "protocol": (f"every labelled person that BlazePose finds (IoU >= {labelled_photos.FOUND_IOU:g}, "
                     "one-to-one): image features as the service makes them (perspective crop with the photo's "
                     "default intrinsics) -> UniHPR "
                     "image encoder -> 3D decoder -> the photo's camera frame -> x, y with a least-squares "
                     f"scale (>= 0) and translation onto the label's 2D joints; PCK@{PCK_FRACTION:g} (and "
                     f"{', '.join(f'@{f:g}' for f in PCK_FRACTIONS[1:])}) of the label box diagonal, mean error as "
                     "a fraction of it. Joints: those the label defines with the shared formulas, plus the dataset's "
                     "own head top (MPII head_top, CrowdPose head) as head_top where the formula has none. "
                     "detector_fitted: BlazePose's h36m17 2D with the same fit; detector: as detected"),
        "intrinsics": {source: sources.count(source) for source in sorted(set(sources))},
        **pck_summary(rows, labelled),
        "wall_seconds": round(time.perf_counter() - start, 1),
    }
    LOG.info("image lifting: %d of %d labelled people found", len(matches), len(people))
    return {"image_lifting": lifting, "detector_errors": errors}


def image_sections(model: UniHPR, pose_images: Path | None, blazepose_files: BlazePoseFiles | None) -> dict:
    """``evaluate_images`` where the photos and the BlazePose models are at hand; otherwise ``image_lifting`` is
    ``{"status": "skipped", "note": ...}`` and ``detector_errors`` comes from the committed calibration report
    (absent when that is missing too)."""
    have_photos = pose_images is not None and labelled_photos.photos_present(pose_images)
    if have_photos and blazepose_files is not None:
        return evaluate_images(model, pose_images, blazepose_files)
    if pose_images is None:
        why = "no photo folder was given (`evaluate --no-images`)"
    else:
        why = f"{'the BlazePose models' if have_photos else f'the labelled photos ({pose_images})'} unavailable"
    out: dict = {"image_lifting": {"status": "skipped",
                                   "note": f"image -> lift3d on the labelled photos not computed: {why}"}}
    if get_paths().detector_calibration_report.is_file():
        out["detector_errors"] = committed_detector_errors()
    return out
