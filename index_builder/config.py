"""Where the builder finds its inputs and puts its outputs; one typed object, overridable from the environment.

Paths default to the layout of a checkout: the shared data beside the repository (``../shared/data``) and
caches under ``.cache/`` in it. ``UNIHPR_SHARED_DATA`` and ``UNIHPR_CACHE_DIR`` override them.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DATA = Path(__file__).resolve().parent / "data"
SAMPLE_PATH = PACKAGE_DATA / "bandai_sample.npz"
DEFAULT_WEIGHTS = REPO_ROOT / "weights" / "unihpr_default.pt"  # shipped with the repository (see weights/MODEL_CARD.md)


class BuildPaths(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="UNIHPR_", extra="ignore")

    shared_data: Path = Field(REPO_ROOT.parent / "shared" / "data", description="the shared data folder")
    cache_dir: Path = Field(REPO_ROOT / ".cache", description="derived caches (git-ignored)")

    @property
    def bandai_archives(self) -> list[Path]:
        folder = self.shared_data / "bandai-namco-motion"
        return [folder / "dataset-1.tar.xz", folder / "dataset-2.tar.xz"]

    @property
    def bandai_cache(self) -> Path:
        return self.cache_dir / "bandai_h36m17.npz"

    @property
    def pose_images(self) -> Path:
        return self.shared_data / "pose-images"


@lru_cache
def get_paths() -> BuildPaths:
    return BuildPaths()


def portable_path(path: Path) -> str:
    """A path as the repository speaks of it in reports: relative to the checkout, or ``../shared/...`` for the
    shared data beside it; other paths as given."""
    path = Path(path).resolve()
    for base, prefix in ((REPO_ROOT, ""), (REPO_ROOT.parent, "../")):
        try:
            return prefix + str(path.relative_to(base))
        except ValueError:
            continue
    return str(path)
