"""Joint conventions (SPEC 3, 6): lifting and 2D -> 3D retrieval with 2D and 3D built in the field's ``h36m17``
convention, next to the same poses in our ``unihpr17`` convention, per joint.

The held-out test poses exist in both conventions (``MotionDatabase.field_joints``, from the rig's neck and head
joints). Each is projected through the same cameras (the H36M-like rig and one seeded random camera per pose);
``h36m17`` 2D goes through the service's path: converted to ``unihpr17`` (``model.pose.joint_conventions``), then the
perspective crop and the encoder; the lifted pose is converted back to ``h36m17`` and compared with the field
ground truth. A third arm sends the ``h36m17`` 2D as if it were ``unihpr17``: what a client that mixes the two up
gets, and what the conversion buys. Limb errors are measured after Procrustes on the 13 joints the conventions
share, so that they do not depend on the four joints that differ.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from index_builder.datasets.motion_database import MotionDatabase
from index_builder.training.config import EvalSettings
from model.pose.camera_rigs import H36M_LIKE_RIG, intrinsics_of, pixels_of, random_cameras, ring_cameras
from model.pose.cameras import Camera, world_to_camera
from model.pose.features import pose2d_features, pose3d_features
from model.pose.joint_conventions import DERIVED, FIELD, LIMB_INDEX, OURS, SHARED_INDEX, convert_joints, with_derived
from model.pose.metrics import mpjpe, pa_mpjpe, procrustes_align
from model.pose.perspective_crop import crop_rays, pixels_to_rays
from model.pose.skeleton import H36M17, ROOT, root_centred
from model.retrieval.exact_search import exact_search

Encoder = Callable[[np.ndarray, str], np.ndarray]  # (features (N, 17, 3), modality) -> (N, D) unit vectors
Decoder = Callable[[np.ndarray], np.ndarray]  # (N, D) -> (N, 17, 3) mm, unihpr17
ARMS = {  # arm -> (convention of the 2D and of the ground truth, convention the 2D is declared in)
    "unihpr17": (OURS, OURS),
    "h36m17": (FIELD, FIELD),
    "h36m17_sent_as_unihpr17": (FIELD, OURS),
}
PROTOCOL = ("held-out test poses in both conventions (h36m17 from the rig's neck joint and the head's up axis), "
            "through the 4 H36M-like rig cameras and one seeded random camera each; clean projected 2D; h36m17 2D "
            "converted to unihpr17 before the perspective crop and the pose2d encoder, the lifted pose converted to "
            "h36m17 and compared with the field ground truth; the third arm sends h36m17 2D unconverted; limb "
            "PA-MPJPE: Procrustes on the 13 shared joints, error over the 12 limb joints; retrieval: the query's "
            "2D embedding against the pose3d embeddings of all rig views of the evaluated frames (unihpr17 3D, as a "
            "library is indexed), query clip excluded, top-1 errors in the arm's convention")


def convention_views(world: np.ndarray, camera: Camera, convention: str, declared: str) -> dict[str, np.ndarray]:
    """2D features of poses in one convention, read as the service reads a request declaring ``declared``.

    world: (N, 17, 3) mm in ``convention``; camera: one per pose.
    returns: pose2d features (N, 17, 3) and the root-relative 3D target (N, 17, 3) mm in the crop's virtual camera.
    """
    rays, _ = pixels_to_rays(pixels_of(world, camera), intrinsics_of(camera))
    rays = convert_joints(rays, declared, OURS)  # exactly what the service does with a request's 2D
    crop_2d, crop = crop_rays(rays)
    cam3d = np.einsum("nij,nkj->nki", crop, world_to_camera(world, camera))
    return {"pose2d": pose2d_features(crop_2d), "target": root_centred(cam3d)}


def _errors(lifted: np.ndarray, target: np.ndarray) -> dict[str, np.ndarray]:
    """Per-view MPJPE, PA-MPJPE, limb PA-MPJPE (mm) and per-joint root-relative errors (N, 17) mm."""
    shared = list(SHARED_INDEX)
    aligned = procrustes_align(lifted[:, shared], target[:, shared])
    limbs = [shared.index(j) for j in LIMB_INDEX]
    return {"mpjpe": mpjpe(lifted, target), "pa_mpjpe": pa_mpjpe(lifted, target),
            "limb_pa_mpjpe": np.linalg.norm(aligned[:, limbs] - target[:, LIMB_INDEX], axis=-1).mean(-1),
            "per_joint": np.linalg.norm(lifted - target, axis=-1)}


def joint_conventions(encode: Encoder, decode: Decoder, test: MotionDatabase, rows: np.ndarray,
                      settings: EvalSettings) -> dict:
    """Lifting and retrieval per arm of ``ARMS``; test: the test split with ``field_joints``; rows: its poses."""
    if test.field_joints is None:
        return {"status": "skipped", "note": "joint conventions not evaluated: the pose file has no field joints "
                                             "(rebuild the cache with `unihpr-build cache`)"}
    rng = np.random.default_rng([settings.seed, 7])
    ours = test.poses[rows].astype(np.float64)
    worlds = {OURS: ours, FIELD: with_derived(ours, test.field_joints[rows].astype(np.float64))}
    ring = ring_cameras(ours[:, ROOT], H36M_LIKE_RIG)
    cameras = {"h36m_rig": [ring[:, c] for c in range(H36M_LIKE_RIG.num_cameras)],
               "random": [random_cameras(ours[:, ROOT], rng)]}
    out: dict = {"status": "computed", "poses": int(len(rows)), "derived_joints": list(DERIVED), "arms": {}}
    gallery = None
    for arm, (convention, declared) in ARMS.items():
        result = {}
        for setup, cams in cameras.items():
            views = [convention_views(worlds[convention], cam, convention, declared) for cam in cams]
            features = np.concatenate([v["pose2d"] for v in views])
            target = np.concatenate([v["target"] for v in views])
            embeddings = encode(features, "pose2d")
            lifted = convert_joints(decode(embeddings), OURS, convention)
            errors = _errors(lifted, target)
            result[setup] = {
                "views": int(len(target)),
                **{k: float(v.mean()) for k, v in errors.items() if k != "per_joint"},
                "per_joint_mm": dict(zip(H36M17.names, errors["per_joint"].mean(0).round(2).tolist())),
            }
            if setup == "h36m_rig":
                if gallery is None:  # pose3d embeddings of the unihpr17 rig views, as a library indexes them
                    gallery = _gallery(encode, worlds[OURS], worlds, cams)
                result[setup]["retrieval"] = _retrieval(embeddings, target, gallery, convention, test.clip[rows], rng,
                                                 settings)
        out["arms"][arm] = result
    rig = out["arms"]
    out["limb_ratio_h36m17_to_unihpr17"] = {
        setup: rig["h36m17"][setup]["limb_pa_mpjpe"] / rig["unihpr17"][setup]["limb_pa_mpjpe"] for setup in cameras}
    return out


def _gallery(encode: Encoder, world_ours: np.ndarray, worlds: dict[str, np.ndarray], cams: list[Camera]) -> dict:
    """Rig views of the evaluated poses: pose3d embeddings (unihpr17) and 3D in both conventions (views x poses)."""
    out: dict = {"embedding": [], OURS: [], FIELD: []}
    for cam in cams:
        _, crop = crop_rays(pixels_to_rays(pixels_of(world_ours, cam), intrinsics_of(cam))[0])
        for convention, world in worlds.items():
            cam3d = np.einsum("nij,nkj->nki", crop, world_to_camera(world, cam))
            out[convention].append(root_centred(cam3d))
        out["embedding"].append(encode(pose3d_features(out[OURS][-1]), "pose3d"))
    return {k: np.concatenate(v) for k, v in out.items()}


def _retrieval(queries: np.ndarray, target: np.ndarray, gallery: dict, convention: str, clip: np.ndarray,
               rng: np.random.Generator, settings: EvalSettings) -> dict:
    """Top-1 of a seeded subset of the rig-view queries, query clip excluded: MPJPE and limb PA-MPJPE (mm)."""
    n_views = len(gallery["embedding"])
    groups = np.tile(clip, n_views // len(clip))
    q = min(settings.max_queries or len(queries), len(queries))
    pick = np.sort(rng.choice(len(queries), size=q, replace=False))
    _, top = exact_search(queries[pick], gallery["embedding"], 1, "ip", chunk=settings.chunk,
                          query_groups=groups[pick], gallery_groups=groups)
    found = gallery[convention][top[:, 0]]
    errors = _errors(found, target[pick])
    return {"queries": int(q), "gallery": int(n_views), "top1_mpjpe": float(errors["mpjpe"].mean()),
            "top1_limb_pa_mpjpe": float(errors["limb_pa_mpjpe"].mean())}
