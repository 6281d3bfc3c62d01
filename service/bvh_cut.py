"""Cut a time range out of a BVH file's text: the same hierarchy and channels, the frames in the range.

BVH is a text header (``HIERARCHY`` ... ``MOTION``, ``Frames: N``, ``Frame Time: dt``) followed by one line of
channel values per frame; frame i is at time i * dt. The cut keeps the header as it is, rewrites ``Frames:`` and
keeps the frame lines byte for byte, so the segment parses with any BVH reader and its frames equal the
source's.
"""

from __future__ import annotations

import math
import re

FRAMES = re.compile(rb"^\s*Frames:\s*(\d+)\s*$")
FRAME_TIME = re.compile(rb"^\s*Frame Time:\s*([0-9.eE+-]+)\s*$")


class BvhCutError(ValueError):
    """The stored text is not a BVH file this cutter understands."""


def cut_bvh(text: bytes, start: float, end: float) -> tuple[bytes, int]:
    """The frames of ``text`` whose time lies in [start, end] seconds (to half a frame), as BVH: (bytes, frame
    count)."""
    lines = text.splitlines(keepends=True)
    try:
        motion = next(i for i, line in enumerate(lines) if line.strip() == b"MOTION")
    except StopIteration as err:
        raise BvhCutError("no MOTION section") from err
    frames_match = FRAMES.match(lines[motion + 1]) if motion + 1 < len(lines) else None
    time_match = FRAME_TIME.match(lines[motion + 2]) if motion + 2 < len(lines) else None
    if frames_match is None or time_match is None:
        raise BvhCutError("no Frames / Frame Time lines after MOTION")
    frame_time = float(time_match.group(1))
    body = [line for line in lines[motion + 3 :] if line.strip()]
    if frame_time <= 0 or not body:
        raise BvhCutError("no frames")
    # within half a frame: the file's Frame Time is rounded (0.033333), so exact times drift over a clip
    first = max(0, math.ceil(start / frame_time - 0.5))
    last = min(len(body) - 1, math.floor(end / frame_time + 0.5))
    kept = body[first : last + 1]
    newline = b"\r\n" if lines[motion].endswith(b"\r\n") else b"\n"
    header = b"".join(lines[: motion + 1]) + b"Frames: %d" % len(kept) + newline + lines[motion + 2]
    return header + b"".join(kept), len(kept)
