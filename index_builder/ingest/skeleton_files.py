"""Motion formats that keep their skeleton in a file of its own (DeepMimic, CMU exponential maps): the steps their
readers share once the skeleton and the frames are parsed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np

from index_builder.errors import DataFileError

Skeleton = TypeVar("Skeleton")


def skeleton_for(motion: Path, find: Callable[[Path], Path | None], load: Callable[[Path], Skeleton],
                 what: str, skeleton_file: str) -> Skeleton:
    """The skeleton ``find`` locates for ``motion``, loaded; a DataFileError naming the motion when none is found.
    what: the motion's kind, as the message names it."""
    found = find(motion)
    if found is None:
        raise DataFileError(str(motion), f"{what} without {skeleton_file} in its folder or above")
    return load(found)


def require_finite(path: Path, frames: np.ndarray, what: str) -> None:
    if not np.isfinite(frames).all():
        raise DataFileError(str(path), f"{what} hold NaN or inf")
