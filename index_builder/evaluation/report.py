"""The evaluation report: ``eval.json`` (every number), ``eval.md`` (tables, a summary written from the numbers)
and the PNG plots it embeds by relative path. Every file is written atomically (matplotlib Agg).

Input is the dict ``index_builder.evaluation.evaluate_run`` returns; nothing here computes a metric.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from index_builder.atomic_files import atomic_path  # noqa: E402
from index_builder.evaluation.conventions_report import (
    CONVENTIONS_PLOT,
    conventions_markdown,
    conventions_sentence,
    plot_conventions,
)
from index_builder.evaluation.generalisation_report import (
    GENERALISATION_PLOT,
    generalisation_markdown,
    generalisation_sentence,
    plot_generalisation,
)
from index_builder.evaluation.motion_report import MOTION_PLOT, motion_markdown, motion_sentence, plot_motion  # noqa

PLOTS = {
    "lifting": "eval_lifting.png",
    "content": "eval_lifting_per_content.png",
    "paper": "eval_retrieval_paper.png",
    "prvipe": "eval_prvipe_hit_at_k.png",
    "alignment": "eval_alignment.png",
    "study": "eval_seed_study.png",
    "real_rig": "eval_real_rig.png",  # only when the fixed real rig was evaluated (every run since it exists)
    "library": "eval_retrieval_library.png",  # these two only when retrieval over the library was evaluated
    "reliability": "eval_retrieval_reliability.png",
}
IMAGE_PLOT = "eval_image_pck.png"  # only when the labelled photos were evaluated
MODEL_COLOURS = {"unihpr": "tab:blue", "martinez_budget": "tab:gray", "martinez_converged": "tab:orange",
                 "martinez_absolute": "tab:purple",
                 "nn_2d": "tab:green", "singular_value": "tab:blue", "pairwise": "tab:red"}


def write_report(result: dict, out: Path) -> list[Path]:
    """Write eval.json, eval.md and the plots into ``out``; returns the written paths."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with atomic_path(out / "eval.json", suffix=".json") as tmp:
        tmp.write_text(json.dumps(result, indent=2, allow_nan=False))  # NaN would be a bug upstream: refuse it
    written.append(out / "eval.json")
    plots = {key: out / name for key, name in PLOTS.items()}
    _plot_lifting(result["lifting"], plots["lifting"])
    _plot_content(result["lifting"], plots["content"])
    _plot_paper(result["retrieval_paper"], plots["paper"])
    _plot_prvipe(result["retrieval_prvipe"], plots["prvipe"])
    _plot_alignment(result["alignment"], plots["alignment"])
    if "runs" in result["seed_study"]:
        _plot_study(result["seed_study"], plots["study"])
    else:
        plots.pop("study")
    if result.get("real_rig", {}).get("status") == "computed":
        _plot_real_rig(result["real_rig"], plots["real_rig"])
    else:
        plots.pop("real_rig")
    if result.get("retrieval_real", {}).get("status") == "computed":
        _plot_library(result["retrieval_real"], plots["library"])
        _plot_reliability(result["retrieval_real"], plots["reliability"])
    else:
        plots.pop("library")
        plots.pop("reliability")
    if result.get("image_lifting", {}).get("status") == "computed":
        plots["image"] = out / IMAGE_PLOT
        _plot_image(result["image_lifting"], plots["image"])
    if result.get("motion_search", {}).get("status") == "computed":
        plots["motion"] = out / MOTION_PLOT
        plot_motion(result["motion_search"], plots["motion"], _save)
    if result.get("generalisation", {}).get("status") == "computed":
        plots["generalisation"] = out / GENERALISATION_PLOT
        plot_generalisation(result["generalisation"], plots["generalisation"], _save)
    if result.get("joint_conventions", {}).get("status") == "computed":
        plots["conventions"] = out / CONVENTIONS_PLOT
        plot_conventions(result["joint_conventions"], plots["conventions"], _save)
    written += list(plots.values())
    with atomic_path(out / "eval.md", suffix=".md") as tmp:
        tmp.write_text(render_markdown(result, {k: p.name for k, p in plots.items()}))
    written.append(out / "eval.md")
    return written


# --------------------------------------------------------------------------------------------- the summary


def _better(ratio: float) -> str:
    return "better" if ratio < 1 else "worse" if ratio > 1 else "level"


def summary_paragraph(r: dict) -> str:
    """What the numbers show, in sentences built from them (no conclusion is written in advance)."""
    lift, parts = r["lifting"], []
    cond = lift["conditions"]
    uni = cond["gt_2d/h36m_rig"]["unihpr"]["mpjpe_mm"]
    record = lift["baseline_of_record"]
    if record:
        base = cond["gt_2d/h36m_rig"][record]["mpjpe_mm"]
        ratios = {k: v["mpjpe_mm"] for k, v in lift["ratio_unihpr_to_baseline"].items()}
        lo, hi = min(ratios, key=ratios.get), max(ratios, key=ratios.get)
        parts.append(
            f"Lifting from ground-truth 2D on the H36M-like rig, UniHPR reaches {uni:.1f} mm MPJPE against "
            f"{base:.1f} mm for the baseline of record ({record}), a ratio of {ratios['gt_2d/h36m_rig']:.2f}: "
            f"UniHPR is {_better(ratios['gt_2d/h36m_rig'])} there. Over the six conditions the ratio runs from "
            f"{ratios[lo]:.2f} ({lo}) to {ratios[hi]:.2f} ({hi}).")
        d_uni = cond["detector/h36m_rig"]["unihpr"]["mpjpe_mm"] - uni
        d_base = cond["detector/h36m_rig"][record]["mpjpe_mm"] - base
        parts.append(f"Simulated detector features instead of ground-truth 2D change UniHPR's rig MPJPE by "
                     f"{d_uni:+.1f} mm and the baseline's by {d_base:+.1f} mm.")
    else:
        parts.append(f"Lifting from ground-truth 2D on the H36M-like rig, UniHPR reaches {uni:.1f} mm MPJPE; no "
                     "Martinez checkpoint was found, so there is no baseline to compare with.")
    rig = r.get("real_rig", {})
    if rig.get("status") == "computed":
        parts.append(_real_rig_sentence(rig))
    paper = r["retrieval_paper"]
    m = paper["pose2d"]["unihpr"]["top1_clip_excluded"]["mpjpe_mm"]
    nn = paper["pose2d"]["nn_2d"]["top1_clip_excluded"]["mpjpe_mm"]
    floor = paper["oracle_floor_clip_excluded"]["mpjpe_mm"]
    parts.append(
        f"Retrieving 3D from 2D with the query's own clip left out, UniHPR's top-1 is {m:.1f} mm from the true pose, "
        f"{m - floor:.1f} mm above the oracle floor of {floor:.1f} mm; the 2D-keypoint nearest neighbour gets "
        f"{nn:.1f} mm, so UniHPR is {_better(m / nn)} than it. With the clip kept, the gallery holds the query's "
        f"exact view: UniHPR returns it for {paper['pose2d']['unihpr']['top1_true_view_rate']:.0%} of queries, the "
        f"2D nearest neighbour for {paper['pose2d']['nn_2d']['top1_true_view_rate']:.0%}.")
    library = r.get("retrieval_real", {})
    if library.get("status") == "computed":
        parts.append(_library_sentence(library))
    hit = r["retrieval_prvipe"]["hit_at_k"]
    last = max(hit["unihpr"], key=int)
    parts.append(f"Across views (Pr-VIPE protocol), Hit@1 is {hit['unihpr']['1']:.3f} for UniHPR and "
                 f"{hit['nn_2d']['1']:.3f} for the 2D nearest neighbour (Hit@{last}: {hit['unihpr'][last]:.3f} vs "
                 f"{hit['nn_2d'][last]:.3f}).")
    al = r["alignment"]
    pairs = al["recall_at_1"]
    weak, strong = min(pairs, key=pairs.get), max(pairs, key=pairs.get)
    parts.append(f"Cross-modal recall@1 over {al['gallery']} poses averages {al['mean_recall_at_1']:.3f}, from "
                 f"{pairs[weak]:.3f} ({weak}) to {pairs[strong]:.3f} ({strong}).")
    study = r["seed_study"]
    if "verdict" in study:
        parts.extend(study["verdict"])
    photos = r.get("image_lifting", {})
    if photos.get("status") == "computed":
        pooled = photos["pooled"]
        pck, err = pooled["pck"], pooled["mean_error"]
        strict = [f"{k.replace('pck_at_', 'PCK@')} {pooled[k]['lifted']:.3f} vs {pooled[k]['detector_fitted']:.3f}"
                  for k in pooled if k.startswith("pck_at_")]
        parts.append(
            f"On {pooled['people']} people BlazePose finds in the labelled photos ({pooled['joints']} joints), the "
            f"image-lifted pose projected with a fitted scale and translation reaches PCK@{photos['pck_fraction']:g} "
            f"{pck['lifted']:.3f} against {pck['detector_fitted']:.3f} for the detector's own 2D fitted the same way "
            f"({'; '.join(strict + [''])}mean error {err['lifted']:.3f} vs {err['detector_fitted']:.3f} of the box "
            "diagonal).")
    consistency = r.get("photo_consistency", {})
    if consistency.get("status") == "computed":
        parts.append(_consistency_sentence(consistency))
    for sentence in (motion_sentence(r.get("motion_search", {})),
                     conventions_sentence(r.get("joint_conventions", {})),
                     generalisation_sentence(r.get("generalisation", {}))):
        if sentence:
            parts.append(sentence)
    return " ".join(parts)


def _met(target: dict) -> str:
    return "not measurable" if target["met"] is None else "met" if target["met"] else "NOT met"


def _real_rig_sentence(rig: dict) -> str:
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
             + "; ".join(f"{t['short']} {_met(t)}" for t in rig["targets"]) + ").")
    return text


def _library_sentence(lib: dict) -> str:
    rig, rnd = lib["results"]["real_rig"], lib["results"]["random"]
    ex, inc = rig["clip_excluded"], rig["clip_included"]
    conf = lib["confidence"]["pooled"]
    return (f"Retrieving from 2D over the whole library ({lib['gallery']['poses']} poses x {lib['gallery']['views']} "
            f"views) through the fixed real rig, re-ranking the {lib['candidates']} best by cosine brings the top-1 "
            f"from {ex['cosine']['top1_pa_mpjpe_mm']:.1f} to {ex['reranked']['top1_pa_mpjpe_mm']:.1f} mm PA-MPJPE with "
            f"the query's clip left out (oracle floor {ex['oracle_floor_mm']:.1f} mm) and from "
            f"{inc['cosine']['top1_pa_mpjpe_mm']:.1f} to {inc['reranked']['top1_pa_mpjpe_mm']:.1f} mm with it kept, "
            f"where it returns a pose within 10 mm for {inc['reranked']['top1_within_10mm_rate']:.0%} of queries "
            f"({inc['cosine']['top1_within_10mm_rate']:.0%} by cosine); through random cameras "
            f"{rnd['clip_excluded']['cosine']['top1_pa_mpjpe_mm']:.1f} -> "
            f"{rnd['clip_excluded']['reranked']['top1_pa_mpjpe_mm']:.1f} mm (floor "
            f"{rnd['clip_excluded']['oracle_floor_mm']:.1f}). The predicted error ranks the true top-1 error with "
            f"Spearman {conf['spearman']:.2f} (targets: "
            + "; ".join(f"{t['short']} {_met(t)}" for t in lib["targets"]) + ").")


def _consistency_sentence(c: dict) -> str:
    if not c["people"]:
        return "Photo consistency: no labelled person could be warped and found again, so it is not measured."
    a, plain = c["angle_deg"], c["angle_without_crop_deg"]
    return (f"Turning the camera of a real photo by {c['rotation_deg']['median']:.1f} degrees (median, "
            f"{c['people']} people) rotates the lifted pose consistently to within {a['median']:.2f} degrees "
            f"median ({a['max']:.2f} max; without the perspective crop {plain['median']:.2f}); target "
            f"{c['target']['short']}: {_met(c['target'])}.")


# -------------------------------------------------------------------------------------------- the markdown


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + "."


def _table(header: list[str], rows: list[list]) -> str:
    def cell(x) -> str:
        if x is None:
            return "-"
        if isinstance(x, float):
            return f"{x:.3f}" if abs(x) <= 1 else f"{x:.1f}"  # rates and recalls / mm
        return str(x)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(x) for x in row) + " |" for row in rows]
    return "\n".join(lines)


def render_markdown(r: dict, plots: dict[str, str]) -> str:
    """plots: key of ``PLOTS`` -> file name relative to eval.md."""
    data, run, lift = r["data"], r["run"], r["lifting"]
    models = list(next(iter(lift["conditions"].values())))
    record = lift["baseline_of_record"]
    out = ["# UniHPR evaluation", ""]
    out.append(f"Run `{run['path']}` (config `{run['config']['name']}`), held-out split `{data['split']}` of "
               f"`{data['file']}`: {data['test_clips']} test clips, {data['test_frames']} frames, evaluated at about "
               f"{data['eval_fps']:g} fps (frame step by clip fps: {data['frame_step_by_clip_fps']}), "
               f"{data['eval_frames']} frames. Wall time {r['wall_seconds']['total']:.0f} s.")
    checkpoints = [[name, f"`{c['path']}`", f"`{c['sha256'][:16]}...`"] for name, c in run["checkpoints"].items()]
    out += ["", _table(["checkpoint", "file", "sha256"], checkpoints)]
    out += ["", f"Data licence: {data['licence']}", "", "## What this shows", "", summary_paragraph(r), ""]
    if r["notes"]:
        out += ["Notes:", ""] + [f"- {n}" for n in r["notes"]] + [""]

    out += ["## Lifting (MPJPE / PA-MPJPE, mm)", "", _sentence(r["protocols"]["lifting"]), ""]
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
    out += [_table(header, rows), "", f"![lifting per condition]({plots['lifting']})", ""]
    compare = [m for m in ("unihpr", record) if m]
    out += [f"Per content (GT 2D, H36M-like rig; contents with at least {r['settings']['min_content_clips']} test "
            "clips):", ""]
    rows = [[c, e["test_clips"], e["frames"]] + [e["gt_2d/h36m_rig"][m]["mpjpe_mm"] for m in compare]
            + [e["gt_2d/h36m_rig"][m]["pa_mpjpe_mm"] for m in compare] for c, e in lift["per_content"].items()]
    out += [_table(["content", "test clips", "frames"] + [f"{m} MPJPE" for m in compare]
                   + [f"{m} PA" for m in compare], rows), ""]
    if lift["contents_skipped"]:
        skipped = ", ".join(f"{c} ({n})" for c, n in sorted(lift["contents_skipped"].items()))
        out += [f"Not reported per content (test clips): {skipped}.", ""]
    out += [f"![lifting per content]({plots['content']})", ""]
    out += _real_rig_markdown(r, plots)
    out += conventions_markdown(r, plots.get("conventions"))
    out += generalisation_markdown(r, plots.get("generalisation"))

    out += _library_markdown(r, plots)
    paper = r["retrieval_paper"]
    out += ["## Retrieval, paper protocol (top-1 error, mm)", "",
            "The paper's protocol, kept as it is: its gallery holds the query's exact view as the index stores it "
            "(the same rig cameras render query and gallery), so it measures recognition of an indexed view, not "
            "retrieval from a real camera (that is the section above).", "",
            _sentence(r["protocols"]["retrieval_paper"]), ""]
    rows = []
    for modality in ("pose2d", "image"):
        for method, e in paper[modality].items():
            rows.append([modality, method, e["top1"]["mpjpe_mm"], e["top1"]["pa_mpjpe_mm"], e["top1_true_view_rate"],
                         e["top1_clip_excluded"]["mpjpe_mm"], e["top1_clip_excluded"]["pa_mpjpe_mm"]])
    floor = paper["oracle_floor_clip_excluded"]
    rows.append(["-", "oracle floor (nearest 3D)", None, None, None, floor["mpjpe_mm"], floor["pa_mpjpe_mm"]])
    out += [_table(["query", "method", "top-1 MPJPE", "top-1 PA", "exact view found", "clip-excluded MPJPE",
                    "clip-excluded PA"], rows), "", f"![paper retrieval]({plots['paper']})", ""]

    pr = r["retrieval_prvipe"]
    out += ["## Retrieval, Pr-VIPE protocol (Hit@k, NP-MPJPE <= "
            f"{pr['threshold']:g})", "", _sentence(r["protocols"]["retrieval_prvipe"]), ""]
    ks = list(pr["hit_at_k"]["unihpr"])
    hits = [[m] + [h[k] for k in ks] for m, h in pr["hit_at_k"].items()]
    out += [_table(["method"] + [f"Hit@{k}" for k in ks], hits),
            "", f"![Pr-VIPE Hit@k]({plots['prvipe']})", ""]

    al = r["alignment"]
    out += ["## Cross-modal alignment (recall@1)", "", _sentence(r["protocols"]["alignment"]), ""]
    out += [_table(["query -> gallery", "recall@1"], [[k, v] for k, v in al["recall_at_1"].items()]
                   + [["mean", al["mean_recall_at_1"]]]), "", f"![alignment]({plots['alignment']})", ""]

    study = r["seed_study"]
    out += ["## Seed study: singular-value loss vs pairwise InfoNCE", ""]
    if "runs" not in study:
        out += [f"Skipped: {study['skipped']}.", ""]
    else:
        hit = "prvipe_hit_at_1" in study["runs"][0]  # studies evaluated before it was measured lack it
        out += [_table(["loss", "seed", "recall@1 (mean of 6 pairs)", "lifting MPJPE (GT 2D, rig)",
                        *(["Pr-VIPE Hit@1"] if hit else [])],
                       [[x["loss"], x["seed"], x["recall_at_1"], x["lifting_mpjpe_mm"],
                         *([x["prvipe_hit_at_1"]] if hit else [])] for x in study["runs"]]), ""]
        rows = [[loss, s["recall_at_1"]["seeds"], s["recall_at_1"]["mean"], s["recall_at_1"]["std"],
                 s["lifting_mpjpe_mm"]["mean"], s["lifting_mpjpe_mm"]["std"],
                 *([s["prvipe_hit_at_1"]["mean"], s["prvipe_hit_at_1"]["std"]] if hit else [])]
                for loss, s in study["per_loss"].items()]
        out += [_table(["loss", "seeds", "recall@1 mean", "std", "MPJPE mean", "std",
                        *(["Hit@1 mean", "std"] if hit else [])], rows), "",
                f"Std: {study['std']}.", ""] + [f"- {v}" for v in study["verdict"]]
        out += [f"- {n}" for n in study["notes"]] + ["", f"![seed study]({plots['study']})", ""]

    out += _image_markdown(r, plots)
    out += _consistency_markdown(r)
    out += motion_markdown(r, plots.get("motion"))
    out += ["## Index fidelity", "", f"{r['index_fidelity']['status']}: {r['index_fidelity']['note']}.", ""]
    return "\n".join(out)


def _targets_table(targets: list[dict], issue: int = 12) -> str:
    return _table([f"target (issue #{issue})", "value", "threshold", "met"],
                  [[t["target"], "-" if t["value"] is None else f"{t['value']:.3f}", f"{t['threshold']:g}", _met(t)]
                   for t in targets])


def _real_rig_markdown(r: dict, plots: dict[str, str]) -> list[str]:
    """The fixed-real-rig section (absent from older results)."""
    rig = r.get("real_rig")
    if rig is None:
        return []
    out = ["## Fixed real rig (published H36M cameras, MPJPE / PA-MPJPE, mm)", ""]
    if rig.get("status") != "computed":
        return out + [f"Skipped: {rig.get('note')}.", ""]
    out += [_sentence(r["protocols"]["real_rig"]), "",
            f"Lens model: {rig['lens']}. Views kept (all joints inside the image): {rig['views']} of "
            f"{rig['views_total']} ({rig['frames_seen_by_any_camera']} of {rig['frames']} frames seen by at least one "
            f"camera); off-axis angle of the pelvis median {rig['off_axis_deg']['median']:.1f}, max "
            f"{rig['off_axis_deg']['max']:.1f} degrees.", ""]
    cams = [[c["id"], c["image_size"], c["focal_px"], c["position_mm"], c["centre_off_axis_deg"],
             rig["views_per_camera"][c["id"]]] for c in rig["rig"]["cameras"]]
    out += [_table(["camera", "image", "focal (px)", "position (mm, Y up)", "floor centre off axis (deg)", "views"],
                   cams), "",
            f"The four optical axes pass nearest to {rig['rig']['axes_nearest_point_mm']} mm (least squares); the "
            "floor centre at pelvis height lies off each camera's axis by the angle above.", "",
            "Lifters: " + "; ".join(f"{n}: {what}" for n, what in rig["inputs"].items()) + ".", ""]
    bins = rig["bins"]
    for run, e in rig["runs"].items():
        out += [f"**{run}** ({e['told']}):", ""]
        rows = [[name, f"{x['mpjpe_mm']:.1f} / {x['pa_mpjpe_mm']:.1f}"]
                + [None if x["per_bin"][b]["mpjpe_mm"] is None else f"{x['per_bin'][b]['mpjpe_mm']:.1f}"
                   for b in bins] for name, x in e["lifters"].items()]
        rows.append(["views", sum(rig["bin_counts"].values())] + [rig["bin_counts"][b] for b in bins])
        out += [_table(["lifter", "MPJPE / PA"] + [f"MPJPE {b} deg" for b in bins], rows), ""]
        ratio = e["ratio_unihpr_to_better_martinez"]
        line = (f"UniHPR / better Martinez ({e['better_martinez']}): MPJPE {ratio['mpjpe_mm']:.2f}, PA "
                f"{ratio['pa_mpjpe_mm']:.2f}. " if ratio else "No Martinez checkpoint to compare with. ")
        spread = e["unihpr_bin_ratio"]
        line += (f"UniHPR max / min over the off-axis bins with >= {rig['min_bin_views']} views: "
                 + ("-" if spread is None else f"{spread:.2f}") + ".")
        out += [line, ""]
    out += [_targets_table(rig["targets"]), "", f"![fixed real rig]({plots['real_rig']})", ""]
    return out


def _library_markdown(r: dict, plots: dict[str, str]) -> list[str]:
    """Retrieval from real cameras over the whole library (absent from older results)."""
    lib = r.get("retrieval_real")
    if lib is None:
        return []
    out = ["## Retrieval from real cameras over the whole library (PA-MPJPE, mm)", ""]
    if lib.get("status") != "computed":
        return out + [f"Skipped: {lib.get('note')}.", ""]
    rr, counts = lib["rerank"], lib["queries_per_set"]
    out += [_sentence(r["protocols"]["retrieval_real"]), "",
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
    out += [_table(["cameras", "gallery", "queries", "oracle floor", "top-1 cosine", "top-1 re-ranked",
                    "top-10 best cosine", "top-10 best re-ranked", f"best of {lib['candidates']} candidates",
                    "top-1 / floor", "top-1 within 10 mm"], rows), "",
            f"![retrieval over the library]({plots['library']})", ""]
    rows = [[name, variant, c, e["clips"], e["queries"], e["oracle_floor_mm"], e["top1_cosine_mm"],
             e["top1_reranked_mm"], e["top1_within_10mm_rate"]]
            for name, sets in lib["results"].items() for variant, v in sets.items()
            for c, e in v["per_content"].items()]
    if rows:
        out += [f"Per content (contents with at least {r['settings']['min_content_clips']} test clips among the "
                "queries):", "",
                _table(["cameras", "gallery", "content", "clips", "queries", "oracle floor", "top-1 cosine",
                        "top-1 re-ranked", "within 10 mm"], rows), ""]
    conf = lib["confidence"]
    out += ["Predicted error (the bundle's `confidence.expected_error_mm`, calibrated on the validation queries) "
            "against the true top-1 PA-MPJPE, clip-excluded test queries:", ""]
    rows = [[name, e["queries"], e["spearman"], e["mean_predicted_mm"], e["mean_actual_mm"],
             e["far_from_library_rate"]] for name, e in conf["per_set"].items()]
    rows.append(["both", conf["pooled"]["queries"], conf["pooled"]["spearman"], None, None,
                 conf["pooled"]["far_from_library_rate"]])
    out += [_table(["cameras", "queries", "Spearman", "mean predicted", "mean true", "far_from_library"], rows), "",
            _table(["bin (both sets)", "queries", "mean predicted", "mean true", "within 25%"],
                   [[i + 1, b["queries"], b["predicted_mm"], b["actual_mm"], "yes" if b["within_tolerance"] else "no"]
                    for i, b in enumerate(conf["pooled"]["reliability"])]), "",
            f"![reliability]({plots['reliability']})", ""]
    probe = lib["far_probe"]
    out += [f"Far from the library: of {probe['queries']} queries that no body makes ({probe['what']}), "
            f"{probe['far_from_library_rate']:.0%} are flagged `far_from_library` (median expected error "
            f"{probe['expected_error_mm_median']} mm); of the clip-excluded test queries "
            f"{conf['pooled']['far_from_library_rate']:.0%}.", "", _targets_table(lib["targets"], 16), ""]
    return out


def _consistency_markdown(r: dict) -> list[str]:
    """The photo-consistency section (absent from older results)."""
    c = r.get("photo_consistency")
    if c is None:
        return []
    out = ["## Photo consistency (a known camera rotation of real photos)", ""]
    if c["status"] != "computed":
        return out + [f"Skipped: {c['note']}.", ""]
    skipped = ", ".join(f"{k}: {v}" for k, v in c["skipped"].items())
    out += [_sentence(r["protocols"]["photo_consistency"]), "",
            f"{c['people']} people of {c['found']} found of {c['labelled_people']} labelled (skipped: {skipped}); "
            f"intrinsics: {', '.join(c['intrinsics_sources']) or '-'} (default_fov: 60 degree horizontal field of view "
            "of the photo's width; exif: FocalLengthIn35mmFilm over the long side, as the service); directions: "
            f"{', '.join(f'{k} {v}' for k, v in c['directions'].items())}. The angle without the crop is that of the "
            "pre-crop image path (image features of the raw pixels), for reference.", ""]
    rows = [[f"`{p['photo']}` #{p['person']}", p["direction"], f"{p['rotation_deg']:.1f}",
             f"{p['off_axis_before_deg']:.1f} -> {p['off_axis_after_deg']:.1f}", f"{p['angle_deg']:.2f}",
             f"{p['angle_without_crop_deg']:.2f}"] for p in c["per_person"]]
    rows.append(["median / max", "", f"{c['rotation_deg']['median']} / {c['rotation_deg']['max']}", "",
                 f"{c['angle_deg']['median']} / {c['angle_deg']['max']}",
                 f"{c['angle_without_crop_deg']['median']} / {c['angle_without_crop_deg']['max']}"])
    out += [_table(["person", "direction", "rotation (deg)", "box centre off axis (deg)", "misalignment (deg)",
                    "without crop (deg)"], rows), "", _targets_table([c["target"]]), ""]
    return out


def _metric_label(key: str, photos: dict) -> str:
    """A metric key as a column label: pck -> PCK@0.1, pck_at_0.05 -> PCK@0.05, mean_error -> mean error."""
    if key == "pck":
        return f"PCK@{photos['pck_fraction']:g}"
    return key.replace("pck_at_", "PCK@").replace("_", " ")


def _image_markdown(r: dict, plots: dict[str, str]) -> list[str]:
    """The image -> lift3d section and the detector's error statistics (absent from older results)."""
    out = []
    photos = r.get("image_lifting")
    if photos is not None:
        out += ["## Image -> lift3d on the labelled photos (PCK)", ""]
        if photos["status"] != "computed":
            out += [f"Skipped: {photos['note']}.", ""]
        else:
            scored = list(photos["pooled"]["pck"])
            keys = [k for k in photos["pooled"] if k.startswith("pck")] + ["mean_error"]
            out += [_sentence(photos["protocol"]), "",
                    "PCK per dataset (people found / labelled); mean error as a fraction of the label box diagonal:",
                    ""]
            rows = [[e["title"], f"{e['people']} / {e['people_labelled']}", e["joints"]]
                    + [e[k][m] for k in keys for m in scored]
                    for e in [*photos["per_dataset"].values(), {"title": "pooled", **photos["pooled"]}]]
            header = ["dataset", "people", "joints"] + [f"{_metric_label(k, photos)} {m}" for k in keys for m in scored]
            out += [_table(header, rows), "", "Per h36m17 joint, pooled over the datasets:", ""]
            rows = [[name, e["joints"]] + [e[k][m] for k in keys for m in scored]
                    for name, e in photos["per_joint"].items()]
            out += [_table(["joint", "n"] + header[3:], rows), "", f"![image PCK]({plots['image']})", ""]
    errors = r.get("detector_errors")
    if errors is not None:
        out += ["## Detector error statistics (BlazePose on the labelled photos)", "",
                f"Source: {errors['source']} ({errors['calibration']}). Units: {errors['units']}.", ""]
        if "agrees_with_committed_calibration" in errors:
            same = "agree" if errors["agrees_with_committed_calibration"] else "do NOT agree"
            out += [f"These matches {same} with the committed calibration (`detector_calibration.json`).", ""]
        rows = [[e["title"], e["people_found"], e["people_labelled"], e["joints"], e["median_error"],
                 e["rms_per_axis_seen"], e["swaps"]] for e in errors["per_dataset"].values()]
        out += [_table(["dataset", "people found", "labelled", "joints", "median error", "RMS per axis (seen)",
                        "whole-body swaps"], rows), ""]
        rows = [[name, e["n"], e["n_seen"], e["sigma"], e["sigma_joint"], e["median_error"]]
                for name, e in errors["per_joint"].items()]
        out += ["Per h36m17 joint (sigma: the noise model's, mirror-pooled and shrunk; sigma alone: this joint's "
                "seen errors, RMS per axis):", "",
                _table(["joint", "n", "n seen", "sigma", "sigma alone", "median error"], rows), ""]
    return out


# ------------------------------------------------------------------------------------------------- plots


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)


def _bars(ax, groups: list[str], series: dict[str, list[float]]) -> None:
    width = 0.8 / len(series)
    x = np.arange(len(groups))
    for i, (name, values) in enumerate(series.items()):
        ax.bar(x + (i - (len(series) - 1) / 2) * width, values, width, label=name, color=MODEL_COLOURS.get(name))
    ax.set_xticks(x)
    ax.set_xticklabels(groups, rotation=30, ha="right", fontsize=8)
    ax.legend(fontsize=8)


def _plot_lifting(lift: dict, path: Path) -> None:
    keys = list(lift["conditions"])
    models = list(lift["conditions"][keys[0]])
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, metric, label in zip(axes, ("mpjpe_mm", "pa_mpjpe_mm"), ("MPJPE (mm)", "PA-MPJPE (mm)")):
        _bars(ax, keys, {m: [lift["conditions"][k][m][metric] for k in keys] for m in models})
        ax.set_ylabel(label)
        ax.set_title(f"Lifting {label} per 2D condition / cameras", fontsize=9)
    _save(fig, path)


def _plot_content(lift: dict, path: Path) -> None:
    contents = list(lift["per_content"])
    compare = [m for m in ("unihpr", lift["baseline_of_record"]) if m]
    fig, ax = plt.subplots(figsize=(max(6, 0.8 * len(contents) + 2), 4.5))
    if contents:
        _bars(ax, contents, {m: [lift["per_content"][c]["gt_2d/h36m_rig"][m]["mpjpe_mm"] for c in contents]
                             for m in compare})
    ax.set_ylabel("MPJPE (mm)")
    ax.set_title("Lifting per content (GT 2D, H36M-like rig)", fontsize=9)
    _save(fig, path)


def _plot_paper(paper: dict, path: Path) -> None:
    groups = [f"{q} {v}" for q in ("pose2d", "image") for v in ("top-1", "clip-excluded")]
    series = {m: [paper[q][m][key]["mpjpe_mm"] for q in ("pose2d", "image") for key in ("top1", "top1_clip_excluded")]
              for m in ("unihpr", "nn_2d")}
    fig, ax = plt.subplots(figsize=(7, 4.5))
    _bars(ax, groups, series)
    ax.axhline(paper["oracle_floor_clip_excluded"]["mpjpe_mm"], color="k", ls="--", lw=1,
               label="oracle floor (clip-excluded)")
    ax.legend(fontsize=8)
    ax.set_ylabel("top-1 MPJPE (mm)")
    ax.set_title("Retrieval, paper protocol", fontsize=9)
    _save(fig, path)


def _plot_prvipe(pr: dict, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for method, curve in pr["curve"].items():
        ax.plot(np.arange(1, len(curve) + 1), curve, marker="o", ms=3, label=method, color=MODEL_COLOURS.get(method))
    ax.set_xlabel("k")
    ax.set_ylabel(f"Hit@k (NP-MPJPE <= {pr['threshold']:g})")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Retrieval across views, Pr-VIPE protocol", fontsize=9)
    _save(fig, path)


def _plot_alignment(al: dict, path: Path) -> None:
    pairs = al["recall_at_1"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    _bars(ax, list(pairs), {"unihpr": list(pairs.values())})
    ax.set_ylim(0, 1)
    ax.set_ylabel("recall@1")
    ax.set_title(f"Cross-modal recall@1, gallery {al['gallery']}", fontsize=9)
    _save(fig, path)


def _plot_image(photos: dict, path: Path) -> None:
    groups = [e["title"] for e in photos["per_dataset"].values()] + ["pooled"]
    blocks = [*photos["per_dataset"].values(), photos["pooled"]]
    colours = {"lifted": "tab:blue", "detector_fitted": "tab:orange", "detector": "tab:gray"}
    keys = [k for k in photos["pooled"] if k.startswith("pck")][:2]
    fig, axes = plt.subplots(1, len(keys), figsize=(5.5 * len(keys), 4.5), squeeze=False)
    for ax, key in zip(axes[0], keys):
        scored = list(photos["pooled"][key])
        width = 0.8 / len(scored)
        for i, name in enumerate(scored):
            values = [b[key][name] if b[key][name] is not None else 0.0 for b in blocks]
            ax.bar(np.arange(len(groups)) + (i - (len(scored) - 1) / 2) * width, values, width, label=name,
                   color=colours.get(name))
        ax.set_xticks(np.arange(len(groups)))
        ax.set_xticklabels([f"{g}\n({b['people']} people)" for g, b in zip(groups, blocks)], fontsize=8)
        ax.set_ylim(0, 1)
        label = _metric_label(key, photos)
        ax.set_ylabel(label)
        ax.legend(fontsize=8, loc="lower left")
        ax.set_title(f"Labelled photos: {label} of the box diagonal", fontsize=9)
    _save(fig, path)


def _plot_real_rig(rig: dict, path: Path) -> None:
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
        ax.set_xticks(x)
        ax.set_xticklabels([f"{b} deg\n({rig['bin_counts'][b]} views)" for b in bins], fontsize=8)
        ax.set_ylabel("MPJPE (mm)")
        top = max([e["per_bin"][b]["mpjpe_mm"] or 0.0 for e in lifters.values() for b in bins] + [1.0])
        ax.set_ylim(0, 1.25 * top)  # room for the legend above the bars
        ax.legend(fontsize=8, loc="upper center", ncol=len(lifters))
        ax.set_title(f"Fixed real rig ({rig['subject']} H36M cameras), {run}: MPJPE per off-axis bin", fontsize=9)
    _save(fig, path)


def _plot_library(lib: dict, path: Path) -> None:
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
    _save(fig, path)


def _plot_reliability(lib: dict, path: Path) -> None:
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
    _save(fig, path)


def _plot_study(study: dict, path: Path) -> None:
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
    _save(fig, path)
