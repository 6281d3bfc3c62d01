"""Session fixtures of real motion files for the ingest tests (see ``ingest_fixtures``), and one torch thread for
the modules that train tiny networks."""

from __future__ import annotations

import shutil

import pytest

from tests.index_builder.ingest_fixtures import (
    DEEPMIMIC_MEMBERS,
    DMGNN_MEMBERS,
    ICLONE_MEMBERS,
    extract,
    first_bandai_clip,
    shared_folder,
)


@pytest.fixture(scope="session")
def bvh_rigs(build_paths):
    """../shared/data/bvh-rigs (Mixamo, MocapBank)."""
    return shared_folder(build_paths, "bvh-rigs")


@pytest.fixture(scope="session")
def extra_mocap(build_paths, tmp_path_factory):
    """A few real clips of each extra-mocap set, at their archive paths: iClone BVH, DeepMimic (with its skeleton),
    CMU exponential maps (with dmgnn-cmu-skeleton.json copied beside the data folder)."""
    shared = shared_folder(build_paths, "extra-mocap")
    out = tmp_path_factory.mktemp("extra_mocap")
    extract(shared / "iclone-cmu.tar.xz", ICLONE_MEMBERS, out / "iclone")
    extract(shared / "deepmimic.tar.xz", DEEPMIMIC_MEMBERS, out / "deepmimic")
    extract(shared / "dmgnn-cmu.tar.xz", DMGNN_MEMBERS, out / "dmgnn")
    shutil.copy(shared / "dmgnn-cmu-skeleton.json", out / "dmgnn" / "dmgnn-cmu-skeleton.json")
    return out


@pytest.fixture(scope="session")
def bandai_bvh(bandai_archives, tmp_path_factory):
    """The first BVH clip of Bandai dataset-1, extracted."""
    return first_bandai_clip(bandai_archives[0], tmp_path_factory.mktemp("bandai_clip"))


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny networks run fastest on one thread (two threads on a busy 2-core machine are 10x slower); a module
    that trains them says ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
