"""The vectors a FAISS index stores, read back by id in bulk without a copy of the index.

FAISS's ``reconstruct_batch`` decodes an IVF index's vectors one id at a time, through a fresh scalar-quantiser
decoder per vector: about 0.9 us a vector on the IVF-SQfp16 libraries bundles hold, 3.7 ms for the 4,096 library
frames a 3 s motion query aligns, 50 ms for a filter of 5% of the full library at 10 fps (benchmarks/README.md,
"Stored vectors read in bulk"; 2.7-3.3x less here, 1.7x for a whole index). ``StoredVectors`` gathers the
ids' codes from the inverted lists through the index's direct map in one compiled loop (numba), decodes them in
one FAISS call and adds back each list's centroid where the codes hold residuals; Flat and HNSW-Flat indexes keep
their float32 vectors in id order and are read as one numpy view. Any other layout falls back to
``reconstruct_batch``. The results are the same numbers ``reconstruct_batch`` returns.

The reader holds views into the index's own memory: build it after the index is last changed, and keep the index
alive with it (it does, through ``index``).
"""

from __future__ import annotations

import faiss
import numpy as np
from numba.typed import List

from model.runtime.compiled_loops import kernel

OFFSET_BITS = 32  # an IVF direct-map entry is list << 32 | offset in the list (faiss/invlists/DirectMap.h)
# ids decoded at a time: the codes and decoded floats of a chunk (a few hundred kB) stay below the service's mmap
# threshold (``service.memory``), so only the answer takes fresh pages, as with ``reconstruct_batch``
CHUNK = 1024


@kernel
def _gather_codes(entries: np.ndarray, lists, ids: np.ndarray, code_size: int, out: np.ndarray) -> bool:
    """out[i] = the code of ids[i]: entries (ntotal,) int64 direct map; lists: per list its (n * code_size,) uint8
    codes; ids within [0, entries.size); out (M, code_size) uint8. False (out unfinished) where an id is not stored."""
    for i in range(ids.size):
        entry = entries[ids[i]]
        if entry < 0:
            return False
        codes = lists[entry >> OFFSET_BITS]
        start = (entry & 0xFFFFFFFF) * code_size
        for b in range(code_size):
            out[i, b] = codes[start + b]
    return True


def compile_kernels() -> None:
    """Compile (or load from numba's cache) the gather and numba's typed list, so that no request pays for it."""
    _gather_codes(np.zeros(1, np.int64), List([np.zeros(1, np.uint8)]), np.zeros(0, np.int64), 1,
                  np.empty((0, 1), np.uint8))


class StoredVectors:
    """``reader(ids)``: (M, D) float32 stored vectors of ids (M,) int64 (each in [0, ntotal)) of ``index``."""

    def __init__(self, index: faiss.Index):
        self.index = index
        self._flat: np.ndarray | None = None
        self._ivf = None
        base = faiss.downcast_index(index)
        if isinstance(base, faiss.IndexHNSW):
            base = faiss.downcast_index(base.storage)
        if type(base) in (faiss.IndexFlat, faiss.IndexFlatIP, faiss.IndexFlatL2):
            self._flat = faiss.rev_swig_ptr(base.get_xb(), base.ntotal * base.d).reshape(base.ntotal, base.d)
            return
        ivf = faiss.try_extract_index_ivf(index)
        if ivf is None or ivf.direct_map.type != faiss.DirectMap.Array:
            return
        ivf = faiss.downcast_index(ivf)
        lists = faiss.downcast_InvertedLists(ivf.invlists)
        if not isinstance(lists, faiss.ArrayInvertedLists):
            return
        if isinstance(ivf, faiss.IndexIVFScalarQuantizer):
            decode = ivf.sq.decode
        elif isinstance(ivf, faiss.IndexIVFFlat):
            def decode(codes: np.ndarray) -> np.ndarray:
                return codes.view(np.float32)
        else:
            return
        self._ivf = ivf
        self._decode = decode
        self._entries = faiss.rev_swig_ptr(ivf.direct_map.array.data(), ivf.ntotal)
        self._lists = List([faiss.rev_swig_ptr(lists.get_codes(n), lists.list_size(n) * ivf.code_size)
                            if lists.list_size(n) else np.zeros(0, np.uint8) for n in range(ivf.nlist)])
        self._centroids = ivf.quantizer.reconstruct_n(0, ivf.nlist) if ivf.by_residual else None

    @property
    def fast(self) -> bool:
        """Whether reads bypass ``reconstruct_batch``."""
        return self._flat is not None or self._ivf is not None

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= self.index.ntotal):
            raise IndexError(f"ids outside the {self.index.ntotal} stored vectors")
        if self._flat is not None:
            return self._flat[ids]
        if self._ivf is None:
            return self.index.reconstruct_batch(ids)
        out = np.empty((ids.size, self._ivf.d), dtype=np.float32)
        for start in range(0, ids.size, CHUNK):
            chunk = ids[start : start + CHUNK]
            codes = np.empty((chunk.size, self._ivf.code_size), dtype=np.uint8)
            if not _gather_codes(self._entries, self._lists, chunk, self._ivf.code_size, codes):
                raise IndexError("ids of vectors the index no longer stores")
            out[start : start + chunk.size] = self._decode(codes).reshape(chunk.size, self._ivf.d)
            if self._centroids is not None:
                out[start : start + chunk.size] += self._centroids[self._entries[chunk] >> OFFSET_BITS]
        return out
