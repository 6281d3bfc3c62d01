"""BVH motion files: parsing and forward kinematics.

Conventions, stated once (SPEC section 4):
- rotation channels are applied intrinsically in the order they are listed: ``Zrotation Xrotation Yrotation``
  means ``R = Rz @ Rx @ Ry`` (angles in degrees);
- position channels, where a joint has them, replace its OFFSET (they are not added to it);
- BVH carries no unit: callers pass ``scale`` (file unit -> mm), and this is the only place units change.

A joint's world transform is ``G_j = G_parent @ [R_j | t_j]`` with ``t_j`` the OFFSET or the position channels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from index_builder.errors import BvhParseError

_AXES = {"X": 0, "Y": 1, "Z": 2}
_ROTATION_CHANNELS = ("Xrotation", "Yrotation", "Zrotation")
_POSITION_CHANNELS = ("Xposition", "Yposition", "Zposition")


@dataclass(frozen=True)
class BvhSkeleton:
    """The HIERARCHY section.

    names: joint names in file order (end sites excluded).
    parents: (J,) int, parent index, -1 for the root.
    offsets: (J, 3) float64, file units, in the parent's frame.
    channels: per joint, the channel names in the order they appear in each MOTION line.
    end_sites: joint index -> (3,) offset of its end site, file units.
    """

    names: tuple[str, ...]
    parents: np.ndarray
    offsets: np.ndarray
    channels: tuple[tuple[str, ...], ...]
    end_sites: dict[int, np.ndarray] = field(default_factory=dict)

    @property
    def num_channels(self) -> int:
        return sum(len(c) for c in self.channels)

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"joint {name!r} not in skeleton ({', '.join(self.names)})") from None


@dataclass(frozen=True)
class BvhClip:
    """A parsed BVH file: skeleton plus motion.

    motion: (T, C) float64, one row per frame, columns in the skeleton's channel order.
    """

    skeleton: BvhSkeleton
    frame_time: float
    motion: np.ndarray
    source: str = "<string>"

    @property
    def num_frames(self) -> int:
        return self.motion.shape[0]

    @property
    def fps(self) -> float:
        return 1.0 / self.frame_time


class _Tokens:
    """Whitespace tokens of the HIERARCHY section with line numbers for error messages."""

    def __init__(self, lines: list[str], source: str):
        self.source = source
        self.items = [(tok, no + 1) for no, line in enumerate(lines) for tok in line.split()]
        self.pos = 0

    def next(self, what: str) -> tuple[str, int]:
        if self.pos >= len(self.items):
            raise BvhParseError(self.source, f"unexpected end of file while reading {what}")
        item = self.items[self.pos]
        self.pos += 1
        return item

    def expect(self, word: str) -> int:
        tok, line = self.next(repr(word))
        if tok != word:
            raise BvhParseError(self.source, f"line {line}: expected {word!r}, found {tok!r}")
        return line

    def number(self, what: str) -> float:
        tok, line = self.next(what)
        try:
            return float(tok)
        except ValueError:
            raise BvhParseError(self.source, f"line {line}: {what} is not a number: {tok!r}") from None

    def integer(self, what: str) -> int:
        tok, line = self.next(what)
        if not tok.isdigit():
            raise BvhParseError(self.source, f"line {line}: {what} is not a count: {tok!r}")
        return int(tok)


def _parse_hierarchy(tokens: _Tokens) -> BvhSkeleton:
    names: list[str] = []
    parents: list[int] = []
    offsets: list[list[float]] = []
    channels: list[tuple[str, ...]] = []
    end_sites: dict[int, np.ndarray] = {}

    def offset() -> list[float]:
        tokens.expect("OFFSET")
        return [tokens.number("OFFSET value") for _ in range(3)]

    def joint(parent: int) -> None:
        name, _ = tokens.next("joint name")
        index = len(names)
        names.append(name)
        parents.append(parent)
        tokens.expect("{")
        offsets.append(offset())
        line = tokens.expect("CHANNELS")
        count = tokens.integer("channel count")
        listed = tuple(tokens.next("channel name")[0] for _ in range(count))
        for ch in listed:
            if ch not in _ROTATION_CHANNELS + _POSITION_CHANNELS:
                raise BvhParseError(
                    tokens.source,
                    f"line {line}: joint {name!r} declares CHANNELS {count} but {ch!r} is not a channel name "
                    "(wrong channel count?)",
                )
        channels.append(listed)
        while True:
            tok, line = tokens.next(f"body of joint {name!r}")
            if tok == "}":
                return
            if tok == "JOINT":
                joint(index)
            elif tok == "End":
                tokens.expect("Site")
                tokens.expect("{")
                end_sites[index] = np.array(offset())
                tokens.expect("}")
            elif tok in _ROTATION_CHANNELS + _POSITION_CHANNELS:
                raise BvhParseError(
                    tokens.source,
                    f"line {line}: joint {name!r} lists more channel names than its CHANNELS {count} "
                    "(wrong channel count)",
                )
            else:
                raise BvhParseError(tokens.source, f"line {line}: unexpected {tok!r} in joint {name!r}")

    tokens.expect("HIERARCHY")
    tokens.expect("ROOT")
    joint(-1)
    return BvhSkeleton(
        names=tuple(names),
        parents=np.array(parents, dtype=np.int64),
        offsets=np.array(offsets, dtype=np.float64),
        channels=tuple(channels),
        end_sites=end_sites,
    )


def _header_value(line: str, key: str, source: str, line_no: int) -> str:
    head, _, value = line.partition(":")
    if head.strip() != key or not value.strip():
        raise BvhParseError(source, f"line {line_no}: expected '{key}: <value>', found {line.strip()!r}")
    return value.strip()


def parse_bvh(text: str, source: str = "<string>") -> BvhClip:
    """Parse the text of a BVH file. Raises BvhParseError naming ``source`` and the problem."""
    lines = text.splitlines()
    try:
        motion_at = next(i for i, line in enumerate(lines) if line.strip() == "MOTION")
    except StopIteration:
        raise BvhParseError(source, "no MOTION section (truncated file?)") from None
    skeleton = _parse_hierarchy(_Tokens(lines[:motion_at], source))
    if motion_at + 2 >= len(lines):
        raise BvhParseError(source, "MOTION section ends before 'Frames' and 'Frame Time' (truncated file?)")
    frames_text = _header_value(lines[motion_at + 1], "Frames", source, motion_at + 2)
    frame_time_text = _header_value(lines[motion_at + 2], "Frame Time", source, motion_at + 3)
    try:
        num_frames = int(frames_text)
        frame_time = float(frame_time_text)
    except ValueError:
        raise BvhParseError(source, f"bad Frames / Frame Time values {frames_text!r}, {frame_time_text!r}") from None
    if frame_time <= 0:
        raise BvhParseError(source, f"Frame Time must be positive, got {frame_time}")

    rows = [line for line in lines[motion_at + 3 :] if line.strip()]
    if len(rows) < num_frames:
        raise BvhParseError(source, f"header says {num_frames} frames but the file has {len(rows)} (truncated file?)")
    rows = rows[:num_frames]
    width = skeleton.num_channels
    try:
        values = np.array(" ".join(rows).split(), dtype=np.float64)
    except ValueError:
        raise BvhParseError(source, "MOTION section holds a value that is not a number") from None
    if values.size != num_frames * width:
        bad = next(i for i, row in enumerate(rows) if len(row.split()) != width)
        raise BvhParseError(
            source,
            f"frame {bad} has {len(rows[bad].split())} values but the hierarchy declares {width} channels",
        )
    motion = values.reshape(num_frames, width)
    if not np.isfinite(motion).all():
        raise BvhParseError(source, "MOTION section holds NaN or inf")
    return BvhClip(skeleton=skeleton, frame_time=frame_time, motion=motion, source=source)


def read_bvh(path: str | Path) -> BvhClip:
    """Read and parse a BVH file from disk."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except (OSError, UnicodeDecodeError) as err:
        raise BvhParseError(str(path), f"cannot read: {err}") from err
    return parse_bvh(text, source=str(path))


def axis_rotation(axis: str, degrees: np.ndarray) -> np.ndarray:
    """Rotation matrices about one coordinate axis.

    degrees: (T,) float64.
    returns: (T, 3, 3) float64, right-handed (counter-clockwise looking down the axis).
    """
    rad = np.deg2rad(degrees)
    c, s = np.cos(rad), np.sin(rad)
    one, zero = np.ones_like(rad), np.zeros_like(rad)
    if axis == "X":
        rows = [[one, zero, zero], [zero, c, -s], [zero, s, c]]
    elif axis == "Y":
        rows = [[c, zero, s], [zero, one, zero], [-s, zero, c]]
    elif axis == "Z":
        rows = [[c, -s, zero], [s, c, zero], [zero, zero, one]]
    else:
        raise ValueError(f"unknown axis {axis!r}")
    return np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)


@dataclass(frozen=True)
class JointTransforms:
    """World transforms of every joint for every frame, in mm.

    positions: (T, J, 3) float64, mm.
    rotations: (T, J, 3, 3) float64, joint frame -> world frame.
    """

    positions: np.ndarray
    rotations: np.ndarray


def chain_transforms(parents, translations: np.ndarray, local: np.ndarray) -> JointTransforms:
    """World transforms from local ones, the one forward-kinematics step of every skeleton format.

    parents: (J,) parent index per joint, -1 for a root, parents before their children.
    translations: (T, J, 3) each joint's origin in its parent's frame (a root's in the world).
    local: (T, J, 3, 3) each joint's frame in its parent's, acting on column vectors.
    """
    positions = np.zeros(translations.shape)
    rotations = np.zeros(local.shape)
    for j, parent in enumerate(parents):
        if parent < 0:
            positions[:, j], rotations[:, j] = translations[:, j], local[:, j]
        else:
            positions[:, j] = positions[:, parent] + np.einsum("tij,tj->ti", rotations[:, parent], translations[:, j])
            rotations[:, j] = rotations[:, parent] @ local[:, j]
    return JointTransforms(positions=positions, rotations=rotations)


def forward_kinematics(clip: BvhClip, scale: float) -> JointTransforms:
    """World transforms of every joint (SPEC section 4 conventions, see module docstring).

    scale: file unit -> mm (``MM_PER_CM`` for centimetre files).
    """
    skel = clip.skeleton
    frames = clip.num_frames
    translations = np.broadcast_to(skel.offsets * scale, (frames, len(skel.names), 3)).copy()
    local = np.broadcast_to(np.eye(3), (frames, len(skel.names), 3, 3)).copy()
    column = 0
    for j, chans in enumerate(skel.channels):
        for ch in chans:
            values = clip.motion[:, column]
            column += 1
            if ch in _POSITION_CHANNELS:
                translations[:, j, _AXES[ch[0]]] = values * scale
            else:
                local[:, j] = local[:, j] @ axis_rotation(ch[0], values)
    return chain_transforms(skel.parents, translations, local)
