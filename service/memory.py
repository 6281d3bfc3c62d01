"""Process memory: let freed image buffers go back to the operating system.

glibc's malloc serves large blocks from mmap and returns them on free, but it raises that threshold dynamically
after the first large frees, and it keeps one arena per thread: after a burst of decoded images in worker
threads, the freed memory then stays in the arenas and the process keeps its peak size. Fixing the mmap
threshold and capping the arenas keeps large buffers returnable; ``release_memory`` trims what the arenas still
hold after a large request. Both are no-ops where the C library is not glibc.

The trim threshold is raised for speed, and the trimming left to a timer: by default glibc gives the free top of an
arena back to the system as soon as it exceeds 128 kB, and the thread that allocates there next faults every page
back in. The motion search allocates and frees megabytes many times per query, and in the server's worker thread
its alignment took 19-23 ms against 13-14 in process; with arenas keeping up to ``TRIM_THRESHOLD_BYTES`` the
server's took 14 ms, and a 3 s query over HTTP 100-101 ms against 112-131 (``benchmarks/README.md``). The free
tops go back on a timer instead (``trim_periodically``, every ``TRIM_INTERVAL_S``): 32 MiB without it left a
256-query ``/retrieve`` 12% above the idle RSS 5 s after its answer, and with it 16 and 32 MiB still grew the RSS
under mixed load by 4.0-5.6% (the target is 5%), 8 MiB by 3.6-4.9%.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
from collections.abc import Callable

import anyio.to_thread

LOG = logging.getLogger(__name__)
M_MMAP_THRESHOLD = -3  # mallopt parameters, from glibc's malloc.h
M_ARENA_MAX = -8
M_TRIM_THRESHOLD = -1
MMAP_THRESHOLD_BYTES = 1 << 20  # image rows and arrays above this come from mmap and go back on free
ARENA_MAX = 4
TRIM_THRESHOLD_BYTES = 8 << 20  # free memory an arena keeps at its top between two timed trims
TRIM_INTERVAL_S = 2.0  # seconds between two trims of every arena (``trim_periodically``)


def _glibc():
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


LIBC = _glibc()


def configure_allocator() -> None:
    """Fix the mmap and trim thresholds and cap the arenas (process-wide; call once at start-up)."""
    if LIBC is None:
        return
    if not (LIBC.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) and LIBC.mallopt(M_ARENA_MAX, ARENA_MAX)
            and LIBC.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)):
        LOG.warning("mallopt refused the allocator settings; memory may stay at its peak after large requests")


def release_memory() -> None:
    """Return the free memory of every arena to the operating system (takes milliseconds: call after large work)."""
    if LIBC is not None:
        LIBC.malloc_trim(0)


async def trim_periodically(interval_s: float = TRIM_INTERVAL_S, trim: Callable[[], None] = release_memory) -> None:
    """Trim every arena every ``interval_s`` seconds, in a worker thread (a trim takes the arenas' locks for up to a
    few milliseconds); runs until cancelled. ``trim``: what each tick runs (``release_memory``)."""
    if LIBC is None:
        return
    while True:
        await asyncio.sleep(interval_s)
        await anyio.to_thread.run_sync(trim)
