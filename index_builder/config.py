"""Where the builder finds its inputs and puts its outputs; one typed object, overridable from the environment.

Paths default to the layout of a checkout: the shared data beside the repository (``../shared/data``), caches
under ``.cache/`` in it, the shipped weights under ``weights/`` and the package data under ``index_builder/data``.
The default run, reports and bundle lie under ``runs/``, ``reports/`` and ``bundles/`` of the working directory, as
the commands have always written them. Every field is overridable as ``UNIHPR_<FIELD>`` (``UNIHPR_SHARED_DATA``,
``UNIHPR_CACHE_DIR``, ...).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DATA = Path(__file__).resolve().parent / "data"  # shipped with the code: the sample, the noise calibration


class BuildPaths(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="UNIHPR_", extra="ignore")

    shared_data: Path = Field(REPO_ROOT.parent / "shared" / "data", description="the shared data folder")
    cache_dir: Path = Field(REPO_ROOT / ".cache", description="derived caches (git-ignored)")
    default_weights: Path = Field(REPO_ROOT / "weights" / "unihpr_default.pt",
                                  description="the shipped model (see weights/MODEL_CARD.md)")
    sample: Path = Field(PACKAGE_DATA / "bandai_sample.npz",
                         description="the compact Bandai sample a fresh clone trains and tests on")
    detector_noise: Path = Field(PACKAGE_DATA / "detector_noise.json",
                                 description="the calibrated detector noise model the training views use")
    detector_calibration_report: Path = Field(PACKAGE_DATA / "detector_calibration.json",
                                              description="the detector's errors on the labelled photos")
    # Relative to the working directory, where the commands have always written them.
    default_run: Path = Field(Path("runs/default"), description="the run directory of the default model")
    reports_dir: Path = Field(Path("reports"), description="evaluation reports and figures")
    default_bundle: Path = Field(Path("bundles/default"), description="the bundle `unihpr-build index` writes")

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

    @property
    def blazepose_cache(self) -> Path:
        """The BlazePose models, fetched once."""
        return self.cache_dir / "blazepose"

    def extra_mocap_unpacked(self, name: str) -> Path:
        """Where one extra-mocap archive is unpacked."""
        return self.cache_dir / "extra-mocap" / name

    def extra_mocap_cache(self, name: str) -> Path:
        """The database ingested from one extra-mocap source."""
        return self.cache_dir / f"extra_{name}.npz"


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
