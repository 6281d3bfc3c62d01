"""GET /clips/{clip} and /clips/{clip}/motion: a library clip's metadata, and its motion as JSON or BVH."""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, Query
from fastapi.responses import Response

from model.pose.joint_conventions import OURS, convert_joints
from service.bvh_cut import BvhCutError, cut_bvh
from service.deps import OutputLayout, Read
from service.errors import MAX_ECHO, NoSourceMotionError, NotFoundError, OutOfRangeError
from service.pipeline import rounded_pose
from service.responses import json_response
from service.schemas.errors import error_responses
from service.schemas.responses import ClipInfo, ClipMotion

router = APIRouter(prefix="/clips", tags=["clips"])
Seconds = Annotated[float | None, Query(ge=0, le=1e7, description="seconds from the start of the clip's source "
                                                                  "(a result's `time`, `start` and `end`)")]


def _clip_index(bundle, clip: str) -> int:
    index = bundle.catalog.clip_index.get(clip)
    if index is None or not len(bundle.catalog.rows_of_clip(index)):
        raise NotFoundError(f"no clip {clip[:MAX_ECHO]!r} in this bundle", "clip")
    return index


def _bvh_source(bundle, clip: str) -> bytes | None:
    source = bundle.sources.source(clip) if bundle.sources is not None else None
    return source[1] if source is not None and source[0] == "bvh" else None


# The motion route comes first: a clip name may hold slashes (ingested clips are relative paths).
@router.get("/{clip:path}/motion", summary="A clip's motion over a time range, as JSON poses or its source BVH",
            response_model=ClipMotion, responses=error_responses(401, 404, 409, 422, 503))
async def clip_motion(clip: str, read: Read, start: Seconds = None, end: Seconds = None,
                      format: Literal["json", "bvh"] = "json", layout: OutputLayout = "h36m17") -> Response:
    """The frames of `clip` whose time lies in [`start`, `end`] seconds (default: the whole clip). JSON: the
    indexed h36m17 poses (mm, root-relative, world Y-up) at the bundle's frame rate. BVH: the same range cut from
    the source file (same rig and channels, its own frame rate); 409 when the bundle does not keep it as BVH.
    JSON poses come in the joint convention `layout` (the field's `h36m17` by default)."""
    bundle = read.bundle
    index = _clip_index(bundle, clip)
    catalog = bundle.catalog
    rows = catalog.rows_of_clip(index)
    fps = float(catalog.clip_fps[index])
    times = catalog.frame[rows] / fps  # (F,) seconds from the source's first frame, as results' `time`
    lo = float(times[0]) if start is None else start
    hi = float(times[-1]) if end is None else end
    if lo > hi:
        raise OutOfRangeError(f"start {lo:g} s is after end {hi:g} s", "start")
    if lo > times[-1]:
        raise OutOfRangeError(f"start {lo:g} s is after the clip's last frame ({times[-1]:g} s)", "start")
    if format == "bvh":
        text = _bvh_source(bundle, clip)
        if text is None:
            raise NoSourceMotionError(f"this bundle does not keep a BVH source for {clip[:MAX_ECHO]!r}; "
                                      "format=json gives its h36m17 poses", "format")
        try:
            segment, _ = cut_bvh(text, lo, hi)
        except BvhCutError as err:
            raise NoSourceMotionError(f"the kept source of {clip[:MAX_ECHO]!r} is not BVH this service can cut "
                                      f"({err})", "format") from err
        return Response(segment, media_type="text/plain; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{clip.rsplit("/", 1)[-1]}.bvh"'})
    inside = (times >= lo - 1e-9) & (times <= hi + 1e-9)
    if not inside.any():
        raise OutOfRangeError(f"no indexed frame lies in [{lo:g}, {hi:g}] s", "start")
    keep, kept_times = rows[inside], times[inside]
    return await json_response({
        "model_version": bundle.model_version, "clip": catalog.clip_name[index], "fps": fps,
        "start": round(float(kept_times[0]), 6), "end": round(float(kept_times[-1]), 6),
        "frames": catalog.frame[keep],
        "pose3d": rounded_pose(convert_joints(catalog.poses[keep].astype(np.float64), OURS, layout)),
        "layout": layout, "units": "mm", "frame": "world_yup", "licence": bundle.licence,
    })


@router.get("/{clip:path}", summary="A library clip: frame rate, frames, labels, source and licence",
            response_model=ClipInfo, responses=error_responses(401, 404, 503))
async def clip_info(clip: str, read: Read) -> Response:
    bundle = read.bundle
    index = _clip_index(bundle, clip)
    formats = ["json", "bvh"] if _bvh_source(bundle, clip) is not None else ["json"]
    return await json_response({"model_version": bundle.model_version, **bundle.catalog.clip_info(index),
                                "motion_formats": formats, "licence": bundle.licence})
