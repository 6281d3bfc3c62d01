"""The checkpoints an evaluation reads, and how the report names each one (path, hash, training summary)."""

from __future__ import annotations

from pathlib import Path

from index_builder.config import portable_path
from index_builder.errors import ArtifactError
from model.runtime.bundle_format import sha256_of


def unihpr_checkpoint(run: Path) -> Path:
    """The run's UniHPR checkpoint; ArtifactError when it is missing."""
    path = run / "unihpr.pt"
    if not path.is_file():
        raise ArtifactError(f"{path}: no UniHPR checkpoint; run `unihpr-build train --run {run}` first")
    return path


def checkpoint_entry(path: Path, state: dict) -> dict:
    """The report's record of a checkpoint: portable path, sha256 and the saved training summary."""
    keep = ("phase", "steps", "poses_drawn", "early_stopping", "wall_seconds")
    return {"path": portable_path(path), "sha256": sha256_of(path), **{k: state[k] for k in keep if k in state}}
