"""The seed study (SPEC 6): singular-value loss vs pairwise-only, recall@1, lifting MPJPE and (where the caller
gives the protocol) Pr-VIPE Hit@1 of every study checkpoint, mean and spread over seeds per loss, and a plain
verdict. The spread says how far a retrain moves a row by chance."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from index_builder.evaluation.adapters import unihpr_lifter
from index_builder.evaluation.checkpoints import checkpoint_entry
from index_builder.evaluation.lifting import lifting_errors
from index_builder.evaluation.retrieval.cross_modal import alignment_recall
from index_builder.progress import progress_bar
from index_builder.training.batches import Views
from index_builder.training.checkpoint import load_unihpr
from index_builder.training.config import EvalSettings
from model.nn.networks import UniHPR

STUDY_METRICS = ("recall_at_1", "lifting_mpjpe_mm", "prvipe_hit_at_1")
STUDY_NAME = re.compile(r"^(?P<loss>.+)_seed(?P<seed>\d+)$")


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


def seed_study(study_dir: Path, sets: dict[str, dict], align: Views, settings: EvalSettings,
               progress: bool = False, prvipe_hit1: Callable[[UniHPR], float] | None = None) -> dict:
    """Recall@1 (mean over the 6 ordered pairs), GT-2D H36M-rig lifting MPJPE and ``prvipe_hit1(model)`` of every
    study checkpoint, and per loss their mean and spread over seeds. A missing or empty study folder gives a
    ``skipped`` note."""
    found = study_checkpoints(study_dir) if study_dir.is_dir() else []
    if not found:
        return {"skipped": f"no study checkpoints (<loss>_seed<k>.pt) in {study_dir}; run `unihpr-build study`"}
    runs, notes = [], []
    for loss, seed, path in progress_bar(found, desc="seed study", enabled=progress):
        model, _, state = load_unihpr(path)
        if state.get("phase") != "done":
            notes.append(f"{path.name}: training not finished (phase {state.get('phase')}), left out")
            continue
        recall = alignment_recall(model, align, settings.chunk)
        lifted = lifting_errors(unihpr_lifter(model), {"h36m_rig": sets["h36m_rig"]}, ("gt_2d",))
        runs.append({"loss": loss, "seed": seed, **checkpoint_entry(path, state),
                     "recall_at_1": float(np.mean(list(recall.values()))), "recall_at_1_pairs": recall,
                     "lifting_mpjpe_mm": float(lifted["gt_2d/h36m_rig"]["mpjpe"].mean()),
                     **({"prvipe_hit_at_1": prvipe_hit1(model)} if prvipe_hit1 else {})})
    per_loss = {}
    for loss in sorted({r["loss"] for r in runs}):
        mine = [r for r in runs if r["loss"] == loss]
        per_loss[loss] = {metric: mean_std([r[metric] for r in mine]) for metric in STUDY_METRICS if metric in mine[0]}
    return {"runs": runs, "per_loss": per_loss, "verdict": study_verdict(per_loss) if per_loss else [],
            "notes": notes, "std": "sample standard deviation over seeds (ddof = 1)"}
