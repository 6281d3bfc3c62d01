"""What watches a service process while a benchmark loads it: its resident memory and its liveness.

``RssSampler`` samples the RSS of the process and its children in a thread and kills them past a limit;
``HealthPoller`` polls GET /healthz from a process of its own and keeps each latency and failure.
"""

from __future__ import annotations

import multiprocessing
import statistics
import subprocess
import threading
import time

import httpx
import psutil

from benchmarks.service_harness import kill_tree, percentile

SAMPLE_INTERVAL_S = 0.1  # RSS sampling period
HEALTH_INTERVAL_S = 0.05  # pause between two /healthz polls


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
