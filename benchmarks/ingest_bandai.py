"""The full Bandai archives through the generic ingest path against the Bandai loader: same poses, and time.

Extracts both archives to a temporary folder once (not timed), then times
- the loader: ``build_bandai_database`` on the archives (what ``unihpr-build cache`` runs) plus the save, and
- the generic path: ``unihpr-build ingest`` on the extracted files (BVH rig recognition, unit and axis detection,
  checks, resampling, labels from the JSON sidecars), which also saves,
and prints the largest joint difference between the two databases, clip by clip, and the time ratio.

    .venv/bin/python benchmarks/ingest_bandai.py [--workers 2]
"""

from __future__ import annotations

import argparse
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

from index_builder.cli import main as cli_main
from index_builder.config import get_paths
from index_builder.datasets.bandai import LICENCE, SOURCE, build_bandai_database
from index_builder.datasets.motion_database import MotionDatabase


def _by_name(db: MotionDatabase) -> dict[str, np.ndarray]:
    """clip name (file stem) -> (T, 17, 3) poses."""
    return {str(name).rsplit("/", 1)[-1]: db.poses[start : start + length]
            for name, start, length in zip(db.clips.name, db.clips.start, db.clips.length)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    archives = get_paths().bandai_archives
    with tempfile.TemporaryDirectory(prefix="bandai_ingest_") as tmp:
        tmp = Path(tmp)
        started = time.perf_counter()
        for archive in archives:
            with tarfile.open(archive, "r:xz") as tar:
                tar.extractall(tmp / "files", filter="data")
        print(f"extracted {len(archives)} archives in {time.perf_counter() - started:.1f} s (not counted)")

        started = time.perf_counter()
        loader = build_bandai_database(archives, workers=args.workers)
        loader.save(tmp / "loader.npz")
        loader_s = time.perf_counter() - started
        print(f"loader (archives -> cache): {len(loader.clips)} clips, {len(loader)} poses in {loader_s:.1f} s")

        started = time.perf_counter()
        code = cli_main(["ingest", str(tmp / "files"), "--out", str(tmp / "generic.npz"), "--licence", LICENCE,
                         "--source", SOURCE, "--workers", str(args.workers)])
        generic_s = time.perf_counter() - started
        assert code == 0, code
        generic = MotionDatabase.load(tmp / "generic.npz")
        print(f"generic (extracted files -> database): {len(generic.clips)} clips, {len(generic)} poses in "
              f"{generic_s:.1f} s")

        want, got = _by_name(loader), _by_name(generic)
        missing = sorted(set(want) - set(got))
        worst, worst_clip = 0.0, ""
        for name in sorted(set(want) & set(got)):
            if want[name].shape != got[name].shape:
                print(f"  {name}: {want[name].shape} vs {got[name].shape}")
                continue
            diff = float(np.linalg.norm(want[name] - got[name], axis=-1).max())
            if diff > worst:
                worst, worst_clip = diff, name
        labels_loader = {str(n): (c, s) for n, c, s in zip(loader.clips.name, loader.clips.content, loader.clips.style)}
        labels_generic = {str(n).rsplit("/", 1)[-1]: (c, s)
                          for n, c, s in zip(generic.clips.name, generic.clips.content, generic.clips.style)}
        same_labels = sum(labels_loader[n] == labels_generic.get(n) for n in labels_loader)
        print(f"clips missing from the generic database: {len(missing)} {missing[:5]}")
        print(f"max joint difference: {worst:.6f} mm (clip {worst_clip or '-'})")
        print(f"same (content, style) labels: {same_labels} of {len(labels_loader)} clips")
        print(f"time ratio generic / loader: {generic_s / loader_s:.2f}")


if __name__ == "__main__":
    main()
