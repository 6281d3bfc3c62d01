"""The motion-search section of the evaluation report: its markdown, its plot and its summary sentence, from the
``motion_search`` dict of ``eval.json`` (``index_builder.evaluation.motion.protocol``); nothing here computes a
metric."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from index_builder.evaluation.report.markdown import section_heading, table_lines, targets_table

MOTION_PLOT = "eval_motion_search.png"
METHOD_NAMES = {"unihpr": "UniHPR motion search", "voting": "per-frame voting", "dtw_2d": "2D DTW",
                "oracle": "3D oracle"}
COLOURS = {"unihpr": "tab:blue", "voting": "tab:gray", "dtw_2d": "tab:green", "oracle": "black"}


def motion_sentence(m: dict) -> str | None:
    """One sentence of the report's summary, or None when the section was not computed."""
    if m.get("status") != "computed":
        return None
    held, own = m["results"]["held_out"]["clean"], m["results"]["own_clip"]["clean"]
    one = held["1"]
    return (f"Motion search ({m['queries_per_speed']} held-out segments per speed, clean 2D): content hit@1 at 1x is "
            f"{one['unihpr']['hit_at_1']:.2f} against {one['voting']['hit_at_1']:.2f} for per-frame voting and "
            f"{one['dtw_2d']['hit_at_1']:.2f} for 2D DTW, its aligned 3D error {one['unihpr']['top1_error_mm']:.1f} mm "
            f"({one['unihpr']['error_ratio_to_oracle']:.2f}x the oracle's); with the query's own clip in the library "
            "its top-1 is a hit for " + ", ".join(f"{own[s]['unihpr']['hit_at_1']:.0%} at {s}x" for s in own) + ".")


def motion_markdown(r: dict, plot: str | None) -> list[str]:
    """The report section (absent from older results)."""
    m = r.get("motion_search")
    out, computed = section_heading(m, "Motion search (segments at 0.5x, 1x and 2x speed)")
    if not computed:
        return out
    lib = m["library"]
    out += [r["protocols"]["motion_search"], "",
            f"Library: {lib['train_clips']} training clips, {lib['train_poses']} poses at {lib['fps']:g} fps x "
            f"{lib['views']} views (own-clip protocol: + {lib['test_clips']} test clips, {lib['poses']} poses); index "
            f"{lib['index']} at nprobe {lib['nprobe']} (recall@10 {lib['recall_at_10']:.3f}). Queries: "
            f"{m['queries_per_speed']} per speed, {m['segment_seconds'][0]:g}-{m['segment_seconds'][1]:g} s of the "
            f"source at {m['query_fps']:g} fps. Oracle: {m['oracle']['cache']} "
            f"({'from the cache' if m['oracle']['cached'] else 'computed and cached'}).", ""]
    for condition, text in m["conditions"].items():
        held = m["results"]["held_out"][condition]
        out += [f"**Held out, {condition}** ({text}): content-label hit@k of the top segments, aligned 3D error of "
                "the top-1 (mm) and its ratio to the oracle's:", ""]
        rows = []
        for speed, row in held.items():
            for method in ("unihpr", "voting", "dtw_2d"):
                e = row[method]
                rows.append([f"{speed}x", METHOD_NAMES[method], e["hit_at_1"], e["hit_at_5"], e["hit_at_10"],
                             e["top1_error_mm"], e["error_ratio_to_oracle"]])
            o = row["oracle"]
            rows.append([f"{speed}x", f"{METHOD_NAMES['oracle']} (proven for {o['proven']:.0%})", o["hit_at_1"],
                         None, None, o["error_mm"], 1.0])
        out += table_lines(["speed", "method", "hit@1", "hit@5", "hit@10", "aligned 3D error", "/ oracle"], rows) + [""]
        own = m["results"]["own_clip"][condition]
        rows = [[f"{speed}x", METHOD_NAMES[method], e["hit_at_1"], e["top1_same_clip"],
                 e["top1_overlaps_true_segment"], e["median_error_ratio_same_clip"]]
                for speed, row in own.items() for method, e in row.items() if method != "queries"]
        out += [f"**Own clip in the library, {condition}**: a hit when the top-1 is from the query's own clip with an "
                "aligned 3D error within 1.1x that of the true segment:", "",
                *table_lines(["speed", "method", "hit@1", "top-1 from own clip", "top-1 overlaps true segment",
                         "median error / true segment's"], rows), ""]
    ms = m["ms_per_query"]
    out += [f"Time per query in this run (numpy, one search after the other): UniHPR {ms['unihpr']:.1f} ms "
            f"(held out) and {ms['unihpr_own']:.1f} ms (own clip), voting {ms['voting']:.1f} ms, 2D DTW over every "
            f"training clip {ms['dtw_2d']:.1f} ms; the service's latency is in `benchmarks/motion_search.py`.", ""]
    out += [targets_table(m["targets"], 19), ""]
    if plot:
        out += [f"![motion search]({plot})", ""]
    return out


def plot_motion(m: dict, path: Path, save) -> None:
    """Hit@1 per speed and condition for every method, and the aligned 3D error against the oracle's.

    save(fig, path): the report's atomic PNG writer."""
    import matplotlib.pyplot as plt

    conditions = list(m["conditions"])
    speeds = list(m["results"]["held_out"][conditions[0]])
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    groups = [f"{c}\n{s}x" for c in conditions for s in speeds]
    x = np.arange(len(groups))
    methods = ("unihpr", "voting", "dtw_2d")
    width = 0.8 / (len(methods) + 1)
    for i, method in enumerate((*methods, "oracle")):
        hit = [m["results"]["held_out"][c][s][method]["hit_at_1"] or 0.0 for c in conditions for s in speeds]
        err = [(m["results"]["held_out"][c][s][method].get("top1_error_mm")
                or m["results"]["held_out"][c][s][method].get("error_mm") or 0.0) for c in conditions for s in speeds]
        offset = (i - len(methods) / 2) * width
        axes[0].bar(x + offset, hit, width, label=METHOD_NAMES[method], color=COLOURS[method])
        axes[1].bar(x + offset, err, width, label=METHOD_NAMES[method], color=COLOURS[method])
    for method in ("unihpr", "voting"):
        own = [m["results"]["own_clip"][c][s][method]["hit_at_1"] or 0.0 for c in conditions for s in speeds]
        axes[2].bar(x + (-0.5 if method == "unihpr" else 0.5) * 0.35, own, 0.35, label=METHOD_NAMES[method],
                    color=COLOURS[method])
    for ax, title, label in ((axes[0], "Held out: content hit@1", "hit@1"),
                             (axes[1], "Held out: aligned 3D error of the top-1", "MPJPE (mm)"),
                             (axes[2], "Own clip in the library: top-1 hit (<= 1.1x the true segment)", "hit@1")):
        ax.set_xticks(x)
        ax.set_xticklabels(groups, fontsize=8)
        ax.set_ylabel(label)
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7)
    for ax in (axes[0], axes[2]):
        ax.set_ylim(0, 1.05)
    save(fig, path)
