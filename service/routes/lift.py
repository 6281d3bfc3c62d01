"""POST /lift3d: a 2D pose or image (or any input) -> its 3D pose, mm, root-relative, the real camera's frame."""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import Response

from model.pose.joint_conventions import OURS, convert_joints
from service import pipeline
from service.camera import ON_AXIS
from service.deps import LIFT_BODY, LiftRead, OutputLayout
from service.inputs import IDENTITY
from service.openapi import body_doc
from service.plain_poses import PlainPose2D
from service.responses import json_response
from service.schemas.errors import READ_ERRORS
from service.schemas.responses import LiftResponse

router = APIRouter(tags=["lift3d"])


@router.post("/lift3d", summary="Lift a 2D pose or an image to 3D",
             response_model=LiftResponse, responses=READ_ERRORS, openapi_extra=body_doc(LIFT_BODY))
async def lift3d(request: Request, read: LiftRead, layout: OutputLayout = "h36m17") -> Response:
    """Encoder, then the 3D decoder: `pose3d` is (17, 3) mm, root-relative (pelvis at 0), in the real camera's
    frame with OpenCV axes (x right, y down, z forward), in the joint convention `layout` (the field's `h36m17`
    by default; the decoder's `unihpr17` converted by `model.pose.joint_conventions`). 2D inputs are lifted in a
    virtual camera aimed at the person (the perspective crop of their `camera`) and turned back into the real
    camera's frame; `camera` says which intrinsics were assumed (null for 3D poses and embeddings). A body with
    `inputs` is a batch, answered as `outputs`."""
    req, bundle = read.body, read.bundle
    if isinstance(req, PlainPose2D):  # 2D poses as plain numbers, read as one array
        return await lift_plain(request, req, read, layout)
    prepared, embeddings, timings = await pipeline.embed_request(request, "/lift3d", req, bundle, read.settings,
                                                                 read.metrics)
    poses = await pipeline.lift(bundle, np.concatenate(embeddings), timings, pipeline.crops_of(prepared, embeddings))
    poses = pipeline.rounded_pose(convert_joints(poses, OURS, layout))
    starts = np.cumsum([0, *(len(e) for e in embeddings)])
    outputs = []
    for item, p, row in zip(req.items, prepared, starts):
        output: dict = {"pose3d": poses[row], "units": "mm", "frame": "camera", "layout": layout,
                        "camera": None if p.camera is None else p.camera.as_json()}
        people = pipeline.people_of(item, p, lambda j, row=row: {"pose3d": poses[row + j]})
        if people is not None:
            output["people"] = people
        outputs.append(output)
    return await lift_answer(bundle.model_version, outputs, req.single)


async def lift_plain(request: Request, poses: PlainPose2D, read: LiftRead, layout: str) -> Response:
    """``lift3d`` for plain 2D poses (``service.plain_poses``): all on the optical axis, where the crop is the
    identity (turned back as the general path turns it, so the poses come out the same to the last bit)."""
    bundle = read.bundle
    embeddings = await pipeline.embed_plain_request(request, "/lift3d", poses, bundle, read.settings, read.metrics)
    lifted = await pipeline.lift(bundle, embeddings, request.state.timings, np.repeat(IDENTITY[None], len(poses), 0))
    camera = ON_AXIS.as_json()
    outputs = [{"pose3d": pose, "units": "mm", "frame": "camera", "layout": layout, "camera": camera}
               for pose in pipeline.rounded_pose(convert_joints(lifted, OURS, layout))]
    return await lift_answer(bundle.model_version, outputs, poses.single)


async def lift_answer(model_version: str, outputs: list[dict], single: bool) -> Response:
    """One output as the body's fields for a one-input body, else ``outputs``."""
    if single:
        return await json_response({"model_version": model_version, **outputs[0]})
    return await json_response({"model_version": model_version, "outputs": outputs})
