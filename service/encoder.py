"""The bundle's ONNX graphs on ONNX Runtime: encoders (features -> embedding) and decoders (embedding -> pose).

One ``InferenceSession`` per graph, created by ``model.runtime.bundle_format.verify_bundle`` with
``model.runtime.onnx_sessions.session_options`` (the configured intra-op threads, spinning off). Calls go through a
``MicroBatcher`` per graph, so concurrent requests share one ``session.run``.

A call of many rows on the CPU runs as slices in parallel threads (``slices``, at least ``SLICE_ROWS`` rows each):
ONNX Runtime's own intra-op threads did not speed up the encoder at 64 rows (1.47 ms with one thread or two), while
two slices of 32 in two threads took 0.83 ms; every float32 graph maps each row alone, so the sliced outputs are the
same bit for bit (``tests/service/test_encoder_slices.py``; an int8 bundle's graphs scale activations per call, so
there an answer moves slightly with its slice and batch: ``index_builder.bundle.int8_graphs``). Under load the
merged batches (up to 256 rows) then use every core instead of one.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import anyio.to_thread
import numpy as np
import onnxruntime as ort

from model.runtime.bundle_format import GRAPHS
from service.batching import MicroBatcher

INLINE_ROWS = 8  # idle batcher: this many rows run on the event loop (well under a millisecond), not in a thread
SLICE_ROWS = 32  # the fewest rows of a parallel slice: below, a thread's hand-off costs more than it saves
MAX_AUTO_SLICES = 4  # the most slices chosen automatically (a merged call has at most 256 rows: 64 a slice)
ENCODER_OF = {g.modality: g.name for g in GRAPHS.values() if g.modality is not None}  # modality -> graph


class OnnxModels:
    """The five graphs of a bundle, each behind its micro-batcher.

    sessions: graph name -> verified ONNX Runtime session (``model.runtime.bundle_format.verify_bundle``).
    joints: J (17). dim: D. on_batch(graph, rows, requests): metrics callback per merged call. slices: the most
    parallel slices of one call (module docstring; 1: none).
    """

    def __init__(self, sessions: dict[str, ort.InferenceSession], joints: int, dim: int, microbatch: bool,
                 max_rows: int, on_batch: Callable[[str, int, int], None] | None = None, slices: int = 1):
        self.sessions = sessions
        self.dim = dim
        self.slices = max(1, slices)
        # the calling thread runs the first slice: the pool runs the others (its threads end with the object)
        self._pool = ThreadPoolExecutor(self.slices - 1, "onnx-slice") if self.slices > 1 else None
        self._out_shapes = {name: graph.shapes(joints, dim)[1] for name, graph in GRAPHS.items()}
        self._microbatch = microbatch
        self._batchers = {
            graph: MicroBatcher(self._runner(graph), max_rows, INLINE_ROWS if microbatch else 0,
                                (lambda rows, n, g=graph: on_batch(g, rows, n)) if on_batch else None)
            for graph in GRAPHS}

    def _runner(self, graph: str) -> Callable[[np.ndarray], np.ndarray]:
        session = self.sessions[graph]
        input_name = session.get_inputs()[0].name

        def run(x: np.ndarray) -> np.ndarray:
            return session.run(None, {input_name: np.ascontiguousarray(x, dtype=np.float32)})[0]

        def run_sliced(x: np.ndarray) -> np.ndarray:
            parts = min(self.slices, len(x) // SLICE_ROWS)
            if parts < 2:
                return run(x)
            bounds = np.linspace(0, len(x), parts + 1).astype(np.int64)
            others = [self._pool.submit(run, x[a:b]) for a, b in zip(bounds[1:-1], bounds[2:])]
            return np.concatenate([run(x[: bounds[1]]), *(f.result() for f in others)])

        return run if self._pool is None else run_sliced

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


def onnx_slices(setting: int, on_gpu: bool) -> int:
    """The slices a call may run as: none on a GPU (one device runs the call), else the setting, or for 0 the CPUs
    this process may use (at most ``MAX_AUTO_SLICES``)."""
    if on_gpu:
        return 1
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return setting or min(cpus, MAX_AUTO_SLICES)
