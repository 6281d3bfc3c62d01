"""service.memory.trim_periodically: the arenas are trimmed on a timer, off the event loop, until cancelled."""

from __future__ import annotations

import asyncio
import threading

import pytest

import service.memory as memory


@pytest.mark.skipif(memory.LIBC is None, reason="the timer runs only where the C library is glibc")
def test_trims_every_interval_in_a_worker_thread_until_cancelled():
    # its own trim function, and the C library left as it is: the live servers of other tests in this process run
    # the same timer with it
    trims: list[str] = []
    interval = 0.02

    async def run() -> tuple[float, int, int, int]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        task = asyncio.create_task(memory.trim_periodically(interval, lambda: trims.append(
            threading.current_thread().name)))
        while len(trims) < 3 and loop.time() - start < 10:  # waits on the trims, not on the clock: a loaded machine
            await asyncio.sleep(interval / 4)               # is only slower
        elapsed = loop.time() - start
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        stopped = len(trims)
        await asyncio.sleep(10 * interval)
        settled = len(trims)
        await asyncio.sleep(10 * interval)
        return elapsed, stopped, settled, len(trims)

    elapsed, stopped, settled, later = asyncio.run(run())
    assert stopped >= 3
    assert elapsed >= 2.5 * interval  # each trim waits its interval first
    # a trim already running in its thread may end after the cancellation (a thread cannot be stopped), but the
    # timer starts none after it
    assert settled - stopped <= 1 and later == settled
    assert threading.main_thread().name not in trims  # never on the event loop's thread


def test_no_timer_without_glibc(monkeypatch):
    monkeypatch.setattr(memory, "LIBC", None)
    asyncio.run(asyncio.wait_for(memory.trim_periodically(0.01), timeout=1))  # returns at once
