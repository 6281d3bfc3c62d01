"""The oracle floor of retrieval over the library (``index_builder.evaluation.retrieval.real_cameras``): for each query,
the smallest PA-MPJPE of any gallery pose to its true pose, found through the closed-form Procrustes distance over
the whole gallery and the exact PA-MPJPE of a shortlist."""

from __future__ import annotations

import math

import numpy as np

from index_builder.progress import progress_bar
from model.pose.metrics import pa_mpjpe
from model.pose.units import MM_PER_M

ORACLE_SHORTLIST = 256  # the oracle's exact PA-MPJPE is taken over this many gallery poses nearest in Procrustes RMS
ORACLE_PAIRS = 1_000_000  # (query, gallery pose) pairs scored per block in the oracle's closed form


def _signed_nuclear(h: np.ndarray) -> np.ndarray:
    """(3, 3, ...) -> (...,) s1 + s2 + sign(det h) s3, the singular values of each h (descending), from the
    eigenvalues of h^T h in closed form (the trigonometric solution of the symmetric 3 x 3 eigenproblem), every
    product written out on contiguous components (batched 3 x 3 LAPACK calls cost microseconds a matrix)."""
    (h00, h01, h02), (h10, h11, h12), (h20, h21, h22) = h
    a00 = h00 * h00 + h10 * h10 + h20 * h20  # a = h^T h
    a11 = h01 * h01 + h11 * h11 + h21 * h21
    a22 = h02 * h02 + h12 * h12 + h22 * h22
    a01 = h00 * h01 + h10 * h11 + h20 * h21
    a02 = h00 * h02 + h10 * h12 + h20 * h22
    a12 = h01 * h02 + h11 * h12 + h21 * h22
    det_h = h00 * (h11 * h22 - h12 * h21) - h01 * (h10 * h22 - h12 * h20) + h02 * (h10 * h21 - h11 * h20)
    q = (a00 + a11 + a22) / 3.0
    b00, b11, b22 = a00 - q, a11 - q, a22 - q
    p = np.sqrt(np.maximum((b00 * b00 + b11 * b11 + b22 * b22 + 2.0 * (a01 * a01 + a02 * a02 + a12 * a12)) / 6.0,
                           0.0))
    spread = p > 1e-6 * np.abs(q)  # else a = q I: three equal eigenvalues
    safe = np.where(spread, p, 1.0)
    det_b = b00 * (b11 * b22 - a12 * a12) - a01 * (a01 * b22 - a12 * a02) + a02 * (a01 * a12 - b11 * a02)
    phi = np.arccos(np.clip(det_b / (2.0 * safe**3), -1.0, 1.0)) / 3.0
    e1 = np.where(spread, q + 2.0 * p * np.cos(phi), q)
    e3 = np.where(spread, q + 2.0 * p * np.cos(phi + 2.0 * math.pi / 3.0), q)
    e2 = 3.0 * q - e1 - e3
    s1, s2, s3 = (np.sqrt(np.maximum(e, 0.0)) for e in (e1, e2, e3))
    return s1 + s2 + np.sign(det_h) * s3


def procrustes_sq(queries: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """(Q, G) the sum of squared joint distances after the best similarity (rotation, scale, translation) of each
    gallery pose onto each query, in closed form: |t|^2 - (s1 + s2 + sign s3)^2 / |p|^2 for the centred query t and
    gallery pose p, s the singular values of p^T t (as ``model.pose.metrics.pa_mpjpe`` aligns, but squared distances).

    queries: (Q, J, 3) mm; gallery: (G, J, 3) mm (small: ``oracle_floor`` runs it in blocks, in float32)."""
    return _procrustes_sq(*_centred(queries), *_centred(gallery))


def _centred(poses: np.ndarray, dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(poses, dtype)
    x = x - x.mean(axis=1, keepdims=True)
    return x, (x * x).sum(axis=(1, 2))


def _procrustes_sq(t: np.ndarray, tn: np.ndarray, p: np.ndarray, pn: np.ndarray) -> np.ndarray:
    q, g, joints = t.shape[0], p.shape[0], t.shape[1]
    h = p.transpose(0, 2, 1).reshape(g * 3, joints) @ t.transpose(1, 0, 2).reshape(joints, q * 3)  # (G*3, Q*3)
    h = np.ascontiguousarray(h.reshape(g, 3, q, 3).transpose(1, 3, 2, 0))  # (3, 3, Q, G): p^T t of each pair
    s = _signed_nuclear(h)
    return np.maximum(tn[:, None] - s * s / np.maximum(pn[None, :], 1e-12), 0.0)


def oracle_floor(truth: np.ndarray, gallery: np.ndarray, query_clip: np.ndarray, gallery_clip: np.ndarray,
                 exclude: bool, shortlist: int = ORACLE_SHORTLIST, progress: bool = False) -> np.ndarray:
    """(Q,) the smallest PA-MPJPE (mm) of any gallery pose to each query's true pose (outside its clip when
    ``exclude``): the ``shortlist`` poses of least Procrustes sum of squares (closed form over the whole gallery,
    numpy float32: the shortlist needs no more), then the exact PA-MPJPE of those. truth: (Q, 17, 3); gallery:
    (G, 17, 3) mm."""
    t, tn = _centred(truth / MM_PER_M, np.float32)  # metres: float32 cubes of mm^2 sums would overflow
    p, pn = _centred(gallery / MM_PER_M, np.float32)
    gclip = np.asarray(gallery_clip)
    block = max(1, ORACLE_PAIRS // max(1, len(gallery)))
    keep = min(shortlist, len(gallery))
    rows = []
    for start in progress_bar(range(0, len(truth), block), desc="oracle floor", enabled=progress, leave=False):
        sl = slice(start, start + block)
        sq = _procrustes_sq(t[sl], tn[sl], p, pn)  # (b, G)
        if exclude:
            sq[np.asarray(query_clip[sl])[:, None] == gclip[None, :]] = np.inf
        rows.append(np.argpartition(sq, keep - 1, axis=1)[:, :keep])
    near = np.concatenate(rows)  # (Q, S)
    errors = pa_mpjpe(gallery[near].reshape(-1, *gallery.shape[1:]).astype(np.float64),
                      np.repeat(truth.astype(np.float64), near.shape[1], axis=0)).reshape(near.shape)
    if exclude:
        errors = np.where(gclip[near] == np.asarray(query_clip)[:, None], np.inf, errors)
    return errors.min(axis=1)
