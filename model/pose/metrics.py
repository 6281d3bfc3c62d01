"""Pose errors and alignment (SPEC section 6); numpy only.

All 3D metrics take (N, J, 3) arrays in mm and return per-pose errors (N,) in mm (NP-MPJPE: unitless), so callers
can average, take percentiles or group by label.
"""

from __future__ import annotations

import numpy as np


def _check(predicted: np.ndarray, target: np.ndarray) -> None:
    assert predicted.shape == target.shape, f"shape mismatch {predicted.shape} vs {target.shape}"
    assert predicted.ndim == 3, f"expected (N, J, C), got {predicted.shape}"


def mpjpe(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Mean per-joint position error. predicted, target: (N, J, C) -> (N,) same unit."""
    _check(predicted, target)
    return np.linalg.norm(predicted - target, axis=-1).mean(axis=-1)


def procrustes_align(predicted: np.ndarray, target: np.ndarray, scale: bool = True) -> np.ndarray:
    """Best similarity (rotation, optional uniform scale, translation) of ``predicted`` onto ``target``.

    predicted, target: (N, J, 3). returns: (N, J, 3) aligned prediction. Reflections are excluded.
    """
    _check(predicted, target)
    mu_p = predicted.mean(axis=1, keepdims=True)
    mu_t = target.mean(axis=1, keepdims=True)
    p = predicted - mu_p
    t = target - mu_t
    # Kabsch: maximise trace(R H) with H = p^T t; the sign fix keeps R a proper rotation.
    u, s, vt = np.linalg.svd(np.einsum("nji,njk->nik", p, t))
    d = np.sign(np.linalg.det(np.einsum("nij,njk->nik", u, vt)))
    s[:, -1] *= d
    u[:, :, -1] *= d[:, None]
    rotation = np.einsum("nij,njk->nik", u, vt)  # applied as p @ rotation
    if scale:
        factor = s.sum(axis=-1) / np.maximum((p**2).sum(axis=(1, 2)), 1e-12)
    else:
        factor = np.ones(p.shape[0])
    return factor[:, None, None] * np.einsum("nji,nik->njk", p, rotation) + mu_t


def pa_mpjpe(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
    """MPJPE after Procrustes alignment (rotation, scale, translation). (N, J, 3) -> (N,)."""
    return mpjpe(procrustes_align(predicted, target), target)


def n_mpjpe(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
    """MPJPE after the least-squares uniform scale of the prediction (Rhodin et al. 2018). (N, J, 3) -> (N,)."""
    _check(predicted, target)
    factor = (predicted * target).sum(axis=(1, 2)) / np.maximum((predicted**2).sum(axis=(1, 2)), 1e-12)
    return mpjpe(factor[:, None, None] * predicted, target)


def unit_rms_scale(poses: np.ndarray, root: int = 0) -> np.ndarray:
    """Root-centre each pose and scale it to unit RMS joint distance from the root. (N, J, 3) -> (N, J, 3)."""
    centred = poses - poses[:, root : root + 1]
    rms = np.sqrt((centred**2).sum(axis=-1).mean(axis=-1))
    return centred / np.maximum(rms, 1e-12)[:, None, None]


def np_mpjpe(predicted: np.ndarray, target: np.ndarray, root: int = 0) -> np.ndarray:
    """Pr-VIPE's NP-MPJPE: both poses root-centred and scaled to unit RMS distance from the root, then the
    prediction rotation-aligned to the target; mean joint distance. (N, J, 3) -> (N,) unitless."""
    _check(predicted, target)
    p = unit_rms_scale(predicted, root)
    t = unit_rms_scale(target, root)
    return mpjpe(procrustes_align(p, t, scale=False), t)


def pck_2d(predicted: np.ndarray, target: np.ndarray, visible: np.ndarray, threshold: np.ndarray) -> float:
    """Fraction of visible joints within ``threshold`` of the target.

    predicted, target: (N, J, 2) pixels. visible: (N, J) bool. threshold: (N,) pixels (e.g. 0.1 x box diagonal).
    """
    _check(predicted, target)
    error = np.linalg.norm(predicted - target, axis=-1)
    hits = (error <= threshold[:, None]) & visible
    return float(hits.sum() / max(visible.sum(), 1))
