"""The held-out poses every protocol reads: which test-split rows, and their views through the H36M-like rig and
through seeded random cameras (clean 2D, noisy 2D, simulated detector features, 3D targets in mm)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from index_builder.datasets.motion_database import MotionDatabase
from index_builder.training.batches import NO_AUGMENT, Views, view_poses
from index_builder.training.config import EvalSettings
from index_builder.training.detector_noise import DetectorNoise
from model.pose.camera_rigs import H36M_LIKE_RIG, random_cameras, ring_cameras
from model.pose.features import pose2d_features


def subsample_rows(db: MotionDatabase, fps: float) -> tuple[np.ndarray, dict[str, int]]:
    """Rows of frames whose number is a multiple of round(clip fps / fps), and that step for each clip rate."""
    step = np.maximum(1, np.round(db.clips.fps / fps)).astype(np.int64)  # (clips,)
    rows = np.nonzero(db.frame % step[db.clip] == 0)[0]
    return rows, {f"{rate:g}": int(s) for rate, s in zip(db.clips.fps, step)}


def spaced_rows(db: MotionDatabase, gap_s: float) -> np.ndarray:
    """Rows of frames at least ``gap_s`` apart within each clip (frame numbers that are multiples of the gap)."""
    step = np.maximum(1, np.ceil(db.clips.fps * gap_s - 1e-9)).astype(np.int64)
    return np.nonzero(db.frame % step[db.clip] == 0)[0]


@dataclass(frozen=True)
class HeldOut:
    """Views of the held-out poses that every protocol shares (N poses).

    clip: (N,) int clip rows; content: (N,) str labels.
    rig: one ``Views`` per H36M-like rig camera; random: one seeded random camera per pose.
    noisy_rig, noisy_random: pose2d features (N, 17, 3) of the clean 2D plus Gaussian noise, per view.
    """

    clip: np.ndarray
    content: np.ndarray
    rig: list[Views]
    random: Views
    noisy_rig: list[np.ndarray]
    noisy_random: np.ndarray


def _noisy(clean2d: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    return pose2d_features(clean2d + rng.normal(size=clean2d.shape) * sigma)


def build_held_out(db: MotionDatabase, rows: np.ndarray, settings: EvalSettings, noise: DetectorNoise) -> HeldOut:
    """db: the test split; rows: the poses to view (world mm, Y up)."""
    return view_held_out(db.poses[rows], db.clip[rows], db.clips.content[db.clip[rows]], settings, noise)


def view_held_out(world: np.ndarray, clip: np.ndarray, content: np.ndarray, settings: EvalSettings,
                  noise: DetectorNoise) -> HeldOut:
    """Any held-out poses through the rig and the seeded random cameras, as ``build_held_out`` views the test split.

    world: (N, 17, 3) mm, Y up; clip, content: (N,) each pose's clip row and content label.
    """
    rng = np.random.default_rng([settings.seed, 1])
    world = world.astype(np.float64)
    pelvis = world[:, 0]
    ring = ring_cameras(pelvis, H36M_LIKE_RIG)
    rig = [view_poses(world, ring[:, c], rng, noise, NO_AUGMENT) for c in range(H36M_LIKE_RIG.num_cameras)]
    rand = view_poses(world, random_cameras(pelvis, rng), rng, noise, NO_AUGMENT)
    sigma = settings.noisy_2d_sigma
    return HeldOut(clip=clip, content=content, rig=rig, random=rand,
                   noisy_rig=[_noisy(v.clean2d, sigma, rng) for v in rig],
                   noisy_random=_noisy(rand.clean2d, sigma, rng))


def alignment_views(db: MotionDatabase, settings: EvalSettings, noise: DetectorNoise) -> Views:
    """Up to ``align_gallery`` poses at least ``align_gap_s`` apart within their clip, one random camera each."""
    rng = np.random.default_rng([settings.seed, 2])
    rows = spaced_rows(db, settings.align_gap_s)
    rows = np.sort(rng.choice(rows, size=min(settings.align_gallery, len(rows)), replace=False))
    world = db.poses[rows].astype(np.float64)
    return view_poses(world, random_cameras(world[:, 0], rng), rng, noise, NO_AUGMENT)
