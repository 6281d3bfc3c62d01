"""`unihpr-build cache | sample | show | calibrate`: build the pose cache, derive the shipped sample, draw poses,
calibrate the detector noise model on the labelled photos."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from index_builder.atomic_files import atomic_path
from index_builder.bundle.blazepose_assets import fetch_blazepose_models
from index_builder.config import SAMPLE_PATH, get_paths
from index_builder.datasets.bandai import build_bandai_database
from index_builder.datasets.labelled_photos import photos_present
from index_builder.datasets.motion_database import MotionDatabase
from index_builder.datasets.pose_checks import check_report
from index_builder.datasets.sample import load_poses, make_sample
from index_builder.errors import ArtifactError, DataFileError
from index_builder.training.detector_calibration import REPORT_PATH, save_report
from index_builder.training.detector_calibration import calibrate as calibrate_noise
from index_builder.training.detector_noise import CALIBRATION_PATH
from model.pose.skeleton import H36M17

app = typer.Typer(no_args_is_help=True)


@app.command()
def cache(
    archives: Annotated[list[Path] | None, typer.Option(help="Bandai .tar.xz archives (default: both, shared data)")] = None,
    out: Annotated[Path | None, typer.Option(help="cache file (default: .cache/bandai_h36m17.npz)")] = None,
    workers: Annotated[int, typer.Option(min=1, help="parsing processes")] = 2,
    keep_sources: Annotated[bool, typer.Option("--sources/--no-sources", help="keep every BVH file (compressed, "
                                               "about 131 MB) so bundles can return clips as BVH")] = False,
) -> None:
    """Build the h36m17 pose cache from the Bandai archives, with its sanity-check report beside it."""
    paths = get_paths()
    archives = archives or paths.bandai_archives
    for archive in archives:
        if not archive.is_file():
            raise DataFileError(str(archive), "archive not found (set UNIHPR_SHARED_DATA or pass --archives)")
    out = out or paths.bandai_cache
    start = time.perf_counter()
    db = build_bandai_database(archives, workers=workers, keep_sources=keep_sources)
    db.save(out)
    report = check_report(db)
    report["build_seconds"] = round(time.perf_counter() - start, 1)
    with atomic_path(out.with_suffix(".checks.json")) as tmp:
        tmp.write_text(json.dumps(report, indent=2))
    typer.echo(f"{out}: {report['clips']} clips, {report['frames']} frames in {report['build_seconds']} s")
    if db.sources is not None:
        typer.echo(f"  BVH sources kept: {len(db.sources.data) / 1e6:.1f} MB compressed")
    for bone in report["bones"]:
        kind = "rigid" if bone["rigid"] else "flexible"
        typer.echo(f"  {bone['name']:<22} {kind:<8} mean {bone['mean_mm']:7.1f} mm, "
                   f"range within a clip up to {bone['worst_clip_range_mm']:.4f} mm")
    h = report["standing_height_mm"]
    typer.echo(f"  standing frames: {report['standing_frames']}, ankle to head top "
               f"{h['min']:.0f} / {h['median']:.0f} / {h['max']:.0f} mm (min / median / max)")


@app.command()
def sample(
    source: Annotated[Path | None, typer.Option(help="full cache to sample (default: the built cache)")] = None,
    out: Annotated[Path, typer.Option(help="sample file")] = SAMPLE_PATH,
) -> None:
    """Derive the compact sample shipped in the repository from the full cache."""
    source = source or get_paths().bandai_cache
    if not source.is_file():
        raise ArtifactError(f"{source}: no cache; run `unihpr-build cache` first")
    small = make_sample(MotionDatabase.load(source))
    small.save(out, compress=True)
    typer.echo(f"{out}: {len(small.clips)} clips, {len(small)} poses, {out.stat().st_size / 1e6:.1f} MB")


@app.command()
def show(
    out: Annotated[Path, typer.Option(help="PNG to write")] = Path("reports/poses.png"),
    count: Annotated[int, typer.Option(min=1, max=8, help="poses to draw")] = 4,
    seed: Annotated[int, typer.Option(help="which poses")] = 0,
    use_sample: Annotated[bool, typer.Option("--sample", help="draw from the shipped sample, not the cache")] = False,
) -> None:
    """Draw a few poses in 3D and as seen by the H36M-like rig and a random camera, into one PNG."""
    from index_builder.datasets.pose_plots import plot_poses_and_views

    db, path = load_poses(get_paths(), prefer_cache=not use_sample)
    plot_poses_and_views(db, out, count=count, seed=seed)
    typer.echo(f"{out}: {count} poses from {path}")


@app.command()
def calibrate(
    pose_images: Annotated[Path | None, typer.Option(help="labelled photo folder (default: shared data)")] = None,
    noise_out: Annotated[Path, typer.Option(help="noise model to write")] = CALIBRATION_PATH,
    report_out: Annotated[Path, typer.Option(help="calibration report to write")] = REPORT_PATH,
) -> None:
    """Calibrate the detector noise model on the labelled photos with BlazePose; rewrite the noise model and its
    report."""
    pose_images = pose_images or get_paths().pose_images
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
