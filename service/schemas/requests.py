"""The request bodies of the routes, and the multipart forms that document (and bound) the fields an upload takes.

Requests are parsed by ``service.body`` (JSON or multipart) and validated with the adapters here. A request with
several inputs names each one's field (``items``, ``item_fields``) so an error points at the input at fault.
"""

from __future__ import annotations

from typing import Union

from pydantic import Field, PrivateAttr, TypeAdapter, create_model, model_validator

from service.schemas.inputs import (
    FOV_DESCRIPTION,
    MAX_FOV_DEG,
    MIN_FOV_DEG,
    CameraInput,
    EmbedInput,
    QueryInput,
    SequenceInput,
    StrictModel,
    VideoOptions,
)

MAX_K = 1000


class FilterSet(StrictModel):
    clip: list[str] | None = Field(None, description="clip names, exact")
    content: list[str] | None = Field(None, description="content labels (e.g. walk, wave-left-hand); case, spaces "
                                                        "and underscores are normalised")
    style: list[str] | None = Field(None, description="style labels (e.g. normal, elderly)")
    source: list[str] | None = Field(None, description="data sources (e.g. bandai-namco-motion)")
    dataset: list[str] | None = Field(None, description="dataset of the source (e.g. dataset-1)")


class Filters(StrictModel):
    include: FilterSet | None = Field(None, description="keep poses matching every listed field (any value)")
    exclude: FilterSet | None = Field(None, description="drop poses matching any listed value")


class EmbedRequest(StrictModel):
    inputs: list[EmbedInput] = Field(min_length=1, description="one or more inputs (at most the service's "
                                                               "max_batch)")

    @property
    def items(self) -> list:
        return self.inputs

    @property
    def item_fields(self) -> list[str]:
        return [f"inputs[{i}]" for i in range(len(self.inputs))]


class RetrieveRequest(StrictModel):
    query: QueryInput | None = Field(None, description="one input or {\"embedding\": [...]}")
    queries: list[QueryInput] | None = Field(None, description="a batch of queries; answered as `batches`")
    k: int = Field(10, ge=1, le=MAX_K, description="results per query, 1..1000")
    filters: Filters | None = None
    search_effort: float = Field(1.0, gt=0, description="multiplies the index's operating point (IVF nprobe "
                                                        "chosen for recall@10 >= 0.95); ignored by exact indexes")
    group_by_clip: bool = Field(False, description="at most one result per clip (its best frame)")
    align_to_query: bool = Field(False, description="return pose3d as the matched view sees it, in the query's "
                                                    "camera frame (facing like the query; a 2D query's matched "
                                                    "view stands for the virtual camera aimed at the person, "
                                                    "turned back into its real camera); default root-relative "
                                                    "world Y-up")
    include_pose3d: bool = Field(True, description="include each result's pose3d")
    rerank: bool = Field(True, description="geometric re-ranking (default on): the 100 best poses by cosine (k "
                                           "when larger) and the bundle's lifted candidates (the poses nearest the "
                                           "query's lifted 3D by joint distances) are fitted to the query and the "
                                           "k best by `rank_score` returned, each with `fit_residual` and "
                                           "`confidence`; false: the k best by cosine `score`, as before, without "
                                           "fit or confidence (faster)")
    sequence: SequenceInput | None = Field(None, description="a motion (poses over time): answered with the "
                                                             "best-matching segments of library clips (motion "
                                                             "search), any speed from 1/3x to 3x")
    video: VideoOptions | None = Field(None, description="multipart only: the options of a `video` file upload "
                                                         "(motion search on the tracked person)")

    @model_validator(mode="after")
    def _one_of(self):
        given = [name for name in ("query", "queries", "sequence", "video") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of `query`, `queries` and `sequence` (or upload a `video`)")
        if self.queries is not None and not self.queries:
            raise ValueError("`queries` is empty")
        return self

    @property
    def items(self) -> list:
        return [self.query] if self.query is not None else list(self.queries or [])

    @property
    def item_fields(self) -> list[str]:
        return ["query"] if self.query is not None else [f"queries[{i}]" for i in range(len(self.items))]


class LiftBatchRequest(StrictModel):
    inputs: list[QueryInput] = Field(min_length=1, description="inputs to lift; answered as `outputs`")
    _single: bool = PrivateAttr(False)  # the body was one input, not {"inputs": [...]}

    @classmethod
    def of_one(cls, item) -> "LiftBatchRequest":
        request = cls.model_construct(inputs=[item])
        request._single = True
        return request

    @property
    def single(self) -> bool:
        return self._single

    @property
    def items(self) -> list:
        return self.inputs

    @property
    def item_fields(self) -> list[str]:
        return [""] if self._single else [f"inputs[{i}]" for i in range(len(self.inputs))]


class ReloadRequest(StrictModel):
    bundle: str | None = Field(None, description="bundle directory on the server; default the configured one")


EMBED_ADAPTER = TypeAdapter(EmbedRequest)
RETRIEVE_ADAPTER = TypeAdapter(RetrieveRequest)
LIFT_SINGLE_ADAPTER = TypeAdapter(QueryInput)
LIFT_BATCH_ADAPTER = TypeAdapter(LiftBatchRequest)
RELOAD_ADAPTER = TypeAdapter(ReloadRequest)
LiftRequestSchema = Union[QueryInput, LiftBatchRequest]  # what the OpenAPI document shows for /lift3d

# ------------------------------------------------ multipart forms (documented, and the fields accepted)


class ImageForm(StrictModel):
    image: bytes = Field(description="JPEG or PNG file")
    all_people: bool = Field(False, description="every person, not only the largest")
    camera: CameraInput | None = Field(None, description="JSON text of a CameraInput, as for `image_b64` inputs")
    fov_deg: float | None = Field(None, ge=MIN_FOV_DEG, le=MAX_FOV_DEG, allow_inf_nan=False,
                                  description=FOV_DESCRIPTION)


RetrieveForm = create_model(
    "RetrieveForm", __base__=ImageForm,
    **{name: (info.annotation, info) for name, info in RetrieveRequest.model_fields.items()
       if name not in ("query", "queries", "sequence", "video")})
RetrieveVideoForm = create_model(
    "RetrieveVideoForm", __base__=StrictModel,
    video=(bytes, Field(description="MP4 / MOV, WebM / Matroska or AVI file: motion search on its tracked person "
                                    "(the largest in the first frame with someone in it)")),
    **{name: (info.annotation, info) for name, info in VideoOptions.model_fields.items()},
    **{name: (info.annotation, info) for name, info in RetrieveRequest.model_fields.items()
       if name in ("k", "filters", "search_effort", "group_by_clip")})
