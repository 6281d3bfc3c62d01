"""The re-ranking weight and the expected-error curve, chosen on held-out queries (``model.retrieval.rerank``).

One procedure serves the bundle (validation queries searched in the index it just built, ``bundle_rerank``) and
the evaluation (validation queries choose and calibrate, test queries measure, over an exactly searched gallery:
``index_builder.evaluation.retrieval.real_cameras``), so what the report measures is what the service does:

1. candidates: the ``model.retrieval.rerank.CANDIDATES`` best poses by cosine (best virtual view of each pose) and,
   where the gallery has the lifted path and the queries their lifted 3D, the
   ``model.retrieval.lifted_candidates.LIFTED_CANDIDATES`` poses nearest the lifted query by joint distances, with
   the query's own clip excluded from the gallery or not (``gather``);
2. each candidate's residual (``model.retrieval.rerank.fit_residuals``, in its matched view's camera frame) and its true
   error, the PA-MPJPE (mm) against the query's true 3D (``assess``);
3. the weight: of ``WEIGHT_GRID`` (per method, in the residual's unit), the one with the lowest mean top-1
   PA-MPJPE over the clip-excluded and clip-included queries (each half counts alike) (``choose_weight``);
4. the expected error: an isotonic curve of the true error on the residual over the top ``CALIBRATION_TOP``
   results of every query at that weight (clip excluded and included), and ``far_residual``, the 99th
   percentile of the clip-excluded top-1 residuals (``calibrate``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import faiss
import numpy as np

import model.runtime.bundle_format as fmt
from model.pose.pose_fit import procrustes_residual
from model.pose.units import MM_PER_M
from model.retrieval.exact_search import exact_search
from model.retrieval.lifted_candidates import LIFTED_CANDIDATES, DescriptorIndex, merge_candidates, views_and_cosines
from model.retrieval.rerank import (
    CANDIDATES,
    RESIDUAL_UNITS,
    ErrorCurve,
    first_per_key,
    fit_error_curve,
    fit_residuals,
    rank_order,
    rank_scores,
)

WEIGHT_GRID = {  # rank score = cosine - weight * residual (0: the cosine order)
    "2d": (0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0),  # per normalised 2D unit
    "3d": (0.0, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256),  # per mm
}
CALIBRATION_TOP = 10  # results per query whose (residual, error) pairs fit the expected-error curve
FAR_QUANTILE = 0.99  # of the clip-excluded validation top-1 residuals: above it, far from the library
FIT_CHUNK = 64  # queries fitted per vectorised call

# (queries (Q, D) float32, kk vectors, clip to exclude per query (Q,) or None) -> FAISS's (D, I), -1 padded
Search = Callable[[np.ndarray, int, "np.ndarray | None"], tuple[np.ndarray, np.ndarray]]


def weight_grid(method: str) -> tuple[float, ...]:
    return WEIGHT_GRID["3d" if method == "pose3d" else "2d"]


@dataclass(frozen=True)
class QuerySet:
    """Queries of one re-ranking method (``model.retrieval.rerank.METHODS``), Q of them.

    features: (Q, 17, 3) float32 encoder features; frames: (Q, 3) their crops' frames (perspective methods) or
    None; embeddings: (Q, D) float32; truth: (Q, 17, 3) mm, root-relative, the true pose in any frame; clip: (Q,)
    the gallery clip the true pose belongs to (left out when clips are excluded); content: (Q,) labels; lifted: (Q,
    17, 3) mm the queries' lifted 3D (the decoder's, or a 3D query itself), for the lifted candidates, or None.
    """

    method: str
    features: np.ndarray
    frames: np.ndarray | None
    embeddings: np.ndarray
    truth: np.ndarray
    clip: np.ndarray
    content: np.ndarray | None = None
    lifted: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.features)


@dataclass(frozen=True)
class LiftedPath:
    """A gallery's lifted candidates (``model.retrieval.lifted_candidates``): the descriptor index over its poses and
    its stored vectors (vector ids (n,) -> (n, D) float32), which give a lifted candidate its cosine."""

    index: DescriptorIndex
    vectors: Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Gallery:
    """The searched poses: poses (N, 17, 3) float64 mm root-relative world (Y up), clip (N,) int, rotations (V,
    3, 3) world -> virtual view cameras, its vector search (vector id = pose * V + view) and, optionally, its
    lifted path."""

    poses: np.ndarray
    clip: np.ndarray
    rotations: np.ndarray
    search: Search
    lifted: LiftedPath | None = None

    @property
    def views(self) -> int:
        return len(self.rotations)


def exact_search_of(vectors: np.ndarray, views: int, pose_clip: np.ndarray) -> Search:
    """Exact inner-product search over ``vectors`` (N * V, D) float32 (``model.retrieval.exact_search``: one
    ``faiss.knn`` call); a query's clip is excluded by asking for as many more vectors as the longest excluded clip
    holds and dropping its own."""
    lengths = np.bincount(pose_clip)

    def search(queries: np.ndarray, kk: int, exclude: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        extra = 0 if exclude is None or not len(exclude) else views * int(lengths[exclude].max())
        k = min(kk + extra, len(vectors))
        scores, ids = exact_search(queries, vectors, k, "ip")
        if exclude is not None:
            own = pose_clip[np.maximum(ids, 0) // views] == exclude[:, None]
            order = np.argsort(own, axis=1, kind="stable")  # other clips' vectors first, in score order
            scores = np.where(np.take_along_axis(own, order, 1), -np.inf, np.take_along_axis(scores, order, 1))
            ids = np.where(np.take_along_axis(own, order, 1), -1, np.take_along_axis(ids, order, 1))
        return scores[:, :kk], ids[:, :kk]

    return search


def index_search_of(index: faiss.Index, views: int, pose_clip: np.ndarray, nprobe: int = 0,
                    ef_search: int = 0) -> Search:
    """Search of a built FAISS index at its operating point; a query's clip is excluded by an ID selector."""
    ivf = faiss.try_extract_index_ivf(index)
    hnsw = isinstance(faiss.downcast_index(index), faiss.IndexHNSW)

    def params(selector):
        extra = {} if selector is None else {"sel": selector}
        if ivf is not None:
            return faiss.SearchParametersIVF(nprobe=max(1, nprobe or ivf.nprobe), **extra)
        if hnsw:
            return faiss.SearchParametersHNSW(efSearch=max(ef_search or 64, 1), **extra)
        return faiss.SearchParameters(**extra) if extra else None

    def search(queries: np.ndarray, kk: int, exclude: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(queries, np.float32)
        kk = min(kk, index.ntotal)
        if exclude is None:
            return index.search(queries, kk, params=params(None))
        scores = np.full((len(queries), kk), -np.inf, np.float32)
        found = np.full((len(queries), kk), -1, np.int64)
        for clip in np.unique(exclude):
            rows = np.flatnonzero(exclude == clip)
            own = (np.flatnonzero(pose_clip == clip)[:, None] * views + np.arange(views)).ravel().astype(np.int64)
            inner = faiss.IDSelectorBatch(own)
            selector = faiss.IDSelectorNot(inner)
            scores[rows], found[rows] = index.search(queries[rows], kk, params=params(selector))
            del selector, inner
        return scores, found

    return search


@dataclass(frozen=True)
class Scored:
    """Candidates of Q queries, C each, in cosine order (-1 / -inf / inf / nan where fewer were found).

    pose, view: (Q, C) int64; cosine, residual, error: (Q, C) float64 (error: PA-MPJPE mm to the true pose)."""

    pose: np.ndarray
    view: np.ndarray
    cosine: np.ndarray
    residual: np.ndarray
    error: np.ndarray

    def ranked(self, weight: float | None) -> np.ndarray:
        """(Q, C) candidate columns best first: by rank score at ``weight``, or by cosine for None."""
        if weight is None:
            return np.broadcast_to(np.arange(self.pose.shape[1]), self.pose.shape)
        found = self.pose >= 0
        rank = np.full(self.pose.shape, -np.inf)
        rank[found] = rank_scores(self.cosine[found], self.residual[found], weight)
        return rank_order(rank)

    def take(self, name: str, weight: float | None) -> np.ndarray:
        """(Q, C) the field ``name`` of the candidates in the order of ``ranked(weight)``."""
        return np.take_along_axis(getattr(self, name), self.ranked(weight), 1)


def gather(gallery: Gallery, queries: QuerySet, exclude_clip: bool, count: int = CANDIDATES,
           chunk: int = 256) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``count`` best poses by cosine of every query, with the lifted candidates when the gallery and the queries
    have them (in cosine order, each pose once): pose, view (Q, C) int64 (-1 padded) and cosine (Q, C) (-inf
    padded), C = count (+ ``LIFTED_CANDIDATES``)."""
    views = gallery.views
    lifting = gallery.lifted is not None and queries.lifted is not None
    width = count + (LIFTED_CANDIDATES if lifting else 0)
    pose = np.full((len(queries), width), -1, np.int64)
    view = np.full((len(queries), width), -1, np.int64)
    cosine = np.full((len(queries), width), -np.inf)
    for start in range(0, len(queries), chunk):
        rows = slice(start, start + chunk)
        exclude = queries.clip[rows] if exclude_clip else None
        scores, ids = gallery.search(queries.embeddings[rows], count * views, exclude)
        found = [first_per_key(d, row, views, count) for d, row in zip(scores, ids)]
        if lifting:
            lifted = lifted_hits(gallery, queries.lifted[rows], queries.embeddings[rows], exclude)
            found = [merge_candidates(*zip(a, b)) for a, b in zip(found, lifted)]
        for i, (p, v, s) in enumerate(found):
            pose[start + i, : len(p)], view[start + i, : len(p)], cosine[start + i, : len(p)] = p, v, s
    return pose, view, cosine


def lifted_hits(gallery: Gallery, lifted: np.ndarray, embeddings: np.ndarray,
                exclude: np.ndarray | None) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per query the ``LIFTED_CANDIDATES`` gallery poses nearest its lifted 3D (outside its clip when ``exclude``
    gives the clips), each with its view and that view's cosine (``views_and_cosines``): (pose, view, cosine) per
    query."""
    extra = 0 if exclude is None else int(np.bincount(gallery.clip).max())  # room for the own clip's poses
    near = gallery.lifted.index.search(lifted, LIFTED_CANDIDATES + extra)
    if exclude is not None:
        own = (near >= 0) & (gallery.clip[np.maximum(near, 0)] == exclude[:, None])
        near = np.where(own, -1, near)
        order = np.argsort(near < 0, axis=1, kind="stable")  # the found poses first, nearest first
        near = np.take_along_axis(near, order, 1)
    near = near[:, :LIFTED_CANDIDATES]
    view, cosine = views_and_cosines(lifted, near, embeddings, lambda rows: gallery.poses[rows], gallery.rotations,
                                     gallery.lifted.vectors)
    return [(p[p >= 0], v[p >= 0], c[p >= 0]) for p, v, c in zip(near, view, cosine)]


def assess(gallery: Gallery, queries: QuerySet, pose: np.ndarray, view: np.ndarray,
           cosine: np.ndarray) -> Scored:
    """Residuals and true errors of the gathered candidates."""
    found = pose >= 0
    safe_pose, safe_view = np.where(found, pose, 0), np.where(found, view, 0)
    residual = np.empty(pose.shape)
    for start in range(0, len(queries), FIT_CHUNK):
        rows = slice(start, start + FIT_CHUNK)
        seen = gallery.poses[safe_pose[rows]] @ np.swapaxes(gallery.rotations[safe_view[rows]], -1, -2)
        frames = None if queries.frames is None else queries.frames[rows]
        residual[rows] = fit_residuals(queries.method, queries.features[rows], seen, frames)
    error = procrustes_residual(queries.truth[:, None].astype(np.float64), gallery.poses[safe_pose])
    return Scored(pose, view, cosine, np.where(found, residual, np.inf), np.where(found, error, np.nan))


def score_queries(gallery: Gallery, queries: QuerySet, exclude_clip: bool, count: int = CANDIDATES) -> Scored:
    return assess(gallery, queries, *gather(gallery, queries, exclude_clip, count))


def top1_mean(scored: Scored, weight: float | None) -> float | None:
    """Mean top-1 error (mm) over the queries that found a candidate; None when none did."""
    first = scored.take("error", weight)[:, 0]
    first = first[np.isfinite(first)]
    return float(first.mean()) if len(first) else None


def choose_weight(method: str, scored: list[Scored]) -> tuple[float, dict[str, float]]:
    """The weight of ``weight_grid(method)`` with the lowest mean top-1 error averaged over ``scored`` (each set
    with candidates counts alike); the first on ties; 0 (the cosine order) when no set has candidates.
    returns: the weight and {weight: that mean} for the grid."""
    table = {}
    for w in weight_grid(method):
        means = [m for m in (top1_mean(s, w) for s in scored) if m is not None]
        if means:
            table[f"{w:g}"] = float(np.mean(means))
    if not table:
        return 0.0, table
    return float(min(table, key=table.get)), table


def calibrate(excluded: Scored, included: Scored, weight: float,
              top: int = CALIBRATION_TOP) -> tuple[ErrorCurve, int]:
    """The expected-error curve at ``weight`` (module docstring, 4) and the number of pairs it was fitted on."""
    pairs = [(s.take("residual", weight)[:, :top], s.take("error", weight)[:, :top]) for s in (excluded, included)]
    residual = np.concatenate([p[0].ravel() for p in pairs])
    error = np.concatenate([p[1].ravel() for p in pairs])
    keep = np.isfinite(residual) & np.isfinite(error)
    top1 = excluded.take("residual", weight)[:, 0]
    if not np.isfinite(top1).any():  # a gallery of one clip: nothing is left when it is excluded
        top1 = included.take("residual", weight)[:, 0]
    far = float(np.quantile(top1[np.isfinite(top1)], FAR_QUANTILE))
    return fit_error_curve(residual[keep], error[keep], far), int(keep.sum())


def method_section(method: str, excluded: Scored, included: Scored, queries: int) -> fmt.RerankMethod:
    """One method's manifest entry: its weight, its curve and what validation measured."""
    weight, table = choose_weight(method, [excluded, included])
    curve, pairs = calibrate(excluded, included, weight)
    validation = {
        "queries": queries, "weights": table,
        "top1_pa_mpjpe_mm": {name: {"cosine": _round(top1_mean(s, None)), "reranked": _round(top1_mean(s, weight))}
                             for name, s in (("clip_excluded", excluded), ("clip_included", included))},
    }
    return fmt.RerankMethod(
        weight=weight, residual_unit=RESIDUAL_UNITS[method], validation=validation,
        calibration=fmt.ErrorCurveInfo(residual=[float(x) for x in curve.residual],
                                       expected_error_mm=[round(float(y), 3) for y in curve.error_mm],
                                       far_residual=curve.far_residual,
                                       pairs=pairs))


def _round(x: float | None, digits: int = 3) -> float | None:
    return None if x is None else round(x, digits)


VALIDATION_QUERIES = 300  # per method, at build time
VALIDATION_SEED = 17
QUERIES_TEXT = ("{n} poses of the validation clips ({source}), each seen once through a seeded random camera "
                "(azimuth 0-360, elevation -10..45 degrees, 2.5-8 m, focal 600-2000 px, roll +-10 degrees; "
                "none of the indexed views), clean 2D (pose2d and pose2d_on_axis), simulated detector features "
                "(image) or the 3D (pose3d); searched in the bundle's index with the query's clip left out and "
                "kept; weight: the lowest mean top-1 PA-MPJPE over both; curve: isotonic over the top "
                f"{CALIBRATION_TOP} results of both")


@dataclass(frozen=True)
class ValidationViews:
    """Views of held-out poses for choosing and calibrating (``validation_views``): rows (Q,) into the indexed
    poses, and the ``index_builder.training.batches.Views`` of them."""

    rows: np.ndarray
    views: object
    source: str


def validation_views(db, count: int = VALIDATION_QUERIES, seed: int = VALIDATION_SEED) -> ValidationViews:
    """``count`` poses of ``db``'s validation clips (all clips when it has none), one seeded random camera each.

    db: the indexed ``MotionDatabase`` (its rows are the bundle's poses)."""
    from index_builder.training.batches import NO_AUGMENT, view_poses
    from index_builder.training.detector_noise import DetectorNoise
    from model.pose.camera_rigs import random_cameras

    val = db.clips.split == "val"
    source = "split val" if val.any() else "every clip (the database has no validation split)"
    candidates = np.flatnonzero(val[db.clip]) if val.any() else np.arange(len(db))
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(candidates, size=min(count, len(candidates)), replace=False))
    world = db.poses[rows].astype(np.float64)
    views = view_poses(world, random_cameras(world[:, 0], rng), rng, DetectorNoise.load(), NO_AUGMENT)
    return ValidationViews(rows, views, source)


def query_sets(val: ValidationViews, truth: np.ndarray, clip: np.ndarray,
               encode: Callable[[str, np.ndarray], np.ndarray],
               lift: Callable[[np.ndarray], np.ndarray] | None = None) -> dict[str, QuerySet]:
    """One ``QuerySet`` per method from the validation views. truth: (Q, 17, 3) the true poses (mm); clip: (Q,)
    their gallery clips; encode(modality, features) -> (Q, D) embeddings; lift(embeddings) -> (Q, 17, 3) mm, the
    decoder's 3D, for the lifted candidates (None: none; a 3D query is its own lift)."""
    v = val.views
    pose2d, image = encode("pose2d", v.pose2d), encode("image", v.image)
    lifted2d = None if lift is None else lift(pose2d)
    return {
        "pose2d": QuerySet("pose2d", v.pose2d, v.frame, pose2d, truth, clip, lifted=lifted2d),
        "pose2d_on_axis": QuerySet("pose2d_on_axis", v.pose2d, None, pose2d, truth, clip, lifted=lifted2d),
        "image": QuerySet("image", v.image, v.image_frame, image, truth, clip,
                          lifted=None if lift is None else lift(image)),
        "pose3d": QuerySet("pose3d", v.pose3d_features, None, encode("pose3d", v.pose3d_features), truth, clip,
                           lifted=None if lift is None else v.pose3d_features.astype(np.float64) * MM_PER_M),
    }


def rerank_info(gallery: Gallery, sets: dict[str, QuerySet], description: str,
                count: int = CANDIDATES) -> tuple[fmt.RerankInfo | None, dict[str, tuple[Scored, Scored]]]:
    """The manifest's ``rerank`` section from validation query sets (None when no query found a candidate), and
    their scored candidates (clip excluded, included) per method."""
    scored = {m: (score_queries(gallery, q, True, count), score_queries(gallery, q, False, count))
              for m, q in sets.items()}
    methods = {m: method_section(m, *scored[m], len(sets[m])) for m in sets if (scored[m][1].pose >= 0).any()}
    if not methods:
        return None, scored
    lifted = gallery.lifted is not None and any(q.lifted is not None for q in sets.values())
    info = fmt.RerankInfo(candidates=count, lifted_candidates=LIFTED_CANDIDATES if lifted else 0,
                          score="rank_score = cosine - weight * fit_residual, best first",
                          queries=description, methods=methods)
    return info, scored


def validation_line(method: str, entry: fmt.RerankMethod) -> str:
    """One line on what a method's weight gave on validation queries."""
    top1 = entry.validation["top1_pa_mpjpe_mm"]

    def mm(x):
        return "-" if x is None else f"{x:.1f}"
    return (f"re-ranking {method}: weight {entry.weight:g}, validation top-1 PA-MPJPE "
            f"{mm(top1['clip_excluded']['cosine'])} -> {mm(top1['clip_excluded']['reranked'])} mm (clip excluded), "
            f"{mm(top1['clip_included']['cosine'])} -> {mm(top1['clip_included']['reranked'])} mm (included)")
