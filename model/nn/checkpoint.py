"""The checkpoint format: one network's weights and the arguments that rebuild it (nanoGPT's ``model_args``).

A checkpoint is a ``torch.save`` dict::

    format_version  2
    network         "unihpr" | "martinez"
    model_args      the network's config as a dict (``ModelConfig`` / ``MartinezConfig``)
    model           the state dict
    run             whatever the writer keeps beside it (the builder: its train config, optimiser, RNG, history)

Rebuilding a network reads ``network``, ``model_args`` and ``model`` only. Version 1 files (the builder's before
this format) kept the whole train config under ``config``; they load as they are, their ``model_args`` taken from
it, so the shipped weights need no conversion.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, Literal

import torch

from model.nn.config import MartinezConfig, ModelConfig
from model.nn.martinez import MartinezLifter
from model.nn.networks import UniHPR

FORMAT_VERSION = 2
Network = Literal["unihpr", "martinez"]
_V1_CONFIG_KEY = {"unihpr": "model", "martinez": "martinez"}  # where a version 1 train config kept model_args


class CheckpointError(ValueError):
    """The file is not a checkpoint this code can read; the message names the file."""


def save_checkpoint(path: Path, network: Network, model_args: dict, weights: dict, run: dict) -> None:
    """Writes ``path`` directly: callers that need atomicity write to a temporary name and rename."""
    torch.save({"format_version": FORMAT_VERSION, "network": network, "model_args": model_args, "model": weights,
                "run": run}, path)


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint dict in the current format (a version 1 file is read into it: ``network`` None, since such
    files do not say which network they hold; ``run`` is everything else they kept)."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as err:
        raise CheckpointError(f"{path}: cannot read checkpoint: {err}") from err
    version = payload.get("format_version") if isinstance(payload, dict) else None
    if version == FORMAT_VERSION:
        return payload
    if version == 1:
        run = {k: v for k, v in payload.items() if k not in ("format_version", "model")}
        return {"format_version": 1, "network": None, "model_args": None, "model": payload.get("model"), "run": run}
    raise CheckpointError(f"{path}: not a checkpoint of format version 1 or {FORMAT_VERSION}")


def model_args_of(checkpoint: dict[str, Any], network: Network, path: Path) -> dict:
    if checkpoint["format_version"] == 1:
        return checkpoint["run"]["config"][_V1_CONFIG_KEY[network]]
    if checkpoint["network"] != network:
        raise CheckpointError(f"{path}: holds a {checkpoint['network']} network, not {network}")
    return checkpoint["model_args"]


def unihpr_from(checkpoint: dict[str, Any], path: Path) -> UniHPR:
    """The UniHPR networks of a read checkpoint, in eval mode and float32 whatever precision they were stored in."""
    model = UniHPR(ModelConfig.from_dict(model_args_of(checkpoint, "unihpr", path)))
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in checkpoint["model"].items()})
    return model.eval()


def martinez_from(checkpoint: dict[str, Any], path: Path) -> MartinezLifter:
    model = MartinezLifter(MartinezConfig(**model_args_of(checkpoint, "martinez", path)))
    model.load_state_dict(checkpoint["model"])
    return model.eval()


def load_unihpr(path: Path) -> UniHPR:
    return unihpr_from(read_checkpoint(path), path)


def load_martinez(path: Path) -> MartinezLifter:
    return martinez_from(read_checkpoint(path), path)
