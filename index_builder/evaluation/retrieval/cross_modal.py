"""Alignment (SPEC 6): cross-modal recall@1 between the embeddings of each ordered pair of modalities."""

from __future__ import annotations

import numpy as np

from index_builder.evaluation.adapters import encode
from index_builder.training.batches import Views
from model.nn.networks import UniHPR
from model.pose.features import MODALITIES
from model.retrieval.exact_search import exact_search


def recall_at_1(queries: np.ndarray, gallery: np.ndarray, chunk: int = 1024) -> float:
    """Fraction of queries whose nearest gallery row (inner product) is their own row.

    queries, gallery: (N, D) L2-normalised embeddings; row i of each is the same pose.
    """
    assert queries.shape == gallery.shape, f"{queries.shape} vs {gallery.shape}"
    _, I = exact_search(queries, gallery, 1, chunk=chunk)
    return float((I[:, 0] == np.arange(len(queries))).mean())


def alignment_recall(model: UniHPR, views: Views, chunk: int = 1024) -> dict[str, float]:
    """Cross-modal recall@1 for each ordered pair of modalities, "query->gallery"."""
    feats = {"image": views.image, "pose2d": views.pose2d, "pose3d": views.pose3d_features}
    emb = {m: encode(model, feats[m], m) for m in MODALITIES}
    return {f"{a}->{b}": recall_at_1(emb[a], emb[b], chunk) for a in MODALITIES for b in MODALITIES if a != b}
