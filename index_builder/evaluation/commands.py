"""`unihpr-build evaluate | conventions`: every metric of SPEC section 6 for one run directory, into
reports/eval.{json,md}; the fit of the conversion between the field's and our joint conventions."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import numpy as np
import torch
import typer

from index_builder.bundle.blazepose_assets import fetch_blazepose_models
from index_builder.config import get_paths
from index_builder.datasets.labelled_photos import photos_present
from index_builder.datasets.motion_database import MotionDatabase
from index_builder.datasets.sample import load_poses
from index_builder.errors import ArtifactError
from index_builder.evaluation import evaluate_run, unihpr_checkpoint, write_report
from index_builder.training.checkpoint import load_checkpoint
from index_builder.training.config import EvalSettings
from model.pose.skeleton import H36M17

app = typer.Typer(no_args_is_help=True)


def evaluation_settings(run_settings: EvalSettings, max_queries: int | None, eval_fps: float | None,
                        motion_queries: int | None, use_sample: bool) -> EvalSettings:
    """The run's settings with the options given on the command line; ``--sample`` alone makes motion search a
    smoke test (8 queries per speed)."""
    settings = run_settings
    if max_queries is not None:
        settings = replace(settings, max_queries=max_queries or None)
    if eval_fps is not None:
        settings = replace(settings, eval_fps=eval_fps)
    if motion_queries is not None or use_sample:
        settings = replace(settings, motion_queries=8 if motion_queries is None else motion_queries)
    return settings


@app.command()
def evaluate(
    run: Annotated[Path | None, typer.Option("--run", help="run directory (unihpr.pt, martinez_*.pt, study/; "
                                                           "default: runs/default)")] = None,
    out: Annotated[Path | None, typer.Option(help="report folder (default: reports)")] = None,
    use_sample: Annotated[bool, typer.Option("--sample", help="evaluate on the shipped sample, not the cache")] = False,
    max_queries: Annotated[int | None, typer.Option(
        min=0, help="retrieval queries (0 = every evaluated frame; default: the run config's, 2000)")] = None,
    eval_fps: Annotated[float | None, typer.Option(
        min=0.1, help="held-out frames are subsampled to about this rate (default: the run config's, 3)")] = None,
    threads: Annotated[int, typer.Option(min=1, help="torch CPU threads")] = 2,
    progress: Annotated[bool, typer.Option(help="progress bars")] = True,
    images: Annotated[bool, typer.Option(help="image -> lift3d on the labelled photos (needs the BlazePose "
                                              "models; fetched once)")] = True,
    motion_queries: Annotated[int | None, typer.Option(
        min=0, help="motion search: queries per speed (0 = skip; default: the run config's, 200; 8 with --sample: "
                    "a smoke test)")] = None,
) -> None:
    """Lifting, the fixed real rig, retrieval (paper and Pr-VIPE protocols, and from real cameras over the whole
    library with re-ranking), alignment and the seed study on held-out clips; image -> lift3d, photo consistency
    and the detector error statistics on the labelled photos, with the settings of the run's config."""
    paths = get_paths()
    run, out = run or paths.default_run, out or paths.reports_dir
    config, _ = load_checkpoint(unihpr_checkpoint(run))  # fail before loading the poses
    settings = evaluation_settings(config.evaluation, max_queries, eval_fps, motion_queries, use_sample)
    torch.set_num_threads(threads)
    db, path = load_poses(paths, prefer_cache=not use_sample)
    pose_images = paths.pose_images if images else None
    blazepose = None
    if pose_images is not None and photos_present(pose_images):
        try:
            blazepose = fetch_blazepose_models()
        except ArtifactError as err:  # offline and not cached: the report says the section was skipped
            typer.echo(f"BlazePose models unavailable, image lifting skipped: {err}", err=True)
    result = evaluate_run(run, db, path, settings, progress=progress,
                          pose_images=pose_images, blazepose_files=blazepose)
    written = write_report(result, out)
    lift = result["lifting"]["conditions"]["gt_2d/h36m_rig"]
    record = result["lifting"]["baseline_of_record"]
    line = f"GT-2D rig MPJPE: UniHPR {lift['unihpr']['mpjpe_mm']:.1f} mm"
    if record:
        line += f", {record} {lift[record]['mpjpe_mm']:.1f} mm"
    typer.echo(f"{line}; mean recall@1 {result['alignment']['mean_recall_at_1']:.3f}; "
               f"{result['wall_seconds']['total']:.0f} s")
    rig = result["real_rig"]
    if rig["status"] == "computed":
        run = rig["runs"]["intrinsics"]
        line = (f"fixed real rig ({rig['subject']} H36M cameras, intrinsics given, {rig['views']} views): UniHPR "
                f"{run['lifters']['unihpr']['mpjpe_mm']:.1f} mm")
        if run["better_martinez"]:
            line += f", {run['better_martinez']} {run['lifters'][run['better_martinez']]['mpjpe_mm']:.1f} mm"
        typer.echo(line)
    photos = result["image_lifting"]
    if photos["status"] == "computed":
        pck = photos["pooled"]["pck"]
        typer.echo(f"labelled photos, PCK@{photos['pck_fraction']:g} over {photos['pooled']['people']} people: "
                   f"lifted {pck['lifted']:.3f}, detector 2D (same fit) {pck['detector_fitted']:.3f}")
    consistency = result["photo_consistency"]
    if consistency["status"] == "computed" and consistency["people"]:
        typer.echo(f"photo consistency over {consistency['people']} people: median misalignment "
                   f"{consistency['angle_deg']['median']:.2f} degrees")
    library = result.get("retrieval_real", {})
    if library.get("status") == "computed":
        rig = library["results"]["real_rig"]
        typer.echo(f"retrieval over the library ({library['gallery']['poses']} poses x {library['gallery']['views']} "
                   f"views), real rig, top-1 PA-MPJPE by cosine -> re-ranked: clip excluded "
                   f"{rig['clip_excluded']['cosine']['top1_pa_mpjpe_mm']:.1f} -> "
                   f"{rig['clip_excluded']['reranked']['top1_pa_mpjpe_mm']:.1f} mm (floor "
                   f"{rig['clip_excluded']['oracle_floor_mm']:.1f}), clip included "
                   f"{rig['clip_included']['cosine']['top1_pa_mpjpe_mm']:.1f} -> "
                   f"{rig['clip_included']['reranked']['top1_pa_mpjpe_mm']:.1f} mm; predicted-error Spearman "
                   f"{library['confidence']['pooled']['spearman']}")
    for path in written:
        typer.echo(f"  {path}")


@app.command()
def conventions(
    source: Annotated[Path | None, typer.Option(help="cache with field joints (default: the built cache)")] = None,
    step: Annotated[int, typer.Option(min=1, help="fit on every step-th frame of the training clips")] = 10,
) -> None:
    """Fit the conversion between the h36m17 (field) and unihpr17 conventions on the training clips; print the
    weights for ``model/pose/joint_conventions.py`` and each converted joint's error on the validation clips."""
    from model.pose.joint_conventions import FIELD, OURS, conversion_matrix, fit_conversion, with_derived

    source = source or get_paths().bandai_cache
    db = MotionDatabase.load(source)
    if db.field_joints is None:
        raise ArtifactError(f"{source}: no field joints; rebuild it with `unihpr-build cache`")

    def both(split: str, every: int) -> tuple[np.ndarray, np.ndarray]:
        part = db.split(split)
        rows = np.flatnonzero(part.frame % every == 0)
        ours = part.poses[rows].astype(np.float64)
        return ours, with_derived(ours, part.field_joints[rows])

    ours, field = both("train", step)
    fitted = {OURS: fit_conversion(field, ours, FIELD, ("neck_nose", "head_top")),
              FIELD: fit_conversion(ours, field, OURS, ("thorax", "neck_nose", "head_top"))}
    val_ours, val_field = both("val", 1)
    shoulders = (val_ours[:, H36M17.index("l_shoulder")] + val_ours[:, H36M17.index("r_shoulder")]) / 2
    above = val_field[:, H36M17.index("thorax"), 1] - shoulders[:, 1]  # world Y up
    typer.echo(f"field thorax (the rig's neck joint) above the shoulder line: median {np.median(above):.1f} mm, "
               f"5-95th percentile {np.percentile(above, 5):.1f}-{np.percentile(above, 95):.1f} mm")
    given = {OURS: val_field, FIELD: val_ours}
    truth = {OURS: val_ours, FIELD: val_field}
    for target, rows in fitted.items():
        source_name = FIELD if target == OURS else OURS
        typer.echo(f"FITTED_TO_{'OURS' if target == OURS else 'FIELD'} = {rows!r}")
        converted = np.einsum("jk,nkc->njc", conversion_matrix(source_name, target, rows), given[target])
        error = np.linalg.norm(converted - truth[target], axis=-1)  # (N, 17) mm
        for j in sorted(set(np.flatnonzero(error.max(axis=0) > 1e-6))):
            typer.echo(f"  {source_name} -> {target} {H36M17.names[j]:<10} mean {error[:, j].mean():6.1f} mm, "
                       f"95th percentile {np.percentile(error[:, j], 95):6.1f} mm ({len(error)} validation poses)")
