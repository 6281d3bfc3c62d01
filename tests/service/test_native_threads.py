"""The service caps numpy's BLAS thread pool at start-up (service.native_threads), as uvicorn starts it: the
lifespan on the main thread of a fresh process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
START = """
import asyncio, json, sys
import numpy
from threadpoolctl import threadpool_info, threadpool_limits
from service.config import Settings
from service.main import create_app

numpy_blas = {p["filepath"] for p in threadpool_info() if p["user_api"] == "blas"}
threadpool_limits(limits=2, user_api="blas")  # what OpenBLAS starts with on two cores
threads = lambda: sorted({p["num_threads"] for p in threadpool_info() if p["filepath"] in numpy_blas})
app = create_app(Settings(bundle_path=sys.argv[1], ort_threads=1, blas_threads=1))

async def start():
    async with app.router.lifespan_context(app):
        return threads()

before = threads()
print(json.dumps({"before": before, "serving": asyncio.run(start())}))
"""


def test_start_caps_numpy_blas(tiny_bundle):
    done = subprocess.run([sys.executable, "-c", START, str(tiny_bundle)], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"before": [2], "serving": [1]}
