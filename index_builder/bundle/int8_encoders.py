"""int8 query encoders (``unihpr-build index --int8-encoders``): ONNX Runtime's dynamic quantization of the pose2d
and image encoders, weights int8 per output channel, activations quantized per call; the input layer stays float32.

Only the query encoders: the decoders lose 6-8 mm PA-MPJPE of lifting when quantized (their outputs are
coordinates, not directions), and the pose3d encoder makes the database vectors (``unihpr-build add`` embeds new
clips with it), so it stays float32 and every stored vector comes from one graph. What the quantized encoders cost
and save, on held-out views: ``benchmarks/int8_encoders.py`` and ``benchmarks/README.md``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from model.nn.onnx_export import INPUT_NAME, OUTPUT_NAME
from model.runtime.onnx_sessions import cpu_session

QUANTIZED = ("encoder_pose2d", "encoder_image")


def input_layer(path: Path) -> str:
    """The name ONNX Runtime's quantizer gives the graph's first linear layer, the one that reads the features: it
    turns a ``Gemm`` into a ``MatMul`` named ``<gemm>_MatMul`` and an ``Add``."""
    import onnx

    node = next(n for n in onnx.load(str(path)).graph.node if n.op_type in ("Gemm", "MatMul"))
    return f"{node.name}_MatMul" if node.op_type == "Gemm" else node.name


def quantize_graph(source: Path, target: Path) -> None:
    """The float32 graph at ``source`` with int8 weights (per output channel, symmetric) written to ``target``, all
    but the input layer: quantized per call, the raw features (coordinates next to 0/1 visibility flags) lost most of
    what int8 costs (held-out 2D lifting +0.57 mm PA-MPJPE with it, +0.17 without; benchmarks/README.md)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(source, target, per_channel=True, weight_type=QuantType.QInt8,
                     nodes_to_exclude=[input_layer(source)])


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, D), (N, D) -> (N,) cosine of each row pair."""
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def quantize_encoders(folder: Path, inputs: dict[str, np.ndarray]) -> dict[str, float]:
    """Replace ``QUANTIZED`` graphs of ``folder`` by their int8 forms, each written beside it and renamed over it.

    inputs: graph name -> (N, 17, 3) float32 held-out features. returns: graph name -> the smallest cosine between
    the int8 and the float32 graph's embeddings of those inputs (what the manifest records).
    """
    agreement = {}
    for name in QUANTIZED:
        path = folder / f"{name}.onnx"
        features = np.ascontiguousarray(inputs[name], dtype=np.float32)
        before = cpu_session(path).run([OUTPUT_NAME], {INPUT_NAME: features})[0]
        staged = path.with_name(f"{name}.int8.onnx")
        quantize_graph(path, staged)
        os.replace(staged, path)
        after = cpu_session(path).run([OUTPUT_NAME], {INPUT_NAME: features})[0]
        agreement[name] = float(cosine_rows(before, after).min())
    return agreement
