"""The retrieval sections of the evaluation report on the rendered views: the paper's protocol, the Pr-VIPE protocol
and the cross-modal alignment (summary sentences, markdown and plots), from ``retrieval_paper``,
``retrieval_prvipe`` and ``alignment`` of ``eval.json``; nothing here computes a metric."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from index_builder.evaluation.report.figures import MODEL_COLOURS, grouped_bars, plt, save_figure
from index_builder.evaluation.report.markdown import better, sentence, table


def paper_sentence(paper: dict) -> str:
    m = paper["pose2d"]["unihpr"]["top1_clip_excluded"]["mpjpe_mm"]
    nn = paper["pose2d"]["nn_2d"]["top1_clip_excluded"]["mpjpe_mm"]
    floor = paper["oracle_floor_clip_excluded"]["mpjpe_mm"]
    return (f"Retrieving 3D from 2D with the query's own clip left out, UniHPR's top-1 is {m:.1f} mm from the true "
            f"pose, {m - floor:.1f} mm above the oracle floor of {floor:.1f} mm; the 2D-keypoint nearest neighbour "
            f"gets {nn:.1f} mm, so UniHPR is {better(m / nn)} than it. With the clip kept, the gallery holds the "
            f"query's exact view: UniHPR returns it for {paper['pose2d']['unihpr']['top1_true_view_rate']:.0%} of "
            f"queries, the 2D nearest neighbour for {paper['pose2d']['nn_2d']['top1_true_view_rate']:.0%}.")


def prvipe_sentence(pr: dict) -> str:
    hit = pr["hit_at_k"]
    last = max(hit["unihpr"], key=int)
    return (f"Across views (Pr-VIPE protocol), Hit@1 is {hit['unihpr']['1']:.3f} for UniHPR and "
            f"{hit['nn_2d']['1']:.3f} for the 2D nearest neighbour (Hit@{last}: {hit['unihpr'][last]:.3f} vs "
            f"{hit['nn_2d'][last]:.3f}).")


def alignment_sentence(al: dict) -> str:
    pairs = al["recall_at_1"]
    weak, strong = min(pairs, key=pairs.get), max(pairs, key=pairs.get)
    return (f"Cross-modal recall@1 over {al['gallery']} poses averages {al['mean_recall_at_1']:.3f}, from "
            f"{pairs[weak]:.3f} ({weak}) to {pairs[strong]:.3f} ({strong}).")


def retrieval_markdown(r: dict, plots: dict[str, str]) -> list[str]:
    """The three sections, in this order. plots: key -> file name."""
    paper = r["retrieval_paper"]
    out = ["## Retrieval, paper protocol (top-1 error, mm)", "",
           "The paper's protocol, kept as it is: its gallery holds the query's exact view as the index stores it "
           "(the same rig cameras render query and gallery), so it measures recognition of an indexed view, not "
           "retrieval from a real camera (that is the section above).", "",
           sentence(r["protocols"]["retrieval_paper"]), ""]
    rows = []
    for modality in ("pose2d", "image"):
        for method, e in paper[modality].items():
            rows.append([modality, method, e["top1"]["mpjpe_mm"], e["top1"]["pa_mpjpe_mm"], e["top1_true_view_rate"],
                         e["top1_clip_excluded"]["mpjpe_mm"], e["top1_clip_excluded"]["pa_mpjpe_mm"]])
    floor = paper["oracle_floor_clip_excluded"]
    rows.append(["-", "oracle floor (nearest 3D)", None, None, None, floor["mpjpe_mm"], floor["pa_mpjpe_mm"]])
    out += [table(["query", "method", "top-1 MPJPE", "top-1 PA", "exact view found", "clip-excluded MPJPE",
                   "clip-excluded PA"], rows), "", f"![paper retrieval]({plots['paper']})", ""]

    pr = r["retrieval_prvipe"]
    out += ["## Retrieval, Pr-VIPE protocol (Hit@k, NP-MPJPE <= "
            f"{pr['threshold']:g})", "", sentence(r["protocols"]["retrieval_prvipe"]), ""]
    ks = list(pr["hit_at_k"]["unihpr"])
    hits = [[m] + [h[k] for k in ks] for m, h in pr["hit_at_k"].items()]
    out += [table(["method"] + [f"Hit@{k}" for k in ks], hits),
            "", f"![Pr-VIPE Hit@k]({plots['prvipe']})", ""]

    al = r["alignment"]
    out += ["## Cross-modal alignment (recall@1)", "", sentence(r["protocols"]["alignment"]), ""]
    out += [table(["query -> gallery", "recall@1"], [[k, v] for k, v in al["recall_at_1"].items()]
                  + [["mean", al["mean_recall_at_1"]]]), "", f"![alignment]({plots['alignment']})", ""]
    return out


def plot_paper(paper: dict, path: Path) -> None:
    """Top-1 MPJPE per query modality, with and without the query's clip, against the oracle floor."""
    groups = [f"{q} {v}" for q in ("pose2d", "image") for v in ("top-1", "clip-excluded")]
    series = {m: [paper[q][m][key]["mpjpe_mm"] for q in ("pose2d", "image") for key in ("top1", "top1_clip_excluded")]
              for m in ("unihpr", "nn_2d")}
    fig, ax = plt.subplots(figsize=(7, 4.5))
    grouped_bars(ax, groups, series)
    ax.axhline(paper["oracle_floor_clip_excluded"]["mpjpe_mm"], color="k", ls="--", lw=1,
               label="oracle floor (clip-excluded)")
    ax.legend(fontsize=8)
    ax.set_ylabel("top-1 MPJPE (mm)")
    ax.set_title("Retrieval, paper protocol", fontsize=9)
    save_figure(fig, path)


def plot_prvipe(pr: dict, path: Path) -> None:
    """Hit@k curves per method."""
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for method, curve in pr["curve"].items():
        ax.plot(np.arange(1, len(curve) + 1), curve, marker="o", ms=3, label=method, color=MODEL_COLOURS.get(method))
    ax.set_xlabel("k")
    ax.set_ylabel(f"Hit@k (NP-MPJPE <= {pr['threshold']:g})")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Retrieval across views, Pr-VIPE protocol", fontsize=9)
    save_figure(fig, path)


def plot_alignment(al: dict, path: Path) -> None:
    """Recall@1 per query -> gallery modality pair."""
    pairs = al["recall_at_1"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    grouped_bars(ax, list(pairs), {"unihpr": list(pairs.values())})
    ax.set_ylim(0, 1)
    ax.set_ylabel("recall@1")
    ax.set_title(f"Cross-modal recall@1, gallery {al['gallery']}", fontsize=9)
    save_figure(fig, path)
