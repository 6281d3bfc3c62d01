"""`unihpr-build evaluate`: every metric of SPEC section 6 for one run directory, into reports/eval.{json,md}."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import torch
import typer

from index_builder.bundle.blazepose_assets import fetch_blazepose_models
from index_builder.config import get_paths
from index_builder.datasets.labelled_photos import photos_present
from index_builder.datasets.sample import load_poses
from index_builder.errors import ArtifactError
from index_builder.evaluation import EvalSettings, evaluate_run, unihpr_checkpoint, write_report

app = typer.Typer(no_args_is_help=True)


@app.command()
def evaluate(
    run: Annotated[Path, typer.Option("--run", help="run directory (unihpr.pt, martinez_*.pt, study/)")] = Path(
        "runs/default"),
    out: Annotated[Path, typer.Option(help="report folder")] = Path("reports"),
    use_sample: Annotated[bool, typer.Option("--sample", help="evaluate on the shipped sample, not the cache")] = False,
    max_queries: Annotated[int, typer.Option(min=0, help="retrieval queries (0 = every evaluated frame)")] = 2000,
    eval_fps: Annotated[float, typer.Option(min=0.1, help="held-out frames are subsampled to about this rate")] = 3.0,
    threads: Annotated[int, typer.Option(min=1, help="torch CPU threads")] = 2,
    progress: Annotated[bool, typer.Option(help="progress bars")] = True,
    images: Annotated[bool, typer.Option(help="image -> lift3d on the labelled photos (needs the BlazePose "
                                              "models; fetched once)")] = True,
    motion_queries: Annotated[int | None, typer.Option(
        min=0, help="motion search: queries per speed (0 = skip; default 200, 8 with --sample: a smoke test)")] = None,
) -> None:
    """Lifting, the fixed real rig, retrieval (paper and Pr-VIPE protocols, and from real cameras over the whole
    library with re-ranking), alignment and the seed study on held-out clips; image -> lift3d, photo consistency
    and the detector error statistics on the labelled photos."""
    unihpr_checkpoint(run)  # fail before loading the poses
    torch.set_num_threads(threads)
    db, path = load_poses(get_paths(), prefer_cache=not use_sample)
    settings = replace(EvalSettings(), max_queries=max_queries or None, eval_fps=eval_fps,
                       motion_queries=motion_queries if motion_queries is not None else 8 if use_sample else 200)
    pose_images = get_paths().pose_images if images else None
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
