"""Compiled loops (numba) for the arithmetic that numpy does poorly on small arrays: per-candidate fits, per-pose
feature rows, gathers through an index's direct map. A numpy call costs about a microsecond before any arithmetic,
so a function of a few dozen numpy calls on a (1, 17, 2) pose spends its time in the calls; one compiled loop
does the same arithmetic at the cost of one call.
"""

from __future__ import annotations

import numba


def kernel(function):
    """``function`` as a compiled loop (nogil: the service fits in worker threads), kept in numba's on-disk cache
    (beside its module, else in the user's cache or ``NUMBA_CACHE_DIR``); where numba finds no writable place for it
    (a read-only file system), compiled in memory at every start instead of refusing to import."""
    try:
        return numba.njit(cache=True, nogil=True)(function)
    except RuntimeError:
        return numba.njit(nogil=True)(function)
