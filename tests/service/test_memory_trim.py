"""service.memory.trim_periodically: the arenas are trimmed on a timer, off the event loop, until cancelled."""

from __future__ import annotations

import asyncio
import threading

import pytest

import service.memory as memory


class RecordingLibc:
    def __init__(self):
        self.trims: list[str] = []

    def malloc_trim(self, pad: int) -> int:
        self.trims.append(threading.current_thread().name)
        return 1


def test_trims_every_interval_in_a_worker_thread_until_cancelled(monkeypatch):
    libc = RecordingLibc()
    monkeypatch.setattr(memory, "LIBC", libc)

    async def run() -> tuple[int, int]:
        task = asyncio.create_task(memory.trim_periodically(0.02))
        await asyncio.sleep(0.15)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        stopped = len(libc.trims)
        await asyncio.sleep(0.06)
        return stopped, len(libc.trims)

    stopped, later = asyncio.run(run())
    assert 3 <= stopped <= 8  # about one trim per interval
    assert later == stopped  # none after the cancellation
    assert threading.main_thread().name not in libc.trims  # never on the event loop's thread


def test_no_timer_without_glibc(monkeypatch):
    monkeypatch.setattr(memory, "LIBC", None)
    asyncio.run(asyncio.wait_for(memory.trim_periodically(0.01), timeout=1))  # returns at once
