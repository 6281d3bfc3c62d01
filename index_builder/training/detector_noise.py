"""A detector-like 2D noise model: what BlazePose does to a pose, simulated on projected mocap.

Errors are in normalised units (the pose box's longer half-side is 1), per joint, plus occasional left/right
swaps of the whole body and joints the detector cannot see (low visibility, large error). The parameters are
calibrated on the labelled photos (``calibrate`` in the image path) and stored as JSON in the package data
(``BuildPaths.detector_noise``); the defaults below are what the calibration starts from.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from index_builder.config import get_paths
from model.pose.skeleton import H36M17


@dataclass(frozen=True)
class DetectorNoise:
    """joint_sigma: per-joint std of the position error, normalised units, h36m17 order.
    swap_prob: chance that the detector swaps left and right of the whole body.
    hidden_prob: chance per joint that it is not seen: its error is ``hidden_sigma`` and visibility low.
    visible_range, hidden_range: uniform ranges of the visibility the detector reports for seen / unseen joints.
    """

    joint_sigma: tuple[float, ...] = (0.04, 0.05, 0.05, 0.06, 0.05, 0.05, 0.06, 0.05, 0.04, 0.04, 0.08,
                                      0.04, 0.05, 0.06, 0.04, 0.05, 0.06)
    swap_prob: float = 0.02
    hidden_prob: float = 0.05
    hidden_sigma: float = 0.25
    visible_range: tuple[float, float] = (0.7, 1.0)
    hidden_range: tuple[float, float] = (0.0, 0.5)
    source: str = "defaults (not calibrated)"

    def save(self, path: Path) -> None:
        from index_builder.atomic_files import atomic_path

        with atomic_path(path, suffix=".json") as tmp:
            tmp.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: Path | None = None) -> DetectorNoise:
        """The model of ``path`` (by default the calibrated one) when it exists, else the defaults."""
        path = path or get_paths().detector_noise
        if not path.exists():
            return cls()
        data = json.loads(path.read_text())
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})

    def apply(self, normalised: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Corrupt clean normalised 2D poses as the detector would.

        normalised: (N, 17, 2) clean keypoints, normalised units.
        returns: noisy keypoints (N, 17, 2) (same units; renormalise before encoding) and visibility (N, 17).
        """
        n, j, _ = normalised.shape
        assert j == len(self.joint_sigma), f"{len(self.joint_sigma)} sigmas for {j} joints"
        swapped = rng.random(n) < self.swap_prob
        out = normalised.copy()
        out[swapped] = out[swapped][:, H36M17.mirror_permutation()]
        hidden = rng.random((n, j)) < self.hidden_prob
        sigma = np.where(hidden, self.hidden_sigma, np.asarray(self.joint_sigma)[None, :])
        out = out + rng.normal(size=out.shape) * sigma[..., None]
        visibility = np.where(hidden, rng.uniform(*self.hidden_range, (n, j)), rng.uniform(*self.visible_range, (n, j)))
        return out, visibility
