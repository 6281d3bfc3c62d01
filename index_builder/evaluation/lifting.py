"""Lifting (SPEC 6): MPJPE and PA-MPJPE (mm) of each lifter from GT 2D, noisy 2D and simulated detector
features, through the H36M-like rig and through random cameras, per content label, next to the Martinez baseline
of record."""

from __future__ import annotations

import numpy as np

from index_builder.datasets.motion_database import MotionDatabase
from index_builder.evaluation.adapters import Lifter
from index_builder.evaluation.held_out import HeldOut
from index_builder.evaluation.pose_errors import summary
from index_builder.training.config import EvalSettings
from model.pose.metrics import mpjpe, pa_mpjpe

CONDITIONS = {"gt_2d": "pose2d", "noisy_2d": "pose2d", "detector": "image"}  # 2D condition -> encoder modality


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


def lifting_errors(lifter: Lifter, sets: dict[str, dict],
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
