"""The compact sample of the Bandai cache that ships in the repository, so a fresh clone works without the
archives; and the rule that picks the full cache when it exists."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from index_builder.config import BuildPaths
from index_builder.datasets.motion_database import MotionDatabase, name_hash_order

SAMPLE_CLIP_FRACTION = 0.1  # of the clips of every (dataset, content, split) group, at least one
SAMPLE_FRAME_STEP = 3  # 30 fps -> 10 fps


def make_sample(db: MotionDatabase, clip_fraction: float = SAMPLE_CLIP_FRACTION,
                frame_step: int = SAMPLE_FRAME_STEP) -> MotionDatabase:
    """A deterministic subset: ``clip_fraction`` of the clips of every (dataset, content, split) group, chosen by
    a hash of their names, at every ``frame_step``-th frame. Splits are kept as in ``db``."""
    groups: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    for i in range(len(db.clips)):
        groups[(db.clips.dataset[i], db.clips.content[i], db.clips.split[i])].append(i)
    keep = np.zeros(len(db.clips), dtype=bool)
    for members in groups.values():
        members = name_hash_order(members, db.clips.name)
        keep[members[: max(1, round(clip_fraction * len(members)))]] = True
    return db.select_clips(keep).every_nth_frame(frame_step)


def load_poses(paths: BuildPaths, prefer_cache: bool = True) -> tuple[MotionDatabase, Path]:
    """The full Bandai cache when it has been built, else the embedded sample; returns the database and its file."""
    path = paths.bandai_cache if prefer_cache and paths.bandai_cache.exists() else paths.sample
    return MotionDatabase.load(path), path
