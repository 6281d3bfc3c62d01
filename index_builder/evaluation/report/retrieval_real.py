"""The section of the evaluation report on retrieval from real cameras over the whole library: summary sentence,
markdown and plots from the ``retrieval_real`` dict of ``eval.json``
(``index_builder.evaluation.retrieval.real_cameras``); nothing here computes a metric."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from index_builder.evaluation.report.figures import plt, save_figure
from index_builder.evaluation.report.markdown import met, section_heading, sentence, table, targets_table


def library_sentence(lib: dict) -> str | None:
    """One sentence of the report's summary, or None when the section was not computed."""
    if lib.get("status") != "computed":
        return None
    rig, rnd = lib["results"]["real_rig"], lib["results"]["random"]
    ex, inc = rig["clip_excluded"], rig["clip_included"]
    conf = lib["confidence"]["pooled"]
    lifted = f" and the {lib['lifted_candidates']} nearest the lifted query" if lib.get("lifted_candidates") else ""
    return (f"Retrieving from 2D over the whole library ({lib['gallery']['poses']} poses x {lib['gallery']['views']} "
            f"views) through the fixed real rig, re-ranking the {lib['candidates']} best by cosine{lifted} brings the "
            "top-1 "
            f"from {ex['cosine']['top1_pa_mpjpe_mm']:.1f} to {ex['reranked']['top1_pa_mpjpe_mm']:.1f} mm PA-MPJPE with "
            f"the query's clip left out (oracle floor {ex['oracle_floor_mm']:.1f} mm) and from "
            f"{inc['cosine']['top1_pa_mpjpe_mm']:.1f} to {inc['reranked']['top1_pa_mpjpe_mm']:.1f} mm with it kept, "
            f"where it returns a pose within 10 mm for {inc['reranked']['top1_within_10mm_rate']:.0%} of queries "
            f"({inc['cosine']['top1_within_10mm_rate']:.0%} by cosine); through random cameras "
            f"{rnd['clip_excluded']['cosine']['top1_pa_mpjpe_mm']:.1f} -> "
            f"{rnd['clip_excluded']['reranked']['top1_pa_mpjpe_mm']:.1f} mm (floor "
            f"{rnd['clip_excluded']['oracle_floor_mm']:.1f}). The predicted error ranks the true top-1 error with "
            f"Spearman {conf['spearman']:.2f} (targets: "
            + "; ".join(f"{t['short']} {met(t)}" for t in lib["targets"]) + ").")


def library_markdown(r: dict, plots: dict[str, str]) -> list[str]:
    """The section (absent from older results). plots: key -> file name."""
    lib = r.get("retrieval_real")
    out, computed = section_heading(lib, "Retrieval from real cameras over the whole library (PA-MPJPE, mm)")
    if not computed:
        return out
    rr, counts = lib["rerank"], lib["queries_per_set"]
    out += [sentence(r["protocols"]["retrieval_real"]), "",
            f"Queries: {counts['validation']} validation (random cameras, split val: the weight and the curve), "
            f"{counts['real_rig']} real rig ({lib['real_rig']['views_kept']} views kept of "
            f"{lib['real_rig']['frames_placed']} placed frames, pelvis off axis by a median "
            f"{lib['real_rig']['off_axis_deg_median']} degrees), {counts['random']} random cameras. Re-ranking "
            f"({rr['method']}: pinhole fit in the perspective crop's camera): weight {rr['weight']:g} (chosen of "
            f"{', '.join(rr['weights'])} by the mean validation top-1: "
            f"{rr['validation_top1_pa_mpjpe_mm']['clip_excluded']['cosine']} -> "
            f"{rr['validation_top1_pa_mpjpe_mm']['clip_excluded']['reranked']} mm clip excluded, "
            f"{rr['validation_top1_pa_mpjpe_mm']['clip_included']['cosine']} -> "
            f"{rr['validation_top1_pa_mpjpe_mm']['clip_included']['reranked']} mm included); search: "
            f"{lib['gallery']['search']}.", ""]
    rows = []
    for name, sets in lib["results"].items():
        for variant, e in sets.items():
            rows.append([name, variant, e["queries"], e["oracle_floor_mm"], e["cosine"]["top1_pa_mpjpe_mm"],
                         e["reranked"]["top1_pa_mpjpe_mm"], e["cosine"]["top10_best_pa_mpjpe_mm"],
                         e["reranked"]["top10_best_pa_mpjpe_mm"], e["candidate_best_pa_mpjpe_mm"],
                         e["reranked"]["top1_to_floor"], f"{e['cosine']['top1_within_10mm_rate']:.2f} -> "
                         f"{e['reranked']['top1_within_10mm_rate']:.2f}"])
    out += [table(["cameras", "gallery", "queries", "oracle floor", "top-1 cosine", "top-1 re-ranked",
                   "top-10 best cosine", "top-10 best re-ranked", "best candidate",
                   "top-1 / floor", "top-1 within 10 mm"], rows), "",
            f"![retrieval over the library]({plots['library']})", ""]
    rows = [[name, variant, c, e["clips"], e["queries"], e["oracle_floor_mm"], e["top1_cosine_mm"],
             e["top1_reranked_mm"], e["top1_within_10mm_rate"]]
            for name, sets in lib["results"].items() for variant, v in sets.items()
            for c, e in v["per_content"].items()]
    if rows:
        out += [f"Per content (contents with at least {r['settings']['min_content_clips']} test clips among the "
                "queries):", "",
                table(["cameras", "gallery", "content", "clips", "queries", "oracle floor", "top-1 cosine",
                       "top-1 re-ranked", "within 10 mm"], rows), ""]
    return out + _confidence_markdown(lib, plots["reliability"])


def _confidence_markdown(lib: dict, plot: str) -> list[str]:
    """The predicted error against the true one, the far-from-library probe and the issue's targets."""
    conf = lib["confidence"]
    out = ["Predicted error (the bundle's `confidence.expected_error_mm`, calibrated on the validation queries) "
           "against the true top-1 PA-MPJPE, clip-excluded test queries:", ""]
    rows = [[name, e["queries"], e["spearman"], e["mean_predicted_mm"], e["mean_actual_mm"],
             e["far_from_library_rate"]] for name, e in conf["per_set"].items()]
    rows.append(["both", conf["pooled"]["queries"], conf["pooled"]["spearman"], None, None,
                 conf["pooled"]["far_from_library_rate"]])
    out += [table(["cameras", "queries", "Spearman", "mean predicted", "mean true", "far_from_library"], rows), "",
            table(["bin (both sets)", "queries", "mean predicted", "mean true", "within 25%"],
                  [[i + 1, b["queries"], b["predicted_mm"], b["actual_mm"], "yes" if b["within_tolerance"] else "no"]
                   for i, b in enumerate(conf["pooled"]["reliability"])]), "",
            f"![reliability]({plot})", ""]
    probe = lib["far_probe"]
    out += [f"Far from the library: of {probe['queries']} queries that no body makes ({probe['what']}), "
            f"{probe['far_from_library_rate']:.0%} are flagged `far_from_library` (median expected error "
            f"{probe['expected_error_mm_median']} mm); of the clip-excluded test queries "
            f"{conf['pooled']['far_from_library_rate']:.0%}.", "", targets_table(lib["targets"], 16), ""]
    return out


def plot_library(lib: dict, path: Path) -> None:
    """Top-1 and best-of-10 PA-MPJPE, cosine and re-ranked, against the oracle floor, per camera set and gallery."""
    groups, series = [], {"top-1 cosine": [], "top-1 re-ranked": [], "top-10 best re-ranked": [], "oracle floor": []}
    for name, sets in lib["results"].items():
        for variant, e in sets.items():
            groups.append(f"{name}\n{variant.replace('_', ' ')}")
            series["top-1 cosine"].append(e["cosine"]["top1_pa_mpjpe_mm"])
            series["top-1 re-ranked"].append(e["reranked"]["top1_pa_mpjpe_mm"])
            series["top-10 best re-ranked"].append(e["reranked"]["top10_best_pa_mpjpe_mm"])
            series["oracle floor"].append(e["oracle_floor_mm"])
    colours = {"top-1 cosine": "tab:gray", "top-1 re-ranked": "tab:blue", "top-10 best re-ranked": "tab:cyan",
               "oracle floor": "k"}
    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.8 / len(series)
    x = np.arange(len(groups))
    for i, (label, values) in enumerate(series.items()):
        ax.bar(x + (i - (len(series) - 1) / 2) * width, values, width, label=label, color=colours[label])
    ax.set_xticks(x)
    ax.set_xticklabels(groups, fontsize=8)
    ax.set_ylabel("PA-MPJPE to the true pose (mm)")
    ax.legend(fontsize=8)
    ax.set_title(f"Retrieval over the library ({lib['gallery']['poses']} poses x {lib['gallery']['views']} views) "
                 f"from 2D, {lib['candidates']} candidates re-ranked", fontsize=9)
    save_figure(fig, path)


def plot_reliability(lib: dict, path: Path) -> None:
    """Mean true top-1 error against the mean predicted one, per bin of the prediction."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    top = 1.0
    for name, e in lib["confidence"]["per_set"].items():
        pred = [b["predicted_mm"] for b in e["reliability"]]
        true = [b["actual_mm"] for b in e["reliability"]]
        ax.plot(pred, true, marker="o", label=f"{name} (Spearman {e['spearman']})")
        top = max(top, *pred, *true)
    pooled = lib["confidence"]["pooled"]["reliability"]
    ax.plot([b["predicted_mm"] for b in pooled], [b["actual_mm"] for b in pooled], marker="s", color="k",
            label="both")
    line = np.array([0.0, 1.1 * top])
    ax.plot(line, line, color="gray", lw=1)
    ax.fill_between(line, 0.75 * line, 1.25 * line, color="gray", alpha=0.15, label="within 25%")
    ax.set_xlabel("predicted top-1 error, bin mean (mm)")
    ax.set_ylabel("true top-1 PA-MPJPE, bin mean (mm)")
    ax.set_xlim(0, 1.1 * top)
    ax.set_ylim(0, 1.1 * top)
    ax.legend(fontsize=8)
    ax.set_title("Confidence: reliability, clip-excluded test queries", fontsize=9)
    save_figure(fig, path)
