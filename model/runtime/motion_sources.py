"""The clips' source motion files, compressed: kept by pose databases and bundles, cut by the service.

``ClipSources`` is the one layout, in memory and on disk: ``format`` (C,) str ("bvh", or "" for a clip without a
kept source) and every source's bytes zlib-compressed and concatenated into ``data`` (uint8) with ``offsets``
(C + 1,) int64, so clip c is ``data[offsets[c]:offsets[c + 1]]``. A pose database stores these arrays inside its
own file; a bundle in ``motion_sources.npz`` (no pickle) with the clip names beside them, what
``GET /clips/{clip}/motion?format=bvh`` cuts from. Sources are compressed once, when they are read from the
user's files, and copied as they are from then on. Compressed, BVH text takes a quarter to a third of its size
(the manifest's ``sources`` gives both sizes).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SOURCES = "motion_sources.npz"
COMPRESSION_LEVEL = 6


def compress_source(text: bytes) -> bytes:
    return zlib.compress(text, COMPRESSION_LEVEL)


@dataclass(frozen=True)
class ClipSources:
    """One compressed source file (or none) per clip; see the module docstring for the arrays."""

    format: np.ndarray
    data: np.ndarray
    offsets: np.ndarray

    def __post_init__(self) -> None:
        assert self.offsets.shape == (len(self.format) + 1,), (self.offsets.shape, self.format.shape)

    def __len__(self) -> int:
        return len(self.format)

    @classmethod
    def from_blobs(cls, formats: list[str], blobs: list[bytes | None]) -> ClipSources:
        """blobs: one ``compress_source`` result per clip, None for a clip without a source."""
        assert len(formats) == len(blobs), (len(formats), len(blobs))
        kept = [b or b"" for b in blobs]
        return cls(format=np.array([f if b is not None else "" for f, b in zip(formats, blobs)], dtype=str),
                   data=np.frombuffer(b"".join(kept), dtype=np.uint8).copy(),
                   offsets=np.cumsum([0, *map(len, kept)]).astype(np.int64))

    @classmethod
    def none(cls, clips: int) -> ClipSources:
        """``clips`` clips without sources."""
        return cls.from_blobs([""] * clips, [None] * clips)

    def blob(self, clip: int) -> bytes | None:
        """The compressed source of clip row ``clip``, or None."""
        return self.data[self.offsets[clip] : self.offsets[clip + 1]].tobytes() if self.format[clip] else None

    def text(self, clip: int) -> bytes | None:
        """The source file of clip row ``clip`` byte for byte, or None."""
        blob = self.blob(clip)
        return None if blob is None else zlib.decompress(blob)

    def select(self, keep: np.ndarray) -> ClipSources:
        """The sources of the clips where ``keep`` (bool, one per clip) is true."""
        rows = np.flatnonzero(keep)
        return ClipSources.from_blobs([str(self.format[i]) for i in rows], [self.blob(i) for i in rows])

    def concat(self, other: ClipSources) -> ClipSources:
        """These clips' sources, then ``other``'s."""
        formats = [str(f) for f in (*self.format, *other.format)]
        blobs = [*(self.blob(i) for i in range(len(self))), *(other.blob(i) for i in range(len(other)))]
        return ClipSources.from_blobs(formats, blobs)

    @property
    def kept(self) -> int:
        return int(np.count_nonzero(self.format != ""))


@dataclass(frozen=True)
class SourceSizes:
    clips: int
    formats: list[str]
    raw_bytes: int
    stored_bytes: int


def write_sources(path: Path, clip_names: list[str], sources: ClipSources) -> SourceSizes:
    """Write the bundle's sources file: the compressed arrays as they are, with the clip names."""
    assert len(clip_names) == len(sources), (len(clip_names), len(sources))
    with open(path, "wb") as fh:
        np.savez(fh, clip_name=np.array(clip_names, dtype=str), format=sources.format, data=sources.data,
                 offsets=sources.offsets)
    raw = sum(len(zlib.decompress(blob)) for blob in map(sources.blob, range(len(sources))) if blob is not None)
    return SourceSizes(sources.kept, sorted({str(f) for f in sources.format if f}), raw, int(sources.offsets[-1]))


class SourceStore:
    """The sources file of a bundle: ``source(clip name)`` -> (format, bytes) or None, decompressed on demand."""

    def __init__(self, path: Path):
        with np.load(path, allow_pickle=False) as data:
            self.names = [str(name) for name in data["clip_name"]]
            self.sources = ClipSources(data["format"], data["data"], data["offsets"])
        self._index = {name: i for i, name in enumerate(self.names)}

    def source(self, clip: str) -> tuple[str, bytes] | None:
        i = self._index.get(clip)
        text = None if i is None else self.sources.text(i)
        return None if text is None else (str(self.sources.format[i]), text)
