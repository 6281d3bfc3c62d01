"""The fixed-real-rig section of the evaluation report: summary sentence, markdown and plot from the ``real_rig``
dict of ``eval.json`` (``index_builder.evaluation.real_cameras``); nothing here computes a metric."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from index_builder.evaluation.report.figures import MODEL_COLOURS, plt, save_figure
from index_builder.evaluation.report.markdown import met, section_heading, sentence, table, targets_table


def real_rig_sentence(rig: dict) -> str | None:
    """One sentence of the report's summary, or None when the section was not computed."""
    if rig.get("status") != "computed":
        return None
    run = rig["runs"]["intrinsics"]
    uni = run["lifters"]["unihpr"]["mpjpe_mm"]
    text = (f"On the fixed real rig ({rig['views']} views of {rig['frames']} frames through the {rig['subject']} H36M "
            f"calibrations, distorted 2D, intrinsics given) UniHPR reaches {uni:.1f} mm MPJPE")
    better = run["better_martinez"]
    if better:
        text += (f" against {run['lifters'][better]['mpjpe_mm']:.1f} mm for the better Martinez ({better}), a ratio "
                 f"of {run['ratio_unihpr_to_better_martinez']['mpjpe_mm']:.2f}")
    default = rig["runs"]["default_fov"]["lifters"]["unihpr"]["mpjpe_mm"]
    spread = run["unihpr_bin_ratio"]
    text += (f"; without intrinsics {default:.1f} mm; its off-axis bins spread by "
             f"{'an unmeasured factor' if spread is None else f'{spread:.3f}x'} (targets: "
             + "; ".join(f"{t['short']} {met(t)}" for t in rig["targets"]) + ").")
    return text


def real_rig_markdown(r: dict, plots: dict[str, str]) -> list[str]:
    """The section (absent from older results). plots: key -> file name."""
    rig = r.get("real_rig")
    out, computed = section_heading(rig, "Fixed real rig (published H36M cameras, MPJPE / PA-MPJPE, mm)")
    if not computed:
        return out
    out += [sentence(r["protocols"]["real_rig"]), "",
            f"Lens model: {rig['lens']}. Views kept (all joints inside the image): {rig['views']} of "
            f"{rig['views_total']} ({rig['frames_seen_by_any_camera']} of {rig['frames']} frames seen by at least one "
            f"camera); off-axis angle of the pelvis median {rig['off_axis_deg']['median']:.1f}, max "
            f"{rig['off_axis_deg']['max']:.1f} degrees.", ""]
    cams = [[c["id"], c["image_size"], c["focal_px"], c["position_mm"], c["centre_off_axis_deg"],
             rig["views_per_camera"][c["id"]]] for c in rig["rig"]["cameras"]]
    out += [table(["camera", "image", "focal (px)", "position (mm, Y up)", "floor centre off axis (deg)", "views"],
                  cams), "",
            f"The four optical axes pass nearest to {rig['rig']['axes_nearest_point_mm']} mm (least squares); the "
            "floor centre at pelvis height lies off each camera's axis by the angle above.", "",
            "Lifters: " + "; ".join(f"{n}: {what}" for n, what in rig["inputs"].items()) + ".", ""]
    bins = rig["bins"]
    for run, e in rig["runs"].items():
        out += [f"**{run}** ({e['told']}):", ""]
        rows = bin_rows(e["lifters"], bins)
        rows.append(["views", sum(rig["bin_counts"].values())] + [rig["bin_counts"][b] for b in bins])
        out += [table(["lifter", "MPJPE / PA"] + [f"MPJPE {b} deg" for b in bins], rows), ""]
        ratio = e["ratio_unihpr_to_better_martinez"]
        line = (f"UniHPR / better Martinez ({e['better_martinez']}): MPJPE {ratio['mpjpe_mm']:.2f}, PA "
                f"{ratio['pa_mpjpe_mm']:.2f}. " if ratio else "No Martinez checkpoint to compare with. ")
        spread = e["unihpr_bin_ratio"]
        line += (f"UniHPR max / min over the off-axis bins with >= {rig['min_bin_views']} views: "
                 + ("-" if spread is None else f"{spread:.2f}") + ".")
        out += [line, ""]
        if "unihpr_content_matched" in e:  # absent from older results
            out += content_matched_markdown(e["unihpr_content_matched"], bins, rig["min_bin_views"])
        if "aimed" in e:
            out += aimed_markdown(e["aimed"], bins)
    out += [targets_table(rig["targets"]), "", f"![fixed real rig]({plots['real_rig']})", ""]
    return out


def bin_rows(lifters: dict, bins: list[str]) -> list[list]:
    """One table row per lifter: overall MPJPE / PA, then the MPJPE of each off-axis bin."""
    return [[name, f"{x['mpjpe_mm']:.1f} / {x['pa_mpjpe_mm']:.1f}"]
            + [None if x["per_bin"][b]["mpjpe_mm"] is None else f"{x['per_bin'][b]['mpjpe_mm']:.1f}" for b in bins]
            for name, x in lifters.items()]


def content_matched_markdown(matched: dict, bins: list[str], min_views: int) -> list[str]:
    """UniHPR's bins on like poses: each bin's contents weighted by their share of all views."""
    cells = ", ".join(f"{b} " + ("-" if matched["per_bin"][b] is None else
                                 f"{matched['per_bin'][b]:.1f} (covering {matched['coverage'][b]:.0%})") for b in bins)
    spread = matched["bin_ratio"]
    return [f"UniHPR with each bin's poses reweighted to the content mix of all views (a content counts in a bin "
            f"with at least {matched['min_views']} views there; covering: the share of all views whose contents it "
            f"counts), MPJPE: {cells}; max / min over the bins with >= {min_views} views: "
            + ("-" if spread is None else f"{spread:.3f}") + ".", ""]


def aimed_markdown(aimed: dict, bins: list[str]) -> list[str]:
    """The control of the off-axis bins: the same views with each camera aimed at the pelvis."""
    rows = bin_rows(aimed["lifters"], bins)
    cost = aimed["off_axis_cost"]["unihpr"]
    spread = aimed["unihpr_bin_ratio"]
    costs = [cost[b] for b in bins if cost[b] is not None]
    return [f"*Control*: {aimed['told']}:", "",
            table(["lifter", "MPJPE / PA"] + [f"MPJPE {b} deg" for b in bins], rows), "",
            "UniHPR max / min over the bins with its camera aimed at the pelvis: "
            + ("-" if spread is None else f"{spread:.2f}")
            + "; real / aimed per bin (what the off-axis angle and the lens cost): "
            + ", ".join(f"{b} {'-' if cost[b] is None else f'{cost[b]:.3f}'}" for b in bins)
            + (f" (max / min {max(costs) / min(costs):.3f})" if costs else "")
            + ". Where the aimed bins spread as the real ones do, the spread comes from the poses in each bin "
            "(clips far from the floor centre move more), not from the camera.", ""]


def plot_real_rig(rig: dict, path: Path) -> None:
    """MPJPE per off-axis bin of every lifter, one panel per run (intrinsics given or not)."""
    bins = rig["bins"]
    runs = list(rig["runs"])
    fig, axes = plt.subplots(1, len(runs), figsize=(6 * len(runs), 4.5), squeeze=False)
    for ax, run in zip(axes[0], runs):
        lifters = rig["runs"][run]["lifters"]
        width = 0.8 / len(lifters)
        x = np.arange(len(bins))
        for i, (name, e) in enumerate(lifters.items()):
            values = [e["per_bin"][b]["mpjpe_mm"] or 0.0 for b in bins]
            ax.bar(x + (i - (len(lifters) - 1) / 2) * width, values, width, label=name,
                   color=MODEL_COLOURS.get(name))
            aimed = rig["runs"][run].get("aimed", {}).get("lifters", {}).get(name)
            if aimed is not None:  # the control: the same views with the camera aimed at the pelvis
                ax.plot(x + (i - (len(lifters) - 1) / 2) * width, [aimed["per_bin"][b]["mpjpe_mm"] or np.nan
                                                                   for b in bins],
                        "k_", markersize=14, markeredgewidth=2, label="aimed at the pelvis" if i == 0 else None)
        ax.set_xticks(x)
        ax.set_xticklabels([f"{b} deg\n({rig['bin_counts'][b]} views)" for b in bins], fontsize=8)
        ax.set_ylabel("MPJPE (mm)")
        top = max([e["per_bin"][b]["mpjpe_mm"] or 0.0 for e in lifters.values() for b in bins] + [1.0])
        ax.set_ylim(0, 1.25 * top)  # room for the legend above the bars
        ax.legend(fontsize=8, loc="upper center", ncol=len(lifters) + 1)
        ax.set_title(f"Fixed real rig ({rig['subject']} H36M cameras), {run}: MPJPE per off-axis bin", fontsize=9)
    save_figure(fig, path)
