"""What an ingest run tells its user: a summary table per rig family / format, the skipped files with their
reasons, and a JSON report of every clip (written atomically beside the database)."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path

import numpy as np

from index_builder.atomic_files import atomic_path
from index_builder.config import portable_path
from index_builder.ingest.pipeline import IngestRun

MM_PER_M = 1000.0


def report_path(db_path: Path) -> Path:
    """Where the JSON report of the database at ``db_path`` goes (``library.npz`` -> ``library.ingest.json``)."""
    return db_path.with_suffix(".ingest.json")


def summary_lines(run: IngestRun, fps: float) -> list[str]:
    """The table printed at the end of ``unihpr-build ingest``: one row per rig family or format, then the
    skipped files with their reasons."""
    rows: dict[str, list] = defaultdict(list)
    for clip in run.clips:
        rows[clip.kind].append(clip)
    header = (f"{'rig / format':<14}{'clips':>7}{'frames in':>11}{'poses':>9}{'height m':>10}{'left/right':>12}"
              f"{'unit':>7}{'up':>4}")
    lines = [header, "-" * len(header)]
    for kind in sorted(rows):
        clips = rows[kind]
        heights = [c.report.height_mm for c in clips if c.report.height_mm is not None]
        height = f"{np.median(heights) / MM_PER_M:.2f}" if heights else "-"
        units = ",".join(sorted({c.unit for c in clips}))
        ups = ",".join(sorted({c.up for c in clips}))
        lines.append(f"{kind:<14}{len(clips):>7}{sum(c.report.frames for c in clips):>11}"
                     f"{sum(len(c.poses) for c in clips):>9}{height:>10}"
                     f"{min(c.report.left_right for c in clips):>12.2f}{units:>7}{ups:>4}")
    total_poses = sum(len(c.poses) for c in run.clips)
    lines.append(f"{'total':<14}{len(run.clips):>7}{sum(c.report.frames for c in run.clips):>11}{total_poses:>9}")
    lines.append(f"{len(run.clips)} clips ingested, {len(run.skipped)} skipped, {total_poses} poses at {fps:g} fps "
                 f"in {run.seconds:.1f} s (height: median standing ankle to head top; left/right: lowest clip score)")
    if run.skipped:
        lines.append("skipped:")
        lines += [f"  {portable_path(Path(s.path))}: {s.reason} [{s.error}]" for s in run.skipped]
    return lines


def write_report(run: IngestRun, path: Path) -> None:
    """Every clip's labels, family, unit, axes, rates and checks, and every skip, as JSON."""
    report = {
        "source": run.db.source if run.db is not None else None,
        "licence": run.db.licence if run.db is not None else None,
        "seconds": round(run.seconds, 2),
        "clips": [
            {"clip": c.clip_id, "path": portable_path(Path(c.path)), "kind": c.kind, "unit": c.unit, "up": c.up,
             "source_fps": round(c.source_fps, 3), "poses": len(c.poses), **asdict(run.labels[c.clip_id]),
             **asdict(c.report)}
            for c in run.clips
        ],
        "skipped": [{"clip": s.clip_id, "path": portable_path(Path(s.path)), "reason": s.reason, "error": s.error}
                    for s in run.skipped],
    }
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(report, indent=1))
