"""What the service benchmarks share: the service in a child process, and the inputs and statistics of a run.

Two ways to run the server, both on 127.0.0.1 and a free port, both ready once GET /readyz answers 200:

- ``start_server`` runs a benchmark script in its own ``--serve`` mode, so the script can add routes of its own to
  the app; ``run_bundle_benchmark`` gives every such script the same ``--bundle``, ``--serve`` and ``--port``.
- ``running_server`` runs ``python -m uvicorn --factory service.main:create_app`` of a source tree, configured only
  through ``UNIHPR_*`` variables as a deployment is, and kills it and its children on exit.

The inputs are database poses of a bundle seen through its virtual views (``pose_keypoints``); ``paired`` times two
calls interleaved so that load changes on the machine hit both alike; ``wrk_rps`` measures throughput with ``wrk``,
which takes far less CPU per request than Python clients on the same cores.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import psutil

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_IMAGE = REPO_ROOT.parent / "shared" / "data" / "pose-images" / "mpii" / "052475643.jpg"
WARMUP = 20  # calls of each kind before the timed ones
READY_POLL_S = 0.2  # pause between two /readyz polls while a server starts
FOCAL_PX, CENTRE_PX, DISTANCE_MM = 1145.0, 500.0, 5000.0  # the virtual camera that turns database poses into 2D
# a 2D query's image geometry as that camera's (re-ranking then fits a pinhole in the perspective crop's camera)
QUERY_CAMERA = {"image_size": [int(2 * CENTRE_PX)] * 2, "camera": {"focal": [FOCAL_PX, FOCAL_PX]}}


WRK_SCRIPT = """local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.method, wrk.body = "POST", f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
"""


# ------------------------------------------------------------------ the server (a child process)

def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def readyz_ok(url: str) -> bool:
    """Whether the service at ``url`` answers GET /readyz with 200 (False while it cannot answer at all)."""
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def wait_until_ready(proc: subprocess.Popen, url: str, timeout_s: float,
                     exit_detail: Callable[[], str] = lambda: "") -> None:
    """Poll ``url``/readyz until it answers 200. RuntimeError if ``proc`` exits first (its message ends with
    ``exit_detail()``, e.g. the server's log), TimeoutError after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not readyz_ok(url):
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}{exit_detail()}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the server was not ready within {timeout_s:.0f} s")
        time.sleep(READY_POLL_S)


def start_server(bundle: Path, script: str, ready_s: float = 180.0,
                 extra_args: Sequence[str] = ()) -> tuple[subprocess.Popen, str]:
    """Run ``script --serve --bundle B --port P [extra_args]`` (each benchmark's own server mode) and wait for
    /readyz; the caller terminates the process."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, script, "--serve", "--bundle", str(bundle), "--port", str(port),
                             *extra_args], cwd=REPO_ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(proc, url, ready_s)
    except (RuntimeError, TimeoutError) as err:
        proc.terminate()
        raise SystemExit(str(err)) from err
    return proc, url


def run_bundle_benchmark(parser: argparse.ArgumentParser, argv: list[str] | None, serve, run) -> None:
    """Add the options every bundle benchmark shares to ``parser`` (``--bundle``; ``--serve`` and ``--port``: the
    script's own server mode, which ``start_server`` starts), check the bundle, then ``serve(args)`` or
    ``run(args)``."""
    parser.add_argument("--bundle", type=Path, default=REPO_ROOT / "bundles" / "default")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not (args.bundle / "manifest.json").is_file():
        raise SystemExit(f"{args.bundle}: no bundle (build one with `unihpr-build index --sample --out ...`)")
    if args.serve:
        serve(args)
    else:
        run(args)


def server_env(bundle: Path, settings: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without ``UNIHPR_*``, plus the bundle and ``settings`` (``{"ORT_THREADS": "1"}``
    becomes ``UNIHPR_ORT_THREADS=1``)."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("UNIHPR_")}
    env["UNIHPR_BUNDLE_PATH"] = str(bundle)
    for key, value in (settings or {}).items():
        env[f"UNIHPR_{key.upper()}"] = value
    return env


@dataclass
class ServerProcess:
    """A running service: its process, base URL and log file."""

    proc: subprocess.Popen
    url: str
    log_path: Path

    def log_tail(self, chars: int = 2000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""


@contextmanager
def running_server(bundle: Path, settings: dict[str, str] | None = None, source: Path = REPO_ROOT,
                   ready_timeout_s: float = 180.0):
    """Start the service of the source tree ``source`` (its ``service`` package comes first on the path) on
    127.0.0.1:<free port> serving ``bundle``; yield a ``ServerProcess`` once /readyz is 200; kill it (and its
    children) on exit."""
    port = free_port()
    log_dir = tempfile.TemporaryDirectory(prefix="unihpr-memory-")
    log_path = Path(log_dir.name) / "server.log"
    command = [sys.executable, "-m", "uvicorn", "--factory", "service.main:create_app", "--host", "127.0.0.1",
               "--port", str(port), "--log-level", "warning", "--no-access-log"]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(command, cwd=source, env=server_env(bundle, settings), stdout=log,
                                stderr=subprocess.STDOUT)
    server = ServerProcess(proc, f"http://127.0.0.1:{port}", log_path)
    try:
        wait_until_ready(proc, server.url, ready_timeout_s, exit_detail=lambda: f":\n{server.log_tail()}")
        yield server
    finally:
        kill_tree(proc)
        log_dir.cleanup()


def kill_tree(proc: subprocess.Popen) -> None:
    """Kill ``proc`` and its children (by pid) and reap it."""
    if proc.poll() is None:
        try:
            children = psutil.Process(proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            children = []
        for child in children:
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass
        proc.kill()
    proc.wait(timeout=30)


# ------------------------------------------------------------------ inputs and statistics

def pose_keypoints(bundle: Path, count: int, seed: int = 0) -> np.ndarray:
    """(count, 17, 2) float64 pixels: database poses of ``bundle`` seen through random virtual views by a camera
    with a FOCAL_PX focal length, DISTANCE_MM from the pelvis, principal point at CENTRE_PX."""
    poses = np.load(bundle / "poses.npy", mmap_mode="r")  # (N, 17, 3) mm, world
    rotations = np.load(bundle / "view_rotations.npy")  # (V, 3, 3)
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(poses), count, replace=count > len(poses))
    views = rotations[rng.integers(0, len(rotations), count)]
    cam = np.einsum("nij,nkj->nki", views, np.asarray(poses[rows], dtype=np.float64))  # (count, 17, 3)
    cam[..., 2] += DISTANCE_MM
    return cam[..., :2] / cam[..., 2:3] * FOCAL_PX + CENTRE_PX


def percentile(values: list[float], q: float) -> float | None:
    """The ``q``-th percentile (0..100) of ``values``, None for no values."""
    return float(np.percentile(np.asarray(values, dtype=float), q)) if values else None


def paired(call_a, call_b, n: int) -> tuple[list[float], list[float]]:
    """ms per call of two calls interleaved (a, b, a, b, ... with the order swapped every pair), after a warm-up."""
    for _ in range(WARMUP):
        call_a()
        call_b()
    times_a, times_b = [], []
    for i in range(n):
        for call, times in ((call_a, times_a), (call_b, times_b))[:: 1 if i % 2 == 0 else -1]:
            start = time.perf_counter()
            call()
            times.append((time.perf_counter() - start) * 1e3)
    return times_a, times_b


def wrk_rps(url: str, path: str, body: bytes, connections: int, seconds: float,
            cpus: set[int] | None = None) -> float:
    """Requests per second from ``wrk`` (a C load generator: one thread, ``connections`` keep-alive connections, for
    ``seconds`` after a one-second warm-up) POSTing ``body`` as JSON; on ``cpus`` when given. Any answer but 2xx
    fails the run."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "body.json").write_bytes(body)
        (Path(tmp) / "post.lua").write_text(WRK_SCRIPT)
        env = {**os.environ, "BENCH_BODY": str(Path(tmp) / "body.json")}
        rate = 0.0
        for duration in (1.0, seconds):
            out = subprocess.run(
                ["wrk", "-t1", f"-c{connections}", f"-d{duration:g}s", "-s", str(Path(tmp) / "post.lua"), url + path],
                env=env, capture_output=True, text=True, check=True,
                preexec_fn=None if cpus is None else lambda: os.sched_setaffinity(0, cpus)).stdout
            if "Non-2xx" in out or "Socket errors" in out:
                raise RuntimeError(f"wrk on {path}: {out}")
            rate = float(next(line.split()[1] for line in out.splitlines() if line.startswith("Requests/sec")))
    return rate
