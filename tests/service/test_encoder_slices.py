"""Large ONNX calls run as parallel slices (``service.encoder``): the same outputs bit for bit, on every graph."""

from __future__ import annotations

import asyncio
import os
import threading

import numpy as np
import pytest

from model.runtime import bundle_format as fmt
from model.runtime.onnx_sessions import session_options
from service.encoder import MAX_AUTO_SLICES, SLICE_ROWS, OnnxModels, onnx_slices


@pytest.fixture(scope="module")
def sessions(tiny_bundle):
    verified = fmt.verify_bundle(tiny_bundle, session_options=session_options(1, errors_only=True))
    return verified.sessions, verified.manifest.embedding.dim


def inputs(graph: str, rows: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    shape = (rows, dim) if graph.startswith("decoder") else (rows, 17, 3)
    return rng.normal(size=shape).astype(np.float32)


@pytest.mark.parametrize("rows", [1, 2 * SLICE_ROWS - 1, 2 * SLICE_ROWS, 3 * SLICE_ROWS + 5, 200])
def test_sliced_calls_answer_as_one_call(sessions, rows):
    found, dim = sessions
    plain = OnnxModels(found, 17, dim, microbatch=True, max_rows=256, slices=1)
    sliced = OnnxModels(found, 17, dim, microbatch=True, max_rows=256, slices=3)
    rng = np.random.default_rng(rows)
    for graph in fmt.GRAPHS:
        x = inputs(graph, rows, dim, rng)
        one = plain.run_sync(graph, x)
        assert one.shape[0] == rows
        np.testing.assert_array_equal(sliced.run_sync(graph, x), one)
        np.testing.assert_array_equal(asyncio.run(sliced.run(graph, x)), one)  # through the micro-batcher


class Recording:
    """A session that records the rows and the thread of every call, and delegates to the real one."""

    def __init__(self, session):
        self.session, self.calls = session, []
        self.lock = threading.Lock()

    def get_inputs(self):
        return self.session.get_inputs()

    def run(self, outputs, feed):
        with self.lock:
            self.calls.append((len(next(iter(feed.values()))), threading.get_ident()))
        return self.session.run(outputs, feed)


def test_a_large_call_runs_as_slices_in_parallel_threads(sessions):
    found, dim = sessions
    recording = {graph: Recording(session) for graph, session in found.items()}
    models = OnnxModels(recording, 17, dim, microbatch=True, max_rows=256, slices=2)
    x = inputs("encoder_pose2d", 4 * SLICE_ROWS, dim, np.random.default_rng(0))
    models.run_sync("encoder_pose2d", x)
    calls = recording["encoder_pose2d"].calls
    assert sorted(rows for rows, _ in calls) == [2 * SLICE_ROWS, 2 * SLICE_ROWS]
    assert len({thread for _, thread in calls}) == 2
    models.run_sync("encoder_pose2d", x[: 2 * SLICE_ROWS - 1])  # too few rows for two slices: one call
    assert [rows for rows, _ in calls[2:]] == [2 * SLICE_ROWS - 1]


def test_slice_count_follows_the_setting_and_the_device():
    assert onnx_slices(3, on_gpu=False) == 3
    assert onnx_slices(1, on_gpu=False) == 1
    assert onnx_slices(0, on_gpu=False) == min(len(os.sched_getaffinity(0)), MAX_AUTO_SLICES)
    assert onnx_slices(0, on_gpu=True) == onnx_slices(4, on_gpu=True) == 1
