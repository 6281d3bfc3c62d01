"""Thread pools of the native libraries behind numpy: one BLAS thread by default.

OpenBLAS starts one thread per core, and its threads spin while they wait for work. On a small host whose cores are
also busy with the event loop, ONNX Runtime, FAISS and other requests, a mid-sized matrix product then waits for a
core instead of running: with another job on the cores, a 3 s motion query's verification took 104-293 ms with
two threads against 64-103 with one (``benchmarks/motion_search.py``, ``benchmarks/README.md``). Each request's
numpy work is small, so the service runs it on the request's own thread. ONNX Runtime and FAISS have their own
settings (``Settings.ort_threads``, ``Settings.faiss_threads``).
"""

from __future__ import annotations

import logging

from threadpoolctl import threadpool_info, threadpool_limits

LOG = logging.getLogger(__name__)


def limit_blas_threads(threads: int) -> list[dict]:
    """Cap the loaded BLAS libraries at ``threads`` threads; returns threadpoolctl's description of them after.

    Call it from the main thread, as the service's lifespan runs under uvicorn: numpy's OpenBLAS applies the count
    to the whole process, but ignores a count set from another thread once the main thread has set one, and an
    OpenMP-built BLAS (FAISS's) takes it per thread.
    """
    threadpool_limits(limits=threads, user_api="blas")
    pools = [pool for pool in threadpool_info() if pool["user_api"] == "blas"]
    LOG.info("BLAS threads: %s", ", ".join(f"{p['prefix']} {p['num_threads']}" for p in pools) or "no BLAS loaded")
    return pools
