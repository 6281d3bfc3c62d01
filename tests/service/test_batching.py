"""The micro-batcher: no wait when idle, everything queued goes into the next call, errors reach every caller."""

from __future__ import annotations

import asyncio
import threading

import numpy as np

from service.batching import MicroBatcher


def test_idle_batcher_runs_a_lone_request_at_once():
    calls: list[int] = []

    def run(x):
        calls.append(len(x))
        return x * 2

    async def main():
        batcher = MicroBatcher(run, max_rows=64)
        loop = asyncio.get_running_loop()
        start = loop.time()
        out = await batcher.submit(np.ones((3, 2)))
        return out, loop.time() - start

    out, elapsed = asyncio.run(main())
    np.testing.assert_array_equal(out, 2 * np.ones((3, 2)))
    assert calls == [3] and elapsed < 0.5


def test_requests_queued_during_a_batch_share_the_next_call():
    release = threading.Event()
    calls: list[tuple[int, ...]] = []

    def run(x):
        calls.append(tuple(x[:, 0].astype(int)))
        if len(calls) == 1:
            release.wait(5)  # the first call blocks while the others queue
        return x + 100

    async def main():
        batcher = MicroBatcher(run, max_rows=4, on_batch=lambda rows, n: sizes.append((rows, n)))
        first = asyncio.ensure_future(batcher.submit(np.array([[0.0]])))
        await asyncio.sleep(0.05)
        rest = [asyncio.ensure_future(batcher.submit(np.array([[float(i)]]))) for i in range(1, 7)]
        await asyncio.sleep(0.05)
        release.set()
        return await first, await asyncio.gather(*rest)

    sizes: list[tuple[int, int]] = []
    first, rest = asyncio.run(main())
    assert calls == [(0,), (1, 2, 3, 4), (5, 6)]  # max_rows caps a call; order kept
    assert first[0, 0] == 100 and [r[0, 0] for r in rest] == [101, 102, 103, 104, 105, 106]
    assert sizes == [(1, 1), (4, 4), (2, 2)]


def test_an_error_reaches_every_request_of_its_batch_and_the_batcher_recovers():
    state = {"fail": True}

    def run(x):
        if state["fail"]:
            raise ValueError("boom")
        return x

    async def main():
        batcher = MicroBatcher(run, max_rows=8)
        results = await asyncio.gather(*(batcher.submit(np.zeros((1, 1))) for _ in range(3)),
                                       return_exceptions=True)
        state["fail"] = False
        return results, await batcher.submit(np.ones((2, 1)))

    results, after = asyncio.run(main())
    assert all(isinstance(r, ValueError) for r in results)
    np.testing.assert_array_equal(after, np.ones((2, 1)))
