"""Runtime settings of the service, from ``UNIHPR_*`` environment variables (and nothing else).

Every limit the API documents lives here. ``get_settings()`` is cached so a process parses the environment once;
tests build ``Settings(...)`` directly and pass it to ``create_app``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

MIB = 1 << 20
SEQUENCE_FPS = "frame rate of a sequence query (and of sample_fps for videos)"  # what both fps bounds bound


class Settings(BaseSettings):
    """Service settings; each field is read from ``UNIHPR_<FIELD>`` (case-insensitive)."""

    model_config = SettingsConfigDict(env_prefix="UNIHPR_", env_file=None, env_ignore_empty=True, extra="ignore")

    # --- the bundle
    bundle_path: Path = Field(Path("bundles/default"), description="bundle directory served at start-up (unless "
                                                                   "a reload recorded another in state_file)")
    bundles_root: Path | None = Field(None, description="the only directory /admin/reload may load bundles from "
                                                        "(default: the parent of bundle_path)")
    state_file: Path | None = Field(None, description="where a reload records the served bundle, read at start so "
                                                      "a reloaded bundle survives a restart (default: "
                                                      "<bundles_root>/.served-bundle)")
    require_bundle: bool = Field(
        True, description="refuse to start when the bundle fails to load (False: start not ready, /readyz 503, "
                          "until POST /admin/reload loads one)")

    # --- the index backend (service.index_backend)
    index_backend: Literal["faiss", "milvus"] = Field(
        "faiss", description="faiss: the bundle's index.faiss, in process; milvus: the bundle's Milvus collection "
                             "(bundles built with --backend milvus) at milvus_uri")
    milvus_uri: str | None = Field(None, description="Milvus server for index_backend=milvus, e.g. "
                                                     "http://milvus:19530 (credentials go in milvus_token)")
    milvus_token: SecretStr | None = Field(None, description="Milvus token, user:password or an API key; never "
                                                             "logged")
    milvus_alias: str = Field("unihpr_serving", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,254}$",
                              description="Milvus alias pointed at the served bundle's collection on every (re)load")
    milvus_timeout_s: float = Field(5.0, gt=0, description="deadline of one Milvus call (a search, a health check)")

    # --- access
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="read keys for X-API-Key, comma-separated; none = reading is open")
    admin_key: str | None = Field(None, description="key for /admin/*; when unset, /admin/* does not exist (404)")
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list,
                                                         description="allowed CORS origins, comma-separated")

    # --- limits
    max_body_bytes: int = Field(16 * MIB, ge=1024, description="largest request body (JSON or multipart)")
    max_batch: int = Field(256, ge=1, description="most inputs / queries in one request")
    max_image_pixels: int = Field(25_000_000, ge=1, description="largest decoded image, width x height; also "
                                                                "Pillow's Image.MAX_IMAGE_PIXELS")
    max_request_pixels: int = Field(800_000_000, ge=1, description="most decoded pixels of all the images of one "
                                                                   "request (64 images of 4000 x 3000 = 768 M)")
    max_results: int = Field(32_768, ge=1, description="most results one /retrieve answer holds: k x queries (x "
                                                       "people for all_people images)")
    max_json_items: int = Field(1_000_000, ge=1000, description="most JSON values and containers in one body "
                                                                "(counted as commas and brackets before parsing)")
    max_people: int = Field(10, ge=1, description="most people returned for one image with all_people")
    min_visible_joints: int = Field(8, ge=2, le=17, description="fewest visible h36m17 joints a 2D pose needs")
    max_search_effort: float = Field(16.0, ge=1.0, description="upper bound of the request's search_effort")

    # --- motion search (sequence and video queries)
    max_sequence_frames: int = Field(1800, ge=2, description="most frames of a sequence query, and most frames "
                                                             "sampled from a video")
    max_sequence_seconds: float = Field(60.0, gt=0, description="longest sequence query, seconds from its first "
                                                                "to its last frame")
    min_sequence_fps: float = Field(1.0, gt=0, description=f"lowest {SEQUENCE_FPS}")
    max_sequence_fps: float = Field(240.0, gt=0, description=f"highest {SEQUENCE_FPS}")
    max_video_bytes: int = Field(16 * MIB, ge=1024, description="largest video upload (max_body_bytes bounds the "
                                                                "whole request too)")
    max_video_pixels: int = Field(3840 * 2160, ge=1, description="largest video frame, width x height")
    max_video_seconds: float = Field(30.0, gt=0, description="longest video (every sampled frame runs BlazePose: "
                                                             "about 25-60 ms each on one core)")
    video_sample_fps: float = Field(10.0, gt=0, description="frames per second a video is sampled at for person "
                                                            "detection (at most its own rate)")
    video_track_people: int = Field(3, ge=1, le=10, description="people detected per video frame, among whom the "
                                                                "tracked person is found")

    # --- compute
    device: Literal["auto", "cpu", "gpu"] = Field(
        "auto", description="cpu; gpu (ONNX Runtime's CUDA provider and FAISS GPUs required, else start-up fails); "
                            "auto (the GPU when both are present)")
    ort_threads: int = Field(1, ge=1, description="ONNX Runtime intra-op threads per session (spinning off)")
    faiss_threads: int = Field(1, ge=1, description="FAISS OpenMP threads per search")
    blas_threads: int = Field(1, ge=1, description="BLAS threads of numpy, process-wide (the motion search's and the "
                                                   "re-ranking's fits; service.native_threads says why one)")
    detector_instances: int = Field(2, ge=1, description="BlazePose instances (one LiteRT interpreter pair each)")
    detector_threads: int = Field(1, ge=1, description="LiteRT threads per BlazePose interpreter")
    onnx_slices: int = Field(0, ge=0, description="an ONNX call on the CPU of at least twice 32 rows runs as up to "
                                                  "this many slices in parallel threads (the rows are independent: "
                                                  "the same outputs); 0: the CPUs this process may use, at most 4; "
                                                  "1: never sliced")
    microbatch: bool = Field(True, description="merge concurrent requests into one ONNX call per graph")
    microbatch_max_rows: int = Field(256, ge=1, description="most rows one merged ONNX call takes")
    exact_filter_fraction: float = Field(
        0.05, ge=0.0, le=1.0, description="filters selecting less than this fraction of the index search the "
                                          "subset exactly; above it a FAISS IDSelector filters inside the search")

    @field_validator("api_keys", "cors_origins", mode="before")
    @classmethod
    def _split_commas(cls, value):
        if isinstance(value, str):
            parts = [part.strip() for part in value.split(",") if part.strip()]
            if value.strip() and not parts:
                raise ValueError(f"{value!r} lists nothing: leave it unset, or give comma-separated values")
            return parts
        return value

    @field_validator("api_keys")
    @classmethod
    def _no_blank_keys(cls, keys: list[str]) -> list[str]:
        if any(not key.strip() for key in keys):
            raise ValueError("an API key is blank")
        return [key.strip() for key in keys]

    @field_validator("admin_key")
    @classmethod
    def _admin_key_not_blank(cls, key: str | None) -> str | None:
        if key is not None and not key.strip():
            raise ValueError("the admin key is blank: leave UNIHPR_ADMIN_KEY unset to turn administration off")
        return None if key is None else key.strip()

    @model_validator(mode="after")
    def _backend_is_configured(self) -> Settings:
        if self.index_backend == "milvus":
            if not self.milvus_uri:
                raise ValueError("UNIHPR_INDEX_BACKEND=milvus needs UNIHPR_MILVUS_URI (e.g. http://milvus:19530)")
            parts = urlsplit(self.milvus_uri)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError("UNIHPR_MILVUS_URI must be http://HOST:PORT or https://HOST:PORT")
            if parts.username or parts.password:
                raise ValueError("UNIHPR_MILVUS_URI must not carry credentials: put them in UNIHPR_MILVUS_TOKEN")
        return self

    @property
    def reload_root(self) -> Path:
        """The directory reloads may read bundles from, resolved."""
        return (self.bundles_root or self.bundle_path.parent).resolve()

    @property
    def served_record(self) -> Path:
        return self.state_file or self.reload_root / ".served-bundle"


@lru_cache
def get_settings() -> Settings:
    """The process's settings, parsed from the environment once."""
    return Settings()
