"""Shared fixtures: the real Bandai archives (when ../shared is present) and the shipped sample."""

from __future__ import annotations

import time

import pytest

from index_builder.config import SAMPLE_PATH, BuildPaths
from index_builder.motion_database import MotionDatabase


@pytest.fixture(scope="session")
def build_paths() -> BuildPaths:
    return BuildPaths()


@pytest.fixture(scope="session")
def bandai_archives(build_paths):
    archives = build_paths.bandai_archives
    if not all(a.is_file() for a in archives):
        pytest.skip(f"Bandai archives not found under {archives[0].parent} (set UNIHPR_SHARED_DATA)")
    return archives


@pytest.fixture(scope="session")
def full_bandai(bandai_archives, tmp_path_factory) -> MotionDatabase:
    """Every Bandai clip, built from the archives once per test session."""
    from index_builder.bandai import build_bandai_database

    start = time.perf_counter()
    db = build_bandai_database(bandai_archives, workers=2)
    print(f"\nfull Bandai cache: {len(db.clips)} clips, {len(db)} frames in {time.perf_counter() - start:.1f} s")
    return db


@pytest.fixture(scope="session")
def sample_db() -> MotionDatabase:
    return MotionDatabase.load(SAMPLE_PATH)
