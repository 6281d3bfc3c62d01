"""``evaluate_run``: every section of SPEC 6 but index fidelity for one run directory, in one JSON-ready dict that
``index_builder.evaluation.report`` writes."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import numpy as np

from index_builder.blazepose_assets import BlazePoseFiles
from index_builder.checkpoint import load_martinez, load_unihpr
from index_builder.config import portable_path
from index_builder.detector_noise import DetectorNoise
from index_builder.errors import ArtifactError
from index_builder.evaluation.adapters import martinez_lifter, rig_embeddings, unihpr_lifter
from index_builder.evaluation.alignment import alignment_recall
from index_builder.evaluation.checkpoints import checkpoint_entry, unihpr_checkpoint
from index_builder.evaluation.held_out import alignment_views, build_held_out, subsample_rows
from index_builder.evaluation.images import image_sections
from index_builder.evaluation.lifting import lifting_errors, lifting_sets, summarise_lifting
from index_builder.evaluation.retrieval_paper import retrieval_paper
from index_builder.evaluation.retrieval_prvipe import retrieval_prvipe
from index_builder.evaluation.seed_study import seed_study
from index_builder.evaluation.settings import EvalSettings
from index_builder.motion_database import MotionDatabase
from index_builder.progress import progress_bar

LOG = logging.getLogger(__name__)


@contextmanager
def timed(stage: str, timings: dict[str, float]) -> Iterator[None]:
    """Say when a stage starts and ends, and record its wall time (s) in ``timings[stage]``."""
    LOG.info("%s ...", stage)
    tick = time.perf_counter()
    yield
    timings[stage] = time.perf_counter() - tick
    LOG.info("%s: %.1f s", stage, timings[stage])


def evaluate_run(run: Path, db: MotionDatabase, data_file: Path, settings: EvalSettings = EvalSettings(),
                 progress: bool = True, pose_images: Path | None = None,
                 blazepose_files: BlazePoseFiles | None = None) -> dict:
    """Every section of SPEC 6 but index fidelity, for the checkpoints of one run directory, on ``db``'s test split,
    plus image -> lift3d on the labelled photos (``index_builder.evaluation.images``) when ``pose_images`` and
    ``blazepose_files`` are given and present.

    Raises ArtifactError when ``run/unihpr.pt`` is missing or the database has no test clips; a missing Martinez
    checkpoint, study folder, photo folder or BlazePose model leaves a note in its section instead.
    """
    started = time.perf_counter()
    unihpr_path = unihpr_checkpoint(run)
    test = db.split("test")
    if len(test) == 0:
        raise ArtifactError(f"{data_file}: no test clips to evaluate on")
    model, config, state = load_unihpr(unihpr_path)
    checkpoints = {"unihpr": checkpoint_entry(unihpr_path, state)}
    lifters = {"unihpr": unihpr_lifter(model)}
    notes = [] if state.get("phase") == "done" else [f"{unihpr_path}: training not finished "
                                                    f"(phase {state.get('phase')}, step {state.get('step')})"]
    for name in ("martinez_budget", "martinez_converged"):
        path = run / f"{name}.pt"
        if path.is_file():
            martinez, _, m_state = load_martinez(path)
            checkpoints[name] = checkpoint_entry(path, m_state)
            lifters[name] = martinez_lifter(martinez)
        else:
            notes.append(f"{path}: missing, left out of lifting (run `unihpr-build baselines --run {run}`)")

    rows, steps = subsample_rows(test, settings.eval_fps)
    noise = DetectorNoise.load()
    held = build_held_out(test, rows, settings, noise)
    align = alignment_views(test, settings, noise)
    n, cams = len(rows), len(held.rig)
    LOG.info("held out: %d test clips, %d frames; evaluating %d frames (frame step by clip fps: %s)",
             len(test.clips), len(test), n, steps)
    timings: dict[str, float] = {}

    with timed("lifting", timings):
        sets = lifting_sets(held)
        errors = {name: lifting_errors(lift, sets)
                  for name, lift in progress_bar(lifters.items(), desc="lifting", enabled=progress)}
        lifting = summarise_lifting(errors, sets, held, test, settings)

    with timed("retrieval_paper", timings):
        rng = np.random.default_rng([settings.seed, 3])
        q = n if settings.max_queries is None else min(settings.max_queries, n)
        query_rows = np.sort(rng.choice(n, size=q, replace=False))
        query_cams = rng.integers(0, cams, q)
        emb = rig_embeddings(model, held)
        paper, _ = retrieval_paper(emb, held, query_rows, query_cams, settings, progress)
    with timed("retrieval_prvipe", timings):
        prvipe = retrieval_prvipe(emb["pose2d"], held, query_rows, settings, progress)

    with timed("alignment", timings):
        recall = alignment_recall(model, align, settings.chunk)
        alignment = {"gallery": int(len(align.pose3d)), "min_gap_s": settings.align_gap_s,
                     "cameras": "one seeded random camera per pose", "pose2d": "clean projected 2D",
                     "image": "simulated detector features", "recall_at_1": recall,
                     "mean_recall_at_1": float(np.mean(list(recall.values())))}

    with timed("seed_study", timings):
        study = seed_study(run / "study", sets, align, settings, progress)

    with timed("image_lifting", timings):
        images = image_sections(model, pose_images, blazepose_files)
        if images["image_lifting"]["status"] != "computed":
            notes.append(images["image_lifting"]["note"])

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
