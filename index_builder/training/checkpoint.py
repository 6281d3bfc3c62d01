"""Run checkpoints: a network in the format of ``model.nn.checkpoint``, with the run's full ``TrainConfig`` and its
resume state (optimiser, phase, step, RNG states, history) kept beside it.

Written atomically, so an interrupted run resumes from the last complete checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from index_builder.atomic_files import atomic_path
from index_builder.datasets.motion_database import MotionDatabase
from index_builder.errors import ArtifactError
from index_builder.training.batches import validation_views
from index_builder.training.config import TrainConfig, config_from_dict
from model.nn import checkpoint as network_checkpoint
from model.nn.checkpoint import CheckpointError, Network
from model.nn.martinez import MartinezLifter
from model.nn.networks import UniHPR


def save_checkpoint(path: Path, config: TrainConfig, state: dict, network: Network = "unihpr") -> None:
    """state: the network's weights under ``model`` and everything else a resume needs."""
    model_args = (config.model if network == "unihpr" else config.martinez).to_dict()
    run = {"config": config.to_dict(), **{k: v for k, v in state.items() if k != "model"}}
    with atomic_path(path, suffix=".pt") as tmp:
        network_checkpoint.save_checkpoint(tmp, network, model_args, state["model"], run)


def _read(path: Path) -> tuple[dict, TrainConfig, dict]:
    try:
        checkpoint = network_checkpoint.read_checkpoint(path)
        run = dict(checkpoint["run"])
        return checkpoint, config_from_dict(run.pop("config")), {**run, "model": checkpoint["model"]}
    except (CheckpointError, KeyError, TypeError) as err:
        raise ArtifactError(f"{path}: not a run checkpoint: {err}") from err


def load_checkpoint(path: Path) -> tuple[TrainConfig, dict]:
    """Returns the run's config and the saved state (weights under ``model``); raises ArtifactError naming the
    file on any fault."""
    return _read(path)[1:]


def _load_network(path: Path, build: Callable[[dict, Path], torch.nn.Module]) -> tuple:
    checkpoint, config, state = _read(path)
    try:
        return build(checkpoint, path), config, state
    except CheckpointError as err:
        raise ArtifactError(str(err)) from err


def load_unihpr(path: Path) -> tuple[UniHPR, TrainConfig, dict]:
    """The trained model in eval mode, its run's config and the saved state."""
    return _load_network(path, network_checkpoint.unihpr_from)


def load_martinez(path: Path) -> tuple[MartinezLifter, TrainConfig, dict]:
    return _load_network(path, network_checkpoint.martinez_from)


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
