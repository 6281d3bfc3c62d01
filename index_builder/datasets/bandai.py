"""Ingest the Bandai Namco Research Motion Dataset archives into a MotionDatabase.

The archives are read as streams (no unpacking to disk); BVH parsing and forward kinematics run in a process
pool while the main process decompresses.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from index_builder.datasets.motion_database import ClipTable, MotionDatabase, assign_splits
from index_builder.errors import DataFileError
from index_builder.ingest.bvh import parse_bvh
from index_builder.ingest.labels import canonical_label
from index_builder.ingest.mocap_skeletons import BANDAI, clip_to_conventions
from index_builder.progress import progress_bar
from model.pose.units import MM_PER_CM
from model.runtime.motion_sources import ClipSources, compress_source

SOURCE = "bandai-namco-motion"
LICENCE = (
    "Derived from the Bandai Namco Research Motion Dataset (Kobayashi et al., 'Motion Capture Dataset for "
    "Practical Use of AI-based Motion Editing and Stylization', arXiv 2306.08861, 2023), licensed CC BY-NC 4.0 "
    "(https://creativecommons.org/licenses/by-nc/4.0/). Non-commercial use only."
)

@dataclass(frozen=True)
class _RawClip:
    name: str
    dataset: str
    text: str


def _bvh_to_poses(raw: _RawClip, keep_source: bool = False):
    """(name, (T, 17, 3) unihpr17 joints, (T, 4, 3) field joints, fps, compressed source or None)."""
    clip = parse_bvh(raw.text, source=raw.name)
    source = compress_source(raw.text.encode("utf-8")) if keep_source else None  # the file's bytes (UTF-8 read)
    # Frame Time is written to 6 digits (0.0333333): round the rate so 30 fps reads as 30.
    return (raw.name, *clip_to_conventions(clip, MM_PER_CM, BANDAI), round(clip.fps, 3), source)


def _read_archive(path: Path) -> tuple[Iterator[_RawClip], dict]:
    """Stream BVH texts from one archive; labels and label names are filled into ``info`` as they are met."""
    info: dict = {"labels": {}, "content_names": None, "style_names": None}

    def clips() -> Iterator[_RawClip]:
        try:
            with tarfile.open(path, mode="r|xz") as tar:
                for member in tar:
                    if not member.isfile():
                        continue
                    member_path = PurePosixPath(member.name)
                    data = tar.extractfile(member).read().decode("utf-8")
                    if member_path.suffix == ".bvh":
                        dataset = member_path.stem.split("_", 1)[0]
                        yield _RawClip(name=member_path.stem, dataset=dataset, text=data)
                    elif member_path.suffix == ".json" and member_path.parent.name == "data":
                        info["labels"][member_path.stem] = json.loads(data)
                    elif member_path.name == "content_label.txt":
                        info["content_names"] = data.split()
                    elif member_path.name == "style_label.txt":
                        info["style_names"] = data.split()
        except (tarfile.TarError, EOFError, OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise DataFileError(str(path), f"cannot read archive: {err}") from err

    return clips(), info


def build_bandai_database(archives: list[Path], workers: int = 2, keep_sources: bool = False) -> MotionDatabase:
    """All clips of the given archives as one database, split by clip, stratified by (dataset, content).

    keep_sources: keep every BVH file's text, compressed (``MotionDatabase.sources``).
    returns: poses (N, 17, 3) float32 mm in the files' world frame (Y up), clips sorted by name.
    """
    results: dict[str, tuple[np.ndarray, float, str, bytes | None, np.ndarray]] = {}
    infos = []
    progress = progress_bar(desc="bandai clips", unit="clip")
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for archive in archives:
            stream, info = _read_archive(Path(archive))
            infos.append(info)
            pending = []
            for raw in stream:
                pending.append((raw.dataset, pool.submit(_bvh_to_poses, raw, keep_sources)))
                # Keep only a few texts in flight so memory stays flat while the archive decompresses.
                while len(pending) > 4 * workers:
                    dataset, future = pending.pop(0)
                    name, poses, field, fps, source = future.result()
                    results[name] = (poses, fps, dataset, source, field)
                    progress.update()
            for dataset, future in pending:
                name, poses, field, fps, source = future.result()
                results[name] = (poses, fps, dataset, source, field)
                progress.update()
    progress.close()

    labels: dict[str, tuple[str, str]] = {}
    for archive, info in zip(archives, infos):
        if info["content_names"] is None or info["style_names"] is None:
            raise DataFileError(str(archive), "archive has no cfg/content_label.txt or cfg/style_label.txt")
        for name, label in info["labels"].items():
            labels[name] = (
                canonical_label(info["content_names"][label["content"]]),
                canonical_label(info["style_names"][label["style"]]),
            )
    unlabelled = sorted(set(results) - set(labels))
    if unlabelled:
        raise DataFileError(str(archives[0]), f"clips without a label file: {unlabelled[:5]}")

    names = sorted(results)
    datasets = [results[n][2] for n in names]
    contents = [labels[n][0] for n in names]
    lengths = np.array([len(results[n][0]) for n in names], dtype=np.int64)
    splits = assign_splits(names, [f"{d}/{c}" for d, c in zip(datasets, contents)])
    clips = ClipTable(
        name=np.array(names),
        dataset=np.array(datasets),
        content=np.array(contents),
        style=np.array([labels[n][1] for n in names]),
        split=np.array(splits),
        fps=np.array([results[n][1] for n in names], dtype=np.float32),
        start=np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64),
        length=lengths,
    )
    return MotionDatabase(
        poses=np.concatenate([results[n][0] for n in names]),
        field_joints=np.concatenate([results[n][4] for n in names]),
        clip=np.repeat(np.arange(len(names), dtype=np.int32), lengths),
        frame=np.concatenate([np.arange(n, dtype=np.int32) for n in lengths]),
        clips=clips,
        source=SOURCE,
        licence=LICENCE,
        sources=ClipSources.from_blobs(["bvh"] * len(names), [results[n][3] for n in names]) if keep_sources else None,
    )
