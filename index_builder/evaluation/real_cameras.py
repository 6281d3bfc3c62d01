"""Fixed real rig (SPEC 6, a protocol the training did not shape): held-out clips seen by the four published
Human3.6M cameras of one subject's sessions, the subject moving about the capture floor, 2D with the lenses'
distortion; MPJPE and PA-MPJPE (mm) in the real camera frame, against the off-axis angle of the pelvis.

Placement (``place_on_floor``), per clip: the pelvis stands at the rig's floor centre (the H36M world origin, on
the floor; the four cameras aim 0.4-0.8 m from it at pelvis height, see ``aim_summary``), plus an offset uniform in
a disc of ``OFFSET_RADIUS_MM`` seeded by the clip's name (a stable hash), plus the clip's own horizontal pelvis
trajectory relative to its centred ``TRAJECTORY_WINDOW_S`` moving average (on all of the clip's frames, at its
fps), that difference clipped to ``TRAJECTORY_CLIP_MM`` in length. The pose keeps its own height and facing.

Views: every evaluated frame through each camera; a view is kept when all 17 joints project inside the image
(the calibration's size). 2D = the clean projection with the camera's lens distortion applied through OpenCV's
model, (k1, k2, p1, p2, k3) = (radial[0], radial[1], tangential[0], tangential[1], radial[2]). Human3.6M's own
code applies the tangential terms in a slightly different form; with |p| < 0.003 the difference is far below a
pixel and is ignored.

Lifters (pixels + the intrinsics they are told -> root-relative 3D in the real camera frame, mm): UniHPR (pose2d
features of the perspective crop -> pose2d encoder -> 3D decoder -> ``to_real_camera``), the Martinez baseline of
record (x, y of the same crop features, answered in the virtual camera, rotated back alike) and Martinez absolute
(undistorted normalised image coordinates, answered in the real camera). Two runs: the true intrinsics and
distortion, and the default field of view of the image size with no distortion known (``default_intrinsics``),
the same for every lifter. A control with the intrinsics: the same views, each camera turned to aim at the pelvis
and without its lens (``aimed_at_pelvis``); a bin keeps its poses, so the ratio real / aimed per bin is what the
off-axis angle costs, apart from which poses land in which bin (clips far from the floor centre move more). And per
run, UniHPR's bins with the poses' contents reweighted to the mix of all views (``content_matched_bins``): the
bins compared on like poses by another route.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from index_builder.datasets.h36m import NUM_CAMERAS
from index_builder.datasets.h36m_cameras import H36mCamera, h36m_camera
from index_builder.datasets.motion_database import MotionDatabase
from index_builder.evaluation.adapters import Lifter, martinez_lifter
from model.pose.camera_rigs import NOMINAL_PELVIS_HEIGHT_MM, disc, inside_image, pixels_of
from model.pose.cameras import Camera, world_to_camera
from model.pose.features import cropped_pose2d_features
from model.pose.metrics import mpjpe, pa_mpjpe
from model.pose.perspective_crop import (
    Intrinsics,
    crop_rotation,
    default_intrinsics,
    off_axis_deg,
    pixels_to_rays,
    rays_to_pixels,
    to_real_camera,
)
from model.pose.skeleton import ROOT, root_centred

OFFSET_RADIUS_MM = 1000.0  # each clip's pelvis offset from the floor centre: uniform in this disc
TRAJECTORY_WINDOW_S = 3.0  # the clip's horizontal trajectory is taken relative to this centred moving average
TRAJECTORY_CLIP_MM = 1000.0  # ... and that difference clipped to this length
BIN_EDGES_DEG = (5.0, 10.0, 15.0)  # off-axis bins of the pelvis ray
BIN_NAMES = ("0-5", "5-10", "10-15", "15+")
MIN_BIN_VIEWS = 30  # the max / min ratio over bins uses bins with at least this many views
CONTENT_MIN_VIEWS = 5  # content-matched bins: a content counts in a bin with at least this many views there
RUNS = {
    "intrinsics": "the true intrinsics and lens distortion of each camera",
    "default_fov": "no intrinsics known: the default field of view of the image size, no distortion",
}
# targets of issue #12 (with intrinsics)
TARGET_RATIO = 0.85  # UniHPR MPJPE <= this x the better Martinez
TARGET_MPJPE_MM = 20.6
TARGET_BIN_RATIO = 1.1  # max / min of UniHPR's MPJPE over the off-axis bins

RigLifter = Callable[[np.ndarray, Intrinsics], np.ndarray]  # (pixels (N, 17, 2), intrinsics) -> (N, 17, 3) mm


def stable_seed(name: str) -> int:
    """A seed from a clip name that is the same on every machine and Python (unlike ``hash``)."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "little")


def clip_offset(name: str, seed: int = 0, radius_mm: float = OFFSET_RADIUS_MM) -> np.ndarray:
    """(2,) world x, z offset of a clip from the floor centre, mm: uniform in the disc, seeded by the name."""
    return disc(np.random.default_rng([seed, stable_seed(name)]), 1, radius_mm)[0]


def trajectory_residual(db: MotionDatabase, window_s: float = TRAJECTORY_WINDOW_S,
                        clip_mm: float = TRAJECTORY_CLIP_MM) -> np.ndarray:
    """(len(db), 2) each row's horizontal pelvis position (world x, z, mm) minus the mean over the frames of its
    clip within +-window_s / 2 (by frame number at the clip's fps), clipped to ``clip_mm`` in length."""
    out = np.zeros((len(db), 2))
    order = np.lexsort((db.frame, db.clip))
    clip = db.clip[order]
    bounds = np.flatnonzero(np.diff(clip)) + 1
    for group in np.split(order, bounds):
        if len(group) == 0:
            continue
        frames = db.frame[group].astype(np.float64)
        xz = db.poses[group][:, ROOT][:, [0, 2]].astype(np.float64)
        half = window_s * float(db.clips.fps[db.clip[group[0]]]) / 2.0
        lo = np.searchsorted(frames, frames - half, side="left")
        hi = np.searchsorted(frames, frames + half, side="right")
        total = np.concatenate([np.zeros((1, 2)), np.cumsum(xz, axis=0)])
        out[group] = xz - (total[hi] - total[lo]) / (hi - lo)[:, None]
    length = np.linalg.norm(out, axis=1, keepdims=True)
    return out * np.minimum(1.0, clip_mm / np.maximum(length, 1e-12))


def place_on_floor(db: MotionDatabase, rows: np.ndarray, seed: int = 0) -> np.ndarray:
    """(len(rows), 17, 3) world poses, mm, Y up: ``db``'s poses at ``rows`` moved horizontally so the pelvis is at
    the clip's offset plus its clipped trajectory residual (module docstring); heights unchanged."""
    offsets = np.stack([clip_offset(str(name), seed) for name in db.clips.name]) if len(db.clips) else np.zeros((0, 2))
    target = offsets[db.clip[rows]] + trajectory_residual(db)[rows]
    world = db.poses[rows].astype(np.float64)
    shift = target - world[:, ROOT][:, [0, 2]]
    world[..., 0] += shift[:, 0, None]
    world[..., 2] += shift[:, 1, None]
    return world


def opencv_distortion(camera: H36mCamera) -> np.ndarray:
    """(5,) OpenCV's (k1, k2, p1, p2, k3) from the published radial (k1, k2, k3) and tangential (p1, p2)."""
    k, p = camera.radial_distortion, camera.tangential_distortion
    return np.array([k[0], k[1], p[0], p[1], k[2]], dtype=np.float64)


def rig_cameras(subject: str) -> list[H36mCamera]:
    """The four published cameras of ``subject``'s sessions, in our Y-up world."""
    return [h36m_camera(subject, i, world="yup") for i in range(NUM_CAMERAS)]


def camera_batch(camera: H36mCamera, n: int, lens: bool = True) -> Camera:
    """``n`` copies of ``camera`` as a batched ``model.pose.cameras.Camera`` (with its lens distortion when
    ``lens``)."""
    def rep(x):
        return np.broadcast_to(np.asarray(x, dtype=np.float64), (n,) + np.shape(x)).copy()
    return Camera(rotation=rep(camera.rotation), position=rep(camera.translation), focal=rep(camera.focal),
                  center=rep(camera.center), size=rep(np.array(camera.image_size, dtype=np.float64)),
                  distortion=rep(opencv_distortion(camera)) if lens else None)


def aim_summary(cameras: list[H36mCamera], pelvis_height_mm: float = NOMINAL_PELVIS_HEIGHT_MM) -> dict:
    """Where the cameras look: the off-axis angle of the floor centre at pelvis height for each, and the point
    nearest to all optical axes (least squares), world mm, Y up."""
    centre = np.array([0.0, pelvis_height_mm, 0.0])
    a, b = np.zeros((3, 3)), np.zeros(3)
    per_camera = []
    for cam in cameras:
        axis = cam.rotation[2]  # the optical axis in world coordinates
        seen = cam.rotation @ (centre - cam.translation)
        per_camera.append({"id": cam.id, "position_mm": [round(float(x), 1) for x in cam.translation],
                           "image_size": list(cam.image_size), "focal_px": [round(float(x), 1) for x in cam.focal],
                           "centre_off_axis_deg": round(float(off_axis_deg(seen[None])[0]), 2)})
        project = np.eye(3) - np.outer(axis, axis)
        a += project
        b += project @ cam.translation
    return {"cameras": per_camera, "axes_nearest_point_mm": [round(float(x), 1) for x in np.linalg.solve(a, b)]}


@dataclass(frozen=True)
class RigViews:
    """The kept views (V of them). pixels: (V, 17, 2) distorted pixels; target: (V, 17, 3) mm, root-relative,
    real camera frame; off_axis: (V,) degrees of the pelvis ray; camera: (V,) camera index; pose: (V,) index of
    the evaluated frame; intrinsics: the true ones, V rows; image_size: (V, 2) width, height; pelvis: (V, 3) mm,
    real camera frame."""

    pixels: np.ndarray
    target: np.ndarray
    off_axis: np.ndarray
    camera: np.ndarray
    pose: np.ndarray
    intrinsics: Intrinsics
    image_size: np.ndarray
    pelvis: np.ndarray


def rig_views(world: np.ndarray, cameras: list[H36mCamera]) -> RigViews:
    """Every pose of ``world`` (N, 17, 3) through every camera; the views with all joints inside the image."""
    parts = []
    for c, cam in enumerate(cameras):
        batch = camera_batch(cam, len(world))
        keep = np.flatnonzero(inside_image(world, batch))
        batch = batch[keep]
        cam3d = world_to_camera(world[keep], batch)
        parts.append((pixels_of(world[keep], batch), root_centred(cam3d), off_axis_deg(cam3d[:, ROOT]),
                      np.full(len(keep), c), keep, cam3d[:, ROOT], batch))
    cat = [np.concatenate([p[i] for p in parts]) for i in range(6)]
    focal, centre, distortion, size = (np.concatenate([getattr(p[6], f) for p in parts])
                                       for f in ("focal", "center", "distortion", "size"))
    return RigViews(pixels=cat[0], target=cat[1], off_axis=cat[2], camera=cat[3].astype(np.int64),
                    pose=cat[4].astype(np.int64), intrinsics=Intrinsics(focal, centre, distortion), image_size=size,
                    pelvis=cat[5])


def aimed_at_pelvis(views: RigViews) -> tuple[np.ndarray, Intrinsics, np.ndarray]:
    """The control of the off-axis bins: every view with its camera turned about its centre until the pelvis lies
    on the optical axis (``crop_rotation``), the same focal length and principal point, no lens. The bins keep
    their views, so what differs between real and aimed is the off-axis angle (and the lens) alone, not which
    poses fall in a bin.

    returns: pixels (V, 17, 2), their intrinsics (V rows, no distortion), target (V, 17, 3) mm, root-relative, in
        the turned camera.
    """
    rotation = crop_rotation(views.pelvis)  # R @ pelvis = (0, 0, |pelvis|)
    target = np.einsum("vij,vkj->vki", rotation, views.target)
    depth = target[..., 2] + np.linalg.norm(views.pelvis, axis=-1)[:, None]
    intrinsics = Intrinsics(views.intrinsics.focal, views.intrinsics.principal_point,
                            np.zeros_like(views.intrinsics.distortion))
    return rays_to_pixels(target[..., :2] / depth[..., None], intrinsics), intrinsics, target


def crop_rig_lifter(lift: Lifter) -> RigLifter:
    """A lifter of crop features (UniHPR's pose2d path, Martinez "crop") as a rig lifter: perspective crop with the
    intrinsics, pose2d features (all joints seen), lift, rotate back into the real camera."""
    def rig_lift(pixels: np.ndarray, intrinsics: Intrinsics) -> np.ndarray:
        features, rotation, _ = cropped_pose2d_features(pixels, np.ones(pixels.shape[:2]), intrinsics)
        return to_real_camera(lift(features, "pose2d").astype(np.float64), rotation)
    return rig_lift


def rays_rig_lifter(martinez: torch.nn.Module) -> RigLifter:
    """Martinez "rays": undistorted normalised image coordinates in, real camera frame out."""
    lift = martinez_lifter(martinez)

    def rig_lift(pixels: np.ndarray, intrinsics: Intrinsics) -> np.ndarray:
        rays, _ = pixels_to_rays(pixels.astype(np.float64), intrinsics)
        return lift(rays.astype(np.float32), "rays").astype(np.float64)
    return rig_lift


def off_axis_bins(angles: np.ndarray) -> np.ndarray:
    """(V,) degrees -> (V,) index into ``BIN_NAMES``."""
    return np.digitize(angles, BIN_EDGES_DEG)


def _r(x: float | None, digits: int = 3) -> float | None:
    return None if x is None else round(float(x), digits)


def _summary(errors: dict[str, np.ndarray], bins: np.ndarray) -> dict:
    out = {f"{k}_mm": _r(v.mean()) if len(v) else None for k, v in errors.items()}
    out["per_bin"] = {name: {f"{k}_mm": _r(v[bins == b].mean()) if (bins == b).any() else None
                             for k, v in errors.items()} for b, name in enumerate(BIN_NAMES)}
    return out


def bin_ratio(per_bin: dict, counts: dict[str, int], min_views: int = MIN_BIN_VIEWS) -> float | None:
    """max / min of the per-bin MPJPE over bins with at least ``min_views`` views; None with fewer than 2."""
    values = [per_bin[b]["mpjpe_mm"] for b in BIN_NAMES if counts[b] >= min_views]
    return _r(max(values) / min(values)) if len(values) >= 2 and min(values) > 0 else None


def matched_ratio(per_bin: dict[str, float | None], counts: dict[str, int],
                  min_views: int = MIN_BIN_VIEWS) -> float | None:
    """``bin_ratio`` of content-matched MPJPE (bin name -> mm or None)."""
    return bin_ratio({b: {"mpjpe_mm": v} for b, v in per_bin.items() if v is not None},
                     {b: counts[b] if per_bin[b] is not None else 0 for b in BIN_NAMES}, min_views)


def content_matched_bins(errors: np.ndarray, bins: np.ndarray, content: np.ndarray,
                         min_views: int = CONTENT_MIN_VIEWS) -> dict:
    """Each off-axis bin's mean error with its poses' contents reweighted to the mix of all views: a second way,
    beside the aimed control, of comparing the bins on the same poses (a bin far off the axis holds the clips that
    travel furthest, e.g. running, whatever the camera).

    errors, bins, content: (V,) per view its error (mm), bin index and content label. Per bin, every content with
    at least ``min_views`` views in it counts with that content's share of all views.
    returns: per_bin: bin name -> mm or None; coverage: bin name -> the share of all views whose contents the bin
        counts; min_views.
    """
    labels, share = np.unique(content, return_counts=True)
    share = share / max(len(content), 1)
    per_bin, coverage = {}, {}
    for b, name in enumerate(BIN_NAMES):
        means, weights = [], []
        for label, w in zip(labels, share):
            mask = (bins == b) & (content == label)
            if mask.sum() >= min_views:
                means.append(errors[mask].mean())
                weights.append(w)
        per_bin[name] = _r(np.average(means, weights=weights)) if weights else None
        coverage[name] = _r(sum(weights)) if weights else 0.0
    return {"per_bin": per_bin, "coverage": coverage, "min_views": min_views}


def _target(text: str, short: str, value: float | None, threshold: float) -> dict:
    """A target of issue #12: met when ``value <= threshold``; None when there is no value to judge."""
    return {"target": text, "short": short, "value": value, "threshold": threshold,
            "met": None if value is None else bool(value <= threshold)}


def fixed_real_rig(lifters: dict[str, RigLifter], inputs: dict[str, str], db: MotionDatabase, rows: np.ndarray,
                   subject: str = "S9", seed: int = 0) -> dict:
    """The fixed-real-rig section: placement, views, and per run and lifter the errors overall and per bin.

    lifters: name -> rig lifter, "unihpr" first, then the Martinez ones present; inputs: name -> what it reads.
    db: the test split; rows: its evaluated frames (``held_out.subsample_rows``).
    """
    cameras = rig_cameras(subject)
    world = place_on_floor(db, rows, seed)
    views = rig_views(world, cameras)
    bins = off_axis_bins(views.off_axis)
    counts = {name: int((bins == b).sum()) for b, name in enumerate(BIN_NAMES)}
    told = {"intrinsics": views.intrinsics, "default_fov": default_intrinsics(views.image_size)}

    def view_errors(lift: RigLifter, pixels: np.ndarray, intrinsics: Intrinsics, target: np.ndarray) -> dict:
        lifted = lift(pixels, intrinsics) if len(views.pose) else np.zeros((0, 17, 3))
        return {"mpjpe": mpjpe(lifted, target), "pa_mpjpe": pa_mpjpe(lifted, target)}

    def errors_of(lift: RigLifter, pixels: np.ndarray, intrinsics: Intrinsics, target: np.ndarray) -> dict:
        return _summary(view_errors(lift, pixels, intrinsics, target), bins)

    content = db.clips.content[db.clip[rows[views.pose]]]
    runs = {}
    for run, what in RUNS.items():
        errors = {name: view_errors(lift, views.pixels, told[run], views.target) for name, lift in lifters.items()}
        per_lifter = {name: _summary(e, bins) for name, e in errors.items()}
        martinez = [n for n in per_lifter if n != "unihpr" and per_lifter[n]["mpjpe_mm"] is not None]
        better = min(martinez, key=lambda n: per_lifter[n]["mpjpe_mm"]) if martinez else None
        uni = per_lifter["unihpr"]
        ratio = ({k: _r(uni[k] / per_lifter[better][k]) for k in ("mpjpe_mm", "pa_mpjpe_mm")}
                 if better and uni["mpjpe_mm"] is not None else None)
        matched = content_matched_bins(errors["unihpr"]["mpjpe"], bins, content)
        runs[run] = {"told": what, "lifters": per_lifter, "better_martinez": better,
                     "ratio_unihpr_to_better_martinez": ratio,
                     "unihpr_bin_ratio": bin_ratio(uni["per_bin"], counts),
                     "unihpr_content_matched": {**matched, "bin_ratio": matched_ratio(matched["per_bin"], counts)}}
    best = runs["intrinsics"]
    aimed_pixels, aimed_intrinsics, aimed_target = aimed_at_pelvis(views)
    aimed = {name: errors_of(lift, aimed_pixels, aimed_intrinsics, aimed_target) for name, lift in lifters.items()}
    best["aimed"] = {
        "told": "the same views, each camera turned about its centre to aim at the pelvis, no lens (the control: "
                "the bins keep their poses, only the off-axis angle and the lens go)",
        "lifters": aimed,
        "unihpr_bin_ratio": bin_ratio(aimed["unihpr"]["per_bin"], counts),
        "off_axis_cost": {name: {b: _r(best["lifters"][name]["per_bin"][b]["mpjpe_mm"] / e["per_bin"][b]["mpjpe_mm"])
                                 if counts[b] and e["per_bin"][b]["mpjpe_mm"] else None for b in BIN_NAMES}
                          for name, e in aimed.items()},
    }
    uni_mpjpe = best["lifters"]["unihpr"]["mpjpe_mm"]
    ratio = best["ratio_unihpr_to_better_martinez"]
    targets = [
        _target(f"with intrinsics, UniHPR MPJPE <= {TARGET_RATIO:g} x the better Martinez (ratio)",
                f"MPJPE <= {TARGET_RATIO:g}x the better Martinez", ratio["mpjpe_mm"] if ratio else None,
                TARGET_RATIO),
        _target(f"with intrinsics, UniHPR MPJPE <= {TARGET_MPJPE_MM:g} mm", f"MPJPE <= {TARGET_MPJPE_MM:g} mm",
                uni_mpjpe, TARGET_MPJPE_MM),
        _target(f"with intrinsics, UniHPR's off-axis bins within {TARGET_BIN_RATIO:g}x of each other (max / min "
                f"MPJPE, bins with >= {MIN_BIN_VIEWS} views)", f"off-axis bins within {TARGET_BIN_RATIO:g}x",
                best["unihpr_bin_ratio"], TARGET_BIN_RATIO),
    ]
    per_camera = np.bincount(views.camera, minlength=len(cameras))
    return {
        "status": "computed",
        "subject": subject,
        "rig": aim_summary(cameras),
        "placement": {"floor_centre": "H36M world origin (on the floor)", "offset_radius_mm": OFFSET_RADIUS_MM,
                      "offset_seed": "sha256 of the clip name, with the evaluation seed",
                      "trajectory_window_s": TRAJECTORY_WINDOW_S, "trajectory_clip_mm": TRAJECTORY_CLIP_MM},
        "lens": "OpenCV (k1, k2, p1, p2, k3) = (radial[0], radial[1], tangential[0], tangential[1], radial[2]); "
                "H36M's own tangential form differs by far less than a pixel",
        "frames": int(len(rows)),
        "views_total": int(len(rows) * len(cameras)),
        "views": int(len(views.pose)),
        "views_per_camera": {cam.id: int(k) for cam, k in zip(cameras, per_camera)},
        "frames_seen_by_any_camera": int(len(np.unique(views.pose))),
        "off_axis_deg": {"median": _r(np.median(views.off_axis)) if len(views.pose) else None,
                         "max": _r(views.off_axis.max()) if len(views.pose) else None},
        "bins": list(BIN_NAMES),
        "bin_counts": counts,
        "min_bin_views": MIN_BIN_VIEWS,
        "inputs": inputs,
        "runs": runs,
        "targets": targets,
    }
