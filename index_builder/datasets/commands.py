"""`unihpr-build cache | sample | show`: build the pose cache, derive the shipped sample, draw poses."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from index_builder.atomic_files import atomic_path
from index_builder.config import get_paths
from index_builder.datasets.bandai import build_bandai_database
from index_builder.datasets.motion_database import MotionDatabase
from index_builder.datasets.pose_checks import check_report
from index_builder.datasets.sample import load_poses, make_sample
from index_builder.errors import ArtifactError, DataFileError

app = typer.Typer(no_args_is_help=True)


@app.command()
def cache(
    archives: Annotated[list[Path] | None, typer.Option(
        help="Bandai .tar.xz archives (default: both, shared data)")] = None,
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
    out: Annotated[Path | None, typer.Option(help="sample file (default: the shipped one, "
                                                  "index_builder/data/bandai_sample.npz)")] = None,
) -> None:
    """Derive the compact sample shipped in the repository from the full cache."""
    source = source or get_paths().bandai_cache
    out = out or get_paths().sample
    if not source.is_file():
        raise ArtifactError(f"{source}: no cache; run `unihpr-build cache` first")
    small = make_sample(MotionDatabase.load(source))
    small.save(out, compress=True)
    typer.echo(f"{out}: {len(small.clips)} clips, {len(small)} poses, {out.stat().st_size / 1e6:.1f} MB")


@app.command()
def show(
    out: Annotated[Path | None, typer.Option(help="PNG to write (default: reports/poses.png)")] = None,
    count: Annotated[int, typer.Option(min=1, max=8, help="poses to draw")] = 4,
    seed: Annotated[int, typer.Option(help="which poses")] = 0,
    use_sample: Annotated[bool, typer.Option("--sample", help="draw from the shipped sample, not the cache")] = False,
) -> None:
    """Draw a few poses in 3D and as seen by the H36M-like rig and a random camera, into one PNG."""
    from index_builder.datasets.pose_plots import plot_poses_and_views

    paths = get_paths()
    out = out or paths.reports_dir / "poses.png"
    db, path = load_poses(paths, prefer_cache=not use_sample)
    plot_poses_and_views(db, out, count=count, seed=seed)
    typer.echo(f"{out}: {count} poses from {path}")
