"""Retrieval from real cameras over the whole library (issue #16): how close the returned pose is to the best pose
the library holds, with and without geometric re-ranking, and how well the predicted error says so.

Gallery. The whole database (every split: the library a user indexes) at about ``GALLERY_FPS`` frames per second
(``index_builder.bundle.writer.frames_at_rate``), every pose under the bundle's ``DEFAULT_VIEWS`` virtual views
(``model.pose.camera_rigs.virtual_view_rotations``), embedded by the run's pose3d encoder and searched exactly
(``model.retrieval.exact_search``, one ``faiss.knn`` call per chunk of queries:
``index_builder.bundle.reranking.exact_search_of``).

Queries: clean 2D of test-split poses that the gallery holds, each seen once by
- ``real_rig``: the fixed real rig of ``real_cameras`` (the four published H36M calibrations of
  ``settings.real_rig_subject``, the subject placed off-centre on the floor, lens distortion), taken through the
  perspective crop with the true intrinsics;
- ``random``: a random camera (azimuth 0-360, elevation -10..45 degrees, 2.5-8 m, focal 600-2000 px, roll +-10
  degrees): none of the indexed views.
Each with the query's clip excluded from the gallery (a pose like, not in, the library) and included (the pose
itself is there).

Re-ranking as the service does it (``index_builder.bundle.reranking``, ``model.retrieval.rerank``): the
``CANDIDATES`` best poses by cosine and the ``LIFTED_CANDIDATES`` nearest the query's lifted 3D by joint distances
(``model.retrieval.lifted_candidates``: the decoder's lift of the query, searched in a descriptor index over the
gallery's poses), each fitted in its matched view's camera frame (``pose2d``: pinhole fit in the crop's camera),
ordered by cosine - weight * residual. The weight and the expected-error curve are chosen on
validation queries (random cameras, the validation split, clip excluded and included), never on these test queries.

Errors: PA-MPJPE (mm) against the query's true 3D: of the top-1, of the best of the top 10, and the oracle floor
(``oracle_floor``: the gallery pose with the smallest PA-MPJPE over the whole gallery, outside the query's clip when
it is excluded). Confidence (clip excluded): Spearman's rank correlation between the predicted and the true top-1
error, and the reliability in ``RELIABILITY_BINS`` equal-count bins of the prediction.

Parts: ``oracle_floor`` (the floor), ``calibration_metrics`` (Spearman and the reliability bins); this module makes
the gallery and the queries, runs the re-ranking and summarises.
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np

from index_builder.bundle import reranking
from index_builder.bundle.writer import DEFAULT_VIEWS, frames_at_rate
from index_builder.datasets.motion_database import MotionDatabase
from index_builder.evaluation.adapters import encode, lift
from index_builder.evaluation.real_cameras import place_on_floor, rig_cameras, rig_views
from index_builder.evaluation.retrieval.calibration_metrics import (
    RELIABILITY_BINS,
    TARGET_BIN_TOLERANCE,
    reliability,
    spearman,
)
from index_builder.evaluation.retrieval.oracle_floor import oracle_floor
from index_builder.progress import progress_bar
from index_builder.training.config import EvalSettings
from index_builder.training.detector_noise import DetectorNoise
from model.nn.networks import UniHPR
from model.pose.camera_rigs import random_cameras, virtual_view_rotations
from model.pose.features import cropped_pose2d_features, pose3d_features
from model.pose.skeleton import root_centred
from model.retrieval.lifted_candidates import LIFTED_CANDIDATES, DescriptorIndex
from model.retrieval.rerank import CANDIDATES, ErrorCurve

LOG = logging.getLogger(__name__)

GALLERY_FPS = 10.0
METHOD = "pose2d"  # clean 2D through the perspective crop with known intrinsics: the pinhole fit
EMBED_CHUNK = 65_536  # gallery vectors embedded per forward pass
WITHIN_MM = 10.0
SETS = ("real_rig", "random")
VARIANTS = ("clip_excluded", "clip_included")
# the targets
TARGET_WITHIN_RATE = 0.9  # clip included, real rig: top-1 within 10 mm PA for at least this share of queries
TARGET_FLOOR_RATIO = 1.2  # clip excluded: mean top-1 PA <= this x the oracle floor, on both camera sets
TARGET_SPEARMAN = 0.6  # predicted vs true top-1 error, clip excluded
TARGET_LATENCY_RATIO = 1.25  # /retrieve k = 10 p50 with re-ranking / without (benchmarks/service_latency.py)


def _r(x: float | None, digits: int = 3) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), digits)


def _target(text: str, short: str, value: float | None, threshold: float, at_least: bool = False) -> dict:
    met = None if value is None else bool(value >= threshold if at_least else value <= threshold)
    return {"target": text, "short": short, "value": _r(value), "threshold": threshold, "met": met}


# --------------------------------------------------------------------------------------------- queries


def embed_gallery(model: UniHPR, poses: np.ndarray, rotations: np.ndarray, progress: bool = False) -> np.ndarray:
    """(N * V, D) float32 pose3d embeddings of ``poses`` (N, 17, 3) world mm under every view (vector pose * V +
    view), as ``index_builder.bundle.writer.embed_poses`` makes them with the ONNX encoder."""
    viewed = np.einsum("vij,nkj->nvki", rotations, poses).reshape(-1, poses.shape[1], 3)
    chunks = range(0, len(viewed), EMBED_CHUNK)
    return np.concatenate([encode(model, pose3d_features(viewed[i : i + EMBED_CHUNK]), "pose3d")
                           for i in progress_bar(chunks, desc="embedding the gallery", enabled=progress)])


def random_camera_set(model: UniHPR, gallery_db: MotionDatabase, poses: np.ndarray, rows: np.ndarray,
                      rng: np.random.Generator) -> reranking.QuerySet:
    """Clean 2D of the gallery poses ``rows``, one random camera each, through the perspective crop."""
    from index_builder.training.batches import NO_AUGMENT, view_poses

    world = gallery_db.poses[rows].astype(np.float64)
    v = view_poses(world, random_cameras(world[:, 0], rng), rng, DetectorNoise(), NO_AUGMENT)
    embeddings = encode(model, v.pose2d, "pose2d")
    return reranking.QuerySet(METHOD, v.pose2d, v.frame, embeddings, poses[rows],
                              gallery_db.clip[rows].astype(np.int64), gallery_db.clips.content[gallery_db.clip[rows]],
                              lift(model, embeddings))


def real_rig_set(model: UniHPR, gallery_db: MotionDatabase, poses: np.ndarray, split: str, count: int,
                 rng: np.random.Generator, subject: str, seed: int) -> tuple[reranking.QuerySet, dict]:
    """Clean distorted 2D of ``split`` poses through the fixed real rig (``real_cameras``), ``count`` views of the
    kept ones (all joints inside the image), through the perspective crop with the true intrinsics."""
    keep = gallery_db.clips.split == split
    rows = np.flatnonzero(keep[gallery_db.clip])  # gallery rows of the split, in the split database's order
    split_db = gallery_db.select_clips(keep)
    frames = np.sort(rng.choice(len(rows), size=min(len(rows), 2 * count), replace=False))
    views = rig_views(place_on_floor(split_db, frames, seed), rig_cameras(subject))
    pick = np.sort(rng.choice(len(views.pose), size=min(count, len(views.pose)), replace=False))
    features, _, _, frame = cropped_pose2d_features(views.pixels[pick], np.ones((len(pick), 17)),
                                                    views.intrinsics[pick], with_frame=True)
    grows = rows[frames[views.pose[pick]]]
    embeddings = encode(model, features, "pose2d")
    queries = reranking.QuerySet(METHOD, features, frame, embeddings, poses[grows],
                                 gallery_db.clip[grows].astype(np.int64),
                                 gallery_db.clips.content[gallery_db.clip[grows]], lift(model, embeddings))
    return queries, {"views_kept": int(len(views.pose)), "frames_placed": int(len(frames)),
                     "off_axis_deg_median": _r(float(np.median(views.off_axis[pick]))) if len(pick) else None}


def split_rows(gallery_db: MotionDatabase, split: str, count: int, rng: np.random.Generator) -> np.ndarray:
    rows = np.flatnonzero((gallery_db.clips.split == split)[gallery_db.clip])
    return np.sort(rng.choice(rows, size=min(count, len(rows)), replace=False))


# --------------------------------------------------------------------------------------------- the protocol


def summarise(scored: reranking.Scored, weight: float, floor: np.ndarray, contents: np.ndarray | None, min_clips: int,
              clips: np.ndarray) -> dict:
    """One set and variant: top-1 and top-10 PA-MPJPE in the cosine order and re-ranked, the floor, the within-10
    mm rate, per content."""
    out = {"queries": int(len(floor)), "oracle_floor_mm": _r(floor.mean())}
    for name, w in (("cosine", None), ("reranked", weight)):
        errors = scored.take("error", w)
        top1 = errors[:, 0]
        out[name] = {"top1_pa_mpjpe_mm": _r(reranking.top1_mean(scored, w)),
                     "top10_best_pa_mpjpe_mm": _r(np.nanmean(np.nanmin(errors[:, :10], axis=1))),
                     "top1_within_10mm_rate": _r(np.mean(top1 <= WITHIN_MM)),
                     # the clip-included floor is 0 (the pose itself): no ratio there
                     "top1_to_floor": _r(np.nanmean(top1) / floor.mean()) if floor.mean() > 1.0 else None}
    out["candidate_best_pa_mpjpe_mm"] = _r(np.nanmean(np.nanmin(scored.error, axis=1)))
    per_content = {}
    if contents is not None:
        top1 = scored.take("error", weight)[:, 0]
        cosine = scored.take("error", None)[:, 0]
        for content in sorted(set(contents.tolist())):
            sel = contents == content
            if len(set(clips[sel].tolist())) < min_clips:
                continue
            per_content[content] = {"queries": int(sel.sum()), "clips": int(len(set(clips[sel].tolist()))),
                                    "top1_cosine_mm": _r(np.nanmean(cosine[sel])),
                                    "top1_reranked_mm": _r(np.nanmean(top1[sel])),
                                    "oracle_floor_mm": _r(floor[sel].mean()),
                                    "top1_within_10mm_rate": _r(np.mean(top1[sel] <= WITHIN_MM))}
    out["per_content"] = per_content
    return out


def confidence(curve: ErrorCurve, scored: dict[str, reranking.Scored], weight: float) -> dict:
    """Predicted vs true top-1 error of the re-ranked results, per set and pooled."""
    per_set, pooled_pred, pooled_true, pooled_far = {}, [], [], []
    for name, s in scored.items():
        residual = s.take("residual", weight)[:, 0]
        true = s.take("error", weight)[:, 0]
        ok = np.isfinite(residual) & np.isfinite(true)
        predicted = curve.expected_error(residual[ok])
        far = curve.far(residual[ok])
        per_set[name] = {"queries": int(ok.sum()), "spearman": _r(spearman(predicted, true[ok])),
                         "mean_predicted_mm": _r(predicted.mean()), "mean_actual_mm": _r(true[ok].mean()),
                         "far_from_library_rate": _r(far.mean()), "reliability": reliability(predicted, true[ok])}
        pooled_pred.append(predicted)
        pooled_true.append(true[ok])
        pooled_far.append(far)
    predicted, true = np.concatenate(pooled_pred), np.concatenate(pooled_true)
    return {"per_set": per_set, "pooled": {"queries": int(len(predicted)), "spearman": _r(spearman(predicted, true)),
                                           "far_from_library_rate": _r(np.concatenate(pooled_far).mean()),
                                           "reliability": reliability(predicted, true)}}


def scattered_probe(model: UniHPR, gallery: reranking.Gallery, curve: ErrorCurve, weight: float, count: int,
                    rng: np.random.Generator) -> dict:
    """Queries far from everything: 2D 'poses' of joints scattered uniformly in a box (no body makes them): how
    many does the top result flag ``far_from_library``."""
    from model.pose.features import box_frame, pose2d_features

    rays = rng.uniform(-0.2, 0.2, (count, 17, 2))
    features = pose2d_features(rays)
    frames = box_frame(rays)
    embeddings = encode(model, features, "pose2d")
    queries = reranking.QuerySet(METHOD, features, frames, embeddings, np.zeros((count, 17, 3)),
                                 np.full(count, -1, np.int64), lifted=lift(model, embeddings))
    s = reranking.score_queries(gallery, queries, False)
    residual = s.take("residual", weight)[:, 0]
    return {"queries": count, "what": "17 joints uniform in a square 0.4 x 0.4 in ray units (about 22 degrees), "
                                      "through the crop; the library's poses fit them badly",
            "far_from_library_rate": _r(curve.far(residual).mean()),
            "expected_error_mm_median": _r(float(np.median(curve.expected_error(residual))))}


def retrieval_real(model: UniHPR, db: MotionDatabase, settings: EvalSettings, progress: bool = False) -> dict:
    """The section (module docstring). db: the whole database (every split)."""
    rng = np.random.default_rng([settings.seed, 16])
    seconds: dict[str, float] = {}
    tick = time.perf_counter()
    gallery_db = frames_at_rate(db, GALLERY_FPS)
    poses = root_centred(gallery_db.poses.astype(np.float64))
    rotations = virtual_view_rotations(DEFAULT_VIEWS)
    clip = gallery_db.clip.astype(np.int64)
    vectors = embed_gallery(model, poses, rotations, progress)
    seconds["gallery_embedding"], tick = time.perf_counter() - tick, time.perf_counter()
    gallery = reranking.Gallery(poses, clip, rotations, reranking.exact_search_of(vectors, DEFAULT_VIEWS, clip),
                                reranking.LiftedPath(DescriptorIndex(poses), lambda ids: vectors[ids]))
    count = settings.real_retrieval_queries
    LOG.info("retrieval over the library: %d poses x %d views, %d queries per set", len(poses), DEFAULT_VIEWS, count)

    # validation: the weight and the expected-error curve
    val_rows = split_rows(gallery_db, "val" if (gallery_db.clips.split == "val").any() else "train", count, rng)
    val = random_camera_set(model, gallery_db, poses, val_rows, rng)
    val_scored = [reranking.score_queries(gallery, val, exclude) for exclude in (True, False)]
    weight, table = reranking.choose_weight(METHOD, val_scored)
    curve, pairs = reranking.calibrate(*val_scored, weight)
    seconds["validation"], tick = time.perf_counter() - tick, time.perf_counter()

    # test
    test_sets = {"random": random_camera_set(model, gallery_db, poses, split_rows(gallery_db, "test", count, rng),
                                             rng)}
    test_sets["real_rig"], rig_info = real_rig_set(model, gallery_db, poses, "test", count, rng,
                                                   settings.real_rig_subject, settings.seed)
    results, excluded_scored = {}, {}
    seconds["oracle_floor"] = 0.0
    for name in SETS:
        q = test_sets[name]
        results[name] = {}
        for variant in VARIANTS:
            exclude = variant == "clip_excluded"
            scored = reranking.score_queries(gallery, q, exclude)
            start = time.perf_counter()
            floor = oracle_floor(q.truth, poses, q.clip, clip, exclude, progress=progress)
            seconds["oracle_floor"] += time.perf_counter() - start
            results[name][variant] = summarise(scored, weight, floor, q.content, settings.min_content_clips, q.clip)
            if exclude:
                excluded_scored[name] = scored
    conf = confidence(curve, excluded_scored, weight)
    probe = scattered_probe(model, gallery, curve, weight, min(count, 100), rng)
    seconds["test_queries"] = time.perf_counter() - tick - seconds["oracle_floor"]

    rig_in = results["real_rig"]["clip_included"]["reranked"]["top1_within_10mm_rate"]
    ratios = {n: results[n]["clip_excluded"]["reranked"]["top1_to_floor"] for n in SETS}
    targets = [
        _target(f"clip included, real rig: re-ranked top-1 within {WITHIN_MM:g} mm PA-MPJPE for >= "
                f"{TARGET_WITHIN_RATE:.0%} of queries", f"real rig, clip included: top-1 within {WITHIN_MM:g} mm "
                f">= {TARGET_WITHIN_RATE:.0%}", rig_in, TARGET_WITHIN_RATE, at_least=True),
        *[_target(f"clip excluded, {n.replace('_', ' ')}: mean re-ranked top-1 PA-MPJPE <= {TARGET_FLOOR_RATIO:g} x "
                  "the oracle floor", f"{n.replace('_', ' ')}, clip excluded: top-1 <= {TARGET_FLOOR_RATIO:g}x floor",
                  ratios[n], TARGET_FLOOR_RATIO) for n in SETS],
        _target(f"confidence: Spearman between predicted and true top-1 error >= {TARGET_SPEARMAN:g} (clip-excluded "
                "test queries, both camera sets)", f"Spearman >= {TARGET_SPEARMAN:g}", conf["pooled"]["spearman"],
                TARGET_SPEARMAN, at_least=True),
        _target(f"confidence: each of {RELIABILITY_BINS} bins' mean true error within {TARGET_BIN_TOLERANCE:.0%} of "
                "its mean prediction (clip-excluded test queries, both camera sets; value: the share of bins)",
                f"reliability bins within {TARGET_BIN_TOLERANCE:.0%}",
                float(np.mean([b["within_tolerance"] for b in conf["pooled"]["reliability"]])), 1.0, at_least=True),
        {"target": f"re-ranking adds <= {TARGET_LATENCY_RATIO - 1:.0%} to /retrieve k = 10 p50 (measured by "
                   "benchmarks/service_latency.py, not by evaluate: benchmarks/README.md)",
         "short": f"latency +{TARGET_LATENCY_RATIO - 1:.0%}", "value": None, "threshold": TARGET_LATENCY_RATIO,
         "met": None},
    ]
    return {
        "status": "computed",
        "gallery": {"poses": int(len(poses)), "views": DEFAULT_VIEWS, "vectors": int(len(vectors)),
                    "fps": GALLERY_FPS, "clips": int(len(gallery_db.clips)),
                    "search": "exact (model.retrieval.exact_search: faiss.knn)"},
        "candidates": CANDIDATES,
        "lifted_candidates": LIFTED_CANDIDATES,
        "queries_per_set": {"validation": len(val), **{n: len(test_sets[n]) for n in SETS}},
        "real_rig": rig_info,
        "rerank": {"method": METHOD, "weight": weight, "weights": table, "calibration_pairs": pairs,
                   "calibration_top": reranking.CALIBRATION_TOP, "far_quantile": reranking.FAR_QUANTILE,
                   "curve": {"residual": [_r(x, 6) for x in curve.residual],
                             "expected_error_mm": [_r(y) for y in curve.error_mm],
                             "far_residual": _r(curve.far_residual, 6)},
                   "validation_top1_pa_mpjpe_mm": {v: {"cosine": _r(reranking.top1_mean(s, None)),
                                                        "reranked": _r(reranking.top1_mean(s, weight))}
                                                    for v, s in zip(VARIANTS, val_scored)}},
        "results": results,
        "confidence": conf,
        "far_probe": probe,
        "targets": targets,
        "wall_seconds": {k: round(v, 1) for k, v in seconds.items()},
    }
