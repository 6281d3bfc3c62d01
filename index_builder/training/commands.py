"""`unihpr-build train | baselines | study | generalise | calibrate`: the default model, the Martinez baselines, the
loss and generalisation studies, and the detector noise model the training views are corrupted with.

A run directory (default ``runs/default``, ``BuildPaths.default_run``) holds everything one evaluation reads:
    RUN/unihpr.pt                       the UniHPR model (both steps)
    RUN/martinez_budget.pt              Martinez at UniHPR's budget (training poses drawn)
    RUN/martinez_converged.pt           Martinez trained to convergence with early stopping
    RUN/study/<loss>_seed<k>.pt         singular-value vs pairwise-only at the reduced STUDY budget
    RUN/generalisation/<arm>.pt         the generalisation study's arms at the STUDY budget (and two Martinez)
    RUN/config.json                     the resolved TrainConfig of unihpr.pt
Every command resumes: a finished checkpoint is kept, an unfinished UniHPR checkpoint continues.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import torch
import typer

from index_builder.atomic_files import atomic_path
from index_builder.bundle.blazepose_assets import fetch_blazepose_models
from index_builder.config import get_paths
from index_builder.datasets.extra_mocap import training_databases
from index_builder.datasets.labelled_photos import photos_present
from index_builder.datasets.sample import load_poses
from index_builder.errors import DataFileError
from index_builder.training.config import (
    LOSSES,
    MARTINEZ_ARMS,
    PRESETS,
    generalisation_arms,
    resolve_config,
    unseen_motion_contents,
)
from index_builder.training.detector_calibration import calibrate as calibrate_noise
from index_builder.training.detector_calibration import save_report
from index_builder.training.loop import train_martinez, train_unihpr
from model.pose.skeleton import H36M17

app = typer.Typer(no_args_is_help=True)

RunOpt = Annotated[Path | None, typer.Option("--run", help="run directory (default: runs/default)")]
PresetOpt = Annotated[str, typer.Option(help=f"config preset: {', '.join(PRESETS)}")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="override a config value: key=value (repeatable)")]
SampleOpt = Annotated[bool, typer.Option("--sample", help="train on the shipped sample, not the full cache")]
ThreadsOpt = Annotated[int, typer.Option(min=1, help="torch CPU threads")]


def _load(use_sample: bool):
    db, path = load_poses(get_paths(), prefer_cache=not use_sample)
    typer.echo(f"poses: {path} ({len(db.clips)} clips, {len(db)} frames)")
    return db


def _prepare(run: Path, preset: str, overrides: list[str] | None, threads: int, use_sample: bool, db=None):
    """The resolved config and the train / val poses (of ``db``, else of the cache or sample); creates the run
    directory."""
    config = resolve_config(preset, overrides or [])
    torch.set_num_threads(threads)
    db = db if db is not None else _load(use_sample)
    train_db, val_db = training_databases(config, db, get_paths())
    if config.exclude_contents or config.extra_data:
        typer.echo(f"training poses: {len(train_db.clips)} clips, {len(train_db)} frames ({train_db.source}; "
                   f"contents left out: {', '.join(config.exclude_contents) or 'none'})")
    run.mkdir(parents=True, exist_ok=True)
    return config, train_db, val_db


@app.command()
def train(run: RunOpt = None, preset: PresetOpt = "default", set_: SetOpt = None,
          use_sample: SampleOpt = False, threads: ThreadsOpt = 2) -> None:
    """Train UniHPR: step 1 aligns the encoders, step 2 fits the decoders."""
    run = run or get_paths().default_run
    config, train_db, val_db = _prepare(run, preset, set_, threads, use_sample)
    with atomic_path(run / "config.json", suffix=".json") as tmp:
        tmp.write_text(config.to_json())
    result = train_unihpr(config, train_db, val_db, run / "unihpr.pt")
    typer.echo(f"{result.checkpoint}: trained in {result.wall_seconds / 60:.1f} min, {config.poses_drawn} poses drawn")


@app.command()
def baselines(run: RunOpt = None, preset: PresetOpt = "default", set_: SetOpt = None,
              use_sample: SampleOpt = False, threads: ThreadsOpt = 2,
              only: Annotated[list[str] | None, typer.Option(
                  help="train only these baselines (repeatable): martinez_budget, martinez_converged, "
                       "martinez_absolute; e.g. one per process")] = None) -> None:
    """Train the Martinez lifter at UniHPR's budget and to convergence with early stopping on UniHPR's 2D
    features, and to convergence on absolute image coordinates with the intrinsics (``martinez_absolute``)."""
    run = run or get_paths().default_run
    config, train_db, val_db = _prepare(run, preset, set_, threads, use_sample)
    plan = (("martinez_budget", config.poses_drawn, "crop"), ("martinez_converged", None, "crop"),
            ("martinez_absolute", None, "rays"))
    unknown = set(only or ()) - {name for name, _, _ in plan}
    if unknown:
        raise typer.BadParameter(f"unknown baseline(s) {', '.join(sorted(unknown))}", param_hint="--only")
    for name, budget, inputs in plan:
        if only and name not in only:
            continue
        out = run / f"{name}.pt"
        if out.exists():
            typer.echo(f"{out}: exists, kept")
            continue
        result = train_martinez(config, train_db, val_db, out, budget_poses=budget, inputs=inputs)
        typer.echo(f"{out}: trained in {result.wall_seconds / 60:.1f} min, best val MPJPE "
                   f"{min(h['val_mpjpe_mm'] for h in result.history):.1f} mm")


@app.command()
def study(run: RunOpt = None, preset: PresetOpt = "study", set_: SetOpt = None,
          seeds: Annotated[int, typer.Option(min=1, help="seeds per loss")] = 3,
          use_sample: SampleOpt = False, threads: ThreadsOpt = 2) -> None:
    """Singular-value loss vs pairwise InfoNCE only, same reduced budget, several seeds."""
    run = run or get_paths().default_run
    base, train_db, val_db = _prepare(run, preset, set_, threads, use_sample)
    (run / "study").mkdir(parents=True, exist_ok=True)
    for seed in range(seeds):
        for loss in LOSSES:
            config = replace(base, name=f"{loss}_seed{seed}", loss=loss, seed=seed)
            result = train_unihpr(config, train_db, val_db, run / "study" / f"{loss}_seed{seed}.pt")
            typer.echo(f"{config.name}: {result.wall_seconds / 60:.1f} min")


@app.command()
def generalise(run: RunOpt = None,
               arms: Annotated[list[str] | None, typer.Option("--arm", help="train only these arms (repeatable); "
                                                              "e.g. one per process")] = None,
               use_sample: SampleOpt = False, threads: ThreadsOpt = 2) -> None:
    """The generalisation study at the study budget (issue 15): one UniHPR per arm (the recipe, each augmentation
    part, all parts, the extra mocap, the unseen-motion subset) into RUN/generalisation/<arm>.pt, and the Martinez
    baseline at the same budget on the recipe's data and on the unseen-motion subset (<arm>_martinez.pt)."""
    run = run or get_paths().default_run
    folder = run / "generalisation"
    db = _load(use_sample)
    plan = generalisation_arms(unseen_motion_contents(db.clips.dataset, db.clips.content))
    unknown = set(arms or ()) - set(plan)
    if unknown:
        raise typer.BadParameter(f"unknown arm(s) {', '.join(sorted(unknown))}; known: {', '.join(plan)}",
                                 param_hint="--arm")
    for name, overrides in plan.items():
        if arms and name not in arms:
            continue
        config, train_db, val_db = _prepare(folder, "study", overrides, threads, use_sample, db)
        config = replace(config, name=name)
        result = train_unihpr(config, train_db, val_db, folder / f"{name}.pt")
        typer.echo(f"{name}: {result.wall_seconds / 60:.1f} min")
        if name in MARTINEZ_ARMS and not (out := folder / f"{name}_martinez.pt").exists():
            result = train_martinez(config, train_db, val_db, out, budget_poses=config.poses_drawn, inputs="crop")
            typer.echo(f"{out}: trained in {result.wall_seconds / 60:.1f} min")


@app.command()
def calibrate(
    pose_images: Annotated[Path | None, typer.Option(help="labelled photo folder (default: shared data)")] = None,
    noise_out: Annotated[Path | None, typer.Option(help="noise model to write (default: the one training reads, "
                                                        "index_builder/data/detector_noise.json)")] = None,
    report_out: Annotated[Path | None, typer.Option(help="calibration report to write (default: the committed one, "
                                                         "index_builder/data/detector_calibration.json)")] = None,
) -> None:
    """Calibrate the detector noise model on the labelled photos with BlazePose; rewrite the noise model and its
    report."""
    paths = get_paths()
    pose_images = pose_images or paths.pose_images
    noise_out = noise_out or paths.detector_noise
    report_out = report_out or paths.detector_calibration_report
    if not photos_present(pose_images):
        raise DataFileError(str(pose_images), "labelled photos not found (set UNIHPR_SHARED_DATA or pass "
                                              "--pose-images)")
    noise, report = calibrate_noise(pose_images, fetch_blazepose_models())
    noise.save(noise_out)
    save_report(report, report_out)
    typer.echo(f"{noise_out}: {noise.source}")
    typer.echo(f"  whole-body swaps {report['swaps']['whole_body']} of {report['swaps']['people']} people; hidden "
               f"joints {report['hidden']['hidden']} of {report['hidden']['joints']}")
    typer.echo("  sigma: " + ", ".join(f"{name} {s:.3f}" for name, s in zip(H36M17.names, noise.joint_sigma)))
    typer.echo(f"{report_out}: the report")
