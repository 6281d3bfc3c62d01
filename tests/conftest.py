"""Shared fixtures: the real Bandai archives (when ../shared is present) and the shipped sample."""

from __future__ import annotations

import time

import pytest

from index_builder.config import BuildPaths, get_paths
from index_builder.datasets.motion_database import MotionDatabase
from service.lifecycle import compile_service_kernels
from tests.tiny_bundles import build_tiny_bundle


@pytest.fixture(scope="session", autouse=True)
def compiled_kernels() -> None:
    """The service's numba kernels compiled (or read from numba's cache) once, before any test starts a server
    with a start-up deadline: a fresh checkout compiles them for about 15 s."""
    compile_service_kernels()


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
    from index_builder.datasets.bandai import build_bandai_database

    start = time.perf_counter()
    db = build_bandai_database(bandai_archives, workers=2)
    print(f"\nfull Bandai cache: {len(db.clips)} clips, {len(db)} frames in {time.perf_counter() - start:.1f} s")
    return db


@pytest.fixture(scope="session")
def sample_db() -> MotionDatabase:
    return MotionDatabase.load(get_paths().sample)


@pytest.fixture(scope="session")
def tiny_run(sample_db, tmp_path_factory):
    """A tiny UniHPR trained on the shipped sample (seconds): the model behind every bundle the tests build."""
    import torch

    from index_builder.training.config import TINY
    from index_builder.training.loop import train_unihpr

    torch.set_num_threads(2)
    path = tmp_path_factory.mktemp("tiny_run") / "unihpr.pt"
    start = time.perf_counter()
    train_unihpr(TINY, sample_db.split("train"), sample_db.split("val"), path, progress=False)
    print(f"\ntiny UniHPR trained in {time.perf_counter() - start:.1f} s")
    return path


@pytest.fixture(scope="session")
def blazepose_files():
    from index_builder.bundle.blazepose_assets import fetch_blazepose_models

    try:
        return fetch_blazepose_models()
    except Exception as err:  # no network and no cache: the image path cannot be tested here
        pytest.skip(f"BlazePose models unavailable: {err}")


@pytest.fixture(scope="session")
def tiny_bundle(tiny_run, sample_db, blazepose_files, tmp_path_factory):
    """A bundle of the tiny model over 40 clips of the sample (exact index), built once per session."""
    return build_tiny_bundle(tiny_run, sample_db, slice(None, None, max(1, len(sample_db.clips) // 40)),
                             tmp_path_factory.mktemp("bundles") / "tiny", blazepose_files)


@pytest.fixture(scope="session")
def milvus_uri(tmp_path_factory):
    """One milvus-lite server (real Milvus gRPC protocol) on 127.0.0.1 for the whole session, stopped at its end."""
    from tests.milvus_lite_server import milvus_lite_server

    with milvus_lite_server(tmp_path_factory.mktemp("milvus")) as (uri, _):
        yield uri


@pytest.fixture(scope="session")
def milvus_bundle(tiny_bundle, milvus_uri, tmp_path_factory):
    """The tiny bundle with its vectors moved into a collection on the session's Milvus (no index.faiss)."""
    from index_builder.bundle.library_update import copy_to_milvus
    from index_builder.bundle.milvus_collection import MilvusTarget

    out = tmp_path_factory.mktemp("milvus_bundles") / "tiny-milvus"
    return copy_to_milvus(tiny_bundle, MilvusTarget(milvus_uri), out).out
