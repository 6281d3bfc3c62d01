"""Which reader takes a file: by suffix, and for ``.txt`` by a look at its start (DeepMimic JSON or a CMU
exponential-map array). Files of no motion format (READMEs, licences, label sidecars, skeleton files) are not
clips and are passed over without a skip."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from index_builder.ingest.bvh_reader import read_bvh_clip
from index_builder.ingest.cmu_expmap_reader import read_cmu_expmap_clip
from index_builder.ingest.config import IngestConfig
from index_builder.ingest.deepmimic_reader import read_deepmimic_clip
from index_builder.ingest.joint_arrays_reader import read_joint_array_clip
from index_builder.ingest.motion_clip import MotionClip

Reader = Callable[[Path, IngestConfig], MotionClip]
READERS: dict[str, Reader] = {
    "bvh": read_bvh_clip,
    "deepmimic": read_deepmimic_clip,
    "cmu-expmap": read_cmu_expmap_clip,
    "joint-array": read_joint_array_clip,
}
SNIFF_BYTES = 4096
_NUMBER_ROW = re.compile(r"^\s*[-+0-9.eE]+(\s*,\s*[-+0-9.eEnaNA]+)+\s*$")


def motion_format(path: Path) -> str | None:
    """The key of ``READERS`` for this file, or None when it is not a motion file."""
    suffix = path.suffix.lower()
    if suffix == ".bvh":
        return "bvh"
    if suffix in (".npz", ".npy"):
        return "joint-array"
    if suffix != ".txt":
        return None
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            head = fh.read(SNIFF_BYTES)
    except OSError:
        return None
    if head.lstrip().startswith("{"):
        return "deepmimic" if '"Frames"' in head else None  # a skeleton or other JSON is not a clip
    first_line = head.split("\n", 1)[0]
    return "cmu-expmap" if _NUMBER_ROW.match(first_line) else None
