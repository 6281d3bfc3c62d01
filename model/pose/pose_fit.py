"""How well a candidate 3D pose explains a query: the geometry of re-ranking (numpy, and numba for the per-candidate
arithmetic).

A 2D query is explained by a candidate 3D pose (mm, in a camera-like frame: x right, y down, z forward) through a
camera with a free rotation, scale and translation, fitted to the visible joints weighted by their confidence (a
missing joint has weight 0 and is ignored); the residual is the weighted RMS 2D distance over the visible joints.

- ``weak_perspective_fit``: scaled orthographic, x_j ~ s (R X_j)[:2] + t, for 2D in any units (the service's
  box-normalised features when the ray geometry is unknown). The least-squares affine camera (2 x 3) of the
  centred points, its nearest matrix with orthonormal rows (closed form, ``_nearest_rows``) completed to a proper
  rotation, then Gauss-Newton steps on the rotation (3 angles) and the log scale, on the points' weighted second
  moments (the scale is solved in closed form for each rotation; the translation is the centroid's, exactly).
- ``perspective_fit``: a pinhole of unit focal length, rays_j ~ pi(R X_j + T), for rays (x / z, y / z) of the
  perspective crop's virtual camera (a camera aimed at the person): POSIT rounds (DeMenthon and Davis, 1995), each
  a weak-perspective fit of the rays corrected by the current depths. A person 2.5-8 m away is 0.3-0.5 m deep, so
  weak perspective leaves a residual of about 1-2% of the body height even for the true pose, more than a 10 mm
  change of pose moves the 2D: on real-rig queries whose library holds a pose within 10 mm among the candidates,
  the perspective fit ranks such a pose first for 93% of them, the weak-perspective fit for 74% (benchmarks/
  README.md, "re-ranking").
- ``best_rotations``: the rotation that best turns one point set onto another (Kabsch's problem), by Horn's
  quaternion: the eigenvector of the largest eigenvalue of a symmetric 4 x 4 matrix, found as the QCP method does
  (Theobald, 2005: Newton's method on the characteristic polynomial, then the adjugate).

A 3D query is explained by a candidate through a similarity: ``procrustes_residual`` is their PA-MPJPE (mm).

Every function is vectorised over leading axes (candidates, queries): ``...`` below broadcasts. A fit is a few
thousand flops per candidate over a handful of 3 x 3 matrices: as numpy operations on stacks of them, each call
cost more than its arithmetic (a re-ranking's 160 candidates took about 0.9 ms, 0.2 ms compiled), so each
candidate is fitted by one compiled loop (numba, compiled on first use and cached on disk; ``compile_kernels``
does it ahead).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from model.pose.metrics import pa_mpjpe
from model.runtime.compiled_loops import kernel

ITERATIONS = 2  # Gauss-Newton steps of ``weak_perspective_fit``
PERSPECTIVE_ROUNDS = 2  # POSIT rounds of ``perspective_fit`` ...
PERSPECTIVE_ITERATIONS = 1  # ... with this many Gauss-Newton steps each (its start: the affine fit's rotation)
DAMPING = 1e-3  # Levenberg-Marquardt damping, relative to the diagonal of the normal equations
NEWTON_STEPS = 50  # at most, for Horn's largest eigenvalue from its bound (5 for near poses, 11-16 unrelated)
ADJUGATE_TOLERANCE = 1e-9  # a cofactor below this x the bound cubed: the eigenvalue is nearly repeated ...
JACOBI_SWEEPS = 10  # ... and Jacobi sweeps find the eigenvector instead, at most this many (3-5 in practice) ...
JACOBI_TOLERANCE = 1e-24  # ... until the off-diagonal's squares are this small against the diagonal's (rounding)
_EPS = 1e-12


@dataclass(frozen=True)
class CameraFit:
    """A weak-perspective fit per candidate.

    residual: (...,) weighted RMS 2D distance over the visible joints, query units. scale: (...,) query units per
    candidate unit (mm). rotation: (..., 3, 3) candidate frame -> fitted camera. translation: (..., 2) query units.
    ``project`` gives the fitted 2D.
    """

    residual: np.ndarray
    scale: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray

    def project(self, poses: np.ndarray) -> np.ndarray:
        """poses: (..., J, 3) the fitted candidates -> (..., J, 2) their 2D under the fitted cameras."""
        turned = np.einsum("...ij,...kj->...ki", self.rotation, poses)[..., :2]
        return self.scale[..., None, None] * turned + self.translation[..., None, :]


@dataclass(frozen=True)
class PerspectiveFit:
    """A pinhole (unit focal length) fit per candidate: rays_j ~ pi(R X_j + T), pi(p) = (p_x / p_z, p_y / p_z).

    residual: (...,) weighted RMS reprojection error over the visible joints, ray units (x / z). rotation: (..., 3,
    3) candidate frame -> camera. translation: (..., 3) mm.
    """

    residual: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray

    def project(self, poses: np.ndarray) -> np.ndarray:
        """poses: (..., J, 3) the fitted candidates -> (..., J, 2) their rays under the fitted cameras."""
        p = np.einsum("...ij,...kj->...ki", self.rotation, poses) + self.translation[..., None, :]
        return p[..., :2] / p[..., 2:3]


def rodrigues(w: np.ndarray) -> np.ndarray:
    """(..., 3) axis-angle vectors -> (..., 3, 3) rotations exp([w]x) (through the unit quaternion)."""
    w = np.asarray(w, np.float64)
    return _rotation_vectors(np.ascontiguousarray(w.reshape(-1, 3))).reshape(w.shape[:-1] + (3, 3))


def weak_perspective_fit(points2d: np.ndarray, weights: np.ndarray, poses: np.ndarray,
                         iterations: int = ITERATIONS) -> CameraFit:
    """Fit each candidate's 3D to the query's 2D under a scaled orthographic camera (module docstring).

    points2d: (..., J, 2) query 2D (x right, y down; any units, typically the crop's normalised 2D).
    weights: (..., J) >= 0, the joints' confidences; 0 = missing (its coordinates are ignored). At least 4
        joints with weight > 0 that are not coplanar in 3D make the fit well posed.
    poses: (..., J, 3) candidate 3D, mm, in a camera-like frame (x right, y down, z forward).
    iterations: Gauss-Newton steps after the nearest scaled rotation of the affine fit.
    returns: the fit per candidate (broadcast shape of the leading axes).
    """
    lead, x, w, X = _broadcast(points2d, weights, poses)
    residual, scale, rotation, translation = _fit_all(x, w, X, False, 0, iterations, 0)
    return CameraFit(residual=residual.reshape(lead), scale=scale.reshape(lead),
                     rotation=rotation.reshape(lead + (3, 3)), translation=translation[:, :2].reshape(lead + (2,)))


def perspective_fit(rays: np.ndarray, weights: np.ndarray, poses: np.ndarray, rounds: int = PERSPECTIVE_ROUNDS,
                    iterations: int = PERSPECTIVE_ITERATIONS, start_iterations: int = 0) -> PerspectiveFit:
    """Fit each candidate's 3D to the query's rays under a pinhole camera with a free rotation and translation.

    POSIT (DeMenthon and Davis, 1995): with the candidate's depths z_j relative to its centroid (at depth Z) from
    the current fit, rays_j (1 + z_j / Z) follow the scaled orthographic model with scale 1 / Z exactly; each round
    corrects the rays so and refits that model (``weak_perspective_fit``'s moment form, from the last rotation),
    starting from the nearest rotation of the rays' affine fit. On real-rig and random-camera validation queries
    (400 each, 100 candidates), 2 rounds of 1 step rank candidates as 3 rounds of 2 steps do (top-1 PA-MPJPE
    6.99 vs 6.97 and 14.93 vs 14.93 mm, the same share within 10 mm) in about half the time; 1 round of 2 steps
    ranks alike too but leaves some true poses a residual of 2% of the box (not converged).

    rays: (..., J, 2) undistorted normalised image coordinates (x / z, y / z) of a camera aimed near the person
        (the perspective crop's virtual camera). weights, poses: as ``weak_perspective_fit``.
    rounds: POSIT rounds; iterations: Gauss-Newton steps of each round; start_iterations: of the first fit.
    """
    lead, x, w, X = _broadcast(rays, weights, poses)
    residual, _, rotation, translation = _fit_all(x, w, X, True, rounds, iterations, start_iterations)
    return PerspectiveFit(residual=residual.reshape(lead), rotation=rotation.reshape(lead + (3, 3)),
                          translation=translation.reshape(lead + (3,)))


def best_rotations(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The proper rotation R that best turns each ``source`` onto its ``target``, both about their means (least
    squares over the points, no scale): Kabsch's problem, solved by Horn's unit quaternion (1987), the eigenvector of
    the largest eigenvalue of a symmetric 4 x 4 matrix of the points' cross-covariance.

    source, target: (..., J, 3), broadcast against each other. returns: (..., 3, 3) with ``R @ (source_j - mean)``
    near ``target_j - its mean``.
    """
    source, target = np.broadcast_arrays(np.asarray(source, np.float64), np.asarray(target, np.float64))
    lead = source.shape[:-2]
    flat = (-1,) + source.shape[-2:]
    out = _best_rotations(np.ascontiguousarray(source).reshape(flat), np.ascontiguousarray(target).reshape(flat))
    return out.reshape(lead + (3, 3))


def compile_kernels() -> None:
    """Compile (or load from numba's cache) every kernel of this module, so that no request pays for it."""
    rng = np.random.default_rng(0)
    poses, weights = rng.normal(size=(2, 17, 3)), np.ones((2, 17))
    perspective_fit(rng.normal(size=(2, 17, 2)), weights, poses)
    weak_perspective_fit(rng.normal(size=(2, 17, 2)), weights, poses)
    best_rotations(poses, poses)
    rodrigues(np.zeros(3))


def _broadcast(points: np.ndarray, weights: np.ndarray, poses: np.ndarray):
    """The leading shape the three broadcast to, and each as one contiguous float64 row per fit: (N, J, 2), (N, J),
    (N, J, 3)."""
    points, weights, poses = (np.asarray(a, np.float64) for a in (points, weights, poses))
    lead = np.broadcast_shapes(points.shape[:-2], weights.shape[:-1], poses.shape[:-2])
    joints = poses.shape[-2]

    def rows(a: np.ndarray, tail: tuple[int, ...]) -> np.ndarray:
        return np.ascontiguousarray(np.broadcast_to(a, lead + tail)).reshape((-1,) + tail)

    return lead, rows(points, (joints, 2)), rows(weights, (joints,)), rows(poses, (joints, 3))


# ------------------------------------------------------------------ compiled kernels: one fit per loop iteration


@kernel
def _fit_all(x, w, X, perspective, rounds, iterations, start_iterations):
    """Every row's fit: x (N, J, 2), w (N, J), X (N, J, 3) -> residual (N,), scale (N,), rotation (N, 3, 3),
    translation (N, 3) (weak perspective: x, y and 0, query units; perspective: mm)."""
    n, joints = X.shape[0], X.shape[1]
    residual, scale = np.empty(n), np.empty(n)
    rotation, translation = np.empty((n, 3, 3)), np.zeros((n, 3))
    wn, Xc, xs = np.empty(joints), np.empty((joints, 3)), np.empty((joints, 2))
    mean3, cXX = np.empty(3), np.empty((3, 3))
    work = np.empty((4, 3, 3))  # scratch of the 3 x 3 arithmetic, reused by every fit
    for i in range(n):
        _moments(w[i], X[i], wn, mean3, Xc, cXX)
        R = rotation[i]
        if perspective:
            out = _posit(x[i], wn, Xc, cXX, R, rounds, iterations, start_iterations, xs, work)
        else:
            out = _weak(x[i], wn, Xc, cXX, R, iterations, False, work)
        residual[i], scale[i], mx, my = out
        if perspective:  # the centroid at depth 1 / s on the ray of the 2D centroid; its residual with perspective
            s = max(scale[i], _EPS)
            centre = (mx / s, my / s, 1.0 / s)
            total = 0.0
            for j in range(joints):
                px = R[0, 0] * Xc[j, 0] + R[0, 1] * Xc[j, 1] + R[0, 2] * Xc[j, 2] + centre[0]
                py = R[1, 0] * Xc[j, 0] + R[1, 1] * Xc[j, 1] + R[1, 2] * Xc[j, 2] + centre[1]
                pz = max(R[2, 0] * Xc[j, 0] + R[2, 1] * Xc[j, 1] + R[2, 2] * Xc[j, 2] + centre[2], _EPS)
                rx, ry = x[i, j, 0] - px / pz, x[i, j, 1] - py / pz
                total += wn[j] * (rx * rx + ry * ry)
            residual[i], scale[i] = math.sqrt(max(total, 0.0)), s
            for k in range(3):
                translation[i, k] = centre[k] - (R[k, 0] * mean3[0] + R[k, 1] * mean3[1] + R[k, 2] * mean3[2])
        else:
            for k in range(2):
                turned = R[k, 0] * mean3[0] + R[k, 1] * mean3[1] + R[k, 2] * mean3[2]
                translation[i, k] = (mx, my)[k] - scale[i] * turned
    return residual, scale, rotation, translation


@kernel
def _moments(w, X, wn, mean, Xc, cXX):
    """Weights normalised to sum 1 (``wn``), the weighted mean of the candidate ``mean`` (3,), its centred points
    ``Xc`` (J, 3) and their weighted second moments ``cXX`` (3, 3), written into the given arrays."""
    joints = X.shape[0]
    total = 0.0
    for j in range(joints):
        total += w[j]
    total = max(total, _EPS)
    for j in range(joints):
        wn[j] = w[j] / total
    for k in range(3):
        acc = 0.0
        for j in range(joints):
            acc += wn[j] * X[j, k]
        mean[k] = acc
    for j in range(joints):
        for k in range(3):
            Xc[j, k] = X[j, k] - mean[k]
    for a in range(3):
        for b in range(a, 3):
            acc = 0.0
            for j in range(joints):
                acc += wn[j] * Xc[j, a] * Xc[j, b]
            cXX[a, b] = cXX[b, a] = acc


@kernel
def _posit(x, wn, Xc, cXX, R, rounds, iterations, start_iterations, xs, work):
    """``perspective_fit`` of one candidate: the weak-perspective start, then ``rounds`` POSIT corrections of the
    rays by the current depths (``xs``: scratch (J, 2)). Returns ``_weak``'s (residual, scale, centroid x, y) of
    the last round; R holds the rotation."""
    out = _weak(x, wn, Xc, cXX, R, start_iterations, False, work)
    for _ in range(rounds):
        scale = out[1]
        for j in range(x.shape[0]):
            depth = Xc[j, 0] * R[2, 0] + Xc[j, 1] * R[2, 1] + Xc[j, 2] * R[2, 2]  # relative to the centroid
            xs[j, 0], xs[j, 1] = x[j, 0] * (1.0 + scale * depth), x[j, 1] * (1.0 + scale * depth)
        out = _weak(xs, wn, Xc, cXX, R, iterations, True, work)
    return out


@kernel
def _weak(x, wn, Xc, cXX, R, iterations, from_rotation, work):
    """The weak-perspective fit of 2D ``x`` (J, 2) to the candidate's moments: from the rotation in ``R`` (3, 3;
    ``from_rotation``) or from the nearest rotation of the affine fit, then ``iterations`` Gauss-Newton steps; R
    holds the result (``work``: scratch (4, 3, 3)). Returns (residual, scale, centroid x, centroid y) of the 2D."""
    joints = x.shape[0]
    mx, my = 0.0, 0.0
    for j in range(joints):
        mx += wn[j] * x[j, 0]
        my += wn[j] * x[j, 1]
    cxX = work[0]  # rows 0 and 1: sum_j w_j xc_j Xc_j^T
    cxX[:2, :] = 0.0
    sxx = 0.0
    for j in range(joints):
        xc, yc = x[j, 0] - mx, x[j, 1] - my
        sxx += wn[j] * (xc * xc + yc * yc)
        for k in range(3):
            cxX[0, k] += wn[j] * xc * Xc[j, k]
            cxX[1, k] += wn[j] * yc * Xc[j, k]
    if not from_rotation:  # least-squares affine camera A = cxX cXX^-1 (ridged), its nearest orthonormal rows
        inverse, affine = work[1], work[2]
        _inverse3(cXX, 1e-9 * (cXX[0, 0] + cXX[1, 1] + cXX[2, 2]) + _EPS, inverse)
        for r in range(2):
            for c in range(3):
                affine[r, c] = cxX[r, 0] * inverse[0, c] + cxX[r, 1] * inverse[1, c] + cxX[r, 2] * inverse[2, c]
        _nearest_rows(affine, R)
    scale, residual = _refine(sxx, cxX, cXX, R, iterations, work)
    return residual, scale, mx, my


@kernel
def _refine(sxx, cxX, cXX, R, iterations, work):
    """Gauss-Newton on (rotation, log scale) from the rotation in R (updated in place), on the weighted moments of
    the centred points (sxx = sum_j w_j |xc_j|^2, cxX (rows 0-1 of a 3 x 3), cXX (3, 3)): each step costs a few
    3 x 3 products, whatever the joint count. Returns the scale and the residual (weighted RMS).

    The residual r_j = xc_j - s (R Xc_j)[:2]; a rotation step exp([w]x) R and a log-scale step d give the
    Jacobian rows s [0, z, -y, x] (x coordinate) and s [-z, 0, x, y] (y coordinate) of Y_j = R Xc_j = (x, y, z),
    so the normal equations are sums of Y's second moments M = R cXX R^T and of B = cxX R^T: written out below.
    """
    trace = cXX[0, 0] + cXX[1, 1] + cXX[2, 2]
    b, step, turned = work[1], work[2], work[3]
    for _ in range(iterations):
        mxz, myz, mzz, plane, s = _scale_and_moments(cxX, cXX, R, trace, b)
        inv_s = 1.0 / max(s, _EPS)
        # gradient / s, split into the x-y rotation part g1 and the (z rotation, log scale) part g2
        g1x, g1y = myz - b[1, 2] * inv_s, b[0, 2] * inv_s - mxz
        g2x = (b[1, 0] - b[0, 1]) * inv_s
        g2y = (b[0, 0] + b[1, 1]) * inv_s - plane
        # h = [[mzz I, C], [C^T, plane I]] with C = [[-mxz, -myz], [-myz, mxz]] (C C^T = (mxz^2 + myz^2) I),
        # Levenberg-Marquardt damped on the diagonal; solved by its Schur complement in closed form
        a_ = mzz * (1 + DAMPING) + _EPS
        p = plane * (1 + DAMPING) + _EPS
        cg2x, cg2y = -mxz * g2x - myz * g2y, -myz * g2x + mxz * g2y  # C g2
        schur = a_ - (mxz * mxz + myz * myz) / p
        ux, uy = (g1x - cg2x / p) / schur, (g1y - cg2y / p) / schur
        vx = (g2x - (-mxz * ux - myz * uy)) / p  # (g2 - C^T u) / p; the log-scale step v_y is not needed
        _rotation_vector(ux, uy, vx, step)  # the scale is re-solved in closed form
        for r in range(3):
            for c in range(3):
                turned[r, c] = step[r, 0] * R[0, c] + step[r, 1] * R[1, c] + step[r, 2] * R[2, c]
        R[:, :] = turned
    _, _, _, plane, s = _scale_and_moments(cxX, cXX, R, trace, b)
    squared = sxx - 2 * s * (b[0, 0] + b[1, 1]) + s * s * plane
    return s, math.sqrt(max(squared, 0.0))


@kernel
def _scale_and_moments(cxX, cXX, R, trace, b):
    """Moments of the candidate turned by R (Y_j = R Xc_j): B = sum_j w_j xc_j Y_j^T = cxX R^T into rows 0-1 of
    ``b``; the entries m_xz, m_yz, m_zz of M = R cXX R^T and its in-plane part m_xx + m_yy = trace(cXX) - m_zz
    (``trace``); and the least-squares scale (>= 0) of the projection."""
    for r in range(2):
        for c in range(3):
            b[r, c] = cxX[r, 0] * R[c, 0] + cxX[r, 1] * R[c, 1] + cxX[r, 2] * R[c, 2]
    vz = (cXX[0, 0] * R[2, 0] + cXX[0, 1] * R[2, 1] + cXX[0, 2] * R[2, 2],  # cXX R_z
          cXX[1, 0] * R[2, 0] + cXX[1, 1] * R[2, 1] + cXX[1, 2] * R[2, 2],
          cXX[2, 0] * R[2, 0] + cXX[2, 1] * R[2, 1] + cXX[2, 2] * R[2, 2])
    mxz = R[0, 0] * vz[0] + R[0, 1] * vz[1] + R[0, 2] * vz[2]
    myz = R[1, 0] * vz[0] + R[1, 1] * vz[1] + R[1, 2] * vz[2]
    mzz = R[2, 0] * vz[0] + R[2, 1] * vz[1] + R[2, 2] * vz[2]
    plane = trace - mzz
    return mxz, myz, mzz, plane, max(b[0, 0] + b[1, 1], 0.0) / max(plane, _EPS)


@kernel
def _nearest_rows(affine, R):
    """The nearest matrix with orthonormal rows to rows 0-1 of ``affine`` (U V^T of the SVD, = (A A^T)^(-1/2) A,
    with the 2 x 2 inverse square root in closed form: sqrt(S) = (S + sqrt(det S) I) / sqrt(tr S + 2 sqrt(det S)))
    into R's first two rows, and their cross product into its third: a proper rotation."""
    g00 = affine[0, 0] ** 2 + affine[0, 1] ** 2 + affine[0, 2] ** 2
    g11 = affine[1, 0] ** 2 + affine[1, 1] ** 2 + affine[1, 2] ** 2
    g01 = affine[0, 0] * affine[1, 0] + affine[0, 1] * affine[1, 1] + affine[0, 2] * affine[1, 2]
    root_det = math.sqrt(max(g00 * g11 - g01 * g01, 0.0))
    norm = math.sqrt(max(g00 + g11 + 2 * root_det, _EPS))
    r00, r11, r01 = (g00 + root_det) / norm, (g11 + root_det) / norm, g01 / norm  # sqrt(gram)
    det = max(r00 * r11 - r01 * r01, _EPS)
    for k in range(3):
        R[0, k] = (r11 * affine[0, k] - r01 * affine[1, k]) / det
        R[1, k] = (-r01 * affine[0, k] + r00 * affine[1, k]) / det
    R[2, 0] = R[0, 1] * R[1, 2] - R[0, 2] * R[1, 1]
    R[2, 1] = R[0, 2] * R[1, 0] - R[0, 0] * R[1, 2]
    R[2, 2] = R[0, 0] * R[1, 1] - R[0, 1] * R[1, 0]


@kernel
def _inverse3(matrix, ridge, out):
    """(matrix + ridge I) (3, 3) inverted by the adjugate into ``out``."""
    a00, a11, a22 = matrix[0, 0] + ridge, matrix[1, 1] + ridge, matrix[2, 2] + ridge
    a01, a02, a10, a12, a20, a21 = matrix[0, 1], matrix[0, 2], matrix[1, 0], matrix[1, 2], matrix[2, 0], matrix[2, 1]
    out[0, 0] = a11 * a22 - a12 * a21
    out[1, 0] = a12 * a20 - a10 * a22
    out[2, 0] = a10 * a21 - a11 * a20
    out[0, 1] = a02 * a21 - a01 * a22
    out[1, 1] = a00 * a22 - a02 * a20
    out[2, 1] = a01 * a20 - a00 * a21
    out[0, 2] = a01 * a12 - a02 * a11
    out[1, 2] = a02 * a10 - a00 * a12
    out[2, 2] = a00 * a11 - a01 * a10
    det = a00 * out[0, 0] + a01 * out[1, 0] + a02 * out[2, 0]
    for r in range(3):
        for c in range(3):
            out[r, c] /= det


@kernel
def _rotation_vectors(w):
    """``rodrigues`` of rows: (N, 3) -> (N, 3, 3)."""
    out = np.empty((w.shape[0], 3, 3))
    for i in range(w.shape[0]):
        _rotation_vector(w[i, 0], w[i, 1], w[i, 2], out[i])
    return out


@kernel
def _rotation_vector(wx, wy, wz, out):
    """exp([w]x) of the axis-angle vector (wx, wy, wz) into ``out`` (3, 3), through the unit quaternion."""
    half = 0.5 * math.sqrt(wx * wx + wy * wy + wz * wz)
    sinc = 0.5 if half < 1e-8 else 0.5 * math.sin(half) / half
    _quaternion_into(math.cos(half), wx * sinc, wy * sinc, wz * sinc, out)


@kernel
def _quaternion_into(a, b, c, d, out):
    """The rotation of the unit quaternion (a, b, c, d) into ``out`` (3, 3)."""
    ab, ac, ad, bc, bd, cd = a * b, a * c, a * d, b * c, b * d, c * d
    aa, bb, cc, dd = a * a, b * b, c * c, d * d
    out[0, 0], out[0, 1], out[0, 2] = aa + bb - cc - dd, 2 * (bc - ad), 2 * (bd + ac)
    out[1, 0], out[1, 1], out[1, 2] = 2 * (bc + ad), aa - bb + cc - dd, 2 * (cd - ab)
    out[2, 0], out[2, 1], out[2, 2] = 2 * (bd - ac), 2 * (cd + ab), aa - bb - cc + dd


@kernel
def _best_rotations(source, target):
    """``best_rotations`` of rows: source, target (N, J, 3) -> (N, 3, 3)."""
    n, joints = source.shape[0], source.shape[1]
    out = np.empty((n, 3, 3))
    s = np.empty((3, 3))
    horn, shifted, vectors = np.empty((4, 4)), np.empty((4, 4)), np.empty((4, 4))
    quaternion, source_mean, target_mean = np.empty(4), np.empty(3), np.empty(3)
    for i in range(n):
        for a in range(3):
            source_mean[a], target_mean[a] = source[i, :, a].mean(), target[i, :, a].mean()
        bound = 0.0  # half the centred points' squared norms: at least the largest eigenvalue (an RMSD is >= 0)
        s[:, :] = 0.0  # s[a, b] = sum_j source_j[a] target_j[b], centred
        for j in range(joints):
            for a in range(3):
                centred = source[i, j, a] - source_mean[a]
                bound += 0.5 * (centred * centred + (target[i, j, a] - target_mean[a]) ** 2)
                for b in range(3):
                    s[a, b] += centred * (target[i, j, b] - target_mean[b])
        sxx, sxy, sxz = s[0, 0], s[0, 1], s[0, 2]
        syx, syy, syz = s[1, 0], s[1, 1], s[1, 2]
        szx, szy, szz = s[2, 0], s[2, 1], s[2, 2]
        horn[0, 0], horn[1, 1] = sxx + syy + szz, sxx - syy - szz
        horn[2, 2], horn[3, 3] = -sxx + syy - szz, -sxx - syy + szz
        horn[0, 1] = horn[1, 0] = syz - szy
        horn[0, 2] = horn[2, 0] = szx - sxz
        horn[0, 3] = horn[3, 0] = sxy - syx
        horn[1, 2] = horn[2, 1] = sxy + syx
        horn[1, 3] = horn[3, 1] = szx + sxz
        horn[2, 3] = horn[3, 2] = syz + szy
        if not _top_eigenvector(horn, s, bound, shifted, quaternion):
            _jacobi_eigen(horn, vectors)  # a (nearly) repeated largest eigenvalue: the rotation is ill-determined
            best = 0
            for k in range(1, 4):
                if horn[k, k] > horn[best, best]:
                    best = k
            quaternion[:] = vectors[:, best]
        _quaternion_into(quaternion[0], quaternion[1], quaternion[2], quaternion[3], out[i])
    return out


@kernel
def _top_eigenvector(horn, s, bound, shifted, q):
    """The unit eigenvector of the largest eigenvalue of Horn's matrix into ``q`` (4,), as the QCP method finds it
    (Theobald, 2005): the largest root of the characteristic polynomial lambda^4 - 2 |S|^2 lambda^2 - 8 det(S)
    lambda + det(N) by Newton's method from ``bound`` above it (monotone: every root is real), then a column of
    the adjugate of N - lambda I, which is rank one. False, ``q`` untouched, when that column is too small to trust:
    the largest eigenvalue is (nearly) repeated. ``shifted``: scratch (4, 4)."""
    c2 = 0.0
    for a in range(3):
        for b in range(3):
            c2 -= 2.0 * s[a, b] * s[a, b]
    c1 = -8.0 * (s[0, 0] * (s[1, 1] * s[2, 2] - s[1, 2] * s[2, 1]) - s[0, 1] * (s[1, 0] * s[2, 2] - s[1, 2] * s[2, 0])
                 + s[0, 2] * (s[1, 0] * s[2, 1] - s[1, 1] * s[2, 0]))
    c0 = 0.0
    for k in range(4):  # det(N) along its first row
        c0 += (-1.0) ** k * horn[0, k] * _minor3(horn, 0, k)
    lam = bound
    for _ in range(NEWTON_STEPS):
        lam2 = lam * lam
        slope = 4.0 * lam2 * lam + 2.0 * c2 * lam + c1
        if slope == 0.0:
            break
        step = ((lam2 + c2) * lam2 + c1 * lam + c0) / slope
        lam -= step
        if abs(step) <= 1e-14 * abs(lam):
            break
    for r in range(4):
        for c in range(4):
            shifted[r, c] = horn[r, c] - (lam if r == c else 0.0)
    best, largest = 0, -1.0
    for k in range(4):  # the adjugate's diagonal is c q_k^2: its largest entry's column is the best conditioned
        cofactor = abs(_minor3(shifted, k, k))
        if cofactor > largest:
            best, largest = k, cofactor
    if not largest > ADJUGATE_TOLERANCE * bound**3:
        return False
    norm = 0.0
    for r in range(4):
        q[r] = (-1.0) ** (r + best) * _minor3(shifted, r, best)
        norm += q[r] * q[r]
    norm = math.sqrt(norm)
    for r in range(4):
        q[r] /= norm
    return True


@kernel
def _minor3(a, row, col):
    """The determinant of the 4 x 4 ``a`` without ``row`` and ``col``."""
    r0, r1, r2 = (1, 2, 3) if row == 0 else ((0, 2, 3) if row == 1 else ((0, 1, 3) if row == 2 else (0, 1, 2)))
    c0, c1, c2 = (1, 2, 3) if col == 0 else ((0, 2, 3) if col == 1 else ((0, 1, 3) if col == 2 else (0, 1, 2)))
    return (a[r0, c0] * (a[r1, c1] * a[r2, c2] - a[r1, c2] * a[r2, c1])
            - a[r0, c1] * (a[r1, c0] * a[r2, c2] - a[r1, c2] * a[r2, c0])
            + a[r0, c2] * (a[r1, c0] * a[r2, c1] - a[r1, c1] * a[r2, c0]))


@kernel
def _jacobi_eigen(a, vectors):
    """Cyclic Jacobi on the symmetric ``a`` (n, n), in place: its diagonal ends as the eigenvalues and the columns
    of ``vectors`` as their unit eigenvectors."""
    n = a.shape[0]
    for r in range(n):
        for c in range(n):
            vectors[r, c] = 1.0 if r == c else 0.0
    for _ in range(JACOBI_SWEEPS):
        off, diagonal = 0.0, 0.0
        for p in range(n):
            diagonal += a[p, p] * a[p, p]
            for q in range(p + 1, n):
                off += a[p, q] * a[p, q]
        if off <= JACOBI_TOLERANCE * diagonal:
            break
        for p in range(n):
            for q in range(p + 1, n):
                if a[p, q] == 0.0:
                    continue
                theta = (a[q, q] - a[p, p]) / (2.0 * a[p, q])
                t = (1.0 if theta >= 0 else -1.0) / (abs(theta) + math.sqrt(theta * theta + 1.0))
                c = 1.0 / math.sqrt(t * t + 1.0)
                s = t * c
                for k in range(n):  # a <- J^T a J, the rotation in the (p, q) plane
                    akp, akq = a[k, p], a[k, q]
                    a[k, p], a[k, q] = c * akp - s * akq, s * akp + c * akq
                for k in range(n):
                    apk, aqk = a[p, k], a[q, k]
                    a[p, k], a[q, k] = c * apk - s * aqk, s * apk + c * aqk
                for k in range(n):
                    vkp, vkq = vectors[k, p], vectors[k, q]
                    vectors[k, p], vectors[k, q] = c * vkp - s * vkq, s * vkp + c * vkq


def procrustes_residual(query: np.ndarray, poses: np.ndarray) -> np.ndarray:
    """PA-MPJPE (mm) of each candidate against a 3D query: the mean joint distance after the best similarity
    (rotation, scale, translation) of the candidate onto the query, as ``model.pose.metrics.pa_mpjpe``.

    query: (..., J, 3) mm; poses: (..., J, 3) mm, broadcast against each other. returns: (...,) mm.
    """
    query, poses = np.broadcast_arrays(np.asarray(query, np.float64), np.asarray(poses, np.float64))
    lead, tail = query.shape[:-2], query.shape[-2:]
    return pa_mpjpe(poses.reshape(-1, *tail), query.reshape(-1, *tail)).reshape(lead)
