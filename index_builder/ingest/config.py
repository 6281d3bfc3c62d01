"""What one ``unihpr-build ingest`` run is told: one typed object, validated once, passed to every worker."""

from __future__ import annotations

from dataclasses import dataclass, field

from index_builder.errors import ConfigError
from index_builder.ingest.rigs import RigFamily
from model.pose.units import MM_PER_CM, MM_PER_INCH, MM_PER_M

DEFAULT_FPS = 30.0  # the database rate: the Bandai capture rate, so Bandai clips are kept frame for frame
CMU_UNIT_TO_MM = MM_PER_INCH / 0.45  # CMU ASF length unit: 1/0.45 inch, about 56.4 mm

# File length unit -> mm. "auto" picks one of these from the leg length (``index_builder.ingest.units``).
UNIT_TO_MM = {
    "mm": 1.0,
    "cm": MM_PER_CM,
    "m": MM_PER_M,
    "inch": MM_PER_INCH,
    "cmu": CMU_UNIT_TO_MM,
}
UP_AXES = ("y", "z")  # right-handed, Y up or Z up; everything is stored Y up


@dataclass(frozen=True)
class IngestConfig:
    """One ingest run.

    source: the name of the source, kept with every pose (bundle metadata ``clip_source``).
    licence: the source's licence, carried into the database and the bundle manifest.
    fps: database frame rate; every clip is resampled to it.
    units: "auto" or a key of ``UNIT_TO_MM``, for BVH files and joint arrays without a ``units`` key.
    up: "auto", "y" or "z", for BVH files and joint arrays without an ``up`` key.
    array_fps: frame rate of ``.npy`` joint arrays (they carry none) and ``.npz`` ones without ``fps``.
    families: user rig families (from mapping files), tried before the built-in ones.
    workers: parsing processes (1: parse in this process).
    keep_sources: keep each BVH file's text (compressed) in the database, for bundles that hand clips back as
        BVH; other formats keep none.
    """

    source: str
    licence: str
    fps: float = DEFAULT_FPS
    units: str = "auto"
    up: str = "auto"
    array_fps: float = DEFAULT_FPS
    families: tuple[RigFamily, ...] = field(default_factory=tuple)
    workers: int = 2
    keep_sources: bool = True

    def __post_init__(self) -> None:
        if not self.source.strip():
            raise ConfigError("--source must name the source")
        if not self.licence.strip():
            raise ConfigError("--licence must state the source's licence (it goes into every bundle built from it)")
        if self.units != "auto" and self.units not in UNIT_TO_MM:
            raise ConfigError(f"--units {self.units!r}: use auto or one of {', '.join(UNIT_TO_MM)}")
        if self.up != "auto" and self.up not in UP_AXES:
            raise ConfigError(f"--up {self.up!r}: use auto, y or z")
        if self.fps <= 0 or self.array_fps <= 0:
            raise ConfigError("frame rates must be positive")
        if self.workers < 1:
            raise ConfigError("--workers must be at least 1")
