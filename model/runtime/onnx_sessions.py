"""ONNX Runtime session options, defined once for the service, the builder, the benchmarks and the tests.

Every session runs its graph sequentially on ``threads`` intra-op threads and one inter-op thread, with the
thread pools' spinning off: busy-waiting ORT threads would steal the few cores from what shares the process (the
service's event loop, FAISS and BlazePose; torch in the builder). Graph optimisation stays at ORT's default
(``ORT_ENABLE_ALL``).
"""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort

ORT_ERROR = 3  # ONNX Runtime's log severity: 0 verbose, 1 info, 2 warning, 3 error, 4 fatal


def session_options(threads: int, errors_only: bool = False) -> ort.SessionOptions:
    """Options for one session on ``threads`` intra-op threads (module docstring).

    errors_only: log only ORT's errors. The service asks for it: its sessions are made at every (re)load, on CPU
    or CUDA, and ORT's warnings would repeat into the service's log. The builder and the tests keep ORT's own
    level (warnings), which is what a person exporting and checking graphs wants to see.
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    if errors_only:
        options.log_severity_level = ORT_ERROR
    return options


def cpu_session(path: Path, threads: int = 1, errors_only: bool = False) -> ort.InferenceSession:
    """The graph at ``path`` on ONNX Runtime's CPU provider, with ``session_options(threads, errors_only)``."""
    return ort.InferenceSession(str(path), session_options(threads, errors_only), providers=["CPUExecutionProvider"])
