"""``unihpr-build ingest``: a user's motion files -> one ``MotionDatabase`` of one source, bad files skipped.

Files are parsed in a process pool (``clip_steps.ingest_file`` per file), with a progress bar; clips come back in
any order and are sorted by id, so the database is the same for any number of workers.
"""

from __future__ import annotations

import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from index_builder.datasets.motion_database import ClipTable, MotionDatabase, assign_splits
from index_builder.errors import DataFileError
from index_builder.ingest.clip_steps import FileTask, IngestedClip, SkippedClip, ingest_file
from index_builder.ingest.config import IngestConfig
from index_builder.ingest.labels import ClipLabels, clip_labels, find_clips
from index_builder.progress import progress_bar
from model.runtime.motion_sources import ClipSources


@dataclass
class IngestRun:
    """db: the database (None when no clip was ingested); clips and skipped sorted by clip id; labels by id."""

    db: MotionDatabase | None
    clips: list[IngestedClip] = field(default_factory=list)
    skipped: list[SkippedClip] = field(default_factory=list)
    labels: dict[str, ClipLabels] = field(default_factory=dict)
    seconds: float = 0.0


def _run_tasks(tasks: list[FileTask], config: IngestConfig, progress: bool) -> list[IngestedClip | SkippedClip]:
    bar = progress_bar(desc="ingest", total=len(tasks), unit="file", enabled=progress)
    results = []
    if config.workers == 1 or len(tasks) <= 1:
        for task in tasks:
            results.append(ingest_file(task, config))
            bar.update()
    else:
        with ProcessPoolExecutor(max_workers=config.workers) as pool:
            for future in as_completed([pool.submit(ingest_file, task, config) for task in tasks]):
                results.append(future.result())
                bar.update()
    bar.close()
    return results


def build_database(clips: list[IngestedClip], labels: dict[str, ClipLabels], config: IngestConfig) -> MotionDatabase:
    """One database of the ingested clips, in id order, split by clip and stratified by (dataset, content).

    returns: poses (N, 17, 3) float32 mm, h36m17, Y up, at ``config.fps``; the BVH sources when the run keeps them.
    """
    names = [c.clip_id for c in clips]
    lengths = np.array([len(c.poses) for c in clips], dtype=np.int64)
    table = [labels[n] for n in names]
    splits = assign_splits(names, [f"{lab.dataset}/{lab.content}" for lab in table])
    return MotionDatabase(
        poses=np.concatenate([c.poses for c in clips]),
        clip=np.repeat(np.arange(len(clips), dtype=np.int32), lengths),
        frame=np.concatenate([np.arange(n, dtype=np.int32) for n in lengths]),
        clips=ClipTable(
            name=np.array(names),
            dataset=np.array([lab.dataset for lab in table]),
            content=np.array([lab.content for lab in table]),
            style=np.array([lab.style for lab in table]),
            split=np.array(splits),
            fps=np.full(len(clips), config.fps, dtype=np.float32),
            start=np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64),
            length=lengths,
        ),
        source=config.source,
        licence=config.licence,
        sources=ClipSources.from_blobs([c.fmt for c in clips], [c.source for c in clips])
        if config.keep_sources else None,
    )


def ingest(inputs: list[Path], config: IngestConfig, progress: bool = True) -> IngestRun:
    """Every motion file under ``inputs`` -> the run's database, its per-clip reports and its skips."""
    started = time.perf_counter()
    found = find_clips([Path(p) for p in inputs])
    if not found:
        raise DataFileError(", ".join(str(p) for p in inputs), "no motion files (.bvh, .txt, .npz, .npy) found")
    labels = {}
    skipped_labels = []
    for task, root in found:
        try:
            labels[task.clip_id] = clip_labels(task.path, root)
        except DataFileError as err:
            skipped_labels.append(SkippedClip(task.clip_id, str(task.path), str(err), type(err).__name__))
    tasks = [task for task, _ in found if task.clip_id in labels]
    results = _run_tasks(tasks, config, progress)
    clips = sorted((r for r in results if isinstance(r, IngestedClip)), key=lambda c: c.clip_id)
    skipped = sorted([r for r in results if isinstance(r, SkippedClip)] + skipped_labels, key=lambda s: s.clip_id)
    db = build_database(clips, labels, config) if clips else None
    return IngestRun(db=db, clips=clips, skipped=skipped, labels=labels, seconds=time.perf_counter() - started)
