"""The evaluation report: ``eval.json`` (every number), ``eval.md`` (tables, a summary written from the numbers)
and the PNG plots it embeds by relative path. Every file is written atomically (matplotlib Agg).

Input is the dict ``index_builder.evaluation.evaluate_run`` returns; nothing here computes a metric. Each section's
sentences, markdown and plots live in the module of its name in this package; this one puts them in order.
"""

from __future__ import annotations

import json
from pathlib import Path

from index_builder.atomic_files import atomic_path
from index_builder.evaluation.report.conventions import (
    CONVENTIONS_PLOT,
    conventions_markdown,
    conventions_sentence,
    plot_conventions,
)
from index_builder.evaluation.report.figures import save_figure
from index_builder.evaluation.report.generalisation import (
    GENERALISATION_PLOT,
    generalisation_markdown,
    generalisation_sentence,
    plot_generalisation,
)
from index_builder.evaluation.report.images import image_markdown, image_sentence, plot_image
from index_builder.evaluation.report.lifting import lifting_markdown, lifting_sentences, plot_content, plot_lifting
from index_builder.evaluation.report.markdown import table
from index_builder.evaluation.report.motion import MOTION_PLOT, motion_markdown, motion_sentence, plot_motion
from index_builder.evaluation.report.photo_consistency import consistency_markdown, consistency_sentence
from index_builder.evaluation.report.real_rig import plot_real_rig, real_rig_markdown, real_rig_sentence
from index_builder.evaluation.report.retrieval import (
    alignment_sentence,
    paper_sentence,
    plot_alignment,
    plot_paper,
    plot_prvipe,
    prvipe_sentence,
    retrieval_markdown,
)
from index_builder.evaluation.report.retrieval_real import (
    library_markdown,
    library_sentence,
    plot_library,
    plot_reliability,
)
from index_builder.evaluation.report.seed_study import plot_seed_study, seed_study_markdown

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


def write_report(result: dict, out: Path) -> list[Path]:
    """Write eval.json, eval.md and the plots into ``out``; returns the written paths."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with atomic_path(out / "eval.json", suffix=".json") as tmp:
        tmp.write_text(json.dumps(result, indent=2, allow_nan=False))  # NaN would be a bug upstream: refuse it
    written.append(out / "eval.json")
    plots = {key: out / name for key, name in PLOTS.items()}
    plot_lifting(result["lifting"], plots["lifting"])
    plot_content(result["lifting"], plots["content"])
    plot_paper(result["retrieval_paper"], plots["paper"])
    plot_prvipe(result["retrieval_prvipe"], plots["prvipe"])
    plot_alignment(result["alignment"], plots["alignment"])
    if "runs" in result["seed_study"]:
        plot_seed_study(result["seed_study"], plots["study"])
    else:
        plots.pop("study")
    if result.get("real_rig", {}).get("status") == "computed":
        plot_real_rig(result["real_rig"], plots["real_rig"])
    else:
        plots.pop("real_rig")
    if result.get("retrieval_real", {}).get("status") == "computed":
        plot_library(result["retrieval_real"], plots["library"])
        plot_reliability(result["retrieval_real"], plots["reliability"])
    else:
        plots.pop("library")
        plots.pop("reliability")
    if result.get("image_lifting", {}).get("status") == "computed":
        plots["image"] = out / IMAGE_PLOT
        plot_image(result["image_lifting"], plots["image"])
    if result.get("motion_search", {}).get("status") == "computed":
        plots["motion"] = out / MOTION_PLOT
        plot_motion(result["motion_search"], plots["motion"], save_figure)
    if result.get("generalisation", {}).get("status") == "computed":
        plots["generalisation"] = out / GENERALISATION_PLOT
        plot_generalisation(result["generalisation"], plots["generalisation"], save_figure)
    if result.get("joint_conventions", {}).get("status") == "computed":
        plots["conventions"] = out / CONVENTIONS_PLOT
        plot_conventions(result["joint_conventions"], plots["conventions"], save_figure)
    written += list(plots.values())
    with atomic_path(out / "eval.md", suffix=".md") as tmp:
        tmp.write_text(render_markdown(result, {k: p.name for k, p in plots.items()}))
    written.append(out / "eval.md")
    return written


def summary_paragraph(r: dict) -> str:
    """What the numbers show, in sentences built from them (no conclusion is written in advance)."""
    parts = [*lifting_sentences(r["lifting"]),
             real_rig_sentence(r.get("real_rig", {})),
             paper_sentence(r["retrieval_paper"]),
             library_sentence(r.get("retrieval_real", {})),
             prvipe_sentence(r["retrieval_prvipe"]),
             alignment_sentence(r["alignment"]),
             *r["seed_study"].get("verdict", []),
             image_sentence(r.get("image_lifting", {})),
             consistency_sentence(r.get("photo_consistency", {})),
             motion_sentence(r.get("motion_search", {})),
             conventions_sentence(r.get("joint_conventions", {})),
             generalisation_sentence(r.get("generalisation", {}))]
    return " ".join(p for p in parts if p is not None)  # None: a section this run did not compute


def render_markdown(r: dict, plots: dict[str, str]) -> str:
    """plots: key of ``PLOTS`` -> file name relative to eval.md."""
    data, run = r["data"], r["run"]
    out = ["# UniHPR evaluation", ""]
    out.append(f"Run `{run['path']}` (config `{run['config']['name']}`), held-out split `{data['split']}` of "
               f"`{data['file']}`: {data['test_clips']} test clips, {data['test_frames']} frames, evaluated at about "
               f"{data['eval_fps']:g} fps (frame step by clip fps: {data['frame_step_by_clip_fps']}), "
               f"{data['eval_frames']} frames. Wall time {r['wall_seconds']['total']:.0f} s.")
    checkpoints = [[name, f"`{c['path']}`", f"`{c['sha256'][:16]}...`"] for name, c in run["checkpoints"].items()]
    out += ["", table(["checkpoint", "file", "sha256"], checkpoints)]
    out += ["", f"Data licence: {data['licence']}", "", "## What this shows", "", summary_paragraph(r), ""]
    if r["notes"]:
        out += ["Notes:", ""] + [f"- {n}" for n in r["notes"]] + [""]
    out += lifting_markdown(r, plots)
    out += real_rig_markdown(r, plots)
    out += conventions_markdown(r, plots.get("conventions"))
    out += generalisation_markdown(r, plots.get("generalisation"))
    out += library_markdown(r, plots)
    out += retrieval_markdown(r, plots)
    out += seed_study_markdown(r["seed_study"], plots.get("study"))
    out += image_markdown(r, plots)
    out += consistency_markdown(r)
    out += motion_markdown(r, plots.get("motion"))
    out += ["## Index fidelity", "", f"{r['index_fidelity']['status']}: {r['index_fidelity']['note']}.", ""]
    return "\n".join(out)
