"""What the report's plots share: the Agg backend (no display; chosen here, before pyplot draws anything), the
atomic PNG writer, one colour per model and grouped bars."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  # the section modules take pyplot from here, after the backend
import numpy as np  # noqa: E402

from index_builder.atomic_files import atomic_path  # noqa: E402

MODEL_COLOURS = {"unihpr": "tab:blue", "martinez_budget": "tab:gray", "martinez_converged": "tab:orange",
                 "martinez_absolute": "tab:purple",
                 "nn_2d": "tab:green", "singular_value": "tab:blue", "pairwise": "tab:red"}


def save_figure(fig, path: Path) -> None:
    """Lay out, write ``fig`` to ``path`` as a PNG atomically and close it."""
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)


def grouped_bars(ax, groups: list[str], series: dict[str, list[float]]) -> None:
    """One bar per series in each group, coloured by model (``MODEL_COLOURS``), with a legend."""
    width = 0.8 / len(series)
    x = np.arange(len(groups))
    for i, (name, values) in enumerate(series.items()):
        ax.bar(x + (i - (len(series) - 1) / 2) * width, values, width, label=name, color=MODEL_COLOURS.get(name))
    ax.set_xticks(x)
    ax.set_xticklabels(groups, rotation=30, ha="right", fontsize=8)
    ax.legend(fontsize=8)
