"""Runtime settings of the service, from ``UNIHPR_*`` environment variables (and nothing else).

Every limit the API documents lives here. ``get_settings()`` is cached so a process parses the environment once;
tests build ``Settings(...)`` directly and pass it to ``create_app``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

MIB = 1 << 20


class Settings(BaseSettings):
    """Service settings; each field is read from ``UNIHPR_<FIELD>`` (case-insensitive)."""

    model_config = SettingsConfigDict(env_prefix="UNIHPR_", env_file=None, env_ignore_empty=True, extra="ignore")

    # --- the bundle
    bundle_path: Path = Field(Path("bundles/default"), description="bundle directory served at start-up")
    require_bundle: bool = Field(
        True, description="refuse to start when the bundle fails to load (False: start not ready, /readyz 503, "
                          "until POST /admin/reload loads one)")

    # --- access
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="read keys for X-API-Key, comma-separated; none and no admin key = open")
    admin_key: str | None = Field(None, description="key for /admin/*; when unset, /admin/* is open only if no "
                                                    "read keys are set either, and refused otherwise")
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list,
                                                         description="allowed CORS origins, comma-separated")

    # --- limits
    max_body_bytes: int = Field(16 * MIB, ge=1024, description="largest request body (JSON or multipart)")
    max_batch: int = Field(256, ge=1, description="most inputs / queries in one request")
    max_image_pixels: int = Field(25_000_000, ge=1, description="largest decoded image, width x height; also "
                                                                "Pillow's Image.MAX_IMAGE_PIXELS")
    max_people: int = Field(10, ge=1, description="most people returned for one image with all_people")
    min_visible_joints: int = Field(8, ge=2, le=17, description="fewest visible h36m17 joints a 2D pose needs")
    max_search_effort: float = Field(16.0, ge=1.0, description="upper bound of the request's search_effort")

    # --- compute
    ort_threads: int = Field(1, ge=1, description="ONNX Runtime intra-op threads per session (spinning off)")
    faiss_threads: int = Field(1, ge=1, description="FAISS OpenMP threads (process-wide)")
    detector_instances: int = Field(2, ge=1, description="BlazePose instances (one LiteRT interpreter pair each)")
    detector_threads: int = Field(1, ge=1, description="LiteRT threads per BlazePose interpreter")
    microbatch: bool = Field(True, description="merge concurrent requests into one ONNX call per graph")
    microbatch_max_rows: int = Field(256, ge=1, description="most rows one merged ONNX call takes")
    exact_filter_fraction: float = Field(
        0.05, ge=0.0, le=1.0, description="filters selecting less than this fraction of the index search the "
                                          "subset exactly; above it a FAISS IDSelector filters inside the search")

    @field_validator("api_keys", "cors_origins", mode="before")
    @classmethod
    def _split_commas(cls, value):
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @property
    def auth_enabled(self) -> bool:
        return bool(self.api_keys) or self.admin_key is not None


@lru_cache
def get_settings() -> Settings:
    """The process's settings, parsed from the environment once."""
    return Settings()
