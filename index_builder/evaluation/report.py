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

PLOTS = {
    "lifting": "eval_lifting.png",
    "content": "eval_lifting_per_content.png",
    "paper": "eval_retrieval_paper.png",
    "prvipe": "eval_prvipe_hit_at_k.png",
    "alignment": "eval_alignment.png",
    "study": "eval_seed_study.png",
}
IMAGE_PLOT = "eval_image_pck.png"  # only when the labelled photos were evaluated
MODEL_COLOURS = {"unihpr": "tab:blue", "martinez_budget": "tab:gray", "martinez_converged": "tab:orange",
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
    if result.get("image_lifting", {}).get("status") == "computed":
        plots["image"] = out / IMAGE_PLOT
        _plot_image(result["image_lifting"], plots["image"])
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
    return " ".join(parts)


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

    paper = r["retrieval_paper"]
    out += ["## Retrieval, paper protocol (top-1 error, mm)", "", _sentence(r["protocols"]["retrieval_paper"]), ""]
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
        out += [_table(["loss", "seed", "recall@1 (mean of 6 pairs)", "lifting MPJPE (GT 2D, rig)"],
                       [[x["loss"], x["seed"], x["recall_at_1"], x["lifting_mpjpe_mm"]] for x in study["runs"]]), ""]
        rows = [[loss, s["recall_at_1"]["seeds"], s["recall_at_1"]["mean"], s["recall_at_1"]["std"],
                 s["lifting_mpjpe_mm"]["mean"], s["lifting_mpjpe_mm"]["std"]] for loss, s in study["per_loss"].items()]
        out += [_table(["loss", "seeds", "recall@1 mean", "std", "MPJPE mean", "std"], rows), "",
                f"Std: {study['std']}.", ""] + [f"- {v}" for v in study["verdict"]]
        out += [f"- {n}" for n in study["notes"]] + ["", f"![seed study]({plots['study']})", ""]

    out += _image_markdown(r, plots)
    out += ["## Index fidelity", "", f"{r['index_fidelity']['status']}: {r['index_fidelity']['note']}.", ""]
    return "\n".join(out)


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
