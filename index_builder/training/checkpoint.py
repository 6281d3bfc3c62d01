"""Checkpoints that describe themselves: format version, the full TrainConfig, weights, optimiser and RNG state.

The only module that knows the checkpoint format. Written atomically, so an interrupted run resumes from the last
complete checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import torch

from index_builder.atomic_files import atomic_path
from index_builder.datasets.motion_database import MotionDatabase
from index_builder.errors import ArtifactError
from index_builder.training.batches import validation_views
from index_builder.training.config import TrainConfig, config_from_dict
from model.nn.martinez import MartinezLifter
from model.nn.networks import UniHPR

FORMAT_VERSION = 1


def save_checkpoint(path: Path, config: TrainConfig, state: dict) -> None:
    """state: everything a resume needs (weights, optimiser, phase, step, RNG states, history)."""
    payload = {"format_version": FORMAT_VERSION, "config": config.to_dict(), **state}
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: Path) -> tuple[TrainConfig, dict]:
    """Returns the config and the saved state; raises ArtifactError naming the file on any fault."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError, ValueError) as err:
        raise ArtifactError(f"{path}: cannot read checkpoint: {err}") from err
    if not isinstance(payload, dict) or payload.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(f"{path}: not a checkpoint of format version {FORMAT_VERSION}")
    return config_from_dict(payload.pop("config")), payload


def load_unihpr(path: Path) -> tuple[UniHPR, TrainConfig, dict]:
    """The trained model in eval mode, its config and the saved state."""
    config, state = load_checkpoint(path)
    model = UniHPR(config.model)
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state["model"].items()})
    return model.eval(), config, state


def load_martinez(path: Path) -> tuple[MartinezLifter, TrainConfig, dict]:
    config, state = load_checkpoint(path)
    model = MartinezLifter(config.martinez)
    model.load_state_dict(state["model"])
    return model.eval(), config, state


def save_weights(path: Path, source: Path) -> None:
    """Strip a training checkpoint to what serving and evaluation need (config, weights, history): the form the
    default model ships in. Weights are stored as float16 to keep the repository small (``load_unihpr`` casts
    them back; the largest change this makes to a lifted pose is reported by ``unihpr-build weights``)."""
    config, state = load_checkpoint(source)
    if state.get("phase") != "done":
        raise ArtifactError(f"{source}: training has not finished (phase {state.get('phase')!r})")
    half = {k: v.half() if v.is_floating_point() else v for k, v in state["model"].items()}
    save_checkpoint(path, config, {"phase": "done", "step": 0, "wall_seconds": state["wall_seconds"],
                                   "history": state["history"], "model": half})


def float16_change_mm(full: Path, shipped: Path, val_db: MotionDatabase) -> float:
    """Largest difference (mm) between poses lifted by the full-precision and the shipped model, on 2000
    validation views from clean 2D."""
    views = validation_views(val_db, 2000)
    features = torch.from_numpy(views.pose2d)
    with torch.no_grad():
        a, b = (load_unihpr(p)[0].lift(features, "pose2d") for p in (full, shipped))
    return float((a - b).abs().max())
