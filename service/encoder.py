"""The bundle's ONNX graphs on ONNX Runtime: encoders (features -> embedding) and decoders (embedding -> pose).

One ``InferenceSession`` per graph, created with the configured intra-op threads and spinning off (busy-waiting
ORT threads steal the few cores from the event loop, FAISS and BlazePose). Calls go through a ``MicroBatcher`` per
graph, so concurrent requests share one ``session.run``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anyio.to_thread
import numpy as np
import onnxruntime as ort

from model.bundle_format import DECODER2D, DECODER3D, ENCODERS, BundleError
from service.batching import MicroBatcher

GRAPHS = {**{f"encoder_{m}": name for m, name in ENCODERS.items()},
          "decoder3d": DECODER3D, "decoder2d": DECODER2D}
ENCODER_OF = {m: f"encoder_{m}" for m in ENCODERS}  # modality -> graph


def session_options(threads: int) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.log_severity_level = 3
    return options


class OnnxModels:
    """The five graphs of a bundle.

    folder: the bundle directory. joints: J (17). dim: D. threads: ORT intra-op threads.
    on_batch(graph, rows, requests): metrics callback per merged call.
    """

    def __init__(self, folder: Path, joints: int, dim: int, threads: int, microbatch: bool, max_rows: int,
                 on_batch: Callable[[str, int, int], None] | None = None):
        self.sessions: dict[str, ort.InferenceSession] = {}
        expected = {**{g: ((joints, 3), (dim,)) for g in GRAPHS if g.startswith("encoder_")},
                    "decoder3d": ((dim,), (joints, 3)), "decoder2d": ((dim,), (joints, 2))}
        options = session_options(threads)
        for graph, filename in GRAPHS.items():
            try:
                session = ort.InferenceSession(str(folder / filename), options, providers=["CPUExecutionProvider"])
                shape_in, shape_out = expected[graph]
                probe = np.zeros((2, *shape_in), np.float32)
                out = session.run(None, {session.get_inputs()[0].name: probe})[0]
            except Exception as err:  # ONNX Runtime raises its own exception types for malformed graphs
                raise BundleError(f"{folder / filename}: does not load in ONNX Runtime: {err}") from err
            if out.shape != (2, *shape_out):
                raise BundleError(f"{folder / filename}: output shape {out.shape[1:]}, expected {shape_out}")
            self.sessions[graph] = session
        self.dim = dim
        self._out_shapes = {g: shapes[1] for g, shapes in expected.items()}
        self._microbatch = microbatch
        self._batchers = {
            graph: MicroBatcher(self._runner(graph), max_rows,
                                (lambda rows, n, g=graph: on_batch(g, rows, n)) if on_batch else None)
            for graph in GRAPHS}

    def _runner(self, graph: str) -> Callable[[np.ndarray], np.ndarray]:
        session = self.sessions[graph]
        input_name = session.get_inputs()[0].name

        def run(x: np.ndarray) -> np.ndarray:
            return session.run(None, {input_name: np.ascontiguousarray(x, dtype=np.float32)})[0]

        return run

    def run_sync(self, graph: str, x: np.ndarray) -> np.ndarray:
        """Blocking call of one graph (benchmarks, tests): x (M, ...) float32 -> (M, ...)."""
        return self._runner(graph)(x)

    async def run(self, graph: str, x: np.ndarray) -> np.ndarray:
        """x: (M, 17, 3) features for an encoder -> (M, D) float32, L2-normalised; (M, D) for a decoder ->
        (M, 17, 3) metres (decoder3d) or (M, 17, 2) normalised 2D (decoder2d)."""
        if len(x) == 0:
            return np.zeros((0, *self.output_shape(graph)), np.float32)
        if self._microbatch:
            return await self._batchers[graph].submit(x)
        return await anyio.to_thread.run_sync(self._runner(graph), x)

    def output_shape(self, graph: str) -> tuple[int, ...]:
        return self._out_shapes[graph]
