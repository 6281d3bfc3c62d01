"""Bundles of the tiny model over a few sample clips, as the tests build them."""

from __future__ import annotations

from index_builder.datasets.motion_database import MotionDatabase


def build_tiny_bundle(tiny_run, db: MotionDatabase, clips, out, blazepose_files, **options):
    """A bundle of the tiny model over the clips ``clips`` (a slice or index array) of ``db`` at ``out``;
    ``options``: ``build_bundle``'s."""
    import numpy as np

    from index_builder.bundle.writer import build_bundle
    from index_builder.training.checkpoint import load_unihpr

    model, config, _ = load_unihpr(tiny_run)
    keep = np.zeros(len(db.clips), dtype=bool)
    keep[clips] = True
    build_bundle(model, config, db.select_clips(keep), out, blazepose_files, progress=False, **options)
    return out
