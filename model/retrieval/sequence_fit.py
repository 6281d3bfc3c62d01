"""One camera for a whole motion: how well a library segment's 3D explains a query sequence (numpy only).

Motion search (``model.retrieval.motion_search``) finds candidate segments by embedding similarity, which tells poses
apart only coarsely across viewpoints (a held-out frame's own pose is rarely the single nearest embedding). A real query
comes from *one* camera: one rotation relative to the moving body's world for every frame. So each candidate is
verified geometrically: find the one camera rotation under which the segment's 3D poses, projected, explain the
query's 2D in every aligned frame at once (per frame only a scale and a shift: weak perspective, right for 2D
that went through the perspective crop, whose virtual camera looks at the person), re-align the frames under that
camera (subsequence DTW over the per-pair 2D residuals), and refit. The residual (RMS over the visible joints and
the aligned frames, in the query's normalised units: half the longer side of the person box = 1) orders the
candidates. For 3D queries the same is done with one 3D rotation (Kabsch over all aligned frames), residual in mm.

Rotations: the world is Y up; a camera is parameterised by its azimuth and elevation around the subject and its
roll (``model.pose.cameras.look_at``): a grid (``AZIMUTHS`` x ``ELEVATIONS``, no roll), then a finer grid around the
best (``REFINE_STEPS``), so the fit is global over the plausible cameras and needs no starting point. That search is
weak-perspective (closed-form moments); the final residual projects with perspective where the crop's scale is
known, and the best fits' cameras are refined under it (``refine_rotations_perspective``): for a person 2-3 m away
the weak-perspective camera is several degrees off, and the residual it leaves is as large as the difference
between two takes of one move. For the same reason the best fits are re-aligned once more under their refined
camera with perspective and sub-frame timing (``perspective_pair_costs``): the weak-perspective pair costs can
prefer a path in the wrong phase of a fast motion even under the right camera.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from model.pose.cameras import look_at
from model.pose.pose_fit import rodrigues
from model.retrieval.sequence_alignment import ColumnLayout, backtrack_many, subsequence_dtw

AZIMUTHS = 24  # 15 degree steps
ELEVATIONS = (-10.0, 0.0, 10.0, 20.0, 30.0, 40.0, 50.0)
REFINE_STEPS = ((7.5, 5.0, 5.0), (3.75, 2.5, 2.5), (1.875, 1.25, 1.25))  # (azimuth, elevation, roll) half-steps
REALIGNMENTS = 1
PERSPECTIVE_ITERATIONS = 1
SUBFRAME = (-0.5, -0.25, 0.0, 0.25, 0.5)  # library frames an aligned query frame may sit off its path frame
PERSPECTIVE_REFINE_DEG = (2.0, 1.0, 0.5, 0.25)  # steps of the camera's refinement under perspective ...
REFINE_REPEATS = 3  # ... each size repeated while it helps ...
REFINE_FRAMES = 12  # ... on at most this many frames of a sequence (one camera: a few frames pin it down) ...
REFINE_SEQUENCES = 8  # ... for this many of the best fits (the rest keep the weak-perspective camera)
MIN_WEIGHT = 1e-6
BLOCK_NUMBERS = 65_536  # numbers per temporary block (512 kB): larger ones come from fresh pages in the service


def camera_rotations(azimuth_deg: np.ndarray, elevation_deg: np.ndarray, roll_deg: np.ndarray) -> np.ndarray:
    """(n, 3, 3) world -> camera rotations (OpenCV axes) of cameras at these azimuths and elevations around the
    origin, looking at it, with these rolls (each argument (n,))."""
    az, el = np.deg2rad(azimuth_deg), np.deg2rad(elevation_deg)
    position = np.stack([np.cos(el) * np.sin(az), np.sin(el), np.cos(el) * np.cos(az)], -1)
    return look_at(position, np.zeros_like(position), roll_deg)


def _grid(centre: tuple[float, float, float] | None, half: tuple[float, float, float] | None) -> np.ndarray:
    """(n, 3) azimuth, elevation, roll (degrees): the coarse grid, or 3 x 3 x 3 around ``centre``."""
    if centre is None:
        az, el = np.meshgrid(np.arange(AZIMUTHS) * 360.0 / AZIMUTHS, np.asarray(ELEVATIONS), indexing="ij")
        return np.stack([az.ravel(), el.ravel(), np.zeros(az.size)], -1)
    steps = np.array([-1.0, 0.0, 1.0])
    a, e, r = np.meshgrid(*(centre[i] + steps * half[i] for i in range(3)), indexing="ij")
    return np.stack([a.ravel(), np.clip(e.ravel(), -89.0, 89.0), r.ravel()], -1)


def weak_perspective_sums(points2d: np.ndarray, weights: np.ndarray, projected: np.ndarray) -> np.ndarray:
    """Per frame the weighted squared residual of the best scale (>= 0) and shift taking ``projected`` onto
    ``points2d`` (the direct form; ``fit_rotation_2d`` and ``pair_costs_2d`` compute the same from moments).

    points2d: (..., J, 2) query; weights: (..., J) >= 0; projected: (..., J, 2) x, y of the posed 3D in the camera
    (any leading dimensions broadcasting together). returns: (...) sum over joints of w |s p + t - x|^2.
    """
    w = weights[..., None]
    total = np.maximum(weights.sum(-1), MIN_WEIGHT)[..., None, None]
    x = points2d - (w * points2d).sum(-2, keepdims=True) / total
    p = projected - (w * projected).sum(-2, keepdims=True) / total
    xx = (w * x * x).sum((-2, -1))
    xp = (w * x * p).sum((-2, -1))
    pp = np.maximum((w * p * p).sum((-2, -1)), MIN_WEIGHT)
    return np.maximum(xx - np.maximum(xp, 0.0) ** 2 / pp, 0.0)


@dataclass(frozen=True)
class SequenceFit:
    """rotation: (3, 3) world -> camera; residual: RMS over the weighted joints of the aligned frames (2D:
    normalised units; 3D: mm); path: (M,) the library frame of every query frame (within the sequence fitted);
    timing: (M,) where each present query frame falls in the sequence, in frames: its path frame plus the sub-frame
    offset the final residual chose (``SUBFRAME``), None before the final residual."""

    rotation: np.ndarray
    residual: float
    path: np.ndarray
    timing: np.ndarray | None = None


def _centred(points: np.ndarray, weights: np.ndarray) -> np.ndarray:
    total = np.maximum(weights.sum(-1), MIN_WEIGHT)[..., None, None]
    return points - (weights[..., None] * points).sum(-2, keepdims=True) / total


@lru_cache(maxsize=1)
def _coarse_rotations() -> tuple[np.ndarray, np.ndarray]:
    grid = _grid(None, None)
    return grid, camera_rotations(grid[:, 0], grid[:, 1], grid[:, 2])


def _local_grid(centres: np.ndarray, half: tuple[float, float, float]) -> np.ndarray:
    """(C, 27, 3) azimuth, elevation, roll around each of the centres (C, 3)."""
    steps = np.stack(np.meshgrid(*([np.array([-1.0, 0.0, 1.0])] * 3), indexing="ij"), -1).reshape(-1, 3)
    grid = centres[:, None, :] + steps[None] * np.asarray(half)
    grid[..., 1] = np.clip(grid[..., 1], -89.0, 89.0)
    return grid


def fit_rotations_2d(points2d: np.ndarray, weights: np.ndarray, poses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The camera rotation explaining each sequence's aligned frames best, all sequences at once.

    points2d: (L, J, 2) normalised query 2D of the aligned frames, weights (L, J); poses: (S, L, J, 3) world
    root-relative mm, each sequence's pose at every aligned frame. returns: (S, 3, 3) rotations and (S,) mean
    squared residuals per unit weight.

    Per frame the weak-perspective residual is xx - max(xp, 0)^2 / pp with xx = sum w |x_c|^2, xp = sum w x_c .
    (R2 Y) = <R2, C> (C = sum w x_c Y^T) and pp = sum w |R2 Y_c|^2 = <R2^T R2, S> (S = sum w Y_c Y_c^T), where R2 is
    the rotation's first two rows and _c means centred: every rotation of a grid is scored by small matrix
    products over the frames' moments.
    """
    count, length = poses.shape[:2]
    x = _centred(points2d, weights)
    y = poses.astype(np.float64)
    w = weights[..., None]
    xx = (w * x * x).sum((1, 2))[:, None]  # (L, 1)
    moments_c = np.einsum("ljc,sljk->slck", w * x, y).reshape(count, length, 6)  # C^T flattened like R2
    yc = _centred(y, weights)
    moments_s = np.matmul((w * yc).swapaxes(-1, -2), yc).reshape(count, length, 9)
    total = max(float(weights.sum()), MIN_WEIGHT)

    def residuals(xp: np.ndarray, pp: np.ndarray) -> np.ndarray:  # (s, L, n) -> (s, n)
        return np.maximum(xx - np.maximum(xp, 0.0) ** 2 / np.maximum(pp, MIN_WEIGHT), 0.0).sum(1)

    grid, rotations = _coarse_rotations()
    r2 = rotations[:, :2]
    c_grid, s_grid = r2.reshape(len(r2), 6).T, np.einsum("nab,nac->nbc", r2, r2).reshape(len(r2), 9).T
    # the coarse grid a few sequences at a time: (frames x grid) arrays of at most BLOCK_NUMBERS numbers, which stay
    # in the allocator's heap (60 sequences at once made megabytes, mapped afresh in the service)
    step = max(1, BLOCK_NUMBERS // (len(grid) * length))
    sums = np.concatenate([residuals(moments_c[a : a + step] @ c_grid, moments_s[a : a + step] @ s_grid)
                           for a in range(0, count, step)])
    best_i = sums.argmin(1)
    every = np.arange(count)
    best, centres, out = sums[every, best_i], grid[best_i], rotations[best_i]
    for half in REFINE_STEPS:
        local = _local_grid(centres, half)  # (S, 27, 3)
        rot = camera_rotations(*local.reshape(-1, 3).T).reshape(count, -1, 3, 3)
        r2 = rot[:, :, :2]
        q = np.einsum("knab,knac->knbc", r2, r2).reshape(count, -1, 9)
        sums = residuals(moments_c @ r2.reshape(count, -1, 6).swapaxes(-1, -2), moments_s @ q.swapaxes(-1, -2))
        i = sums.argmin(1)
        better = sums[every, i] < best
        best = np.where(better, sums[every, i], best)
        centres = np.where(better[:, None], local[every, i], centres)
        out = np.where(better[:, None, None], rot[every, i], out)
    return out, best / total


def fit_rotation_2d(points2d: np.ndarray, weights: np.ndarray, poses: np.ndarray) -> tuple[np.ndarray, float]:
    """``fit_rotations_2d`` of one sequence: (3, 3) rotation and mean squared residual per unit weight."""
    rotations, residuals = fit_rotations_2d(points2d, weights, poses[None])
    return rotations[0], float(residuals[0])


def pair_costs_2d(points2d: np.ndarray, weights: np.ndarray, poses: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """(M, n) mean squared residual per unit weight of every query frame (M, J, 2) against every library pose
    (n, J, 3) under ``rotation`` (the moments of ``fit_rotation_2d``, with the projected pose centred by each
    query frame's own weights)."""
    return projected_pair_costs(points2d, weights, poses.astype(np.float64) @ rotation[:2].T)


def projected_pair_costs(points2d: np.ndarray, weights: np.ndarray, projected: np.ndarray) -> np.ndarray:
    """``pair_costs_2d`` of poses already projected: (M, n) against projected (n, J, 2); a block of poses at a time
    (temporaries of at most ``BLOCK_NUMBERS`` numbers)."""
    x = _centred(points2d, weights)
    total = np.maximum(weights.sum(-1), MIN_WEIGHT)[:, None]  # (M, 1)
    xx = (weights[..., None] * x * x).sum((1, 2))[:, None]  # (M, 1)
    wx = (weights[..., None] * x).reshape(len(x), -1)
    out = np.empty((len(x), len(projected)))
    step = max(1, BLOCK_NUMBERS // (4 * len(x)))
    for a in range(0, len(projected), step):
        block = projected[a : a + step]
        xp = wx @ block.reshape(len(block), -1).T  # (M, b)
        # x, y and x^2 + y^2 of every joint as one contiguous (3b, J) operand: one matrix product for the three
        # weighted sums (a strided x or y column alone makes numpy skip BLAS; a sum over an axis of 2 is slow)
        px, py = block[..., 0], block[..., 1]
        sums = weights @ np.concatenate([px, py, px * px + py * py]).T  # (M, 3b)
        mean_x, mean_y, squares = np.split(sums, 3, axis=1)
        pp = squares - (mean_x ** 2 + mean_y ** 2) / total
        out[:, a : a + step] = np.maximum(xx - np.maximum(xp, 0.0) ** 2 / np.maximum(pp, MIN_WEIGHT), 0.0) / total
    return out


def fit_rotations_3d(query: np.ndarray, poses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per sequence the rotation R (world -> query camera) minimising sum |query - poses R^T|^2 over its aligned
    root-relative pairs (Kabsch), all sequences at once. query: (P, J, 3) mm; poses: (S, P, J, 3) mm, each
    sequence's aligned poses. returns: (S, 3, 3) rotations and (S,) mean squared joint distances."""
    h = np.einsum("spji,pjk->sik", poses, query)  # sum poses^T query
    u, _, vt = np.linalg.svd(h)
    v, ut = np.swapaxes(vt, -1, -2), np.swapaxes(u, -1, -2)
    flip = np.ones((len(h), 3))
    flip[:, 2] = np.sign(np.linalg.det(v @ ut))
    rotations = v @ (flip[..., None] * ut)
    diff = query - poses @ np.swapaxes(rotations, -1, -2)[:, None]
    return rotations, (diff * diff).sum(-1).mean((-2, -1))


def pair_costs_3d(query: np.ndarray, poses: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """(M, n) mean squared joint distance of every query frame (M, J, 3) to every library pose (n, J, 3) turned
    by ``rotation``."""
    turned = poses @ rotation.T
    q = query.reshape(len(query), -1)
    t = turned.reshape(len(turned), -1)
    out = (q * q).sum(1)[:, None] + (t * t).sum(1)[None] - 2.0 * q @ t.T
    return np.maximum(out, 0.0) / query.shape[1]


def perspective_sums(points2d: np.ndarray, weights: np.ndarray, posed: np.ndarray, scales: np.ndarray,
                     iterations: int = PERSPECTIVE_ITERATIONS) -> np.ndarray:
    """Per frame the weighted squared residual of the best scale and shift taking the *perspective* projection of
    ``posed`` onto ``points2d``.

    points2d: (P, J, 2) normalised 2D of a perspective crop, whose box half-side is ``scales`` (P,) in ray units
    (x / z of the crop's virtual camera), weights (P, J); posed: (..., P, J, 3) camera-frame mm, root-relative (any
    leading axes: candidates, offsets); returns (..., P). The weak-perspective scale s (normalised units per mm)
    puts the root at depth D = 1 / (s * scale), and each joint at depth z in front of or behind it projects by
    D / (D + z); the scale is refitted with those factors (``iterations`` times). Frames with a non-finite scale
    keep the weak-perspective residual. Computed from weighted moments, the query's side once for every leading
    index.
    """
    x = _centred(points2d, weights)
    wx = weights[..., None] * x
    xx = np.einsum("pjc,pjc->p", wx, x)
    total = np.maximum(weights.sum(-1), MIN_WEIGHT)
    known = np.isfinite(scales)
    scales = np.where(known, scales, 0.0)
    wx_x, wx_y = np.ascontiguousarray(wx[..., 0]), np.ascontiguousarray(wx[..., 1])
    # x and y apart, each summed over the joints: einsum over several leading axes took 1.8x as long (the camera
    # refinement's (sequences, trials, frames) poses)
    px, py = posed[..., 0], posed[..., 1]
    for step in range(iterations + 1):
        sx, sy = px * weights, py * weights
        mean_x, mean_y = sx.sum(-1), sy.sum(-1)
        xp = (wx_x * px).sum(-1) + (wx_y * py).sum(-1)  # = sum w x_c . p_c, as sum w x_c = 0
        pp = np.maximum((sx * px + sy * py).sum(-1) - (mean_x * mean_x + mean_y * mean_y) / total, MIN_WEIGHT)
        if step == iterations:
            break
        depth_scale = np.maximum(xp, 0.0) / pp * scales  # s * scale = 1 / D per frame
        factor = np.where(known[:, None], 1.0 / np.maximum(1.0 + posed[..., 2] * depth_scale[..., None], 0.1), 1.0)
        px, py = posed[..., 0] * factor, posed[..., 1] * factor
    return np.maximum(xx - np.maximum(xp, 0.0) ** 2 / pp, 0.0)


def fit_sequences(query: np.ndarray, weights: np.ndarray | None, present: np.ndarray, poses: list[np.ndarray],
                  paths: list[np.ndarray], scales: np.ndarray | None = None) -> list[SequenceFit]:
    """Fit one camera to a query aligned to each library sequence, re-align under it, refit (module docstring);
    every sequence at once.

    query: (M, J, 2) normalised 2D (with ``weights`` (M, J)) or (M, J, 3) camera-frame mm (``weights`` None);
    present: (M,) bool; poses: per sequence (n_s, J, 3) world root-relative mm, the library frames its path may
    use; paths: per sequence (M,) the starting alignment (indices into its poses). scales: (M,) for 2D from a
    perspective crop, its box half-side in ray units (NaN or None: unknown): the final residual then projects
    with perspective (``perspective_sums``), the search for the camera stays weak-perspective.
    """
    two_d = query.shape[-1] == 2
    rows = np.flatnonzero(present)
    count = len(poses)
    columns = ColumnLayout.of([len(p) for p in poses])
    stacked = StackedPoses.of(poses)
    tried: list[list[SequenceFit]] = [[] for _ in range(count)]  # every step's fit of each sequence
    for step in range(REALIGNMENTS + 1):
        aligned = np.stack([p[path[rows]] for p, path in zip(poses, paths)])  # (count, P, J, 3)
        if two_d:
            rotations, mean_sq = fit_rotations_2d(query[rows], weights[rows], aligned)
        else:
            rotations, mean_sq = fit_rotations_3d(query[rows], aligned)
        for s in range(count):
            if not any(np.array_equal(f.path, paths[s]) for f in tried[s]):  # a path re-aligned onto itself: once
                tried[s].append(SequenceFit(rotations[s], math.sqrt(max(float(mean_sq[s]), 0.0)), paths[s]))
        if step == REALIGNMENTS:
            break
        if two_d:  # every sequence projected by its camera, costed at once
            projected = np.concatenate([p @ rotations[s, :2].T for s, p in enumerate(poses)])
            costs = projected_pair_costs(query[rows], weights[rows], projected)
            blocks = np.split(costs, stacked.starts[1:], axis=1)
        else:
            blocks = [pair_costs_3d(query[rows], p, rotations[s]) for s, p in enumerate(poses)]
        paths = _realigned(blocks, rows, present, columns, paths)
    # the full fit: perspective and sub-frame timing for the final residual, of the path it started from as well as
    # the re-aligned ones (re-aligning under a weak-perspective camera can move a right path to a wrong cycle when
    # the person is close to the camera)
    owner = np.repeat(np.arange(count), [len(t) for t in tried])
    final = _final_residuals(query, weights, rows, stacked, owner, [f for t in tried for f in t], scales)
    best = [min((f for f, o in zip(final, owner) if o == s), key=lambda f: f.residual) for s in range(count)]
    if two_d and scales is not None and np.isfinite(scales[rows]).all():
        best = _perspective_realignment(query, weights, present, rows, stacked, best, scales)
    return best


def _realigned(blocks: list[np.ndarray], rows: np.ndarray, present: np.ndarray, columns: ColumnLayout,
               paths: list[np.ndarray]) -> list[np.ndarray]:
    """Each sequence's path re-aligned by subsequence DTW over its pair costs blocks[s] (P, n_s) (the present query
    frames ``rows`` against its frames); a sequence too short for the query under the step limits keeps its path."""
    cost = np.zeros((len(present), columns.width), np.float32)
    for s, block in enumerate(blocks):
        cost[np.ix_(rows, columns.starts[s] + np.arange(block.shape[1]))] = block
    cost[:, columns.sequence < 0] = np.inf
    alignment = subsequence_dtw(cost, present)
    end_cost = alignment.end_cost
    ends = [columns.starts[s] + int(np.argmin(end_cost[columns.starts[s] : columns.starts[s] + block.shape[1]]))
            for s, block in enumerate(blocks)]
    traced = columns.offset[backtrack_many(alignment, np.array(ends))]
    return [traced[s] if np.isfinite(end_cost[end]) else paths[s] for s, end in enumerate(ends)]


def perspective_pair_costs(points2d: np.ndarray, weights: np.ndarray, scales: np.ndarray, stacked: StackedPoses,
                           sequences: np.ndarray, fits: list[SequenceFit], rows: np.ndarray) -> list[np.ndarray]:
    """Per fit (its path in sequence ``sequences[i]`` of ``stacked``) the (P, n_s) pair costs of the query frames
    ``rows`` against every frame of its sequence under its camera *with perspective and sub-frame timing*: each pose
    turned into the camera and projected from the root depth its path implies (the median over the frames of 1 /
    (weak-perspective scale x crop scale)), costed as ``pair_costs_2d``, the best of the ``SUBFRAME`` offsets (the
    final residual's timing: fast motion moves a long way between 10 fps frames). points2d (M, J, 2), weights
    (M, J), scales (M,): the query. All fits at once."""
    rotations = np.swapaxes(np.stack([f.rotation for f in fits]), -1, -2)[:, None]  # (c, 1, 3, 3) applied as R^T
    aligned = stacked.interpolated(sequences, np.stack([f.path[rows] for f in fits]).astype(np.float64)) @ rotations
    w = weights[rows]
    x = _centred(points2d[rows], w)
    p = _centred(aligned[..., :2], w)
    scale = (w[..., None] * x * p).sum((-2, -1)) / np.maximum((w[..., None] * p * p).sum((-2, -1)), MIN_WEIGHT)
    depth = np.median(1.0 / np.maximum(scale * scales[rows], 1e-9), axis=1)[:, None, None, None]  # (c, 1, 1, 1)
    lengths = stacked.lengths[sequences]
    frames = np.arange(int(lengths.max()), dtype=np.float64)[None].repeat(len(fits), 0)  # (c, n) clamped per fit
    best = None
    for offset in SUBFRAME:
        turned = stacked.interpolated(sequences, frames + offset) @ rotations  # (c, n, J, 3)
        projected = turned[..., :2] * (depth / np.maximum(depth + turned[..., 2:], 0.1 * depth))
        cost = projected_pair_costs(points2d[rows], w, projected.reshape(-1, *projected.shape[2:]))
        best = cost if best is None else np.minimum(best, cost)
    best = best.reshape(len(rows), len(fits), -1)
    return [best[:, i, :n] for i, n in enumerate(lengths.tolist())]


def _perspective_realignment(query: np.ndarray, weights: np.ndarray, present: np.ndarray, rows: np.ndarray,
                             stacked: StackedPoses, fits: list[SequenceFit], scales: np.ndarray) -> list[SequenceFit]:
    """The best ``REFINE_SEQUENCES`` fits re-aligned once more under their camera with perspective
    (``perspective_pair_costs``), kept where the final residual improves: when the person is close to the camera
    the weak-perspective pair costs can prefer a path in the wrong phase even under the right camera."""
    chosen = np.argsort([f.residual for f in fits])[:REFINE_SEQUENCES]
    blocks = perspective_pair_costs(query, weights, scales, stacked, chosen, [fits[s] for s in chosen], rows)
    paths = _realigned(blocks, rows, present, ColumnLayout.of(stacked.lengths[chosen].tolist()),
                       [fits[s].path for s in chosen])
    moved = [(s, path) for s, path in zip(chosen.tolist(), paths) if not np.array_equal(path, fits[s].path)]
    if not moved:
        return fits
    again = _final_residuals(query, weights, rows, stacked, np.array([s for s, _ in moved]),
                             [SequenceFit(fits[s].rotation, fits[s].residual, path) for s, path in moved], scales)
    out = list(fits)
    for (s, _), fit in zip(moved, again):
        if fit.residual < out[s].residual:
            out[s] = fit
    return out


def _small_rotations(half_deg: float) -> np.ndarray:
    """(7, 3, 3) the identity and the rotations by -h and +h degrees about each camera axis."""
    steps = np.concatenate([np.zeros((1, 3)), np.eye(3), -np.eye(3)])
    return rodrigues(np.deg2rad(half_deg) * steps)


@dataclass(frozen=True)
class StackedPoses:
    """Sequences of poses (n_s, J, 3) in one array, so the frames of many sequences are read in one gather.

    frames: (sum n_s, J, 3); starts: (S,) each sequence's first row; lengths: (S,) n_s."""

    frames: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray

    @classmethod
    def of(cls, poses: list[np.ndarray]) -> StackedPoses:
        lengths = np.array([len(p) for p in poses], np.int64)
        return cls(np.concatenate(poses), np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)

    def interpolated(self, sequences: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """(count, P, J, 3) the poses of sequences (count,) at fractional positions (count, P), clamped to each
        sequence, interpolated with a Catmull-Rom spline through the neighbouring frames (linear interpolation cuts
        the corners of fast motion sampled at 10 fps)."""
        last = (self.lengths[sequences] - 1)[:, None]
        position = np.clip(positions, 0, last)
        i1 = np.floor(position).astype(np.int64)  # (count, P)
        t = (position - i1)[..., None, None]
        first = self.starts[sequences][:, None]
        return _catmull_rom(*(self.frames[first + np.clip(i1 + d, 0, last)] for d in (-1, 0, 1, 2)), t)


def _catmull_rom(p0: np.ndarray, p1: np.ndarray, p2: np.ndarray, p3: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The Catmull-Rom spline through four consecutive frames at t in [0, 1] between p1 and p2."""
    return p1 + 0.5 * t * ((p2 - p0) + t * ((2 * p0 - 5 * p1 + 4 * p2 - p3) + t * (3 * (p1 - p2) + p3 - p0)))


def perspective_frame_sums(points2d: np.ndarray, weights: np.ndarray, scales: np.ndarray, world: np.ndarray,
                           rotations: np.ndarray) -> np.ndarray:
    """``perspective_sums`` of every frame of world poses (..., P, J, 3) turned by rotations (..., 3, 3) (one per
    sequence, broadcasting over the leading axes) against the query's points2d (P, J, 2), weights (P, J), scales
    (P,): (..., P)."""
    return perspective_sums(points2d, weights, world @ np.swapaxes(rotations, -1, -2)[..., None, :, :], scales)


def refine_rotations_perspective(points2d: np.ndarray, weights: np.ndarray, scales: np.ndarray, world: np.ndarray,
                                 rotations: np.ndarray) -> np.ndarray:
    """Each sequence's camera rotation (R, 3, 3) refined under perspective by a pattern search: steps of each size
    of ``PERSPECTIVE_REFINE_DEG`` about each camera axis, repeated while they lower the sum of ``perspective_sums``
    over the frames (at most ``REFINE_REPEATS`` times a size). points2d (K, J, 2), weights (K, J), scales (K,): the
    query's frames; world: (R, K, J, 3) the sequences' aligned poses. returns: (R, 3, 3) the refined rotations."""
    rotations = rotations.copy()
    best = perspective_frame_sums(points2d, weights, scales, world, rotations).sum(-1)  # (R,)
    every = np.arange(len(rotations))
    for half in PERSPECTIVE_REFINE_DEG:
        moving = every
        for _ in range(REFINE_REPEATS):
            trial = _small_rotations(half)[None] @ rotations[moving, None]  # (r, 7, 3, 3)
            totals = perspective_frame_sums(points2d, weights, scales, world[moving, None], trial).sum(-1)
            i = totals.argmin(1)
            better = totals[np.arange(len(moving)), i] < best[moving]
            if not better.any():
                break
            moving, i = moving[better], i[better]
            best[moving] = totals[better, i]
            rotations[moving] = trial[better, i]
    return rotations


def _final_residuals(query: np.ndarray, weights: np.ndarray | None, rows: np.ndarray, stacked: StackedPoses,
                     owner: np.ndarray, fits: list[SequenceFit], scales: np.ndarray | None) -> list[SequenceFit]:
    """The residual of each fit (its path in sequence ``owner[i]`` of ``stacked``) with every aligned frame free to
    sit up to half a library frame early or late (``SUBFRAME``: the library's poses interpolated), under the fitted
    camera: a query rarely samples the motion in phase with the library's frames, and the true segment should not
    pay for that against a take that happens to be in phase.

    2D projects with perspective where the scale is known (``perspective_sums``), and the cameras of the best
    ``REFINE_SEQUENCES`` fits, found under weak perspective, are then refined under perspective
    (``refine_rotations_perspective``, on ``REFINE_FRAMES`` of their frames at their best offsets): a person 2-4 m
    from the camera is deep enough that the weak-perspective rotation is off by a degree or more. On clean 2D of
    held-out motion fitted with its own 3D, that left a residual several times the refined one (typically 0.005
    against 0.001), as large as the difference between two takes of one move by one actor."""
    rotations = np.stack([f.rotation for f in fits])  # (count, 3, 3)
    paths = np.stack([f.path[rows] for f in fits]).astype(np.float64)  # (count, P) positions in their sequences
    two_d = query.shape[-1] == 2
    if two_d:
        points, w = query[rows], weights[rows]
        scale = scales[rows] if scales is not None else np.full(len(rows), np.nan)
        total = max(float(w.sum()), MIN_WEIGHT)
    else:
        total = float(len(rows))

    def sums_at(chosen: np.ndarray, turn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per frame the least residual sum over the offsets, and its offset, of the fits ``chosen`` turned by
        ``turn``; one offset and a block of fits at a time (poses of at most ``BLOCK_NUMBERS`` numbers: all at once
        are megabytes, allocations the service's allocator serves from fresh pages, ``service.memory``)."""
        best = np.full((len(chosen), len(rows)), np.inf)
        at = np.zeros((len(chosen), len(rows)))
        step = max(1, BLOCK_NUMBERS // (len(rows) * query.shape[1] * 3))
        for a in range(0, len(chosen), step):
            block, turned = chosen[a : a + step], turn[a : a + step]
            for offset in SUBFRAME:
                world = stacked.interpolated(owner[block], paths[block] + offset)
                if two_d:
                    sums = perspective_frame_sums(points, w, scale, world, turned)
                else:
                    sums = ((world @ np.swapaxes(turned, -1, -2)[:, None] - query[rows]) ** 2).sum(-1).mean(-1)
                better = sums < best[a : a + step]
                best[a : a + step] = np.where(better, sums, best[a : a + step])
                at[a : a + step] = np.where(better, offset, at[a : a + step])
        return best, at

    every = np.arange(len(fits))
    per_frame, offset = sums_at(every, rotations)  # (count, P)
    if two_d and np.isfinite(scale).any():
        chosen = np.argsort(per_frame.sum(-1))[:REFINE_SEQUENCES]
        keep = np.unique(np.round(np.linspace(0, len(rows) - 1, min(len(rows), REFINE_FRAMES))).astype(np.int64))
        aligned = stacked.interpolated(owner[chosen], (paths[chosen] + offset[chosen])[:, keep])  # (R, K, J, 3)
        rotations[chosen] = refine_rotations_perspective(points[keep], w[keep], scale[keep], aligned,
                                                         rotations[chosen])
        per_frame[chosen], offset[chosen] = sums_at(chosen, rotations[chosen])
    best = per_frame.sum(-1) / total
    timing = np.stack([f.path for f in fits]).astype(np.float64)
    timing[:, rows] += offset
    return [SequenceFit(r, math.sqrt(max(float(b), 0.0)), fit.path, t)
            for fit, r, b, t in zip(fits, rotations, best, timing)]


def fit_sequence(query: np.ndarray, weights: np.ndarray | None, present: np.ndarray, poses: np.ndarray,
                 path: np.ndarray, scales: np.ndarray | None = None) -> SequenceFit:
    """``fit_sequences`` of one sequence."""
    return fit_sequences(query, weights, present, [poses], [path], scales)[0]
