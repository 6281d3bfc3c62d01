"""Memory and liveness of a real service process under heavy requests: a short version of
``benchmarks/service_memory.py`` over the tiny bundle (about a minute).

The server runs in a child process (``python -m uvicorn --factory service.main:create_app``, loopback, a free port,
the settings of ``live_server.make_settings``) so the RSS measured is the server's own, not pytest's. Targets, from
the robustness brief: one request within the documented limits adds at most 1.5 GiB to the idle RSS and the RSS is
back within 10% of idle a few seconds after it; a mixed load answers no 5xx; /healthz p99 stays under 50 ms while
the heaviest allowed /retrieve runs.
"""

from __future__ import annotations

import pytest

from benchmarks.memory_scenarios import MIB, load_bodies, measure_request, mixed_load
from benchmarks.request_bodies import images_body, photo_jpeg, retrieve_body
from benchmarks.service_harness import DEFAULT_IMAGE, pose_keypoints, running_server

PEAK_ABOVE_IDLE_MIB = 1536  # 1.5 GiB
AFTER_VS_IDLE_PCT = 10.0
SETTLE_S = 3.0  # RSS "after" is read this long after the answer
HEALTHZ_P99_MS = 50.0
FLAT_PCT = 5.0  # RSS growth over a load once warmed up (last sample vs the one after the ramp-up)
IMAGES = 8  # 4000 x 3000 photos in the large-image request
LOAD_CLIENTS, LOAD_DURATION_S, LOAD_RAMP_S = 4, 8.0, 2.0
TIMEOUT_S = 60.0  # per request
RSS_LIMIT_BYTES = 8 << 30  # the sampler kills the server above this


@pytest.fixture(scope="module")
def photo() -> bytes:
    if not DEFAULT_IMAGE.is_file():
        pytest.skip(f"{DEFAULT_IMAGE} not found (the shared pose-images data)")
    return DEFAULT_IMAGE.read_bytes()


@pytest.fixture(scope="module")
def memory_server(tiny_bundle):
    """The tiny bundle served by a child process with the test settings (one ORT thread, two detectors, open)."""
    with running_server(tiny_bundle, settings={"ORT_THREADS": "1", "DETECTOR_INSTANCES": "2"}) as server:
        yield server


@pytest.fixture(scope="module")
def warm(tiny_bundle, photo):
    """What ``measure_request`` warms the server up with: 8 pose keypoint sets and the photo."""
    return pose_keypoints(tiny_bundle, 8, seed=2), photo


def test_rss_returns_to_idle_after_large_images(memory_server, warm):
    jpeg, quality = photo_jpeg(DEFAULT_IMAGE, 4000, 3000, max_bytes=1 << 20)
    result = measure_request(memory_server, f"embed {IMAGES} x 4000x3000", "/embed", images_body(jpeg, IMAGES),
                             warm, TIMEOUT_S, RSS_LIMIT_BYTES, settle_s=SETTLE_S)
    print(f"\n{result}")
    assert result.killed_at_mb is None, f"the server passed {RSS_LIMIT_BYTES / MIB:.0f} MiB"
    assert result.status == 200, result.error
    assert result.peak_above_idle_mb <= PEAK_ABOVE_IDLE_MIB, (
        f"peak {result.peak_above_idle_mb:.0f} MiB above idle ({result.idle_mb:.0f} MiB)")
    assert result.after_vs_idle_pct <= AFTER_VS_IDLE_PCT, (
        f"{SETTLE_S:.0f} s after the answer the RSS is {result.after_mb:.0f} MiB, {result.after_vs_idle_pct:.1f}% "
        f"above idle ({result.idle_mb:.0f} MiB)")


def test_mixed_load_answers_no_server_errors(memory_server, warm, tiny_bundle, photo):
    bodies = load_bodies(tiny_bundle, photo)
    load = mixed_load(memory_server, bodies, LOAD_CLIENTS, LOAD_DURATION_S, LOAD_RAMP_S, TIMEOUT_S,
                      RSS_LIMIT_BYTES, warm)
    print(f"\n{load}")
    server_errors = {status: n for status, n in load.statuses.items() if status.startswith("5")}
    assert not server_errors, f"5xx answers: {server_errors}"
    assert not load.errors, f"transport errors: {load.errors}"
    assert set(load.requests) == {kind for kind, _, _ in bodies}, f"kinds that got a 200: {load.requests}"
    assert load.growth_after_ramp_pct < FLAT_PCT, f"RSS grew {load.growth_after_ramp_pct:.1f}% after the ramp-up"


def test_healthz_stays_fast_during_the_heaviest_retrieve(memory_server, warm, tiny_bundle):
    """256 queries x k = 128: the most results the default max_results (32,768) allows in one answer."""
    queries = pose_keypoints(tiny_bundle, 256, seed=3)
    result = measure_request(memory_server, "retrieve 256 queries k=128", "/retrieve", retrieve_body(queries, 128),
                             warm, TIMEOUT_S, RSS_LIMIT_BYTES, settle_s=0.0)
    print(f"\n{result}")
    assert result.status == 200, result.error
    assert result.healthz["failures"] == 0, result.healthz
    assert result.healthz["p99_ms"] <= HEALTHZ_P99_MS, (
        f"/healthz p99 {result.healthz['p99_ms']:.0f} ms (max {result.healthz['max_ms']:.0f} ms) during a "
        f"{result.wall_s:.1f} s retrieve")


def test_an_answer_over_the_result_limit_is_refused_up_front(memory_server, warm, tiny_bundle):
    queries = pose_keypoints(tiny_bundle, 256, seed=3)
    result = measure_request(memory_server, "retrieve 256 queries k=1000", "/retrieve", retrieve_body(queries, 1000),
                             warm, TIMEOUT_S, RSS_LIMIT_BYTES, settle_s=0.0)
    assert result.status == 413 and "result_too_large" in result.error and "32768" in result.error, result.error
    assert result.wall_s < 1.0, f"refused only after {result.wall_s:.1f} s"
