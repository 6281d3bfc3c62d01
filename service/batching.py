"""Micro-batching of concurrent requests onto one ONNX call, without ever waiting when the worker is idle.

``MicroBatcher.submit(rows)`` from many concurrent handlers: when no batch is running, the rows run at once (a
batch of one request, no timer); while a batch runs in the worker thread, later submissions queue, and when it
finishes the next batch takes everything queued (up to ``max_rows`` rows, always at least one submission). So a
lone request pays no batching delay and a burst is served in a few large calls. A small submission that finds the
batcher idle runs right away on the event loop: its ONNX call takes a fraction of a millisecond, less than the
hop to a worker thread and back. A larger one that finds it idle goes to the worker thread itself, without the
drain task that queued submissions wait on (a task and a future less: about 40 us under uvloop).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import anyio.to_thread
import numpy as np


@dataclass
class _Pending:
    rows: np.ndarray
    future: asyncio.Future


class MicroBatcher:
    """Merge concurrent ``submit`` calls into calls of ``run(rows) -> outputs`` (row-aligned numpy arrays).

    run: (M, ...) -> (M, ...), called in a worker thread (or inline, see below), one call at a time per batcher.
    inline_rows: a submission of at most this many rows that finds the batcher idle runs inline.
    on_batch: optional callback(rows, submissions) after each call, for metrics.
    """

    def __init__(self, run: Callable[[np.ndarray], np.ndarray], max_rows: int, inline_rows: int = 0,
                 on_batch: Callable[[int, int], None] | None = None):
        self._run = run
        self._max_rows = max_rows
        self._inline_rows = inline_rows
        self._on_batch = on_batch
        self._queue: list[_Pending] = []
        self._running = False

    async def submit(self, rows: np.ndarray) -> np.ndarray:
        """rows: (m, ...) -> the run's (m, ...) outputs for these rows."""
        if self._running:
            return await self._enqueue(rows)
        out = self._run(rows) if len(rows) <= self._inline_rows else await self._run_alone(rows)
        if self._on_batch is not None:
            self._on_batch(len(rows), 1)
        return out

    async def _run_alone(self, rows: np.ndarray) -> np.ndarray:
        """An idle batcher's submission as a batch of its own, in a worker thread; submissions arriving meanwhile
        queue, and a drain task takes them after it."""
        self._running = True
        try:
            return await anyio.to_thread.run_sync(self._run, rows)
        finally:
            if self._queue:
                asyncio.get_running_loop().create_task(self._drain())
            else:
                self._running = False

    async def _enqueue(self, rows: np.ndarray) -> np.ndarray:
        """Wait for a batch that the drain task runs after the current one."""
        future = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(rows, future))
        return await future

    def _take(self) -> list[_Pending]:
        taken, total = [], 0
        while self._queue and (not taken or total + len(self._queue[0].rows) <= self._max_rows):
            item = self._queue.pop(0)
            if item.future.cancelled():  # the client went away while queued
                continue
            taken.append(item)
            total += len(item.rows)
        return taken

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch = self._take()
                if not batch:
                    continue
                rows = batch[0].rows if len(batch) == 1 else np.concatenate([p.rows for p in batch])
                try:
                    out = await anyio.to_thread.run_sync(self._run, rows)
                except BaseException as err:  # delivered to every waiting request, which reports it
                    for p in batch:
                        if not p.future.done():
                            p.future.set_exception(err)
                    if not isinstance(err, Exception):
                        raise
                    continue
                if self._on_batch is not None:
                    self._on_batch(len(rows), len(batch))
                start = 0
                for p in batch:
                    stop = start + len(p.rows)
                    if not p.future.done():
                        p.future.set_result(out[start:stop])
                    start = stop
        finally:
            self._running = False
            for p in self._queue:  # only reached when cancelled mid-batch: fail, never hang, the rest
                if not p.future.done():
                    p.future.set_exception(RuntimeError("micro-batcher stopped"))
            self._queue.clear()
