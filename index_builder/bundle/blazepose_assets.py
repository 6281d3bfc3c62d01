"""Obtain the two BlazePose .tflite models (SPEC section 5, "BlazePose facts").

They ship only inside the ``mediapipe==0.10.21`` wheel on PyPI. ``fetch_blazepose_models`` downloads that
wheel once with ``pip download --no-deps`` (pip picks the wheel for this interpreter and platform), extracts the
two files, checks their sha256 and writes them into a cache directory atomically. mediapipe itself is never
installed or imported (it pins numpy<2).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from index_builder.atomic_files import atomic_path
from index_builder.config import get_paths
from index_builder.errors import ArtifactError
from model.runtime.bundle_format import BLAZEPOSE, sha256_of

LOG = logging.getLogger(__name__)

MEDIAPIPE_WHEEL = "mediapipe==0.10.21"  # later releases no longer ship these .tflite files

# cache file name -> (path inside the wheel, sha256); the hashes are the bundle format's (SPEC section 5)
MODELS: dict[str, tuple[str, str]] = {
    "pose_detection.tflite": ("mediapipe/modules/pose_detection/pose_detection.tflite",
                              BLAZEPOSE["pose_detection.tflite"]),
    "pose_landmark_full.tflite": ("mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
                                  BLAZEPOSE["pose_landmark_full.tflite"]),
}


@dataclass(frozen=True)
class BlazePoseFiles:
    """Paths of the verified model files."""

    detector: Path  # pose_detection.tflite: 1x224x224x3 in, 1x2254x12 boxes + 1x2254x1 scores out
    landmarks: Path  # pose_landmark_full.tflite: 1x256x256x3 in, 1x195 landmarks + 1x1 presence + ...


def _files(cache_dir: Path) -> BlazePoseFiles:
    return BlazePoseFiles(
        detector=cache_dir / "pose_detection.tflite", landmarks=cache_dir / "pose_landmark_full.tflite"
    )


def _cached_ok(cache_dir: Path) -> bool:
    return all((cache_dir / name).is_file() and sha256_of(cache_dir / name) == sha
               for name, (_, sha) in MODELS.items())


def _download_wheel(into: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
           "--only-binary=:all:", "--retries", "2", MEDIAPIPE_WHEEL, "-d", str(into)]
    LOG.info("downloading %s: %s", MEDIAPIPE_WHEEL, " ".join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ArtifactError(f"`pip download {MEDIAPIPE_WHEEL}` failed (exit {proc.returncode}): "
                            f"{proc.stderr.strip()[-2000:]}")
    wheels = sorted(into.glob("mediapipe-*.whl"))
    if len(wheels) != 1:
        raise ArtifactError(f"expected one mediapipe wheel in {into}, found {[w.name for w in wheels]}")
    return wheels[0]


def fetch_blazepose_models(cache_dir: Path | None = None) -> BlazePoseFiles:
    """Return the two BlazePose models in ``cache_dir`` (default: ``BuildPaths.blazepose_cache``), downloading the
    mediapipe wheel if needed.

    Files already in ``cache_dir`` with the right sha256 are used as they are. Otherwise the wheel is
    downloaded into a temporary directory (deleted afterwards), each model is extracted, checked against its
    pinned sha256 and moved into place under a temporary name + ``os.replace``. Raises ``ArtifactError`` when
    pip fails, a file is missing from the wheel or a hash does not match (nothing is written in that case).
    """
    cache_dir = Path(cache_dir or get_paths().blazepose_cache)
    if _cached_ok(cache_dir):
        return _files(cache_dir)
    with tempfile.TemporaryDirectory(prefix="blazepose-wheel-") as tmp:
        wheel = _download_wheel(Path(tmp))
        with zipfile.ZipFile(wheel) as zf:
            for name, (member, expected) in MODELS.items():
                try:
                    info = zf.getinfo(member)
                except KeyError:
                    raise ArtifactError(f"{wheel.name} has no {member}") from None
                with atomic_path(cache_dir / name) as out:
                    with zf.open(info) as src, open(out, "wb") as dst:
                        shutil.copyfileobj(src, dst)
                    actual = sha256_of(out)
                    if actual != expected:
                        raise ArtifactError(f"sha256 mismatch for {member} from {wheel.name}: expected "
                                            f"{expected}, got {actual}; refusing to install it")
                LOG.info("installed %s (sha256 %s)", cache_dir / name, expected)
    return _files(cache_dir)
