"""The memory benchmark's scenarios on a running service: one heavy request, and a mixed load of many clients.

Both warm the server up first (one small request of each kind), take its idle RSS, then watch its RSS and /healthz
while the requests run (``server_monitors``).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

from benchmarks.request_bodies import images_body, pose_input, retrieve_body
from benchmarks.server_monitors import HealthPoller, RssSampler, rss_bytes
from benchmarks.service_harness import ServerProcess, pose_keypoints

MIB = 1 << 20
SETTLE_S = 5.0  # RSS "after" is taken this long after a request's answer
IDLE_WINDOW_S = 1.0  # idle RSS = median over this window
JSON_HEADERS = {"Content-Type": "application/json"}


@dataclass
class RequestResult:
    """One heavy request: status (None: no answer), times (s), RSS (MiB) and /healthz latency (ms) during it."""

    name: str
    body_mb: float
    note: str = ""
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
    """A mixed load: RSS (MiB) over it, statuses, request counts and throughput. Made once the load is over, so
    every field is given; an RSS figure is None where the sampler took no sample in its window."""

    clients: int
    duration_s: float
    idle_mb: float
    first_mb: float | None
    ramp_mb: float | None
    last_mb: float | None
    peak_mb: float | None
    growth_pct: float | None
    growth_after_ramp_pct: float | None
    statuses: dict
    errors: dict
    requests: dict
    throughput_rps: float
    healthz: dict


def percent_growth(samples: list[int]) -> float | None:
    """How much the last of ``samples`` is above the first, %; None for no samples."""
    return 100.0 * (samples[-1] - samples[0]) / samples[0] if samples else None


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
        idle = sampler.median_over(IDLE_WINDOW_S)
        with HealthPoller(server.url, timeout_s=timeout_s) as poller:
            start = time.monotonic()
            deadline[0] = start + duration_s
            threads = [threading.Thread(target=client_loop, args=(i,), daemon=True) for i in range(clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=duration_s + timeout_s + 10)
            elapsed = time.monotonic() - start
        samples = sampler.window(start, start + duration_s)
        ramp = sampler.window(start + ramp_s, start + duration_s)
    return LoadResult(
        clients, duration_s, idle_mb=idle / MIB,
        first_mb=samples[0] / MIB if samples else None,
        ramp_mb=ramp[0] / MIB if ramp else None,
        last_mb=samples[-1] / MIB if samples else None,
        peak_mb=max(samples) / MIB if samples else None,
        growth_pct=percent_growth(samples), growth_after_ramp_pct=percent_growth(ramp),
        statuses={str(k): v for k, v in sorted(statuses.items())}, errors=dict(errors), requests=dict(done),
        throughput_rps=sum(done.values()) / elapsed, healthz=poller.summary())
