"""The clips' source motion files inside a bundle: what ``GET /clips/{clip}/motion?format=bvh`` cuts from.

One ``.npz`` (no pickle): ``clip_name`` (C,) str and ``format`` (C,) str ("bvh", or "" for a clip without a kept
source), and every source's text zlib-compressed and concatenated into ``data`` (uint8) with ``offsets``
(C + 1,) int64, so clip c is ``data[offsets[c]:offsets[c + 1]]``. Compressed, BVH text takes about a fifth of
its size (the manifest's ``sources`` gives both sizes).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SOURCES = "motion_sources.npz"
COMPRESSION_LEVEL = 6


@dataclass(frozen=True)
class SourceSizes:
    clips: int
    formats: list[str]
    raw_bytes: int
    stored_bytes: int


def write_sources(path: Path, clip_names: list[str], formats: list[str], texts: list[bytes | None]) -> SourceSizes:
    """Write the sources of ``clip_names`` (a text per clip, None for none) to ``path``."""
    assert len(clip_names) == len(formats) == len(texts), (len(clip_names), len(formats), len(texts))
    blobs = [zlib.compress(text, COMPRESSION_LEVEL) if text is not None else b"" for text in texts]
    offsets = np.cumsum([0, *map(len, blobs)]).astype(np.int64)
    data = np.frombuffer(b"".join(blobs), dtype=np.uint8)
    kinds = [fmt if text is not None else "" for fmt, text in zip(formats, texts)]
    with open(path, "wb") as fh:
        np.savez(fh, clip_name=np.array(clip_names, dtype=str), format=np.array(kinds, dtype=str), data=data,
                 offsets=offsets)
    present = [text for text in texts if text is not None]
    return SourceSizes(len(present), sorted(set(k for k in kinds if k)), sum(map(len, present)),
                       int(offsets[-1]))


class SourceStore:
    """The sources of a bundle, decompressed on demand: ``text(clip)`` -> (format, bytes) or None."""

    def __init__(self, path: Path):
        with np.load(path, allow_pickle=False) as data:
            self._index = {str(name): i for i, name in enumerate(data["clip_name"])}
            self._format = [str(f) for f in data["format"]]
            self._offsets = data["offsets"]
            self._data = data["data"]

    def source(self, clip: str) -> tuple[str, bytes] | None:
        i = self._index.get(clip)
        if i is None or not self._format[i]:
            return None
        blob = self._data[self._offsets[i] : self._offsets[i + 1]].tobytes()
        return self._format[i], zlib.decompress(blob)
