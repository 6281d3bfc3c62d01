"""The trained torch models as numpy functions the protocols call: encode, decode, and lifters (features ->
3D poses in mm) for UniHPR and the Martinez baseline."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from index_builder.evaluation.held_out import HeldOut
from model.nn.networks import UniHPR
from model.pose.features import MODALITIES
from model.pose.skeleton import root_centred

BATCH = 4096  # poses per forward pass: bounded memory on the full test split

Lifter = Callable[[np.ndarray, str], np.ndarray]  # (features (N, 17, 3), modality) -> (N, 17, 3) mm


@torch.no_grad()
def encode(model: UniHPR, features: np.ndarray, modality: str, batch: int = BATCH) -> np.ndarray:
    """features: (N, 17, 3) -> (N, D) float32, L2-normalised."""
    return np.concatenate([model.encode(torch.from_numpy(features[i : i + batch]), modality).numpy()
                           for i in range(0, len(features), batch)])


@torch.no_grad()
def decode3d(model: UniHPR, embeddings: np.ndarray, batch: int = BATCH) -> np.ndarray:
    """embeddings: (N, D) -> (N, 17, 3) float32 mm, root-relative camera frame."""
    return np.concatenate([model.decoder3d(torch.from_numpy(embeddings[i : i + batch])).numpy()
                           for i in range(0, len(embeddings), batch)])


def lift(model: UniHPR, embeddings: np.ndarray) -> np.ndarray:
    """(Q, D) query embeddings -> (Q, 17, 3) float64 mm root-relative, the decoder's 3D: what the lifted candidates
    search with (``model.retrieval.lifted_candidates``), as the service lifts a query."""
    return root_centred(decode3d(model, embeddings).astype(np.float64))


def unihpr_lifter(model: UniHPR) -> Lifter:
    return lambda features, modality: decode3d(model, encode(model, features, modality))


def martinez_lifter(model: torch.nn.Module, batch: int = BATCH) -> Lifter:
    """Martinez reads x, y of the same features (normalised 2D) and ignores the confidence / visibility."""

    @torch.no_grad()
    def lift(features: np.ndarray, modality: str) -> np.ndarray:
        xy = np.ascontiguousarray(features[..., :2])
        return np.concatenate([model(torch.from_numpy(xy[i : i + batch])).numpy() for i in range(0, len(xy), batch)])

    return lift


def rig_embeddings(model: UniHPR, held: HeldOut) -> dict[str, np.ndarray]:
    """modality -> (C, N, D) embeddings of every rig view (pose2d: clean 2D; image: detector features)."""
    attr = {"image": "image", "pose2d": "pose2d", "pose3d": "pose3d_features"}
    return {m: np.stack([encode(model, getattr(v, attr[m]), m) for v in held.rig]) for m in MODALITIES}
