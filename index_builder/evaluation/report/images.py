"""The labelled-photo sections of the evaluation report: image -> lift3d (summary sentence, markdown, plot) and the
detector's error statistics (markdown), from ``image_lifting`` and ``detector_errors`` of ``eval.json``
(``index_builder.evaluation.images``); nothing here computes a metric."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from index_builder.evaluation.report.figures import plt, save_figure
from index_builder.evaluation.report.markdown import sentence, table


def image_sentence(photos: dict) -> str | None:
    """One sentence of the report's summary, or None when the section was not computed."""
    if photos.get("status") != "computed":
        return None
    pooled = photos["pooled"]
    pck, err = pooled["pck"], pooled["mean_error"]
    strict = [f"{k.replace('pck_at_', 'PCK@')} {pooled[k]['lifted']:.3f} vs {pooled[k]['detector_fitted']:.3f}"
              for k in pooled if k.startswith("pck_at_")]
    return (f"On {pooled['people']} people BlazePose finds in the labelled photos ({pooled['joints']} joints), the "
            f"image-lifted pose projected with a fitted scale and translation reaches PCK@{photos['pck_fraction']:g} "
            f"{pck['lifted']:.3f} against {pck['detector_fitted']:.3f} for the detector's own 2D fitted the same way "
            f"({'; '.join(strict + [''])}mean error {err['lifted']:.3f} vs {err['detector_fitted']:.3f} of the box "
            "diagonal).")


def metric_label(key: str, photos: dict) -> str:
    """A metric key as a column label: pck -> PCK@0.1, pck_at_0.05 -> PCK@0.05, mean_error -> mean error."""
    if key == "pck":
        return f"PCK@{photos['pck_fraction']:g}"
    return key.replace("pck_at_", "PCK@").replace("_", " ")


def image_markdown(r: dict, plots: dict[str, str]) -> list[str]:
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
            out += [sentence(photos["protocol"]), "",
                    "PCK per dataset (people found / labelled); mean error as a fraction of the label box diagonal:",
                    ""]
            rows = [[e["title"], f"{e['people']} / {e['people_labelled']}", e["joints"]]
                    + [e[k][m] for k in keys for m in scored]
                    for e in [*photos["per_dataset"].values(), {"title": "pooled", **photos["pooled"]}]]
            header = ["dataset", "people", "joints"] + [f"{metric_label(k, photos)} {m}" for k in keys for m in scored]
            out += [table(header, rows), "", "Per h36m17 joint, pooled over the datasets:", ""]
            rows = [[name, e["joints"]] + [e[k][m] for k in keys for m in scored]
                    for name, e in photos["per_joint"].items()]
            out += [table(["joint", "n"] + header[3:], rows), "", f"![image PCK]({plots['image']})", ""]
    errors = r.get("detector_errors")
    if errors is not None:
        out += ["## Detector error statistics (BlazePose on the labelled photos)", "",
                f"Source: {errors['source']} ({errors['calibration']}). Units: {errors['units']}.", ""]
        if "agrees_with_committed_calibration" in errors:
            same = "agree" if errors["agrees_with_committed_calibration"] else "do NOT agree"
            out += [f"These matches {same} with the committed calibration (`detector_calibration.json`).", ""]
        rows = [[e["title"], e["people_found"], e["people_labelled"], e["joints"], e["median_error"],
                 e["rms_per_axis_seen"], e["swaps"]] for e in errors["per_dataset"].values()]
        out += [table(["dataset", "people found", "labelled", "joints", "median error", "RMS per axis (seen)",
                       "whole-body swaps"], rows), ""]
        rows = [[name, e["n"], e["n_seen"], e["sigma"], e["sigma_joint"], e["median_error"]]
                for name, e in errors["per_joint"].items()]
        out += ["Per h36m17 joint (sigma: the noise model's, mirror-pooled and shrunk; sigma alone: this joint's "
                "seen errors, RMS per axis):", "",
                table(["joint", "n", "n seen", "sigma", "sigma alone", "median error"], rows), ""]
    return out


def plot_image(photos: dict, path: Path) -> None:
    """The two coarsest PCKs per dataset and pooled, lifted against the detector's own 2D."""
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
        label = metric_label(key, photos)
        ax.set_ylabel(label)
        ax.legend(fontsize=8, loc="lower left")
        ax.set_title(f"Labelled photos: {label} of the box diagonal", fontsize=9)
    save_figure(fig, path)
