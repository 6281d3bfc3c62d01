"""`unihpr-build ingest`: a folder of motion files (BVH of any known rig, DeepMimic, CMU exponential maps, h36m17
arrays) -> one pose database for `unihpr-build index --poses`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from index_builder.errors import DataFileError
from index_builder.ingest import IngestConfig, load_user_mapping
from index_builder.ingest import ingest as ingest_paths
from index_builder.ingest.config import DEFAULT_FPS
from index_builder.ingest.summary import report_path, summary_lines, write_report

app = typer.Typer(no_args_is_help=True)


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="motion files or folders (searched recursively)")],
    out: Annotated[Path, typer.Option(help="database to write (.npz); its report goes beside it (.ingest.json)")],
    licence: Annotated[str, typer.Option(help="the source's licence; kept in the database and every bundle")],
    source: Annotated[str, typer.Option(help="the source's name, kept with every pose")] = "user-library",
    mapping: Annotated[list[Path] | None, typer.Option(help="TOML rig mapping for a rig the builder does not "
                                                            "know (repeatable)")] = None,
    fps: Annotated[float, typer.Option(help="database frame rate; clips are resampled to it")] = DEFAULT_FPS,
    units: Annotated[str, typer.Option(help="file length unit: auto (from the leg length), mm, cm, m, inch, "
                                            "cmu")] = "auto",
    up: Annotated[str, typer.Option(help="file up axis: auto, y or z")] = "auto",
    array_fps: Annotated[float, typer.Option(help="frame rate of joint arrays that carry none")] = DEFAULT_FPS,
    workers: Annotated[int, typer.Option(min=1, help="parsing processes")] = 2,
    keep_sources: Annotated[bool, typer.Option("--sources/--no-sources", help="keep each BVH file's text "
                                               "(compressed) so bundles can return clips as BVH")] = True,
) -> None:
    """Read every motion file under PATHS into one pose database; bad files are skipped and listed."""
    config = IngestConfig(source=source, licence=licence, fps=fps, units=units, up=up, array_fps=array_fps,
                          families=tuple(load_user_mapping(m) for m in mapping or []), workers=workers,
                          keep_sources=keep_sources)
    run = ingest_paths(paths, config)
    for line in summary_lines(run, config.fps):
        typer.echo(line)
    if run.db is None:
        raise DataFileError(", ".join(str(p) for p in paths), f"no clip could be ingested ({len(run.skipped)} "
                                                              "skipped, reasons above)")
    run.db.save(out)
    write_report(run, report_path(out))
    typer.echo(f"{out}: {len(run.db.clips)} clips, {len(run.db)} poses; report {report_path(out)}")
