"""Bundles of the tiny model over a few sample clips, and the clips a bundle lacks, as the tests build them."""

from __future__ import annotations

import numpy as np

import model.runtime.bundle_format as fmt
from index_builder.datasets.motion_database import MotionDatabase


def build_tiny_bundle(tiny_run, db: MotionDatabase, clips, out, blazepose_files, **options):
    """A bundle of the tiny model over the clips ``clips`` (a slice or index array) of ``db`` at ``out``;
    ``options``: ``build_bundle``'s."""
    from index_builder.bundle.writer import build_bundle
    from index_builder.training.checkpoint import load_unihpr

    model, config, _ = load_unihpr(tiny_run)
    keep = np.zeros(len(db.clips), dtype=bool)
    keep[clips] = True
    build_bundle(model, config, db.select_clips(keep), out, blazepose_files, progress=False, **options)
    return out


def new_clips(sample_db, bundle, count: int):
    """``count`` clips of the sample that ``bundle`` does not hold, as a database."""
    held = set(fmt.verify_bundle(bundle, load_models=False).metadata["clip_name"].tolist())
    keep = np.zeros(len(sample_db.clips), dtype=bool)
    keep[[i for i, name in enumerate(sample_db.clips.name) if name not in held][:count]] = True
    return sample_db.select_clips(keep)
