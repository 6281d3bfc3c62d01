"""Resident memory and liveness of the HTTP service under its heaviest allowed requests and under mixed load.

    .venv/bin/python benchmarks/service_memory.py [--bundle bundles/default] [--duration 60] [--clients 16]
                                                  [--json PATH] [--skip-known-bad] [--rss-limit-gb 16]

Each scenario runs on a fresh server: ``python -m uvicorn --factory service.main:create_app`` on 127.0.0.1 and a
free port, with ``UNIHPR_BUNDLE_PATH`` set (the environment's other ``UNIHPR_*`` variables are dropped, so the
server runs the documented default limits). The server's RSS (the process and its children, bytes) is sampled
every 100 ms with psutil. Before a scenario the server is warmed up with one small request of each kind and its
idle RSS is taken as the median over one second. Then:

- heavy single requests, each within the documented limits (16 MiB body, 256 inputs, 25 MP per image, k <= 1000):
  64 photos of 4000 x 3000 in one JSON /embed (JPEG quality lowered until the body fits), 256 pose queries with
  k = 100 in one /retrieve, and a /embed body of 256 poses padded with decimals to just under the body limit;
- the known-bad requests: 64 single-colour 5000 x 5000 PNGs in one /embed, and 256 queries with k = 1000;
- a mixed load: ``--clients`` threads, each with its own keep-alive client, cycling through image and pose /embed
  and /retrieve requests for ``--duration`` seconds.

For each single request it records the status, the wall time, the peak RSS above idle, the RSS five seconds after
the answer, and the /healthz latency (p50/p99/max, ms) of a poller that runs alongside. For the load: RSS at the
start, after the ramp, at the end and at peak, statuses, and requests per second. A request gets at most
``--timeout`` seconds; if the server's RSS passes ``--rss-limit-gb`` the sampler kills it and the scenario is
reported as killed. Every loop is bounded in count or time and the server is killed in ``finally``.

The photo is ``--image`` (default an MPII test photo from ../shared/data/pose-images), cropped to 4:3 and
resized; images are generated in memory with Pillow and nothing is written but ``--json``.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import multiprocessing
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import numpy as np
import psutil
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_IMAGE = REPO_ROOT.parent / "shared" / "data" / "pose-images" / "mpii" / "052475643.jpg"
MIB = 1 << 20
SAMPLE_INTERVAL_S = 0.1  # RSS sampling period
HEALTH_INTERVAL_S = 0.05  # pause between two /healthz polls
SETTLE_S = 5.0  # RSS "after" is taken this long after a request's answer
IDLE_WINDOW_S = 1.0  # idle RSS = median over this window
FOCAL_PX, CENTRE_PX, DISTANCE_MM = 1145.0, 500.0, 5000.0  # the virtual camera that turns database poses into 2D
JSON_HEADERS = {"Content-Type": "application/json"}


# ------------------------------------------------------------------ the server (a child process)

def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
        deadline = time.monotonic() + ready_timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited with {proc.returncode}:\n{server.log_tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the server was not ready within {ready_timeout_s:.0f} s")
            try:
                if httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
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


# ------------------------------------------------------------------ measuring

def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` and all its descendants, bytes (0 when it is gone)."""
    try:
        process = psutil.Process(pid)
        total = process.memory_info().rss
        for child in process.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total
    except psutil.NoSuchProcess:
        return 0


class RssSampler:
    """Samples the RSS (bytes) of a process tree every ``interval_s`` in a thread; kills the tree when it passes
    ``limit_bytes`` (``killed_at`` then holds the RSS that triggered it)."""

    def __init__(self, proc: subprocess.Popen, interval_s: float = SAMPLE_INTERVAL_S,
                 limit_bytes: int | None = None):
        self.proc, self.interval_s, self.limit_bytes = proc, interval_s, limit_bytes
        self.samples: list[tuple[float, int]] = []  # (time.monotonic() s, RSS bytes)
        self.killed_at: int | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set() and self.proc.poll() is None:
            value = rss_bytes(self.proc.pid)
            with self._lock:
                self.samples.append((time.monotonic(), value))
            if self.limit_bytes is not None and value > self.limit_bytes:
                self.killed_at = value
                kill_tree(self.proc)
                return
            self._stop.wait(self.interval_s)

    def window(self, start: float, stop: float | None = None) -> list[int]:
        """RSS samples (bytes) taken between the monotonic times ``start`` and ``stop`` (now when None)."""
        stop = time.monotonic() if stop is None else stop
        with self._lock:
            return [v for t, v in self.samples if start <= t <= stop]

    def median_over(self, seconds: float) -> int:
        """Median RSS (bytes) over the next ``seconds``."""
        start = time.monotonic()
        time.sleep(seconds)
        values = self.window(start) or [rss_bytes(self.proc.pid)]
        return int(statistics.median(values))


def percentile(values: list[float], q: float) -> float | None:
    """The ``q``-th percentile (0..100) of ``values``, None for no values."""
    return float(np.percentile(np.asarray(values, dtype=float), q)) if values else None


def poll_health(url: str, interval_s: float, timeout_s: float, stop, out) -> None:
    """GET /healthz every ``interval_s`` until ``stop`` is set; sends [(latency ms, ok), ...] through ``out``."""
    polls = []
    with httpx.Client(base_url=url, timeout=timeout_s) as client:
        while not stop.is_set():
            start = time.perf_counter()
            try:
                ok = client.get("/healthz").status_code == 200
            except httpx.HTTPError:
                ok = False
            polls.append(((time.perf_counter() - start) * 1e3, ok))
            stop.wait(interval_s)
    out.send(polls)


class HealthPoller:
    """Polls GET /healthz ``interval_s`` apart and keeps each latency (ms) and failure.

    The poller is a process of its own: in a thread of the measuring process it would wait for the GIL while
    that process reads a large answer, and report the client's delay as the server's.
    """

    def __init__(self, url: str, interval_s: float = HEALTH_INTERVAL_S, timeout_s: float = 120.0):
        self.url, self.interval_s, self.timeout_s = url, interval_s, timeout_s
        self.latencies_ms: list[float] = []
        self.failures = 0
        context = multiprocessing.get_context("spawn")
        self._stop = context.Event()
        self._receive, send = context.Pipe(duplex=False)
        self._process = context.Process(target=poll_health, daemon=True,
                                        args=(url, interval_s, timeout_s, self._stop, send))

    def __enter__(self) -> HealthPoller:
        self._process.start()
        time.sleep(self.interval_s)  # the first poll is under way before the measured request starts
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._receive.poll(self.timeout_s + 5):
            polls = self._receive.recv()
            self.latencies_ms = [ms for ms, _ in polls]
            self.failures = sum(not ok for _, ok in polls)
        self._process.join(timeout=5)
        if self._process.is_alive():
            self._process.kill()

    def summary(self) -> dict:
        """{"n", "p50_ms", "p99_ms", "max_ms", "failures"} of the polls so far."""
        lat = self.latencies_ms
        return {"n": len(lat), "p50_ms": percentile(lat, 50), "p99_ms": percentile(lat, 99),
                "max_ms": max(lat) if lat else None, "failures": self.failures}


# ------------------------------------------------------------------ payloads

def photo_jpeg(path: Path, width: int, height: int, max_bytes: int) -> tuple[bytes, int]:
    """The photo at ``path`` centre-cropped to width:height and resized to width x height pixels, as JPEG of at
    most ``max_bytes``: (bytes, the JPEG quality used, the highest of 90..5 in steps of 5 that fits)."""
    with Image.open(path) as img:
        img = img.convert("RGB")
        scale = min(img.width / width, img.height / height)
        crop_w, crop_h = round(width * scale), round(height * scale)
        left, top = (img.width - crop_w) // 2, (img.height - crop_h) // 2
        big = img.crop((left, top, left + crop_w, top + crop_h)).resize((width, height), Image.BICUBIC)
    for quality in range(90, 0, -5):
        buffer = io.BytesIO()
        big.save(buffer, "JPEG", quality=quality, optimize=True)
        if buffer.tell() <= max_bytes:
            return buffer.getvalue(), quality
    raise ValueError(f"a {width}x{height} JPEG of {path.name} does not fit in {max_bytes} bytes")


def flat_png(width: int, height: int, colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A single-colour RGB PNG of width x height pixels (it compresses about 1000:1)."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, "PNG")
    return buffer.getvalue()


def images_body(image: bytes, count: int) -> bytes:
    """JSON /embed body with ``count`` copies of ``image`` as base64 image inputs."""
    item = json.dumps({"modality": "image", "image_b64": base64.b64encode(image).decode()})
    return ('{"inputs": [' + ", ".join([item] * count) + "]}").encode()


def images_body_overhead(count: int) -> int:
    """Bytes an ``images_body`` of ``count`` inputs adds around the base64 text."""
    return len(images_body(b"", count))


def pose_keypoints(bundle: Path, count: int, seed: int = 0) -> np.ndarray:
    """(count, 17, 2) float64 pixels: database poses of ``bundle`` seen through random virtual views by a camera
    with a FOCAL_PX focal length, DISTANCE_MM from the pelvis, principal point at CENTRE_PX."""
    poses = np.load(bundle / "poses.npy", mmap_mode="r")  # (N, 17, 3) mm, world
    rotations = np.load(bundle / "view_rotations.npy")  # (V, 3, 3)
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(poses), count, replace=count > len(poses)))
    views = rotations[rng.integers(0, len(rotations), count)]
    cam = np.einsum("nij,nkj->nki", views, np.asarray(poses[rows], dtype=np.float64))  # (count, 17, 3)
    cam[..., 2] += DISTANCE_MM
    return cam[..., :2] / cam[..., 2:3] * FOCAL_PX + CENTRE_PX


def pose_input(keypoints: np.ndarray) -> dict:
    """One h36m17 pose2d input from (17, 2) pixels."""
    return {"modality": "pose2d", "keypoints": np.round(keypoints, 2).tolist(), "layout": "h36m17"}


def retrieve_body(keypoints: np.ndarray, k: int) -> bytes:
    """JSON /retrieve body: one pose2d query per row of (Q, 17, 2) pixels, ``k`` results each."""
    return json.dumps({"queries": [pose_input(kp) for kp in keypoints], "k": k}).encode()


def padded_poses_body(keypoints: np.ndarray, target_bytes: int, seed: int = 0) -> bytes:
    """JSON /embed body of one h36m17 pose2d [x, y, c] input per row of (N, 17, 2) pixels whose numbers carry
    seeded random decimals, as many as brings the body to at most ``target_bytes`` (JSON numbers have no
    length limit, so this is the only way 256 poses reach the body limit)."""
    count = len(keypoints)
    numbers = count * 17 * 3
    skeleton = {"inputs": [{"modality": "pose2d", "keypoints": [[0, 0, 0]] * 17, "layout": "h36m17"}] * count}
    base = len(json.dumps(skeleton))
    digits = max(1, (target_bytes - base) // numbers - 8)  # "123.", the confidence's "0." and slack
    rng = random.Random(seed)

    def number(value: float) -> str:
        return f"{int(value)}." + "".join(rng.choices("0123456789", k=digits))

    items = []
    for kp in keypoints:
        joints = ", ".join(f"[{number(x)}, {number(y)}, 0.{''.join(rng.choices('0123456789', k=digits))}]"
                           for x, y in np.abs(kp))
        items.append(f'{{"modality": "pose2d", "keypoints": [{joints}], "layout": "h36m17"}}')
    body = ('{"inputs": [' + ", ".join(items) + "]}").encode()
    if len(body) > target_bytes:
        raise ValueError(f"padded body of {len(body)} bytes is over the target {target_bytes}")
    return body


# ------------------------------------------------------------------ scenarios

@dataclass
class RequestResult:
    """One heavy request: status (None: no answer), times (s), RSS (MiB) and /healthz latency (ms) during it."""

    name: str
    body_mb: float
    status: int | None = None
    error: str | None = None
    wall_s: float | None = None
    idle_mb: float | None = None
    before_mb: float | None = None
    peak_mb: float | None = None
    peak_above_idle_mb: float | None = None
    after_mb: float | None = None
    after_vs_idle_pct: float | None = None
    killed_at_mb: float | None = None
    healthz: dict = field(default_factory=dict)
    note: str = ""


def warm_up(client: httpx.Client, keypoints: np.ndarray, photo: bytes) -> None:
    """One small request of each kind (pose and image /embed, /retrieve), so idle RSS includes the lazy state
    (the second BlazePose instance, ORT arenas, thread pools)."""
    client.post("/embed", content=json.dumps({"inputs": [pose_input(kp) for kp in keypoints[:8]]}),
                headers=JSON_HEADERS).raise_for_status()
    client.post("/retrieve", content=retrieve_body(keypoints[:2], 10), headers=JSON_HEADERS).raise_for_status()
    for _ in range(2):
        client.post("/embed", content=images_body(photo, 2), headers=JSON_HEADERS)


def measure_request(server: ServerProcess, name: str, path: str, body: bytes, warm: tuple[np.ndarray, bytes],
                    timeout_s: float, rss_limit_bytes: int | None, settle_s: float = SETTLE_S,
                    note: str = "") -> RequestResult:
    """POST ``body`` to ``path`` once on a warmed-up ``server`` while sampling RSS and polling /healthz."""
    result = RequestResult(name, len(body) / MIB, note=note)
    with httpx.Client(base_url=server.url, timeout=timeout_s) as client, \
            RssSampler(server.proc, limit_bytes=rss_limit_bytes) as sampler:
        warm_up(client, *warm)
        idle = sampler.median_over(IDLE_WINDOW_S)
        result.idle_mb = result.before_mb = idle / MIB
        with HealthPoller(server.url, timeout_s=timeout_s) as poller:
            start = time.monotonic()
            try:
                response = client.post(path, content=body, headers=JSON_HEADERS)
                result.status = response.status_code
                if response.status_code != 200:
                    result.error = response.text[:300]
                del response
            except httpx.HTTPError as err:
                result.error = f"{type(err).__name__}: {err}"[:300]
            result.wall_s = time.monotonic() - start
        result.healthz = poller.summary()
        during = sampler.window(start)
        if sampler.killed_at is not None:
            result.killed_at_mb = sampler.killed_at / MIB
            during.append(sampler.killed_at)
        if during:
            result.peak_mb = max(during) / MIB
            result.peak_above_idle_mb = result.peak_mb - result.idle_mb
        if server.proc.poll() is None:
            time.sleep(settle_s)
            after = rss_bytes(server.proc.pid)
            result.after_mb = after / MIB
            result.after_vs_idle_pct = 100.0 * (after - idle) / idle
    return result


@dataclass
class LoadResult:
    """A mixed load: RSS (MiB) over it, statuses, request counts and throughput."""

    clients: int
    duration_s: float
    idle_mb: float | None = None
    first_mb: float | None = None
    ramp_mb: float | None = None
    last_mb: float | None = None
    peak_mb: float | None = None
    growth_pct: float | None = None
    growth_after_ramp_pct: float | None = None
    statuses: dict = field(default_factory=dict)
    errors: dict = field(default_factory=dict)
    requests: dict = field(default_factory=dict)
    throughput_rps: float | None = None
    healthz: dict = field(default_factory=dict)


def load_bodies(bundle: Path, photo: bytes) -> list[tuple[str, str, bytes]]:
    """The mixed load's requests, (kind, path, JSON body): image /embed, 64-pose /embed, pose /retrieve k = 10,
    image /retrieve k = 10."""
    keypoints = pose_keypoints(bundle, 64, seed=1)
    image_b64 = base64.b64encode(photo).decode()
    return [
        ("embed_image", "/embed", images_body(photo, 1)),
        ("embed_poses64", "/embed", json.dumps({"inputs": [pose_input(kp) for kp in keypoints]}).encode()),
        ("retrieve_pose", "/retrieve", retrieve_body(keypoints[:1], 10)),
        ("retrieve_image", "/retrieve", json.dumps({"query": {"image_b64": image_b64}, "k": 10}).encode()),
    ]


def mixed_load(server: ServerProcess, bodies: list[tuple[str, str, bytes]], clients: int, duration_s: float,
               ramp_s: float, timeout_s: float, rss_limit_bytes: int | None,
               warm: tuple[np.ndarray, bytes]) -> LoadResult:
    """``clients`` threads, each with its own keep-alive client, cycle through ``bodies`` (client i starts at
    body i) for ``duration_s`` seconds; RSS is compared at the start, after ``ramp_s`` and at the end."""
    result = LoadResult(clients, duration_s)
    statuses: Counter = Counter()
    errors: Counter = Counter()
    done: Counter = Counter()
    lock = threading.Lock()
    deadline = [0.0]

    def client_loop(index: int) -> None:
        with httpx.Client(base_url=server.url, timeout=timeout_s) as client:
            turn = index
            while time.monotonic() < deadline[0] and server.proc.poll() is None:
                kind, path, body = bodies[turn % len(bodies)]
                turn += 1
                try:
                    status = client.post(path, content=body, headers=JSON_HEADERS).status_code
                    with lock:
                        statuses[status] += 1
                        done[kind] += status == 200
                except httpx.HTTPError as err:
                    with lock:
                        errors[type(err).__name__] += 1

    with httpx.Client(base_url=server.url, timeout=timeout_s) as client, \
            RssSampler(server.proc, limit_bytes=rss_limit_bytes) as sampler:
        warm_up(client, *warm)
        result.idle_mb = sampler.median_over(IDLE_WINDOW_S) / MIB
        with HealthPoller(server.url, timeout_s=timeout_s) as poller:
            start = time.monotonic()
            deadline[0] = start + duration_s
            threads = [threading.Thread(target=client_loop, args=(i,), daemon=True) for i in range(clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=duration_s + timeout_s + 10)
            elapsed = time.monotonic() - start
        result.healthz = poller.summary()
        samples = sampler.window(start, start + duration_s)
        ramp = sampler.window(start + ramp_s, start + duration_s)
    if samples:
        result.first_mb, result.last_mb, result.peak_mb = samples[0] / MIB, samples[-1] / MIB, max(samples) / MIB
        result.growth_pct = 100.0 * (samples[-1] - samples[0]) / samples[0]
    if ramp:
        result.ramp_mb = ramp[0] / MIB
        result.growth_after_ramp_pct = 100.0 * (ramp[-1] - ramp[0]) / ramp[0]
    result.statuses = {str(k): v for k, v in sorted(statuses.items())}
    result.errors = dict(errors)
    result.requests = dict(done)
    result.throughput_rps = sum(done.values()) / elapsed
    return result


# ------------------------------------------------------------------ reporting

def fmt(value, digits: int = 0) -> str:
    """A number for the table ('-' for None)."""
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def print_request_table(results: list[RequestResult]) -> None:
    """Markdown table of the single-request scenarios (MiB, %, s, ms)."""
    print("\n| scenario | body MiB | status | wall s | idle MiB | peak above idle MiB | after MiB | after vs idle % "
          "| healthz p50 ms | healthz p99 ms | healthz max ms | note |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        status = fmt(r.status) if r.killed_at_mb is None else f"killed at {r.killed_at_mb:.0f} MiB"
        print(f"| {r.name} | {fmt(r.body_mb, 1)} | {status} | {fmt(r.wall_s, 1)} | {fmt(r.idle_mb)} | "
              f"{fmt(r.peak_above_idle_mb)} | {fmt(r.after_mb)} | {fmt(r.after_vs_idle_pct, 1)} | "
              f"{fmt(r.healthz.get('p50_ms'), 1)} | {fmt(r.healthz.get('p99_ms'), 1)} | "
              f"{fmt(r.healthz.get('max_ms'), 1)} | {r.note or (r.error or '')[:80]} |")


def print_load_table(load: LoadResult) -> None:
    """Markdown table of the mixed load (MiB, %, requests/s, ms)."""
    print(f"\nmixed load: {load.clients} clients, {load.duration_s:.0f} s")
    print("| idle MiB | first MiB | after ramp MiB | last MiB | peak MiB | growth % | growth after ramp % | "
          "req/s | statuses | errors | healthz p50 / p99 / max ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    hz = load.healthz
    print(f"| {fmt(load.idle_mb)} | {fmt(load.first_mb)} | {fmt(load.ramp_mb)} | {fmt(load.last_mb)} | "
          f"{fmt(load.peak_mb)} | {fmt(load.growth_pct, 1)} | {fmt(load.growth_after_ramp_pct, 1)} | "
          f"{fmt(load.throughput_rps, 1)} | {load.statuses} | {load.errors or '-'} | "
          f"{fmt(hz.get('p50_ms'), 1)} / {fmt(hz.get('p99_ms'), 1)} / {fmt(hz.get('max_ms'), 1)} |")
    print(f"completed per kind: {load.requests}")


# ------------------------------------------------------------------ main

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, default=REPO_ROOT / "bundles" / "default")
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE, help="photo to upscale for image requests")
    parser.add_argument("--duration", type=float, default=60.0, help="mixed load length, s")
    parser.add_argument("--ramp", type=float, default=5.0, help="mixed load ramp-up excluded from growth, s")
    parser.add_argument("--clients", type=int, default=16, help="mixed load clients")
    parser.add_argument("--timeout", type=float, default=120.0, help="client timeout per request, s")
    parser.add_argument("--rss-limit-gb", type=float, default=16.0, help="kill the server above this RSS, GiB")
    parser.add_argument("--skip-known-bad", action="store_true", help="skip the known-bad requests")
    parser.add_argument("--skip-load", action="store_true", help="skip the mixed load")
    parser.add_argument("--json", type=Path, default=None, help="write the numbers here")
    parser.add_argument("--source", type=Path, default=REPO_ROOT,
                        help="source tree whose service runs (e.g. a `git archive` of a commit)")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.clients < 1 or args.timeout <= 0:
        parser.error("--duration, --clients and --timeout must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bundle = args.bundle.resolve()
    if not (bundle / "manifest.json").is_file():
        print(f"no bundle at {bundle}; build it with `unihpr-build index --sample --out {args.bundle}`",
              file=sys.stderr)
        return 2
    limit = int(args.rss_limit_gb * (1 << 30))
    warm = (pose_keypoints(bundle, 8, seed=2), args.image.read_bytes())

    with running_server(bundle, source=args.source) as server:
        limits = httpx.get(f"{server.url}/info", timeout=10).json()["limits"]
    max_body, max_batch, max_pixels = limits["max_body_bytes"], limits["max_batch"], limits["max_image_pixels"]
    print(f"limits: body {max_body} bytes, batch {max_batch}, image {max_pixels} pixels, k {limits['k']}")

    per_image = (max_body - images_body_overhead(64)) // 64 * 3 // 4  # base64: 4 characters per 3 bytes
    jpeg, quality = photo_jpeg(args.image, 4000, 3000, per_image)
    png = flat_png(5000, 5000)
    queries = pose_keypoints(bundle, max_batch, seed=3)
    heavy = [
        ("embed 64 x 4000x3000 JPEG", "/embed", images_body(jpeg, 64),
         f"JPEG q{quality}, {len(jpeg) / 1024:.0f} KiB each", False),
        (f"retrieve {max_batch} queries k=100", "/retrieve", retrieve_body(queries, 100), "", False),
        (f"embed {max_batch} poses padded to the body limit", "/embed",
         padded_poses_body(queries, max_body), "h36m17 [x, y, c], long decimals", False),
        ("known-bad: embed 64 x 5000x5000 flat PNG", "/embed", images_body(png, 64),
         f"{len(png) / 1024:.0f} KiB each", True),
        (f"known-bad: retrieve {max_batch} queries k=1000", "/retrieve", retrieve_body(queries, 1000), "", True),
    ]
    results: list[RequestResult] = []
    for name, path, body, note, known_bad in heavy:
        if known_bad and args.skip_known_bad:
            continue
        print(f"[{len(results) + 1}/{len(heavy)}] {name} ({len(body) / MIB:.1f} MiB) on a fresh server", flush=True)
        with running_server(bundle, source=args.source) as server:
            result = measure_request(server, name, path, body, warm, args.timeout, limit, note=note)
        print(f"    status {result.status}, {fmt(result.wall_s, 1)} s, peak +{fmt(result.peak_above_idle_mb)} MiB, "
              f"healthz p99 {fmt(result.healthz.get('p99_ms'), 1)} ms", flush=True)
        results.append(result)

    load = None
    if not args.skip_load:
        print(f"mixed load: {args.clients} clients for {args.duration:.0f} s on a fresh server", flush=True)
        bodies = load_bodies(bundle, args.image.read_bytes())
        with running_server(bundle, source=args.source) as server:
            load = mixed_load(server, bodies, args.clients, args.duration, args.ramp, args.timeout, limit, warm)

    print_request_table(results)
    if load is not None:
        print_load_table(load)
    if args.json is not None:
        args.json.write_text(json.dumps({"limits": limits, "requests": [asdict(r) for r in results],
                                         "load": asdict(load) if load is not None else None}, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
