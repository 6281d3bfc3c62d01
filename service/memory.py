"""Process memory: let freed image buffers go back to the operating system.

glibc's malloc serves large blocks from mmap and returns them on free, but it raises that threshold dynamically
after the first large frees, and it keeps one arena per thread: after a burst of decoded images in worker
threads, the freed memory then stays in the arenas and the process keeps its peak size. Fixing the mmap
threshold and capping the arenas keeps large buffers returnable; ``release_memory`` trims what the arenas still
hold after a large request. Both are no-ops where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

LOG = logging.getLogger(__name__)
M_MMAP_THRESHOLD = -3  # mallopt parameters, from glibc's malloc.h
M_ARENA_MAX = -8
MMAP_THRESHOLD_BYTES = 1 << 20  # image rows and arrays above this come from mmap and go back on free
ARENA_MAX = 4


def _glibc():
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


LIBC = _glibc()


def configure_allocator() -> None:
    """Fix the mmap threshold and cap the arenas (process-wide; call once at start-up)."""
    if LIBC is None:
        return
    if not (LIBC.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) and LIBC.mallopt(M_ARENA_MAX, ARENA_MAX)):
        LOG.warning("mallopt refused the allocator settings; memory may stay at its peak after large requests")


def release_memory() -> None:
    """Return the free memory of every arena to the operating system (takes milliseconds: call after large work)."""
    if LIBC is not None:
        LIBC.malloc_trim(0)
