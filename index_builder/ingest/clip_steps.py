"""One file through every step: read (by format), up axis to Y, checks, resampling to the database rate.

This is what each worker process runs; a file that fails any step becomes a ``SkippedClip`` with a one-line
reason, so one bad file never stops a run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index_builder.errors import BuildError, ClipCheckError, DataFileError
from index_builder.ingest.clip_checks import ClipReport, check_clip
from index_builder.ingest.config import IngestConfig
from index_builder.ingest.file_formats import READERS
from index_builder.ingest.resampling import resample
from index_builder.ingest.units import detect_up_axis, to_y_up
from model.runtime.motion_sources import compress_source

SOURCE_FORMATS = ("bvh",)  # formats whose file is kept as the clip's source (the service cuts segments from it)


@dataclass(frozen=True)
class FileTask:
    """path: the file; clip_id: its unique name in the database; fmt: a key of ``READERS``."""

    path: Path
    clip_id: str
    fmt: str


@dataclass(frozen=True)
class IngestedClip:
    """poses: (T, 17, 3) float32 mm, h36m17, Y up, at the database rate; report: measured at the file's rate.

    fmt: the file's format (a key of ``READERS``); source: the file's bytes zlib-compressed when the format is in
    ``SOURCE_FORMATS`` and the run keeps sources, else None.
    """

    clip_id: str
    path: str
    kind: str
    unit: str
    up: str
    source_fps: float
    poses: np.ndarray
    report: ClipReport
    fmt: str = ""
    source: bytes | None = None


@dataclass(frozen=True)
class SkippedClip:
    """reason: one line; error: the class of the failure (``BvhParseError``, ``UnknownRigError``, ...)."""

    clip_id: str
    path: str
    reason: str
    error: str


def _ingest(task: FileTask, config: IngestConfig) -> IngestedClip:
    clip = READERS[task.fmt](task.path, config)
    if clip.num_frames == 0:
        raise ClipCheckError(str(task.path), "zero frames")
    if not np.isfinite(clip.joints).all():
        raise ClipCheckError(str(task.path), "joints hold NaN or inf")
    up = clip.up or detect_up_axis(clip.joints)
    joints = clip.joints if up == "y" else to_y_up(clip.joints, up)
    toes = clip.toes if up == "y" or clip.toes is None else to_y_up(clip.toes, up)
    report = check_clip(joints, toes, clip.rigid, str(task.path))
    poses = resample(joints, clip.times_s, config.fps).astype(np.float32)
    keep = config.keep_sources and task.fmt in SOURCE_FORMATS
    return IngestedClip(clip_id=task.clip_id, path=str(task.path), kind=clip.kind, unit=clip.unit, up=up,
                        source_fps=clip.source_fps, poses=poses, report=report, fmt=task.fmt,
                        source=compress_source(task.path.read_bytes()) if keep else None)


def ingest_file(task: FileTask, config: IngestConfig) -> IngestedClip | SkippedClip:
    """The clip of one file, or the reason it was skipped (malformed data is reported, never raised)."""
    try:
        return _ingest(task, config)
    except BuildError as err:
        reason = err.problem if isinstance(err, DataFileError) else str(err)
        return SkippedClip(task.clip_id, str(task.path), reason, type(err).__name__)
    except (ValueError, OSError) as err:  # malformed numbers or an unreadable file that a reader did not name
        return SkippedClip(task.clip_id, str(task.path), f"unreadable: {err}", type(err).__name__)
