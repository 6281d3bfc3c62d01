"""The extra real mocap of ``../shared/data/extra-mocap/`` as motion databases, read through the ingestion path.

Three sources (their README gives the contents and the terms): DeepMimic clips (MIT), CMU motions retargeted to an
iClone rig (BVH) and CMU motions as exponential maps (DMGNN). Each archive is unpacked once under the cache and
ingested with ``index_builder.ingest`` like any user library; the database is cached beside it
(``.cache/extra_<name>.npz``, written atomically). DeepMimic's ``*_mirror`` clips are left/right copies of three long
walks and are dropped, so no pose is counted twice.
"""

from __future__ import annotations

import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index_builder.atomic_files import atomic_directory
from index_builder.config import BuildPaths
from index_builder.datasets.motion_database import MotionDatabase, combine_databases
from index_builder.errors import DataFileError
from index_builder.ingest import IngestConfig, ingest
from index_builder.training.config import TrainConfig

CMU_TERMS = ("CMU Graphics Lab Motion Capture Database (mocap.cs.cmu.edu): free for research, may be included in "
             "commercially-sold products but not resold directly; acknowledgement: the database was created with "
             "funding from NSF EIA-0196217")
CMU_CREDIT = ("The data used in this project was obtained from mocap.cs.cmu.edu. The database was created with funding "
              "from NSF EIA-0196217.")  # the acknowledgement CMU asks for, word for word


@dataclass(frozen=True)
class ExtraSource:
    """archive: the tarball in extra-mocap; folder: the part of it to ingest; side_file: a file of extra-mocap that
    the reader needs beside the data (copied next to ``folder``); drop: clip-name fragments left out; motions:
    what the clips show, in words (the model card); credit: the acknowledgement its owners ask for, if any."""

    archive: str
    folder: str
    licence: str
    side_file: str | None = None
    drop: tuple[str, ...] = ()
    motions: str = ""
    credit: str | None = None


EXTRA_SOURCES = {
    "deepmimic": ExtraSource("deepmimic.tar.xz", "data", "MIT (xbpeng/DeepMimic); the clips' capture source is "
                                                         "not recorded", drop=("_mirror",)),
    "iclone-cmu": ExtraSource("iclone-cmu.tar.xz", "All_BVH", CMU_TERMS,
                              motions="CMU subjects 1-7: playground climbing and one sitting clip, jumps, ballet, "
                                      "basketball dribbling, swordplay, walking and running", credit=CMU_CREDIT),
    "dmgnn-cmu": ExtraSource("dmgnn-cmu.tar.xz", "data", f"MIT (limaosen0/DMGNN); {CMU_TERMS}",
                             side_file="dmgnn-cmu-skeleton.json",
                             motions="CMU basketball, soccer, directing traffic, jumping, running, walking and "
                                     "window washing", credit=CMU_CREDIT),
}


def _unpacked(paths: BuildPaths, name: str, source: ExtraSource) -> Path:
    """The archive unpacked under the cache (once; a half-unpacked folder never takes the final name)."""
    final = paths.extra_mocap_unpacked(name)
    if not final.is_dir():
        archive = paths.shared_data / "extra-mocap" / source.archive
        if not archive.is_file():
            raise DataFileError(str(archive), "extra-mocap archive not found (set UNIHPR_SHARED_DATA)")
        with atomic_directory(final) as tmp, tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
            if source.side_file:
                shutil.copy(paths.shared_data / "extra-mocap" / source.side_file, tmp / source.side_file)
    return final


def extra_database(paths: BuildPaths, name: str, workers: int = 2, progress: bool = True) -> MotionDatabase:
    """One extra-mocap source as a database (ingested on first use, then read from the cache)."""
    if name not in EXTRA_SOURCES:
        raise DataFileError(name, f"unknown extra-mocap source; known: {', '.join(EXTRA_SOURCES)}")
    cached = paths.extra_mocap_cache(name)
    if cached.is_file():
        return MotionDatabase.load(cached)
    source = EXTRA_SOURCES[name]
    root = _unpacked(paths, name, source)
    run = ingest([root / source.folder], IngestConfig(source=name, licence=source.licence, workers=workers,
                                                      keep_sources=False), progress=progress)
    if run.db is None:
        raise DataFileError(str(root), "no clip of the source could be ingested")
    db = run.db
    if source.drop:
        db = db.select_clips(np.array([not any(d in n for d in source.drop) for n in db.clips.name]))
    db.save(cached)
    return db


def training_databases(config: TrainConfig, db: MotionDatabase, paths: BuildPaths) -> tuple[MotionDatabase, ...]:
    """The train and val splits a config trains on: ``db``'s, less the clips of ``config.exclude_contents``, plus
    the same splits of each ``config.extra_data`` source. Training draws poses uniformly, so the extra train
    clips are repeated until they make about ``config.extra_share`` of the poses (they are some 6% as they are)."""
    sources = [extra_database(paths, name) for name in config.extra_data]
    out = []
    for split in ("train", "val"):
        main = db.split(split)
        extras = [source.split(split) for source in sources]
        if config.exclude_contents:
            main, *extras = [p.select_clips(~np.isin(p.clips.content, config.exclude_contents))
                             for p in (main, *extras)]
        repeat = 1
        extra_poses = sum(len(e) for e in extras)
        if split == "train" and extra_poses and config.extra_share > 0:
            repeat = max(1, round(config.extra_share / (1 - config.extra_share) * len(main) / extra_poses))
        out.append(combine_databases([main, *extras * repeat]))
    return tuple(out)
