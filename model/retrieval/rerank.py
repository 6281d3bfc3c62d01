"""Geometric re-ranking of retrieval candidates and the expected error of a result (numpy only).

The builder chooses the weight and calibrates the expected error on held-out validation queries
(``index_builder.bundle.reranking``) and stores both in the bundle manifest
(``model.runtime.bundle_format.RerankInfo``); the service applies them (``service.pose_search``).

- Candidates: the ``CANDIDATES`` best poses by cosine (the best virtual view of each (clip, frame)), or k when k
  is larger, and the lifted candidates (``model.retrieval.lifted_candidates``) where the bundle has them.
- Residual (``fit_residuals``): how well the candidate's 3D, in its matched view's camera frame, explains the
  query, by *method*:
  - ``pose2d`` and ``image``: 2D through the perspective crop, whose frame (``model.pose.features``) gives the rays of
    its virtual camera: ``model.pose.pose_fit.perspective_fit`` (pinhole, free rotation and translation), weighted by
    the joints' confidence (pose2d) or visibility (image);
  - ``pose2d_on_axis``: 2D without image geometry (no image size or principal point: taken as on the optical
    axis, no crop, so no rays): ``model.pose.pose_fit.weak_perspective_fit`` of the box-normalised 2D;
  - ``pose3d``: ``model.pose.pose_fit.procrustes_residual``, PA-MPJPE in mm.
  2D residuals are RMS over the visible joints in the query's normalised units (1 = half the longer side of the
  person box).
- Rank score: ``cosine - weight * residual`` (``rank_scores``), one weight per method; results are ordered by it
  (ties keep the cosine order).
- Expected error (``ErrorCurve``): the PA-MPJPE (mm) between a result and the query's true pose, predicted from
  the residual by a monotone (isotonic) regression. Residuals above the calibration's ``far_residual`` mean a
  result explains the query worse than the top result did for all but 1% of the validation queries: the query is
  far from what the calibration saw (``far_from_library``), and the prediction there is the curve's last value,
  a lower bound.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model.pose.pose_fit import perspective_fit, procrustes_residual, weak_perspective_fit
from model.pose.units import MM_PER_M
from model.runtime.compiled_loops import kernel

CANDIDATES = 100  # poses re-ranked per query (the same for the quality and the latency measurements)
METHODS = ("pose2d", "pose2d_on_axis", "image", "pose3d")
RESIDUAL_UNITS = {
    "pose2d": "perspective fit, normalised 2D (half the longer side of the person box = 1), RMS over visible joints",
    "pose2d_on_axis": "weak-perspective fit, normalised 2D (half the longer side of the box = 1), RMS over visible "
                      "joints",
    "image": "perspective fit, normalised 2D (half the longer side of the person box = 1), RMS over the joints "
             "weighted by visibility",
    "pose3d": "mm, PA-MPJPE",
}


def method_of(modality: str, has_frame: bool) -> str | None:
    """The residual method of a query modality (pose2d, image, pose3d; None for embeddings: no geometry)."""
    if modality == "pose2d":
        return "pose2d" if has_frame else "pose2d_on_axis"
    if modality == "image":
        return "image" if has_frame else None
    return "pose3d" if modality == "pose3d" else None


def candidate_count(k: int, candidates: int = CANDIDATES) -> int:
    """Poses to fetch for a top-k answer with re-ranking."""
    return max(int(k), int(candidates))


def first_per_key(scores: np.ndarray, ids: np.ndarray, views: int, count: int,
                  group_of_pose: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One query's vector hits -> at most ``count`` pose hits, best first: the best (first) virtual view of each
    pose, or of each group.

    scores, ids: (kk,) one row of FAISS's ``(D, I)`` (vector id = pose * views + view), best first; -1
    placeholders are dropped. group_of_pose: (N,) int; when given, at most one hit per group (its best pose).
    returns: pose (H,), view (H,) int64 and score (H,) float of the hits.
    """
    first = first_of_each(ids, views, count, group_of_pose)
    pose, view = np.divmod(ids[first], views)
    return pose, view, scores[first]


NO_GROUPS = np.zeros(0, np.int64)  # ``_first_of_each``'s groups when each pose is its own


def first_of_each(ids: np.ndarray, views: int, count: int, group_of_pose: np.ndarray | None = None) -> np.ndarray:
    """ids: (n,) vector ids (pose * views + view; -1 skipped) -> (H,) int64 the positions in ``ids`` of the first
    id of each pose, or of each group with ``group_of_pose`` (N,), in order, at most ``count``."""
    ids = np.ascontiguousarray(ids, np.int64)
    groups = NO_GROUPS if group_of_pose is None else np.ascontiguousarray(group_of_pose, np.int64)
    first = np.empty(min(int(count), ids.size), np.int64)
    return first[:_first_of_each(ids, int(views), groups, int(count), first)]


@kernel
def _first_of_each(ids, views, groups, count, out):
    """Writes into ``out`` the positions in ``ids`` of the first hit of each key (the pose, or its group in
    ``groups`` when that is not empty), at most ``count``; returns how many. A compiled loop with a set, stopping
    at ``count``: numpy's ``unique`` sorts every hit, several times the cost for a query's 80-800 hits."""
    seen = set()
    found = 0
    for i in range(ids.size):
        if found == count:
            break
        if ids[i] < 0:
            continue
        key = ids[i] // views
        if groups.size:
            key = groups[key]
        if key not in seen:
            seen.add(key)
            out[found] = i
            found += 1
    return found


def compile_kernels() -> None:
    """Compile (or load from numba's cache) ``first_of_each``'s loop, so that no request pays for it."""
    first_per_key(np.zeros(1, np.float32), np.zeros(1, np.int64), 1, 1)  # groups are always int64: one compile


def fit_residuals(method: str, features: np.ndarray, candidates: np.ndarray,
                  frame: np.ndarray | None = None) -> np.ndarray:
    """Residual of each candidate against its query (module docstring); vectorised over queries too.

    method: one of ``METHODS``. features: (..., 17, 3) the query's encoder features (``model.pose.features``: 2D x, y
    and a confidence / visibility; 3D root-relative metres). candidates: (..., C, 17, 3) mm, each in its matched
    view's camera frame (OpenCV axes). frame: (..., 3) the crop's frame (centre x, y, scale in ray units), needed
    by the perspective methods. returns: (..., C) float64.
    """
    features = np.asarray(features, np.float64)[..., None, :, :]  # against every candidate
    if method in ("pose2d", "image"):
        frame = np.asarray(frame, np.float64)[..., None, :]
        rays = features[..., :2] * frame[..., None, 2:] + frame[..., None, :2]
        return perspective_fit(rays, features[..., 2], candidates).residual / frame[..., 2]
    if method == "pose2d_on_axis":
        return weak_perspective_fit(features[..., :2], features[..., 2], candidates).residual
    if method == "pose3d":
        return procrustes_residual(features * MM_PER_M, candidates)
    raise ValueError(f"unknown re-ranking method {method!r}: one of {', '.join(METHODS)}")


def rank_scores(cosine: np.ndarray, residual: np.ndarray, weight: float) -> np.ndarray:
    """The combined ranking score: cosine - weight * residual (any shape)."""
    return np.asarray(cosine, np.float64) - weight * np.asarray(residual, np.float64)


def rank_order(rank: np.ndarray) -> np.ndarray:
    """Indices that sort ``rank`` (..., C) best first along the last axis; ties keep the given (cosine) order."""
    return np.argsort(-rank, axis=-1, kind="stable")


@dataclass(frozen=True)
class ErrorCurve:
    """Expected error (mm) as a non-decreasing piecewise-linear function of the residual.

    residual: (K,) increasing knots; error_mm: (K,) non-decreasing values there; far_residual: above it a query
    is far from what the calibration saw (``far``).
    """

    residual: np.ndarray
    error_mm: np.ndarray
    far_residual: float

    def expected_error(self, residual: np.ndarray) -> np.ndarray:
        """(...,) residuals -> (...,) mm; constant beyond the first and last knots."""
        return np.interp(residual, self.residual, self.error_mm)

    def far(self, residual: np.ndarray) -> np.ndarray:
        return np.asarray(residual) > self.far_residual


def isotonic(y: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """The non-decreasing sequence nearest to ``y`` (N,) in weighted least squares (pool adjacent violators)."""
    y = np.asarray(y, np.float64)
    w = np.ones_like(y) if weights is None else np.asarray(weights, np.float64)
    values, sizes, totals = [], [], []
    for yi, wi in zip(y, w):
        values.append(yi)
        totals.append(wi)
        sizes.append(1)
        while len(values) > 1 and values[-2] > values[-1]:
            v, t, s = values.pop(), totals.pop(), sizes.pop()
            values[-1] = (values[-1] * totals[-1] + v * t) / (totals[-1] + t)
            totals[-1] += t
            sizes[-1] += s
    return np.repeat(values, sizes)


def fit_error_curve(residuals: np.ndarray, errors: np.ndarray, far_residual: float, knots: int = 16) -> ErrorCurve:
    """An ``ErrorCurve`` from calibration pairs: residuals (N,) and the true errors (N,) mm of those results.

    The errors are averaged in ``knots`` bins of equal count along the residual, the bin means made
    non-decreasing (``isotonic``, weighted by the bin sizes) and placed at the bins' mean residuals.
    """
    order = np.argsort(residuals, kind="stable")
    r, e = np.asarray(residuals, np.float64)[order], np.asarray(errors, np.float64)[order]
    bins = [b for b in np.array_split(np.arange(len(r)), min(knots, len(r))) if len(b)]
    x = np.array([r[b].mean() for b in bins])
    y = isotonic(np.array([e[b].mean() for b in bins]), np.array([len(b) for b in bins], np.float64))
    x, first = np.unique(x, return_index=True)  # equal mean residuals (ties): keep the first
    return ErrorCurve(residual=x, error_mm=y[first], far_residual=float(far_residual))
