"""The lifting section of the evaluation report: its summary sentences, markdown and plots, from the ``lifting`` dict
of ``eval.json`` (``index_builder.evaluation.lifting``); nothing here computes a metric."""

from __future__ import annotations

from pathlib import Path

from index_builder.evaluation.report.figures import grouped_bars, plt, save_figure
from index_builder.evaluation.report.markdown import better, sentence, table


def lifting_sentences(lift: dict) -> list[str]:
    """The summary's sentences on lifting: UniHPR against the baseline of record, when there is one."""
    cond = lift["conditions"]
    uni = cond["gt_2d/h36m_rig"]["unihpr"]["mpjpe_mm"]
    record = lift["baseline_of_record"]
    if not record:
        return [f"Lifting from ground-truth 2D on the H36M-like rig, UniHPR reaches {uni:.1f} mm MPJPE; no "
                "Martinez checkpoint was found, so there is no baseline to compare with."]
    base = cond["gt_2d/h36m_rig"][record]["mpjpe_mm"]
    ratios = {k: v["mpjpe_mm"] for k, v in lift["ratio_unihpr_to_baseline"].items()}
    lo, hi = min(ratios, key=ratios.get), max(ratios, key=ratios.get)
    d_uni = cond["detector/h36m_rig"]["unihpr"]["mpjpe_mm"] - uni
    d_base = cond["detector/h36m_rig"][record]["mpjpe_mm"] - base
    return [f"Lifting from ground-truth 2D on the H36M-like rig, UniHPR reaches {uni:.1f} mm MPJPE against "
            f"{base:.1f} mm for the baseline of record ({record}), a ratio of {ratios['gt_2d/h36m_rig']:.2f}: "
            f"UniHPR is {better(ratios['gt_2d/h36m_rig'])} there. Over the six conditions the ratio runs from "
            f"{ratios[lo]:.2f} ({lo}) to {ratios[hi]:.2f} ({hi}).",
            f"Simulated detector features instead of ground-truth 2D change UniHPR's rig MPJPE by "
            f"{d_uni:+.1f} mm and the baseline's by {d_base:+.1f} mm."]


def lifting_markdown(r: dict, plots: dict[str, str]) -> list[str]:
    """The section: per 2D condition and camera set-up, then per content. plots: key -> file name."""
    lift = r["lifting"]
    models = list(next(iter(lift["conditions"].values())))
    record = lift["baseline_of_record"]
    out = ["## Lifting (MPJPE / PA-MPJPE, mm)", "", sentence(r["protocols"]["lifting"]), ""]
    if record:
        out.append(f"Baseline of record: **{record}** ({lift['baseline_rule']}); ratio = UniHPR / baseline of record.")
        out.append("")
    header = ["condition / cameras", "views"] + [f"{m} MPJPE / PA" for m in models]
    header += ["ratio MPJPE / PA"] if record else []
    rows = []
    for key, row in lift["conditions"].items():
        cells = [key, lift["views"][key.split("/")[1]]]
        cells += [f"{row[m]['mpjpe_mm']:.1f} / {row[m]['pa_mpjpe_mm']:.1f}" for m in models]
        if record:
            ratio = lift["ratio_unihpr_to_baseline"][key]
            cells.append(f"{ratio['mpjpe_mm']:.2f} / {ratio['pa_mpjpe_mm']:.2f}")
        rows.append(cells)
    out += [table(header, rows), "", f"![lifting per condition]({plots['lifting']})", ""]
    compare = [m for m in ("unihpr", record) if m]
    out += [f"Per content (GT 2D, H36M-like rig; contents with at least {r['settings']['min_content_clips']} test "
            "clips):", ""]
    rows = [[c, e["test_clips"], e["frames"]] + [e["gt_2d/h36m_rig"][m]["mpjpe_mm"] for m in compare]
            + [e["gt_2d/h36m_rig"][m]["pa_mpjpe_mm"] for m in compare] for c, e in lift["per_content"].items()]
    out += [table(["content", "test clips", "frames"] + [f"{m} MPJPE" for m in compare]
                  + [f"{m} PA" for m in compare], rows), ""]
    if lift["contents_skipped"]:
        skipped = ", ".join(f"{c} ({n})" for c, n in sorted(lift["contents_skipped"].items()))
        out += [f"Not reported per content (test clips): {skipped}.", ""]
    out += [f"![lifting per content]({plots['content']})", ""]
    return out


def plot_lifting(lift: dict, path: Path) -> None:
    """MPJPE and PA-MPJPE per 2D condition / cameras, one bar per model."""
    keys = list(lift["conditions"])
    models = list(lift["conditions"][keys[0]])
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, metric, label in zip(axes, ("mpjpe_mm", "pa_mpjpe_mm"), ("MPJPE (mm)", "PA-MPJPE (mm)")):
        grouped_bars(ax, keys, {m: [lift["conditions"][k][m][metric] for k in keys] for m in models})
        ax.set_ylabel(label)
        ax.set_title(f"Lifting {label} per 2D condition / cameras", fontsize=9)
    save_figure(fig, path)


def plot_content(lift: dict, path: Path) -> None:
    """MPJPE per content (GT 2D, rig) of UniHPR and the baseline of record."""
    contents = list(lift["per_content"])
    compare = [m for m in ("unihpr", lift["baseline_of_record"]) if m]
    fig, ax = plt.subplots(figsize=(max(6, 0.8 * len(contents) + 2), 4.5))
    if contents:
        grouped_bars(ax, contents, {m: [lift["per_content"][c]["gt_2d/h36m_rig"][m]["mpjpe_mm"] for c in contents]
                                    for m in compare})
    ax.set_ylabel("MPJPE (mm)")
    ax.set_title("Lifting per content (GT 2D, H36M-like rig)", fontsize=9)
    save_figure(fig, path)
