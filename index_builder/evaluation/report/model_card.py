"""The model card shipped beside the default weights, written from the checkpoint and the evaluation report so
that every number in it comes from a command."""

from __future__ import annotations

import json
from pathlib import Path

from index_builder.atomic_files import atomic_path
from index_builder.datasets.extra_mocap import EXTRA_SOURCES
from index_builder.datasets.motion_database import MotionDatabase
from index_builder.training.checkpoint import load_checkpoint
from model.runtime.bundle_format import sha256_of

COMMANDS = """make model        # = the commands below, about three and a half hours on 2 idle CPU cores
unihpr-build cache                      # the pose cache from ../shared/data/bandai-namco-motion
unihpr-build train --run runs/default   # UniHPR, preset `default`
unihpr-build baselines --run runs/default   # 3 Martinez lifters (--only NAME: one per process)
unihpr-build study --run runs/default   # singular-value vs pairwise-only, 3 seeds, preset `study`
unihpr-build generalise --run runs/default   # the generalisation study's arms, preset `study` (--arm NAME)
unihpr-build evaluate --run runs/default
unihpr-build weights --run runs/default --report reports/eval.json"""


def _fmt(value, unit: str = "", digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}{unit}"


def model_card(weights: Path, report: dict | None, db: MotionDatabase, float16_change_mm: float | None = None) -> str:
    config, state = load_checkpoint(weights)
    clips = db.clips
    lines = [
        "# Model card: UniHPR default weights",
        "",
        f"`{weights.name}` (sha256 `{sha256_of(weights)}`): pose2d, pose3d and image-feature encoders into one "
        f"{config.model.encoder.embed_dim}-dimensional L2-normalised embedding, with the 3D and 2D decoders. "
        "The service never loads this file: `unihpr-build index` exports it to ONNX inside a bundle.",
        "" if float16_change_mm is None else
        f"Stored as float16 (half the size of float32): lifted validation poses move by at most "
        f"{float16_change_mm:.2f} mm against the float32 checkpoint the metrics below were measured with.",
        "",
        "## Training",
        "",
        f"- Config `{config.name}`: alignment loss `{config.loss}` (pairwise weight {config.pairwise_weight}), "
        f"{config.align_steps} alignment steps then {config.decode_steps} decoder steps (`{config.decode_mode}` "
        f"trunk), batch {config.batch_size}, {config.poses_drawn:,} training poses drawn, seed {config.seed}; "
        f"encoder width {config.model.encoder.width} x {config.model.encoder.blocks} residual blocks, "
        f"{'one shared trunk' if config.model.encoder.shared_trunk else 'one trunk per modality'} with "
        "per-modality representation tokens.",
        f"- Wall time: {state['wall_seconds'] / 60:.1f} min of training on a 2-core CPU machine, both steps.",
        "- Views: random cameras (azimuth 0-360, elevation -10..45 deg, 2.5-8 m, focal 600-2000 px, roll +-10), "
        f"{config.augment.off_axis_fraction:.0%} of them turned so the person sits anywhere in the frame; the "
        f"H36M-like ring ({config.augment.rig_fraction:.0%}); sampled studio rigs "
        f"({config.augment.fixed_rig_fraction:.0%}: cameras 3-7 m out, 1-2.5 m high, aimed near the floor centre, "
        "field of view 35-80 deg, the subject anywhere in a 1.5 m disc of the floor); lens distortion on "
        f"{config.augment.distortion_fraction:.0%}; every 2D view perspective-cropped "
        f"(`model/pose/perspective_crop.py`) with its camera's intrinsics, or with the default field of view for "
        f"{config.augment.default_fov_fraction:.0%}; bone lengths x U(1 +- {config.augment.bone_scale}) "
        f"and skeleton size x U(1 +- {config.augment.global_scale}); mirroring; image features with the detector "
        "noise calibrated on the labelled photos (`index_builder/data/detector_noise.json`); "
        f"{config.augment.field_convention_fraction:.0%} of the pose2d and pose3d inputs made from the field's "
        "h36m17 joints and converted to unihpr17 as the service converts a request "
        "(`model/pose/joint_conventions.py`), "
        f"their neck base moved {config.augment.neck_shift_mm[0]:g} to {config.augment.neck_shift_mm[1]:g} mm "
        "along the head axis.",
        "",
        "Reproduce:",
        "",
        "```bash",
        COMMANDS,
        "```",
        "",
        "## Data and coverage",
        "",
        f"- {len(clips)} clips, {int(clips.length.sum()):,} frames of the Bandai Namco Research Motion Dataset "
        f"(datasets 1 and 2), split by clip, stratified by (dataset, content): "
        + ", ".join(f"{s} {int((clips.split == s).sum())} clips" for s in ("train", "val", "test")) + ".",
        f"- Contents: {', '.join(sorted(set(clips.content.tolist())))}.",
        f"- Styles: {', '.join(sorted(set(clips.style.tolist())))}.",
    ]
    if config.extra_data:
        lines += [f"- Also trained on (about {config.extra_share:.0%} of the training poses, their train split; read "
                  "from `../shared/data/extra-mocap/` through the ingestion path), other people on other skeletons: "
                  + "; ".join(f"`{name}`: {EXTRA_SOURCES[name].motions} ({EXTRA_SOURCES[name].licence})"
                              for name in config.extra_data) + ".",
                  "- Covered thinly: what the extra sources show (a few minutes each); most frames are Bandai's "
                  "three actors in locomotion and arm gestures. Expect larger errors on poses far from these."]
    else:
        lines.append("- Not covered: sitting, lying, floor work, crawling, sports other than running and a few "
                     "kicks and punches; three actors and one skeleton (bone lengths are augmented); most frames "
                     "are dataset-2 locomotion and arm gestures. Expect larger errors on poses far from these.")
    lines.append("")
    if report:
        lift = report["lifting"]
        gt = lift["conditions"]["gt_2d/h36m_rig"]
        base = lift["baseline_of_record"]
        paper = report["retrieval_paper"]["pose2d"]
        prvipe = report["retrieval_prvipe"]["hit_at_k"]
        def baseline(metric: str) -> str:
            return f"{_fmt(gt[base][metric])} ({base})" if base else "not in this run (`unihpr-build baselines`)"

        lines += [
            "## Metrics (held-out clips; `reports/eval.md` has every number and plot)",
            "",
            "| metric | UniHPR | baseline |",
            "|---|---|---|",
            f"| lifting MPJPE, GT 2D, H36M-like rig (mm) | {_fmt(gt['unihpr']['mpjpe_mm'])} | {baseline('mpjpe_mm')} |",
            f"| lifting PA-MPJPE, GT 2D, H36M-like rig (mm) | {_fmt(gt['unihpr']['pa_mpjpe_mm'])} | "
            f"{baseline('pa_mpjpe_mm')} |",
        ]
        rig = report.get("real_rig", {}).get("runs", {})
        for run, told in (("intrinsics", "intrinsics given"), ("default_fov", "default field of view")):
            if run in rig:
                row = rig[run]
                better = row.get("better_martinez")
                other = (f"{_fmt(row['lifters'][better]['mpjpe_mm'])} ({better})" if better
                         else "not in this run")
                lines.append(f"| lifting MPJPE, GT 2D, published H36M cameras, people off-centre, lens distortion, "
                             f"{told} (mm) | {_fmt(row['lifters']['unihpr']['mpjpe_mm'])} | {other} |")
        lines += [
            f"| retrieval top-1 MPJPE, 2D query, clip excluded (mm) | "
            f"{_fmt(paper['unihpr']['top1_clip_excluded']['mpjpe_mm'])} | "
            f"{_fmt(paper['nn_2d']['top1_clip_excluded']['mpjpe_mm'])} (2D nearest neighbour); oracle floor "
            f"{_fmt(report['retrieval_paper']['oracle_floor_clip_excluded']['mpjpe_mm'])} |",
            f"| Pr-VIPE cross-view Hit@1 | {_fmt(prvipe['unihpr']['1'], digits=3)} | "
            f"{_fmt(prvipe['nn_2d']['1'], digits=3)} (2D nearest neighbour) |",
            f"| cross-modal recall@1, mean of 6 pairs | {_fmt(report['alignment']['mean_recall_at_1'], digits=3)} | |",
            "",
        ]
        lines += [f"- {sentence}" for sentence in report["seed_study"].get("verdict", [])]
        lines.append("")
    lines += [
        "## Licence",
        "",
        "Trained on the Bandai Namco Research Motion Dataset (Kobayashi et al., arXiv 2306.08861, 2023), "
        "CC BY-NC 4.0: these weights, and every bundle, index and retrieved pose derived from them, are for "
        "**non-commercial use only** and carry this credit. BlazePose (used for images) is Apache-2.0.",
        "",
    ]
    credits = dict.fromkeys(EXTRA_SOURCES[name].credit for name in config.extra_data if EXTRA_SOURCES[name].credit)
    lines += [line for credit in credits for line in (credit, "")]
    return "\n".join(lines)


def write_model_card(weights: Path, report_path: Path | None, db: MotionDatabase, out: Path,
                     float16_change_mm: float | None = None) -> None:
    report = json.loads(report_path.read_text()) if report_path and report_path.is_file() else None
    with atomic_path(out, suffix=".md") as tmp:
        tmp.write_text(model_card(weights, report, db, float16_change_mm))
