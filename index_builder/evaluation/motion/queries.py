"""The queries of motion search's evaluation (``index_builder.evaluation.motion.protocol``): segments of held-out
clips played at each of ``SPEEDS``, resampled to ``QUERY_FPS``, seen by one random camera that follows the subject,
as clean 2D and as simulated detector features, embedded per condition."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from index_builder.datasets.motion_database import MotionDatabase
from index_builder.evaluation.adapters import encode, lift
from index_builder.evaluation.motion.library import LIBRARY_FPS, Library
from index_builder.training.batches import NO_AUGMENT, view_poses
from index_builder.training.detector_noise import DetectorNoise
from model.pose.camera_rigs import BODY_EXTENT_MM, RANDOM_CAMERAS
from model.pose.cameras import Camera, look_at
from model.pose.normalization import normalize_2d
from model.pose.perspective_crop import crop_rays
from model.pose.skeleton import root_centred
from model.retrieval.sequence_alignment import grid_frames

SPEEDS = (0.5, 1.0, 2.0)
SEGMENT_SECONDS = (2.0, 4.0)
QUERY_FPS = 30.0
CONDITIONS = {"clean": ("pose2d", "clean projected 2D, pose2d encoder"),
              "detector": ("image", "simulated detector features (calibrated noise), image encoder")}


@dataclass
class Query:
    """One query: the source (test-split clip of ``test``, its library clip), times (T,) s at 30 fps, world 3D
    (T, 17, 3) root-relative, embeddings, normalised 2D and the decoder's lifts (T, 17, 3) mm per condition, and
    the grid (M,) of query frames on the library's 10 fps grid."""

    speed: float
    clip: int
    library_clip: int
    content: str
    start: float
    duration: float
    times: np.ndarray
    world: np.ndarray
    embeddings: dict[str, np.ndarray]
    keypoints: dict[str, np.ndarray]
    weights: dict[str, np.ndarray]
    scales: np.ndarray  # (T,) the perspective crop's box half-side in ray units (the clean 2D's)
    grid: np.ndarray
    lifts: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def grid3d(self) -> np.ndarray:
        return self.world[self.grid]


def following_camera(pelvis: np.ndarray, rng: np.random.Generator) -> Camera:
    """One random camera (``RANDOM_CAMERAS`` ranges, focal capped as ``random_cameras`` does) that keeps its
    direction, distance, lens and roll for the whole sequence while following the pelvis (T, 3)."""
    cfg = RANDOM_CAMERAS
    az, el = np.deg2rad(rng.uniform(*cfg.azimuth_deg)), np.deg2rad(rng.uniform(*cfg.elevation_deg))
    dist = rng.uniform(*cfg.distance_mm)
    focal = min(rng.uniform(*cfg.focal_px), cfg.fill * cfg.image_size_px * dist / BODY_EXTENT_MM)
    roll = rng.uniform(*cfg.roll_deg)
    direction = np.array([np.cos(el) * np.sin(az), np.sin(el), np.cos(el) * np.cos(az)])
    n = len(pelvis)
    position = pelvis + dist * direction
    return Camera(rotation=look_at(position, pelvis, np.full(n, roll)), position=position,
                  focal=np.full((n, 2), focal), center=np.full((n, 2), cfg.image_size_px / 2.0),
                  size=np.full((n, 2), float(cfg.image_size_px)))


def make_queries(model, test: MotionDatabase, library: Library, per_speed: int, seed: int,
                 noise: DetectorNoise) -> list[Query]:
    """``per_speed`` queries at each of SPEEDS (``protocol`` docstring), seeded."""
    rng = np.random.default_rng([seed, 19])
    seconds = (test.clips.length - 1) / test.clips.fps
    eligible = np.flatnonzero(seconds >= SEGMENT_SECONDS[0])
    lib_clip = {name: i for i, name in enumerate(library.db.clips.name.tolist())}
    queries: list[Query] = []
    for speed in SPEEDS:
        for _ in range(per_speed):
            c = int(rng.choice(eligible))
            fps = float(test.clips.fps[c])
            duration = float(rng.uniform(SEGMENT_SECONDS[0], min(SEGMENT_SECONDS[1], seconds[c])))
            start = float(rng.uniform(0.0, seconds[c] - duration))
            times = np.arange(int(math.floor(duration / speed * QUERY_FPS + 1e-9)) + 1) / QUERY_FPS
            source = (start + speed * times) * fps  # fractional source frames
            lo = np.floor(source).astype(np.int64)
            hi = np.minimum(lo + 1, test.clips.length[c] - 1)
            frac = (source - lo)[:, None, None]
            rows = test.clips.start[c] + np.stack([lo, hi])
            world = test.poses[rows[0]].astype(np.float64) * (1 - frac) + test.poses[rows[1]] * frac
            views = view_poses(world, following_camera(world[:, 0], rng), rng, noise, NO_AUGMENT)
            grid = grid_frames(times, np.ones(len(times), bool), LIBRARY_FPS)
            queries.append(Query(speed, c, lib_clip[str(test.clips.name[c])], str(test.clips.content[c]), start,
                                 duration, times, root_centred(world),
                                 {"clean": views.pose2d, "detector": views.image},
                                 {"clean": views.clean2d, "detector": views.image[..., :2]},
                                 {"clean": np.ones(views.clean2d.shape[:2]), "detector": views.image[..., 2]},
                                 normalize_2d(crop_rays(views.rays.astype(np.float64))[0])[2], grid))
    for condition, (modality, _) in CONDITIONS.items():  # one encoder call per condition for all queries
        features = np.concatenate([q.embeddings[condition] for q in queries])
        embedded = encode(model, np.ascontiguousarray(features, dtype=np.float32), modality)
        lifted = lift(model, embedded)
        start = 0
        for q in queries:
            q.embeddings[condition] = embedded[start : start + len(q.times)]
            q.lifts[condition] = lifted[start : start + len(q.times)]
            start += len(q.times)
    return queries
