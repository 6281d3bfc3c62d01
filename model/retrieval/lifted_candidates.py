"""A second way into the library for re-ranking, one the camera cannot mislead: the query's lifted 3D pose, searched
among the library's poses by a rotation-invariant descriptor (numpy and FAISS).

Why. Re-ranking (``model.retrieval.rerank``) can only return what its candidates hold, and the cosine candidates come
from the embedding, which encodes a pose *as a camera sees it*: from a camera unlike the indexed virtual views the
right pose is often not among them (the best of 100 cosine candidates was 5.0 mm PA-MPJPE from a query pose the
library holds through the fixed real rig, 13.4 mm through random cameras). The decoder's lift of the same query is a
3D pose in the query's camera frame; the distances between its joints do not depend on the camera at all. The
library poses nearest to it by those distances are candidates from any viewpoint, and re-ranking fits them like
the others. Measured by ``unihpr-build evaluate`` (retrieval over the whole library, 300 test queries per camera
set, the shipped weights; ``reports/eval.md``): 100 cosine candidates plus 100 lifted ones bring the best
candidate to 0.9 mm (real rig) and 4.5 mm (random cameras) from 5.0 and 13.4, and the re-ranked top-1 within 10 mm
of the query's own pose from 71% to 95% (real rig) and 42% to 77% (random); 200 cosine candidates alone reached
83% and 51% on the same queries (a throwaway comparison, not in the report).

- Descriptor (``pose_descriptors``): the 136 distances (mm) between the 17 joints, projected by PCA to ``DIM``
  dimensions fitted on the library (they lose almost nothing: 32 dimensions ranked as the 136 did); libraries of
  fewer than ``MIN_PCA_ROWS`` poses keep the 136.
- Index (``DescriptorIndex``): FAISS over the library's descriptors, exact below ``EXACT_BELOW`` poses, else IVF
  with ``NPROBE`` of sqrt(N) lists searched; built from the poses when a library is loaded (measured: 1.7 s for
  140k poses, 3.8 s for 417k, on 2 cores). It also keeps the reduced descriptors as an array (128 bytes a pose:
  18 MB for 140k poses, 53 MB for 417k) for motion search, which compares a query's lifted frames with every
  frame of its candidate windows (``model.retrieval.motion_search``); read back from the IVF's lists instead, the
  same rows took about 2 ms a query.
- A lifted candidate's view: the virtual view that sees it as the query's camera sees the lifted pose
  (``facing_views``), and its cosine that view's stored vector's: one vector read per candidate (a cosine
  candidate's view is its best-scoring one; re-ranking then turns every candidate freely).
- ``merge_candidates``: the two lists as one, in cosine order, each pose (or group) once.
"""

from __future__ import annotations

import math

import faiss
import numpy as np

from model.pose.pose_fit import best_rotations
from model.retrieval.rerank import first_of_each

DIM = 32  # descriptor dimensions after the PCA
LIFTED_CANDIDATES = 100  # library poses the lifted query brings, on top of the cosine candidates
# libraries with fewer poses are searched exactly; above, the IVF: on the sample library's 15,601 poses an exact
# scan takes 83 us a query and the IVF (124 lists, 16 searched) 35 us, with recall@100 0.9987 against it and the
# same nearest pose for 300 of 300 held-out poses (benchmarks/request_kernels.py)
EXACT_BELOW = 5_000
NPROBE = 16  # IVF lists searched, of sqrt(N) (about 4% of a 140k-pose library: recall@100 0.999 against exact)
TRAIN_ROWS = 50_000  # at most this many poses fit the PCA and the IVF centroids (FAISS asks 39 per list)
DESCRIPTOR_CHUNK = 16_384  # poses whose descriptors are computed at once
MIN_PCA_ROWS = 1_000  # smaller libraries keep the 136 distances (too few poses to fit a projection on)
_PAIRS = np.triu_indices(17, 1)
PAIRS = len(_PAIRS[0])  # joint pairs a descriptor measures (136)


def pose_descriptors(poses: np.ndarray) -> np.ndarray:
    """poses: (N, 17, 3) mm (any frame, any root) -> (N, 136) float32: the distance between every pair of joints,
    unchanged by any rotation or translation of the pose. In chunks of ``DESCRIPTOR_CHUNK`` poses: the pairs of a
    whole library at once would be gigabytes of temporaries (1.4 GB per array for 417k poses)."""
    out = np.empty((len(poses), len(_PAIRS[0])), np.float32)
    for start in range(0, len(poses), DESCRIPTOR_CHUNK):
        chunk = np.asarray(poses[start : start + DESCRIPTOR_CHUNK], np.float64)
        out[start : start + len(chunk)] = np.linalg.norm(chunk[:, _PAIRS[0]] - chunk[:, _PAIRS[1]], axis=-1)
    return out


class DescriptorIndex:
    """The library's poses searchable by ``pose_descriptors``.

    poses: (N, 17, 3) mm, the library's poses (rows are what ``search`` returns); seed: the training sample's.
    """

    def __init__(self, poses: np.ndarray, seed: int = 0):
        descriptors = pose_descriptors(poses)
        n = len(descriptors)
        sample = descriptors
        if n > TRAIN_ROWS:
            sample = descriptors[np.sort(np.random.default_rng(seed).choice(n, TRAIN_ROWS, replace=False))]
        self.pca = None
        if n >= MIN_PCA_ROWS:
            self.pca = faiss.PCAMatrix(descriptors.shape[1], DIM)
            self.pca.train(np.ascontiguousarray(sample))
        reduced = self._reduce(descriptors)
        if n < EXACT_BELOW:
            self.index = faiss.IndexFlatL2(reduced.shape[1])
        else:
            self.index = faiss.IndexIVFFlat(faiss.IndexFlatL2(DIM), DIM, int(math.sqrt(n)))
            self.index.cp.seed = seed
            self.index.train(self._reduce(sample))
            self.index.nprobe = NPROBE
        self.index.add(reduced)
        self.reduced = reduced  # (N, d) float32, what ``descriptors`` reads (an IVF's lists cost 2 ms a read)

    def _reduce(self, descriptors: np.ndarray) -> np.ndarray:
        descriptors = np.ascontiguousarray(descriptors, np.float32)
        return descriptors if self.pca is None else self.pca.apply(descriptors)

    def __len__(self) -> int:
        return self.index.ntotal

    def describe(self, poses: np.ndarray) -> np.ndarray:
        """poses: (Q, 17, 3) mm -> (Q, d) float32 their descriptors as the index stores them (after the PCA)."""
        return self._reduce(pose_descriptors(poses))

    def descriptors(self, rows: np.ndarray) -> np.ndarray:
        """rows: (n,) library rows -> (n, d) float32 their stored descriptors (read back, not recomputed)."""
        return self.reduced[rows]

    def search(self, poses: np.ndarray, k: int, allowed: np.ndarray | None = None) -> np.ndarray:
        """poses: (Q, 17, 3) mm (lifted queries) -> (Q, k) int64 library rows, nearest first, -1 where fewer were
        found. allowed: (N,) bool, the library rows a filter keeps (None: all)."""
        if len(poses) == 0 or k <= 0:
            return np.zeros((len(poses), max(k, 0)), np.int64)
        query = self.describe(poses)
        k = min(k, len(self))
        bitmap = None if allowed is None else np.packbits(allowed, bitorder="little")  # alive through the search
        selector = None if bitmap is None else faiss.IDSelectorBitmap(len(allowed), faiss.swig_ptr(bitmap))
        if selector is None:
            params = None
        elif isinstance(self.index, faiss.IndexIVF):
            params = faiss.SearchParametersIVF(nprobe=self.index.nprobe, sel=selector)
        else:
            params = faiss.SearchParameters(sel=selector)
        return self.index.search(query, k, params=params)[1]


def facing_views(lifted: np.ndarray, candidates: np.ndarray, rotations: np.ndarray) -> np.ndarray:
    """The virtual view that sees each candidate as the query's camera sees the lifted pose.

    lifted: (Q, 17, 3) mm, the lifted queries in their camera frames; candidates: (Q, C, 17, 3) mm, library poses in
    the world frame; rotations: (V, 3, 3) world -> view camera. returns: (Q, C) int64, per candidate the view whose
    rotation is closest (largest trace of R_v^T R) to the rotation R that best maps it onto the lift
    (``model.pose.pose_fit.best_rotations``).
    """
    best = best_rotations(candidates, np.asarray(lifted)[:, None])  # (Q, C, 3, 3) candidate -> lift
    score = best.reshape(*best.shape[:-2], 9) @ np.asarray(rotations, np.float64).reshape(-1, 9).T  # trace(R_v^T R)
    return score.argmax(axis=-1).astype(np.int64)


def views_and_cosines(lifted: np.ndarray, near: np.ndarray, embeddings: np.ndarray, poses_of,
                      rotations: np.ndarray, vectors) -> tuple[np.ndarray, np.ndarray]:
    """Each lifted candidate's view (``facing_views``) and the cosine of that view's stored vector with its query.

    lifted: (Q, 17, 3) mm; near: (Q, C) library rows (-1: none); embeddings: (Q, D) the queries; poses_of(rows
    (n,)) -> (n, 17, 3) mm world, the library's poses; rotations: (V, 3, 3); vectors(ids (n,)) -> (n, D), the stored
    vectors (id = pose * V + view). returns: view (Q, C) int64 and cosine (Q, C) float64 (-inf where ``near`` is -1).
    """
    rows = np.maximum(near, 0)
    view = facing_views(lifted, poses_of(rows.reshape(-1)).reshape(*rows.shape, *lifted.shape[1:]), rotations)
    stored = vectors((rows * len(rotations) + view).reshape(-1)).reshape(*near.shape, -1)
    cosine = np.matmul(stored, np.asarray(embeddings)[..., None])[..., 0].astype(np.float64)
    return view, np.where(near >= 0, cosine, -np.inf)


def merge_candidates(pose: list[np.ndarray], view: list[np.ndarray], cosine: list[np.ndarray],
                     group_of_pose: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One query's candidate lists (pose, view, cosine (C_i,) each; -1 poses dropped) -> one list in cosine order
    (ties: the earlier list first), each pose once, or each group once (its best pose) with ``group_of_pose``."""
    p, v, c = np.concatenate(pose), np.concatenate(view), np.concatenate(cosine).astype(np.float64)
    keep = p >= 0
    p, v, c = p[keep], v[keep], c[keep]
    order = np.argsort(-c, kind="stable")
    p, v, c = p[order].astype(np.int64), v[order].astype(np.int64), c[order]
    first = first_of_each(p, 1, len(p), group_of_pose)
    return p[first], v[first], c[first]
