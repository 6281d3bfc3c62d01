"""int8 graphs (``unihpr-build index --int8``): ONNX Runtime's dynamic quantization of the query encoders and the
decoders, weights int8 per output channel, activations quantized per call.

The layer that touches coordinates stays float32: an encoder's input layer (the raw features, coordinates next to
0/1 visibility flags, lost most of what int8 costs when quantized per call) and a decoder's output layer (it
writes the coordinates, where int8 weights' error shows directly). The pose3d encoder is not quantized: it makes
the database vectors (``unihpr-build add`` embeds new clips with it), so every stored vector comes from one float32
graph. Activations are scaled per call over the whole batch, so an answer moves slightly with its batch mates
(float32 graphs map each row alone). What the int8 graphs cost and save, on held-out views and the fixed real rig:
``benchmarks/int8_graphs.py`` and ``benchmarks/README.md``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from model.nn.onnx_export import INPUT_NAME, OUTPUT_NAME
from model.runtime.onnx_sessions import cpu_session

# graph -> which of its linear layers stays float32
QUANTIZED = {"encoder_pose2d": "input", "encoder_image": "input", "decoder3d": "output", "decoder2d": "output"}
ENCODERS = tuple(name for name, kept in QUANTIZED.items() if kept == "input")


def float_layer(path: Path, kept: str) -> str:
    """The name ONNX Runtime's quantizer gives the graph's first (``kept`` "input") or last ("output") linear layer:
    it turns a ``Gemm`` into a ``MatMul`` named ``<gemm>_MatMul`` and an ``Add``."""
    import onnx

    linear = [n for n in onnx.load(str(path)).graph.node if n.op_type in ("Gemm", "MatMul")]
    node = linear[0] if kept == "input" else linear[-1]
    return f"{node.name}_MatMul" if node.op_type == "Gemm" else node.name


def quantize_graph(source: Path, target: Path, kept: str) -> None:
    """The float32 graph at ``source`` with int8 weights (per output channel, symmetric) written to ``target``, all
    but its ``kept`` ("input" or "output") layer."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(source, target, per_channel=True, weight_type=QuantType.QInt8,
                     nodes_to_exclude=[float_layer(source, kept)])


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, D), (N, D) -> (N,) cosine of each row pair."""
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def quantize_graphs(folder: Path, inputs: dict[str, np.ndarray]) -> dict[str, tuple[float, float | None]]:
    """Replace the ``QUANTIZED`` graphs of ``folder`` by their int8 forms, each written beside it and renamed over it.

    inputs: graph name -> (N, ...) float32 held-out inputs (features for encoders, embeddings for decoders).
    returns: graph name -> (largest |int8 - float32| of the outputs on those inputs, in the graph's output units;
        for encoders the smallest cosine between the two graphs' embeddings, else None): what the manifest records.
    """
    agreement = {}
    for name, kept in QUANTIZED.items():
        path = folder / f"{name}.onnx"
        x = np.ascontiguousarray(inputs[name], dtype=np.float32)
        before = cpu_session(path).run([OUTPUT_NAME], {INPUT_NAME: x})[0]
        staged = path.with_name(f"{name}.int8.onnx")
        quantize_graph(path, staged, kept)
        os.replace(staged, path)
        after = cpu_session(path).run([OUTPUT_NAME], {INPUT_NAME: x})[0]
        cosine = float(cosine_rows(before, after).min()) if name in ENCODERS else None
        agreement[name] = (float(np.abs(after - before).max()), cosine)
    return agreement
