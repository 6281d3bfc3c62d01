"""What an evaluation run is set to: the subsampling, query counts, noise and thresholds every protocol reads."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EvalSettings:
    eval_fps: float = 3.0  # held-out frames subsampled to about this rate (30 fps: every 10th frame)
    max_queries: int | None = 2000  # retrieval queries: a seeded subset of the held-out frames; None = all
    noisy_2d_sigma: float = 0.02  # std of the Gaussian 2D noise, normalised units
    hit_threshold: float = 0.1  # Pr-VIPE: a retrieved pose is a hit when NP-MPJPE <= this
    hit_k: int = 20  # Hit@1..hit_k is computed; Hit@1/10/20 are tabulated
    align_gallery: int = 1000  # cross-modal recall@1 gallery size (fewer where the test split has fewer)
    align_gap_s: float = 1.0  # alignment poses at least this far apart within a clip
    min_content_clips: int = 2  # per-content lifting only for contents with at least this many test clips
    seed: int = 0  # every random choice (cameras, noise, query subsets) derives from it
    chunk: int = 1024  # queries per matrix product in exact search
    real_rig_subject: str = "S9"  # the fixed real rig: whose published H36M camera extrinsics
    motion_queries: int = 200  # motion search: queries per speed (0: the protocol is skipped)
    real_retrieval_queries: int = 300  # retrieval over the library: queries per set (validation, real rig, random)
    generalisation_poses: int = 3000  # poses per generalisation protocol, evenly spaced (0: skipped)
