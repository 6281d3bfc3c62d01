"""Real motion files for the ingest tests: the shared ``bvh-rigs`` and ``extra-mocap`` data (skipped when
``../shared`` is absent) and the CMU BVH fixture under ``tests/index_builder/data``."""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
CMU_BVH = DATA / "cmu_01_04_head.bvh"

# Members taken from the extra-mocap archives (a few short clips of each).
ICLONE_MEMBERS = ("All_BVH/subjects/002/002_01.bvh", "All_BVH/subjects/007/007_01.bvh")
DEEPMIMIC_MEMBERS = ("data/characters/humanoid3d.txt", "data/motions/humanoid3d_walk.txt",
                     "data/motions/humanoid3d_crawl.txt")
DMGNN_MEMBERS = ("data/cmu/test/walking/walking_1.txt",)
BANDAI_MEMBERS = 1  # the first BVH clip of dataset-1


def shared_folder(build_paths, name: str) -> Path:
    folder = build_paths.shared_data / name
    if not folder.is_dir():
        pytest.skip(f"{folder} not found (set UNIHPR_SHARED_DATA)")
    return folder


def extract(archive: Path, members: tuple[str, ...], out: Path) -> Path:
    """Extract the named members of a .tar.xz into ``out`` (stops reading once all are found)."""
    wanted = set(members)
    with tarfile.open(archive, "r|xz") as tar:
        for member in tar:
            if member.name in wanted:
                tar.extract(member, out, filter="data")
                wanted.discard(member.name)
                if not wanted:
                    break
    assert not wanted, f"{archive} lacks {sorted(wanted)}"
    return out


def first_bandai_clip(archive: Path, out: Path) -> Path:
    """The first BVH of a Bandai archive, with its JSON label sidecar when it comes before the next BVH."""
    with tarfile.open(archive, "r|xz") as tar:
        for member in tar:
            if member.name.endswith(".bvh"):
                tar.extract(member, out, filter="data")
                return out / member.name
    raise AssertionError(f"no BVH in {archive}")


def copy_into(files: list[Path], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for f in files:
        shutil.copy(f, folder / f.name)
    return folder
