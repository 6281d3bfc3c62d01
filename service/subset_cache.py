"""A small LRU of reconstructed index vectors, keyed by the id set: users repeat their filters, and rebuilding a
filter's vectors from an IVF index costs more than searching them."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable

import numpy as np


class SubsetCache:
    """``get(ids, load)``: the (M, D) vectors of ``ids`` (M,), from the cache or ``load(ids)``.

    max_bytes: the cache holds at most this many bytes of vectors (but always the latest entry).
    """

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._entries: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, ids: np.ndarray, load: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        key = hashlib.blake2b(ids.tobytes(), digest_size=16).digest()
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
        vectors = load(ids)
        with self._lock:
            self._entries[key] = vectors
            while sum(v.nbytes for v in self._entries.values()) > self.max_bytes and len(self._entries) > 1:
                self._entries.popitem(last=False)
        return vectors

    def __len__(self) -> int:
        return len(self._entries)
