"""Evaluation (SPEC section 6): lifting, retrieval (paper and Pr-VIPE protocols), cross-modal alignment and the
seed study, on held-out clips, deterministically.

The metric functions come first (numpy in, numpy out; exact search by chunked matrix products in torch, no FAISS),
then the protocols: each takes models and held-out views and returns a plain dict of numbers that
``index_builder.eval_report`` writes. Units: 3D errors in mm, NP-MPJPE unitless, 2D in normalised units (the pose
box's longer half-side is 1).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from index_builder.blazepose_assets import BlazePoseFiles
from index_builder.checkpoint import load_martinez, load_unihpr
from index_builder.detector_noise import DetectorNoise
from index_builder.config import portable_path
from model.bundle_format import sha256_of
from index_builder.errors import ArtifactError
from index_builder.image_evaluation import image_sections
from index_builder.motion_database import MotionDatabase
from index_builder.training_data import NO_AUGMENT, Views, view_poses
from model.camera_rigs import H36M_LIKE_RIG, random_cameras, ring_cameras
from model.config import MODALITIES
from model.features import pose2d_features
from model.metrics import mpjpe, np_mpjpe, pa_mpjpe
from model.networks import UniHPR

CONDITIONS = {"gt_2d": "pose2d", "noisy_2d": "pose2d", "detector": "image"}  # 2D condition -> encoder modality
SETUPS = ("h36m_rig", "random")  # all 4 rig cameras per pose / one seeded random camera per pose
STUDY_NAME = re.compile(r"^(?P<loss>.+)_seed(?P<seed>\d+)$")


@dataclass(frozen=True)
class EvalSettings:
    eval_fps: float = 3.0  # held-out frames subsampled to about this rate (30 fps: every 10th frame)
    max_queries: int | None = 2000  # retrieval queries: a seeded subset of the held-out frames; None = all
    noisy_2d_sigma: float = 0.02  # std of the Gaussian 2D noise, normalised units
    hit_threshold: float = 0.1  # Pr-VIPE: a retrieved pose is a hit when NP-MPJPE <= this
    hit_k: int = 20  # Hit@1..hit_k is computed; Hit@1/10/20 are tabulated
    align_gallery: int = 1000  # cross-modal recall@1 gallery size (fewer where the test split has fewer)
    align_gap_s: float = 1.0  # alignment poses at least this far apart within a clip
    min_content_clips: int = 2  # per-content lifting only for contents with at least this many test clips
    seed: int = 0  # every random choice (cameras, noise, query subsets) derives from it
    chunk: int = 1024  # queries per matrix product in exact search


# ---------------------------------------------------------------------------------------------------- metrics


def knn(queries: np.ndarray, gallery: np.ndarray, k: int, metric: str = "ip",
        query_groups: np.ndarray | None = None, gallery_groups: np.ndarray | None = None,
        chunk: int = 1024, progress: bool = False, desc: str = "search") -> tuple[np.ndarray, np.ndarray]:
    """Exact k-nearest-neighbour search; returns what faiss ``index.search`` returns.

    queries: (Q, ...) float, flattened to (Q, d); gallery: (G, ...) with the same d.
    metric: "ip" (inner product, highest first: L2-normalised embeddings) or "l2" (squared Euclidean, lowest first).
    query_groups, gallery_groups: (Q,), (G,) int; gallery rows in the query's own group are left out (the
        clip-excluded protocol).
    returns: D (Q, k) float32 scores or squared distances; I (Q, k) int64 gallery rows, -1 where fewer than k rows
        remain after exclusion.
    """
    assert metric in ("ip", "l2"), metric
    q = torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float32)).reshape(len(queries), -1)
    g = torch.from_numpy(np.ascontiguousarray(gallery, dtype=np.float32)).reshape(len(gallery), -1)
    assert q.shape[1] == g.shape[1], f"query dim {q.shape[1]} != gallery dim {g.shape[1]}"
    assert (query_groups is None) == (gallery_groups is None), "give both groups or neither"
    k = min(k, len(g))
    g_sq = (g * g).sum(1)
    qg = None if query_groups is None else torch.from_numpy(np.asarray(query_groups, dtype=np.int64))
    gg = None if gallery_groups is None else torch.from_numpy(np.asarray(gallery_groups, dtype=np.int64))
    D, I = [], []
    for start in tqdm(range(0, len(q), chunk), desc=desc, disable=not progress, leave=False):
        qc = q[start : start + chunk]
        if metric == "ip":
            score = qc @ g.T  # (c, G)
        else:  # negated squared distance, so that larger is nearer for both metrics
            score = -((qc * qc).sum(1, keepdim=True) - 2 * qc @ g.T + g_sq)
        if qg is not None:
            score.masked_fill_(qg[start : start + chunk, None] == gg[None, :], -math.inf)
        val, idx = torch.topk(score, k, dim=1)
        idx[~torch.isfinite(val)] = -1
        D.append(val if metric == "ip" else (-val).clamp_min(0))
        I.append(idx)
    return torch.cat(D).numpy(), torch.cat(I).numpy()


def recall_at_1(queries: np.ndarray, gallery: np.ndarray, chunk: int = 1024) -> float:
    """Fraction of queries whose nearest gallery row (inner product) is their own row.

    queries, gallery: (N, D) L2-normalised embeddings; row i of each is the same pose.
    """
    assert queries.shape == gallery.shape, f"{queries.shape} vs {gallery.shape}"
    _, I = knn(queries, gallery, 1, chunk=chunk)
    return float((I[:, 0] == np.arange(len(queries))).mean())


def nearest_by_mpjpe(queries: np.ndarray, gallery: np.ndarray, query_groups: np.ndarray | None = None,
                     gallery_groups: np.ndarray | None = None, progress: bool = False,
                     budget_bytes: int = 64 << 20) -> tuple[np.ndarray, np.ndarray]:
    """The oracle: for each query the gallery pose with the lowest MPJPE, optionally outside the query's group.

    queries: (Q, 17, 3) mm; gallery: (G, 17, 3) mm, same frame. groups as in ``knn``.
    returns: error (Q,) mm, recomputed exactly for the chosen pose; index (Q,) int64.
    The search sums per-joint ``torch.cdist`` in float64 (matrix-product form, about 1e-4 mm from the direct
    difference and 8x faster); the (c, G) distance blocks stay under ``budget_bytes``.
    """
    q = torch.from_numpy(np.asarray(queries, dtype=np.float64)).transpose(0, 1).contiguous()  # (17, Q, 3)
    g = torch.from_numpy(np.asarray(gallery, dtype=np.float64)).transpose(0, 1).contiguous()  # (17, G, 3)
    qg = None if query_groups is None else torch.from_numpy(np.asarray(query_groups, dtype=np.int64))
    gg = None if gallery_groups is None else torch.from_numpy(np.asarray(gallery_groups, dtype=np.int64))
    chunk = max(1, budget_bytes // (2 * g.shape[1] * 8))  # the running sum and one joint's distances
    best = []
    for start in tqdm(range(0, q.shape[1], chunk), desc="oracle floor", disable=not progress, leave=False):
        qc = q[:, start : start + chunk]
        err = torch.zeros(qc.shape[1], g.shape[1], dtype=torch.float64)  # (c, G) sum over joints
        for j in range(len(q)):
            err += torch.cdist(qc[j], g[j], compute_mode="use_mm_for_euclid_dist")
        if qg is not None:
            err.masked_fill_(qg[start : start + chunk, None] == gg[None, :], math.inf)
        best.append(err.argmin(1))
    index = torch.cat(best).numpy()
    return mpjpe(gallery[index].astype(np.float64), queries.astype(np.float64)), index


def hit_rates(errors: np.ndarray, threshold: float) -> np.ndarray:
    """errors: (Q, K) NP-MPJPE of each query's top-K results in rank order -> (K,) Hit@1..K: the fraction of
    queries with at least one of their first k results within ``threshold``."""
    return np.logical_or.accumulate(errors <= threshold, axis=1).mean(0)


def top1_errors(query3d: np.ndarray, gallery3d: np.ndarray, index: np.ndarray) -> dict[str, np.ndarray]:
    """MPJPE and PA-MPJPE (mm) of each query's top-1. query3d: (Q, 17, 3) mm; gallery3d: (G, 17, 3); index: (Q,)."""
    assert (index >= 0).all(), "a query has no result (its group is the whole gallery)"
    found = gallery3d[index].astype(np.float64)
    target = query3d.astype(np.float64)
    return {"mpjpe": mpjpe(found, target), "pa_mpjpe": pa_mpjpe(found, target)}


def summary(errors: dict[str, np.ndarray]) -> dict[str, float]:
    """Per-pose error arrays -> their means, with ``_mm`` appended to the names."""
    return {f"{name}_mm": float(np.mean(values)) for name, values in errors.items()}


# ------------------------------------------------------------------------------------------ held-out views


def subsample_rows(db: MotionDatabase, fps: float) -> tuple[np.ndarray, dict[str, int]]:
    """Rows of frames whose number is a multiple of round(clip fps / fps), and that step for each clip rate."""
    step = np.maximum(1, np.round(db.clips.fps / fps)).astype(np.int64)  # (clips,)
    rows = np.nonzero(db.frame % step[db.clip] == 0)[0]
    return rows, {f"{rate:g}": int(s) for rate, s in zip(db.clips.fps, step)}


def spaced_rows(db: MotionDatabase, gap_s: float) -> np.ndarray:
    """Rows of frames at least ``gap_s`` apart within each clip (frame numbers that are multiples of the gap)."""
    step = np.maximum(1, np.ceil(db.clips.fps * gap_s - 1e-9)).astype(np.int64)
    return np.nonzero(db.frame % step[db.clip] == 0)[0]


@dataclass(frozen=True)
class HeldOut:
    """Views of the held-out poses that every protocol shares (N poses).

    clip: (N,) int clip rows; content: (N,) str labels.
    rig: one ``Views`` per H36M-like rig camera; random: one seeded random camera per pose.
    noisy_rig, noisy_random: pose2d features (N, 17, 3) of the clean 2D plus Gaussian noise, per view.
    """

    clip: np.ndarray
    content: np.ndarray
    rig: list[Views]
    random: Views
    noisy_rig: list[np.ndarray]
    noisy_random: np.ndarray


def _noisy(clean2d: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    return pose2d_features(clean2d + rng.normal(size=clean2d.shape) * sigma)


def build_held_out(db: MotionDatabase, rows: np.ndarray, settings: EvalSettings, noise: DetectorNoise) -> HeldOut:
    """db: the test split; rows: the poses to view (world mm, Y up)."""
    rng = np.random.default_rng([settings.seed, 1])
    world = db.poses[rows].astype(np.float64)
    pelvis = world[:, 0]
    ring = ring_cameras(pelvis, H36M_LIKE_RIG)
    rig = [view_poses(world, ring[:, c], rng, noise, NO_AUGMENT) for c in range(H36M_LIKE_RIG.num_cameras)]
    rand = view_poses(world, random_cameras(pelvis, rng), rng, noise, NO_AUGMENT)
    sigma = settings.noisy_2d_sigma
    return HeldOut(clip=db.clip[rows], content=db.clips.content[db.clip[rows]], rig=rig, random=rand,
                   noisy_rig=[_noisy(v.clean2d, sigma, rng) for v in rig],
                   noisy_random=_noisy(rand.clean2d, sigma, rng))


def alignment_views(db: MotionDatabase, settings: EvalSettings, noise: DetectorNoise) -> Views:
    """Up to ``align_gallery`` poses at least ``align_gap_s`` apart within their clip, one random camera each."""
    rng = np.random.default_rng([settings.seed, 2])
    rows = spaced_rows(db, settings.align_gap_s)
    rows = np.sort(rng.choice(rows, size=min(settings.align_gallery, len(rows)), replace=False))
    world = db.poses[rows].astype(np.float64)
    return view_poses(world, random_cameras(world[:, 0], rng), rng, noise, NO_AUGMENT)


# ------------------------------------------------------------------------------------------------ models


@torch.no_grad()
def encode(model: UniHPR, features: np.ndarray, modality: str, batch: int = 4096) -> np.ndarray:
    """features: (N, 17, 3) -> (N, D) float32, L2-normalised."""
    return np.concatenate([model.encode(torch.from_numpy(features[i : i + batch]), modality).numpy()
                           for i in range(0, len(features), batch)])


@torch.no_grad()
def decode3d(model: UniHPR, embeddings: np.ndarray, batch: int = 4096) -> np.ndarray:
    """embeddings: (N, D) -> (N, 17, 3) float32 mm, root-relative camera frame."""
    return np.concatenate([model.decoder3d(torch.from_numpy(embeddings[i : i + batch])).numpy()
                           for i in range(0, len(embeddings), batch)])


def unihpr_lifter(model: UniHPR) -> Callable[[np.ndarray, str], np.ndarray]:
    return lambda features, modality: decode3d(model, encode(model, features, modality))


def martinez_lifter(model: torch.nn.Module, batch: int = 4096) -> Callable[[np.ndarray, str], np.ndarray]:
    """Martinez reads x, y of the same features (normalised 2D) and ignores the confidence / visibility."""

    @torch.no_grad()
    def lift(features: np.ndarray, modality: str) -> np.ndarray:
        xy = np.ascontiguousarray(features[..., :2])
        return np.concatenate([model(torch.from_numpy(xy[i : i + batch])).numpy() for i in range(0, len(xy), batch)])

    return lift


# ------------------------------------------------------------------------------------------------ lifting


def lifting_sets(held: HeldOut) -> dict[str, dict]:
    """Per camera set-up: the features of each 2D condition, the 3D targets (mm) and each row's pose index."""
    n = len(held.clip)
    return {
        "h36m_rig": {
            "features": {"gt_2d": np.concatenate([v.pose2d for v in held.rig]),
                         "noisy_2d": np.concatenate(held.noisy_rig),
                         "detector": np.concatenate([v.image for v in held.rig])},
            "target": np.concatenate([v.pose3d for v in held.rig]),
            "pose": np.tile(np.arange(n), len(held.rig)),
        },
        "random": {
            "features": {"gt_2d": held.random.pose2d, "noisy_2d": held.noisy_random, "detector": held.random.image},
            "target": held.random.pose3d,
            "pose": np.arange(n),
        },
    }


def lifting_errors(lifter: Callable[[np.ndarray, str], np.ndarray], sets: dict[str, dict],
                   conditions: tuple[str, ...] = tuple(CONDITIONS)) -> dict[str, dict[str, np.ndarray]]:
    """{"<condition>/<setup>": {"mpjpe": (M,), "pa_mpjpe": (M,)}} per-view errors, mm."""
    out = {}
    for setup, data in sets.items():
        for condition in conditions:
            lifted = lifter(data["features"][condition], CONDITIONS[condition]).astype(np.float64)
            target = data["target"].astype(np.float64)
            out[f"{condition}/{setup}"] = {"mpjpe": mpjpe(lifted, target), "pa_mpjpe": pa_mpjpe(lifted, target)}
    return out


def summarise_lifting(errors: dict[str, dict], sets: dict[str, dict], held: HeldOut, test_db: MotionDatabase,
                      settings: EvalSettings) -> dict:
    """errors: model name -> ``lifting_errors``. Adds the baseline of record, the ratios and per-content means."""
    conditions = {key: {name: summary(errs[key]) for name, errs in errors.items()} for key in errors["unihpr"]}
    baselines = [name for name in errors if name.startswith("martinez")]
    record = min(baselines, key=lambda b: conditions["gt_2d/h36m_rig"][b]["mpjpe_mm"]) if baselines else None
    ratios = {key: {metric: row["unihpr"][metric] / row[record][metric] for metric in row["unihpr"]}
              for key, row in conditions.items()} if record else {}

    names, counts = np.unique(test_db.clips.content, return_counts=True)
    clips_per_content = dict(zip(names.tolist(), counts.tolist()))
    reported = sorted(c for c, n in clips_per_content.items() if n >= settings.min_content_clips)
    per_content = {}
    for content in reported:
        entry = {"test_clips": clips_per_content[content], "frames": int((held.content == content).sum())}
        for key in conditions:
            keep = held.content[sets[key.split("/")[1]]["pose"]] == content
            entry[key] = {name: summary({m: v[keep] for m, v in errs[key].items()}) for name, errs in errors.items()}
        per_content[content] = entry
    return {
        "conditions": conditions,
        "views": {setup: int(len(data["target"])) for setup, data in sets.items()},
        "baseline_of_record": record,
        "baseline_rule": "the Martinez checkpoint with the lower GT-2D H36M-rig MPJPE",
        "ratio_unihpr_to_baseline": ratios,
        "per_content": per_content,
        "contents_skipped": {c: n for c, n in clips_per_content.items() if c not in reported},
    }


# ---------------------------------------------------------------------------------------------- retrieval


def rig_embeddings(model: UniHPR, held: HeldOut) -> dict[str, np.ndarray]:
    """modality -> (C, N, D) embeddings of every rig view (pose2d: clean 2D; image: detector features)."""
    attr = {"image": "image", "pose2d": "pose2d", "pose3d": "pose3d_features"}
    return {m: np.stack([encode(model, getattr(v, attr[m]), m) for v in held.rig]) for m in MODALITIES}


def retrieval_paper(emb: dict[str, np.ndarray], held: HeldOut, query_rows: np.ndarray, query_cams: np.ndarray,
                    settings: EvalSettings, progress: bool = False) -> tuple[dict, dict[str, np.ndarray]]:
    """Query 2D or image features of one rig view; gallery = the pose3d embeddings of all rig views of all held-out
    poses (the query's own pose in its own view included). Top-1 errors against the query's true 3D, with and
    without the query's clip, the oracle floor of the clip-excluded gallery and the 2D-keypoint NN baseline.

    emb: modality -> (C, N, D) (``rig_embeddings``). query_rows, query_cams: (Q,) held-out pose and rig camera.
    returns: the summary and per-query clip-excluded errors (mm), for plots and tests.
    """
    cams, n = len(held.rig), len(held.clip)
    gallery3d = np.concatenate([v.pose3d for v in held.rig])  # (C*N, 17, 3), row c*N + i
    gallery2d = np.concatenate([v.clean2d for v in held.rig])  # (C*N, 17, 2)
    groups = np.tile(held.clip, cams)
    truth = query_cams * n + query_rows
    query3d, query_groups = gallery3d[truth], held.clip[query_rows]
    g_emb = emb["pose3d"].reshape(cams * n, -1)
    _, nearest = nearest_by_mpjpe(query3d, gallery3d, query_groups, groups, progress=progress)
    floor = top1_errors(query3d, gallery3d, nearest)
    out = {"queries": int(len(query_rows)), "gallery": int(len(gallery3d)),
           "oracle_floor_clip_excluded": summary(floor)}
    per_query = {"oracle_floor_clip_excluded": floor["mpjpe"]}
    for modality in ("pose2d", "image"):
        q_emb = emb[modality][query_cams, query_rows]
        q_2d = np.stack([getattr(v, modality) for v in held.rig])[query_cams, query_rows, :, :2]  # (Q, 17, 2)
        searches = {
            "unihpr": lambda **kw: knn(q_emb, g_emb, 1, "ip", chunk=settings.chunk, **kw),
            "nn_2d": lambda **kw: knn(q_2d, gallery2d, 1, "l2", chunk=settings.chunk, **kw),
        }
        result = {}
        for method, search in tqdm(searches.items(), desc=f"paper retrieval ({modality} queries)",
                                   disable=not progress):
            _, top = search()
            _, top_x = search(query_groups=query_groups, gallery_groups=groups)
            errs_x = top1_errors(query3d, gallery3d, top_x[:, 0])
            per_query[f"{modality}/{method}/clip_excluded"] = errs_x["mpjpe"]
            result[method] = {"top1": summary(top1_errors(query3d, gallery3d, top[:, 0])),
                              "top1_true_view_rate": float((top[:, 0] == truth).mean()),
                              "top1_clip_excluded": summary(errs_x)}
        out[modality] = result
    return out, per_query


def retrieval_prvipe(emb2d: np.ndarray, held: HeldOut, query_rows: np.ndarray, settings: EvalSettings,
                     progress: bool = False) -> dict:
    """Each rig camera in turn gives the query 2D; the gallery is the pose2d embeddings of every held-out pose seen
    by the other cameras. Hit@k: a top-k result within NP-MPJPE ``hit_threshold`` of the query's 3D.

    emb2d: (C, N, D) pose2d embeddings of the rig views.
    """
    cams = len(held.rig)
    errors = {"unihpr": [], "nn_2d": []}
    for c in tqdm(range(cams), desc="Pr-VIPE query cameras", disable=not progress):
        others = [o for o in range(cams) if o != c]
        g3d = np.concatenate([held.rig[o].pose3d for o in others])
        query3d = held.rig[c].pose3d[query_rows].astype(np.float64)
        _, i_emb = knn(emb2d[c, query_rows], np.concatenate(emb2d[others]), settings.hit_k, chunk=settings.chunk)
        _, i_2d = knn(held.rig[c].clean2d[query_rows], np.concatenate([held.rig[o].clean2d for o in others]),
                      settings.hit_k, "l2", chunk=settings.chunk)
        for method, index in (("unihpr", i_emb), ("nn_2d", i_2d)):
            q, k = index.shape
            found = g3d[index.reshape(-1)].astype(np.float64)
            errors[method].append(np_mpjpe(found, np.repeat(query3d, k, axis=0)).reshape(q, k))
    curves = {m: hit_rates(np.concatenate(e), settings.hit_threshold) for m, e in errors.items()}
    return {
        "query_cameras": cams,
        "queries_per_camera": int(len(query_rows)),
        "gallery": int((cams - 1) * len(held.clip)),
        "threshold": settings.hit_threshold,
        "hit_at_k": {m: {str(k): float(curve[k - 1]) for k in (1, 10, 20) if k <= len(curve)}
                     for m, curve in curves.items()},
        "curve": {m: [float(x) for x in curve] for m, curve in curves.items()},
    }


# ------------------------------------------------------------------------------------- alignment and study


def alignment_recall(model: UniHPR, views: Views, chunk: int = 1024) -> dict[str, float]:
    """Cross-modal recall@1 for each ordered pair of modalities, "query->gallery"."""
    feats = {"image": views.image, "pose2d": views.pose2d, "pose3d": views.pose3d_features}
    emb = {m: encode(model, feats[m], m) for m in MODALITIES}
    return {f"{a}->{b}": recall_at_1(emb[a], emb[b], chunk) for a in MODALITIES for b in MODALITIES if a != b}


def study_checkpoints(study_dir: Path) -> list[tuple[str, int, Path]]:
    """(loss, seed, path) of every ``<loss>_seed<k>.pt`` in the study folder, sorted."""
    found = []
    for path in sorted(study_dir.glob("*.pt")):
        match = STUDY_NAME.match(path.stem)
        if match:
            found.append((match["loss"], int(match["seed"]), path))
    return sorted(found)


def mean_std(values: list[float]) -> dict[str, float | int | None]:
    """Mean and sample standard deviation (ddof = 1; None for a single seed)."""
    return {"mean": float(np.mean(values)), "std": float(np.std(values, ddof=1)) if len(values) > 1 else None,
            "seeds": len(values)}


def study_verdict(per_loss: dict[str, dict]) -> list[str]:
    """One plain sentence per metric naming the better loss, and whether the gap exceeds the seed spread."""
    if len(per_loss) < 2:
        return ["Only one loss was trained; there is nothing to compare."]
    sentences = []
    for metric, label, higher_better, fmt in (("recall_at_1", "mean cross-modal recall@1", True, "{:.3f}"),
                                              ("lifting_mpjpe_mm", "GT-2D H36M-rig lifting MPJPE", False, "{:.1f} mm")):
        ranked = sorted(per_loss, key=lambda loss: per_loss[loss][metric]["mean"], reverse=higher_better)
        best, worst = ranked[0], ranked[-1]
        b, w = per_loss[best][metric], per_loss[worst][metric]
        stds = [s for s in (b["std"], w["std"]) if s is not None]
        spread = max(stds) if stds else None
        gap = abs(b["mean"] - w["mean"])
        if gap == 0:
            sentences.append(f"On {label} the losses tie at {fmt.format(b['mean'])}.")
            continue
        margin = ("the gap is larger than the seed standard deviation" if spread is not None and gap > spread
                  else "the gap is within the seed spread" if spread is not None else "with one seed per loss")
        sentences.append(f"On {label}, {best} wins ({fmt.format(b['mean'])} vs {fmt.format(w['mean'])} for {worst}); "
                         f"{margin}.")
    return sentences


# --------------------------------------------------------------------------------------------- the run


def _checkpoint_entry(path: Path, state: dict) -> dict:
    keep = ("phase", "steps", "poses_drawn", "early_stopping", "wall_seconds")
    return {"path": portable_path(path), "sha256": sha256_of(path), **{k: state[k] for k in keep if k in state}}


def seed_study(study_dir: Path, sets: dict[str, dict], align: Views, settings: EvalSettings,
               progress: bool = False) -> dict:
    """Recall@1 (mean over the 6 ordered pairs) and GT-2D H36M-rig lifting MPJPE of every study checkpoint, and
    per loss their mean and spread over seeds. A missing or empty study folder gives a ``skipped`` note."""
    found = study_checkpoints(study_dir) if study_dir.is_dir() else []
    if not found:
        return {"skipped": f"no study checkpoints (<loss>_seed<k>.pt) in {study_dir}; run `unihpr-build study`"}
    runs, notes = [], []
    for loss, seed, path in tqdm(found, desc="seed study", disable=not progress):
        model, _, state = load_unihpr(path)
        if state.get("phase") != "done":
            notes.append(f"{path.name}: training not finished (phase {state.get('phase')}), left out")
            continue
        recall = alignment_recall(model, align, settings.chunk)
        lifted = lifting_errors(unihpr_lifter(model), {"h36m_rig": sets["h36m_rig"]}, ("gt_2d",))
        runs.append({"loss": loss, "seed": seed, **_checkpoint_entry(path, state),
                     "recall_at_1": float(np.mean(list(recall.values()))), "recall_at_1_pairs": recall,
                     "lifting_mpjpe_mm": float(lifted["gt_2d/h36m_rig"]["mpjpe"].mean())})
    per_loss = {}
    for loss in sorted({r["loss"] for r in runs}):
        mine = [r for r in runs if r["loss"] == loss]
        per_loss[loss] = {metric: mean_std([r[metric] for r in mine]) for metric in ("recall_at_1", "lifting_mpjpe_mm")}
    return {"runs": runs, "per_loss": per_loss, "verdict": study_verdict(per_loss) if per_loss else [],
            "notes": notes, "std": "sample standard deviation over seeds (ddof = 1)"}


def unihpr_checkpoint(run: Path) -> Path:
    """The run's UniHPR checkpoint; ArtifactError when it is missing."""
    path = run / "unihpr.pt"
    if not path.is_file():
        raise ArtifactError(f"{path}: no UniHPR checkpoint; run `unihpr-build train --run {run}` first")
    return path


def evaluate_run(run: Path, db: MotionDatabase, data_file: Path, settings: EvalSettings = EvalSettings(),
                 progress: bool = True, pose_images: Path | None = None,
                 blazepose_files: BlazePoseFiles | None = None) -> dict:
    """Every section of SPEC 6 but index fidelity, for the checkpoints of one run directory, on ``db``'s test split,
    plus image -> lift3d on the labelled photos (``index_builder.image_evaluation``) when ``pose_images`` and
    ``blazepose_files`` are given and present.

    Raises ArtifactError when ``run/unihpr.pt`` is missing or the database has no test clips; a missing Martinez
    checkpoint, study folder, photo folder or BlazePose model leaves a note in its section instead.
    """
    started = time.perf_counter()
    say = tqdm.write if progress else (lambda _msg: None)
    unihpr_path = unihpr_checkpoint(run)
    test = db.split("test")
    if len(test) == 0:
        raise ArtifactError(f"{data_file}: no test clips to evaluate on")
    model, config, state = load_unihpr(unihpr_path)
    checkpoints = {"unihpr": _checkpoint_entry(unihpr_path, state)}
    lifters = {"unihpr": unihpr_lifter(model)}
    notes = [] if state.get("phase") == "done" else [f"{unihpr_path}: training not finished "
                                                    f"(phase {state.get('phase')}, step {state.get('step')})"]
    for name in ("martinez_budget", "martinez_converged"):
        path = run / f"{name}.pt"
        if path.is_file():
            martinez, _, m_state = load_martinez(path)
            checkpoints[name] = _checkpoint_entry(path, m_state)
            lifters[name] = martinez_lifter(martinez)
        else:
            notes.append(f"{path}: missing, left out of lifting (run `unihpr-build baselines --run {run}`)")

    rows, steps = subsample_rows(test, settings.eval_fps)
    noise = DetectorNoise.load()
    held = build_held_out(test, rows, settings, noise)
    align = alignment_views(test, settings, noise)
    n, cams = len(rows), len(held.rig)
    say(f"held out: {len(test.clips)} test clips, {len(test)} frames; evaluating {n} frames "
        f"(frame step by clip fps: {steps})")
    timings = {}

    tick = time.perf_counter()
    sets = lifting_sets(held)
    errors = {name: lifting_errors(lift, sets) for name, lift in tqdm(lifters.items(), desc="lifting",
                                                                    disable=not progress)}
    lifting = summarise_lifting(errors, sets, held, test, settings)
    timings["lifting"] = time.perf_counter() - tick

    tick = time.perf_counter()
    rng = np.random.default_rng([settings.seed, 3])
    q = n if settings.max_queries is None else min(settings.max_queries, n)
    query_rows = np.sort(rng.choice(n, size=q, replace=False))
    query_cams = rng.integers(0, cams, q)
    emb = rig_embeddings(model, held)
    paper, _ = retrieval_paper(emb, held, query_rows, query_cams, settings, progress)
    timings["retrieval_paper"] = time.perf_counter() - tick
    tick = time.perf_counter()
    prvipe = retrieval_prvipe(emb["pose2d"], held, query_rows, settings, progress)
    timings["retrieval_prvipe"] = time.perf_counter() - tick

    tick = time.perf_counter()
    recall = alignment_recall(model, align, settings.chunk)
    alignment = {"gallery": int(len(align.pose3d)), "min_gap_s": settings.align_gap_s,
                 "cameras": "one seeded random camera per pose", "pose2d": "clean projected 2D",
                 "image": "simulated detector features", "recall_at_1": recall,
                 "mean_recall_at_1": float(np.mean(list(recall.values())))}
    timings["alignment"] = time.perf_counter() - tick

    tick = time.perf_counter()
    study = seed_study(run / "study", sets, align, settings, progress)
    timings["seed_study"] = time.perf_counter() - tick

    tick = time.perf_counter()
    images = image_sections(model, pose_images, blazepose_files)
    if images["image_lifting"]["status"] != "computed":
        notes.append(images["image_lifting"]["note"])
    timings["image_lifting"] = time.perf_counter() - tick

    return {
        "format_version": 1,
        "run": {"path": portable_path(run), "config": config.to_dict(), "checkpoints": checkpoints},
        "data": {"file": portable_path(data_file), "source": db.source, "licence": db.licence, "split": "test",
                 "test_clips": int(len(test.clips)), "test_frames": int(len(test)), "eval_fps": settings.eval_fps,
                 "frame_step_by_clip_fps": steps, "eval_frames": int(n)},
        "settings": asdict(settings),
        "protocols": {
            "lifting": f"every evaluated frame through all {cams} H36M-like rig cameras and through one seeded random "
                       f"camera; GT 2D = clean projection (pose2d), noisy 2D = clean + N(0, {settings.noisy_2d_sigma}) "
                       "normalised units (pose2d), detector = simulated detector features (image); Martinez reads "
                       "x, y of the same features",
            "retrieval_paper": f"{q} queries (one seeded random rig camera each), gallery = pose3d embeddings of all "
                               f"{cams} rig views of the {n} evaluated frames ({cams * n})",
            "retrieval_prvipe": f"each rig camera in turn: {q} query 2D poses; gallery = pose2d embeddings of the "
                                f"other {cams - 1} cameras' views ({(cams - 1) * n}); hit: NP-MPJPE <= "
                                f"{settings.hit_threshold}",
            "alignment": f"{len(align.pose3d)} poses >= {settings.align_gap_s:g} s apart within their clip, "
                         "one seeded random camera each; query modality -> gallery modality recall@1",
        },
        "lifting": lifting,
        "retrieval_paper": paper,
        "retrieval_prvipe": prvipe,
        "alignment": alignment,
        "seed_study": study,
        **images,  # image_lifting, detector_errors
        "index_fidelity": {"status": "not computed by evaluate",
                           "note": "recall@10 of the ANN index against exact search on the full database with its "
                                   "virtual views is measured where the index is built (the bundle, SPEC 6-7)"},
        "notes": notes,
        "wall_seconds": {**{k: round(v, 1) for k, v in timings.items()},
                         "total": round(time.perf_counter() - started, 1)},
    }
