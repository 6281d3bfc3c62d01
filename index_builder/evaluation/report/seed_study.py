"""The seed-study section of the evaluation report: markdown and plot from the ``seed_study`` dict of ``eval.json``
(``index_builder.evaluation.seed_study``, whose verdict sentences the summary quotes); nothing here computes a
metric."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from index_builder.evaluation.report.figures import MODEL_COLOURS, plt, save_figure
from index_builder.evaluation.report.markdown import table


def seed_study_markdown(study: dict, plot: str | None) -> list[str]:
    """The section; plot: the plot's file name (None when the study was skipped)."""
    out = ["## Seed study: singular-value loss vs pairwise InfoNCE", ""]
    if "runs" not in study:
        return out + [f"Skipped: {study['skipped']}.", ""]
    hit = "prvipe_hit_at_1" in study["runs"][0]  # studies evaluated before it was measured lack it
    out += [table(["loss", "seed", "recall@1 (mean of 6 pairs)", "lifting MPJPE (GT 2D, rig)",
                   *(["Pr-VIPE Hit@1"] if hit else [])],
                  [[x["loss"], x["seed"], x["recall_at_1"], x["lifting_mpjpe_mm"],
                    *([x["prvipe_hit_at_1"]] if hit else [])] for x in study["runs"]]), ""]
    rows = [[loss, s["recall_at_1"]["seeds"], s["recall_at_1"]["mean"], s["recall_at_1"]["std"],
             s["lifting_mpjpe_mm"]["mean"], s["lifting_mpjpe_mm"]["std"],
             *([s["prvipe_hit_at_1"]["mean"], s["prvipe_hit_at_1"]["std"]] if hit else [])]
            for loss, s in study["per_loss"].items()]
    out += [table(["loss", "seeds", "recall@1 mean", "std", "MPJPE mean", "std",
                   *(["Hit@1 mean", "std"] if hit else [])], rows), "",
            f"Std: {study['std']}.", ""] + [f"- {v}" for v in study["verdict"]]
    return out + [f"- {n}" for n in study["notes"]] + ["", f"![seed study]({plot})", ""]


def plot_seed_study(study: dict, path: Path) -> None:
    """Recall@1 and lifting MPJPE of every seed per loss, with the mean +- std."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
    losses = sorted(study["per_loss"])
    for ax, metric, label in zip(axes, ("recall_at_1", "lifting_mpjpe_mm"), ("recall@1 (mean of 6 pairs)",
                                                                          "lifting MPJPE, GT 2D, rig (mm)")):
        for i, loss in enumerate(losses):
            values = [x[metric] for x in study["runs"] if x["loss"] == loss]
            ax.scatter(np.full(len(values), i), values, color=MODEL_COLOURS.get(loss), alpha=0.7)
            stats = study["per_loss"][loss][metric]
            ax.errorbar(i + 0.15, stats["mean"], yerr=stats["std"] or 0, fmt="s", color="k", capsize=4)
        ax.set_xticks(range(len(losses)))
        ax.set_xticklabels(losses)
        ax.set_xlim(-0.5, len(losses) - 0.5)
        ax.set_ylabel(label)
        ax.set_title(f"Seed study: {label} (dots: seeds; square: mean +- std)", fontsize=8)
    save_figure(fig, path)
