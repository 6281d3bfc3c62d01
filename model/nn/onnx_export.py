"""ONNX export of the encoders and decoders, checked against torch before anything is written.

One graph per modality encoder (the representation token is baked in) and one per decoder, each with a dynamic
batch dimension. torch 2.13 exports through the dynamo exporter (``onnx`` and ``onnxscript`` are build
dependencies). ONNX Runtime runs with one intra-op thread and spinning off while torch shares the process.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from model.nn.networks import ModalityEncoder, Pose3dDecoderMetres, UniHPR
from model.pose.features import MODALITIES
from model.runtime.onnx_sessions import cpu_session

LOG = logging.getLogger(__name__)

PARITY_ATOL = 1e-4
INPUT_NAME, OUTPUT_NAME = "features", "output"


class ExportParityError(ValueError):
    """An exported graph does not compute what the torch module computes; the message names the graph."""


@dataclass(frozen=True)
class ExportedGraph:
    name: str  # e.g. "encoder_pose2d"
    path: Path
    input_shape: tuple  # without the batch dimension
    output_shape: tuple
    max_abs_diff: float


def graphs_of(model: UniHPR) -> dict[str, tuple[nn.Module, tuple]]:
    """Every graph the service runs: name -> (module, per-sample input shape)."""
    j = model.config.encoder.num_joints
    d = model.config.encoder.embed_dim
    out = {f"encoder_{m}": (ModalityEncoder(model, m), (j, 3)) for m in MODALITIES}
    out["decoder3d"] = (Pose3dDecoderMetres(model.decoder3d), (d,))  # metres; the service converts to mm
    out["decoder2d"] = (model.decoder2d, (d,))
    return out


def _export_one(module: nn.Module, example: torch.Tensor, path: Path) -> None:
    # The exporter logs one warning per torchvision op it cannot register; the builder has no torchvision.
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    batch = torch.export.Dim("batch", min=1, max=65536)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            module, (example,), dynamo=True, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: batch},), verbose=False,
        )
    program.save(str(path))


def export_model(model: UniHPR, folder: Path, parity_inputs: dict[str, np.ndarray]) -> list[ExportedGraph]:
    """Export every graph into ``folder`` and compare ONNX Runtime with torch on ``parity_inputs``.

    parity_inputs: graph name -> (N, *input_shape) float32 held-out inputs (encoders: real features; decoders:
    real embeddings). Raises ExportParityError if any output differs by PARITY_ATOL or more.
    """
    model = model.eval().cpu()
    exported = []
    for name, (module, shape) in graphs_of(model).items():
        path = folder / f"{name}.onnx"
        inputs = parity_inputs[name].astype(np.float32)
        assert inputs.shape[1:] == shape, f"{name}: parity inputs {inputs.shape}, expected (N, {shape})"
        _export_one(module, torch.from_numpy(inputs[:2]), path)
        with torch.no_grad():
            expected = module(torch.from_numpy(inputs)).numpy()
        got = cpu_session(path).run([OUTPUT_NAME], {INPUT_NAME: inputs})[0]
        diff = float(np.abs(got - expected).max())
        if not diff < PARITY_ATOL:
            raise ExportParityError(f"{path}: ONNX Runtime differs from torch by {diff:.2e} (limit {PARITY_ATOL})")
        exported.append(ExportedGraph(name, path, shape, expected.shape[1:], diff))
        LOG.info("%s: exported; ONNX Runtime vs torch max |diff| %.1e on %d inputs", path.name, diff, len(inputs))
    return exported
