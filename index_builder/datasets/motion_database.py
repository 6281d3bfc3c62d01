"""A database of h36m17 poses grouped into labelled clips: the builder's one data format.

The full Bandai cache and the embedded sample are both files of this format (a .npz written atomically). A
database may also keep each clip's source motion file (``ClipSources``: the BVH text, compressed), which bundles
carry so the service can hand a clip back in its own rig; files written before sources existed load without them.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np

from index_builder.atomic_files import atomic_path
from index_builder.errors import DataFileError
from model.pose.joint_conventions import DERIVED_INDEX, FIELD, OURS, convert_joints
from model.pose.joint_formulas import FORMULAS_VERSION
from model.pose.skeleton import NUM_JOINTS
from model.runtime.motion_sources import ClipSources

FORMAT_VERSION = 1
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class ClipTable:
    """One row per clip; string columns are numpy unicode arrays.

    name: unique clip name (e.g. ``dataset-2_walk_normal_001``); dataset, content, style: labels normalised
    across sources; split: train / val / test; fps: frames per second of ``frame``; start, length: rows of the
    clip in the pose arrays.
    """

    name: np.ndarray
    dataset: np.ndarray
    content: np.ndarray
    style: np.ndarray
    split: np.ndarray
    fps: np.ndarray
    start: np.ndarray
    length: np.ndarray

    def __len__(self) -> int:
        return len(self.name)


@dataclass(frozen=True)
class MotionDatabase:
    """Poses with their clip and frame.

    poses: (N, 17, 3) float32, mm, h36m17, world frame of the source (Bandai: Y up).
    clip: (N,) int32, row in ``clips``; frame: (N,) int32, frame number at the clip's ``fps`` (frame f is
    f / fps seconds after the source's first frame).
    sources: the clips' source files (one per clip), or None when the database keeps none.
    field_joints: (N, 4, 3) float32 mm, the field convention's spine, thorax, neck/nose and head top
        (``model.pose.joint_conventions``), built from the rig's neck and head joints; None where the source has no
        neck joint (consumers then convert ``poses``).
    """

    poses: np.ndarray
    clip: np.ndarray
    frame: np.ndarray
    clips: ClipTable
    source: str
    licence: str
    sources: ClipSources | None = None
    field_joints: np.ndarray | None = None

    def __post_init__(self) -> None:
        assert self.poses.ndim == 3 and self.poses.shape[1:] == (NUM_JOINTS, 3), self.poses.shape
        assert self.field_joints is None or self.field_joints.shape == (len(self.poses), 4, 3)
        assert self.clip.shape == self.frame.shape == self.poses.shape[:1]
        assert self.sources is None or len(self.sources) == len(self.clips), (len(self.sources), len(self.clips))

    def __len__(self) -> int:
        return self.poses.shape[0]

    def take(self, keep: np.ndarray, **changes) -> MotionDatabase:
        """The poses where ``keep`` (bool, one per pose), every per-pose array alike; ``changes`` replace fields."""
        rows = {"poses": self.poses[keep], "clip": self.clip[keep], "frame": self.frame[keep],
                "field_joints": None if self.field_joints is None else self.field_joints[keep]}
        return replace(self, **{**rows, **changes})

    def select_clips(self, keep: np.ndarray) -> MotionDatabase:
        """The database restricted to clips where ``keep`` (bool, one per clip) is true."""
        keep_rows = keep[self.clip]
        new_index = np.cumsum(keep) - 1
        clips = ClipTable(**{f.name: getattr(self.clips, f.name)[keep] for f in fields(ClipTable)})
        lengths = np.bincount(new_index[self.clip[keep_rows]], minlength=int(keep.sum()))
        clips = replace(clips, start=np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64),
                        length=lengths.astype(np.int64))
        return self.take(keep_rows, clip=new_index[self.clip[keep_rows]].astype(np.int32), clips=clips,
                         sources=self.sources.select(keep) if self.sources is not None else None)

    def split(self, name: str) -> MotionDatabase:
        """Clips of one split (``train``, ``val`` or ``test``)."""
        assert name in SPLITS, name
        return self.select_clips(self.clips.split == name)

    def every_nth_frame(self, step: int) -> MotionDatabase:
        """Keep frames whose number is a multiple of ``step`` (30 fps with step 3 gives 10 fps)."""
        keep = self.frame % step == 0
        lengths = np.bincount(self.clip[keep], minlength=len(self.clips))
        clips = replace(
            self.clips,
            fps=self.clips.fps / step,
            start=np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64),
            length=lengths.astype(np.int64),
        )
        return self.take(keep, frame=self.frame[keep] // step, clips=clips)

    def save(self, path: str | Path, compress: bool = False) -> None:
        """Write atomically (temporary name, then rename)."""
        arrays = {f"clips_{f.name}": getattr(self.clips, f.name) for f in fields(ClipTable)}
        arrays.update(
            poses=self.poses,
            clip=self.clip,
            frame=self.frame,
            source=np.array(self.source),
            licence=np.array(self.licence),
            format_version=np.array(FORMAT_VERSION),
            formulas_version=np.array(FORMULAS_VERSION),
        )
        if self.field_joints is not None:
            arrays.update(field_joints=self.field_joints)
        if self.sources is not None:  # already compressed: stored as they are
            arrays.update(sources_format=self.sources.format, sources_data=self.sources.data,
                          sources_offsets=self.sources.offsets)
        with atomic_path(path, suffix=".npz") as tmp:
            with open(tmp, "wb") as fh:
                (np.savez_compressed if compress else np.savez)(fh, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> MotionDatabase:
        """Read a file written by ``save``; raises DataFileError naming the file and the problem."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except (OSError, ValueError) as err:
            raise DataFileError(str(path), f"cannot read motion database: {err}") from err
        needed = {"poses", "clip", "frame", "source", "licence", "format_version", "formulas_version"}
        needed |= {f"clips_{f.name}" for f in fields(ClipTable)}
        missing = needed - set(arrays)
        if missing:
            raise DataFileError(str(path), f"not a motion database: missing {sorted(missing)}")
        if int(arrays["format_version"]) != FORMAT_VERSION:
            raise DataFileError(str(path), f"format version {arrays['format_version']} != {FORMAT_VERSION}")
        if str(arrays["formulas_version"]) != FORMULAS_VERSION:
            raise DataFileError(
                str(path), f"built with joint formulas v{arrays['formulas_version']}, code has v{FORMULAS_VERSION}:"
                " rebuild the cache",
            )
        poses = arrays["poses"]
        if poses.ndim != 3 or poses.shape[1:] != (NUM_JOINTS, 3) or poses.dtype != np.float32:
            raise DataFileError(str(path), f"poses must be (N, {NUM_JOINTS}, 3) float32, "
                                           f"got {poses.shape} {poses.dtype}")
        if arrays["clip"].shape != poses.shape[:1] or arrays["frame"].shape != poses.shape[:1]:
            raise DataFileError(str(path), "clip and frame must have one entry per pose")
        clips = ClipTable(**{f.name: arrays[f"clips_{f.name}"] for f in fields(ClipTable)})
        if len(clips) and (arrays["clip"].min() < 0 or arrays["clip"].max() >= len(clips)):
            raise DataFileError(str(path), "clip index out of range")
        sources = None
        if "sources_format" in arrays:
            sources = ClipSources(arrays["sources_format"], arrays["sources_data"], arrays["sources_offsets"])
            if len(sources) != len(clips) or sources.offsets[-1] != len(sources.data):
                raise DataFileError(str(path), "source files do not match the clip table")
        field_joints = arrays.get("field_joints")
        if field_joints is not None and (field_joints.shape != (len(poses), 4, 3) or field_joints.dtype != np.float32):
            raise DataFileError(str(path), f"field_joints must be (N, 4, 3) float32, got {field_joints.shape} "
                                f"{field_joints.dtype}")
        return cls(poses=poses, clip=arrays["clip"], frame=arrays["frame"], clips=clips,
                   source=str(arrays["source"]), licence=str(arrays["licence"]), sources=sources,
                   field_joints=field_joints)


def combine_databases(dbs: list[MotionDatabase]) -> MotionDatabase:
    """One database of several sources' clips, in the given order; sources' BVH texts are not kept.

    Where some sources carry the field's joints and others do not, the others get them by the documented
    conversion from their poses (``model.pose.joint_conventions``), so training mixes them alike.
    """
    if len(dbs) == 1:
        return dbs[0]
    offsets = np.cumsum([0] + [len(db.clips) for db in dbs[:-1]])
    starts = np.cumsum([0] + [len(db) for db in dbs[:-1]])
    clips = ClipTable(**{f.name: np.concatenate([getattr(db.clips, f.name) for db in dbs]) for f in fields(ClipTable)})
    clips = replace(clips, start=np.concatenate([db.clips.start + s for db, s in zip(dbs, starts)]))
    field_joints = None
    if any(db.field_joints is not None for db in dbs):
        field_joints = np.concatenate([db.field_joints if db.field_joints is not None else _field_joints_of(db.poses)
                                       for db in dbs])
    return MotionDatabase(
        poses=np.concatenate([db.poses for db in dbs]),
        clip=np.concatenate([db.clip + o for db, o in zip(dbs, offsets)]).astype(np.int32),
        frame=np.concatenate([db.frame for db in dbs]),
        clips=clips,
        source=" + ".join(dict.fromkeys(db.source for db in dbs)),
        licence=" | ".join(dict.fromkeys(db.licence for db in dbs)),
        field_joints=field_joints,
    )


def _field_joints_of(poses: np.ndarray) -> np.ndarray:
    return convert_joints(poses, OURS, FIELD)[:, list(DERIVED_INDEX)].astype(np.float32)


def name_hash_order(indices: list[int], names) -> list[int]:
    """``indices`` ordered by a hash of ``names[i]``: a shuffle that is the same on every machine and run."""
    return sorted(indices, key=lambda i: hashlib.sha1(str(names[i]).encode()).hexdigest())


def assign_splits(names: list[str], strata: list[str], test: float = 0.15, val: float = 0.10,
                  min_clips: int = 3) -> list[str]:
    """Deterministic clip-level split, stratified.

    Within each stratum the clips are ordered by a hash of their name (stable across machines and runs); the
    first ``round(test * n)`` go to test, the next ``round(val * n)`` to val, the rest to train. A stratum of fewer
    than ``min_clips`` clips stays in train: one held-out clip says nothing about its content.
    returns: one split name per clip.
    """
    by_stratum: dict[str, list[int]] = defaultdict(list)
    for i, stratum in enumerate(strata):
        by_stratum[stratum].append(i)
    out = ["train"] * len(names)
    for members in by_stratum.values():
        if len(members) < min_clips:
            continue
        members = name_hash_order(members, names)
        n_test = max(1, round(test * len(members)))
        n_val = round(val * len(members))
        for rank, i in enumerate(members):
            out[i] = "test" if rank < n_test else "val" if rank < n_test + n_val else "train"
    return out
