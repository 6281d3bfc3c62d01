"""The published Human3.6M camera parameters, as typed data, and the world -> camera transform they define.

Source: facebookresearch/VideoPose3D, ``common/h36m_dataset.py`` (``h36m_cameras_intrinsic_params`` and
``h36m_cameras_extrinsic_params``), copied digit for digit into ``index_builder/data/h36m_cameras.json``.
VideoPose3D has no extrinsics for S2, S3 and S4 (their entries are empty there), so they are absent here too.

Conventions, as VideoPose3D uses them:
- ``orientation`` is a unit quaternion (w, x, y, z), real part first, that rotates camera-frame vectors into the
  H36M world frame; ``translation`` is the camera centre in the world, mm. VideoPose3D's ``world_to_camera``
  computes ``qrot(qinverse(q), X - t)``, i.e. ``X_cam = R(q)^T (X - t)`` with ``R(q)`` the usual rotation matrix
  of q. ``H36mCamera.rotation`` is that ``R(q)^T``.
- the camera frame has OpenCV axes: x right, y down, z forward (depth); pixels are
  ``u = fx * x / z + cx``, ``v = fy * y / z + cy`` before lens distortion.
- the H36M world frame is Z up; ``h36m_camera(..., world="yup")`` re-expresses the extrinsics in our Y-up world
  frame (``index_builder.datasets.h36m.ZUP_TO_YUP``), so that poses from ``load_h36m_3d`` go through them unchanged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from index_builder.config import PACKAGE_DATA
from index_builder.datasets.h36m import NUM_CAMERAS, ZUP_TO_YUP
from index_builder.ingest.rotations import quaternion_to_matrix
from model.pose.cameras import Camera, world_to_camera

PUBLISHED_CAMERAS = PACKAGE_DATA / "h36m_cameras.json"


@dataclass(frozen=True)
class H36mIntrinsics:
    """One physical camera, the same for every subject.

    id: the camera's serial number; center: (cx, cy) principal point, px; focal_length: (fx, fy), px;
    radial_distortion: (k1, k2, k3); tangential_distortion: (p1, p2); res_w, res_h: image size, px;
    azimuth: degrees, only used by VideoPose3D for visualisation.
    """

    id: str
    center: tuple[float, float]
    focal_length: tuple[float, float]
    radial_distortion: tuple[float, float, float]
    tangential_distortion: tuple[float, float]
    res_w: int
    res_h: int
    azimuth: float


@dataclass(frozen=True)
class H36mExtrinsics:
    """One camera's pose for one subject's sessions.

    orientation: (w, x, y, z) unit quaternion, camera -> H36M world rotation.
    translation: (3,) camera centre in the H36M world frame (Z up), mm.
    """

    orientation: tuple[float, float, float, float]
    translation: tuple[float, float, float]




def _published_tables() -> tuple[tuple[H36mIntrinsics, ...], dict[str, tuple[H36mExtrinsics, ...]]]:
    data = json.loads(PUBLISHED_CAMERAS.read_text())
    intrinsics = tuple(H36mIntrinsics(**{k: tuple(v) if isinstance(v, list) else v for k, v in camera.items()})
                       for camera in data["intrinsics"])
    extrinsics = {subject: tuple(H36mExtrinsics(tuple(c["orientation"]), tuple(c["translation"])) for c in cameras)
                  for subject, cameras in data["extrinsics"].items()}
    return intrinsics, extrinsics


INTRINSICS, EXTRINSICS = _published_tables()

assert len(INTRINSICS) == NUM_CAMERAS and all(len(c) == NUM_CAMERAS for c in EXTRINSICS.values())

WORLD_FRAMES = ("h36m", "yup")


@dataclass(frozen=True)
class H36mCamera:
    """One camera of one subject's sessions, ready to use.

    rotation: (3, 3) float64, world -> camera; translation: (3,) float64, camera centre in the world, mm:
        ``X_cam = rotation @ (X_world - translation)``.
    focal: (2,) float64 (fx, fy), px; center: (2,) float64 (cx, cy), px; image_size: (res_w, res_h), px.
    radial_distortion: (3,) and tangential_distortion: (2,) as published (not applied by ``world_to_camera``).
    world: the world frame the extrinsics are in: 'h36m' (Z up) or 'yup' (ours, ``ZUP_TO_YUP``).
    """

    subject: str
    index: int
    id: str
    world: str
    rotation: np.ndarray
    translation: np.ndarray
    focal: np.ndarray
    center: np.ndarray
    image_size: tuple[int, int]
    radial_distortion: np.ndarray
    tangential_distortion: np.ndarray

    def as_camera(self) -> Camera:
        """The pinhole ``model.pose.cameras.Camera`` of this camera (no lens distortion); use world='yup' for a camera
        in the Y-up world frame that ``model.pose.cameras`` assumes."""
        return Camera(rotation=self.rotation, position=self.translation, focal=self.focal, center=self.center,
                      size=np.array(self.image_size, dtype=np.float64))

    def world_to_camera(self, points: np.ndarray) -> np.ndarray:
        """points: (..., 3) mm in ``self.world``; returns (..., 3) float64 mm, camera frame (x right, y down,
        z forward), through ``model.pose.cameras.world_to_camera``."""
        points = np.asarray(points, dtype=np.float64)
        assert points.shape[-1] == 3, points.shape
        return world_to_camera(points.reshape(-1, 3), self.as_camera()).reshape(points.shape)


def h36m_camera(subject: str, index: int, world: str = "h36m") -> H36mCamera:
    """The published camera ``index`` (0-3, the order of ``INTRINSICS``) for ``subject`` ('S1', ..., 'S11').

    world: 'h36m' for extrinsics in the H36M world frame (Z up), 'yup' for our Y-up world, in which
        ``index_builder.datasets.h36m.load_h36m_3d`` returns poses.
    raises: KeyError for a subject without published extrinsics, IndexError for a camera index outside 0-3,
        ValueError for an unknown world frame.
    """
    if subject not in EXTRINSICS:
        raise KeyError(f"no camera extrinsics for subject {subject!r}; known: {', '.join(EXTRINSICS)}")
    if not 0 <= index < NUM_CAMERAS:
        raise IndexError(f"camera index {index} outside 0..{NUM_CAMERAS - 1}")
    if world not in WORLD_FRAMES:
        raise ValueError(f"unknown world frame {world!r}; known: {', '.join(WORLD_FRAMES)}")
    intrinsics, extrinsics = INTRINSICS[index], EXTRINSICS[subject][index]
    rotation = quaternion_to_matrix(np.array(extrinsics.orientation)).T  # world -> camera: R(q)^T = R(q^-1)
    translation = np.array(extrinsics.translation, dtype=np.float64)
    if world == "yup":
        # X_yup = A X_h36m, so X_cam = R (A^T X_yup - t) = (R A^T)(X_yup - A t).
        rotation, translation = rotation @ ZUP_TO_YUP.T, ZUP_TO_YUP @ translation
    return H36mCamera(
        subject=subject,
        index=index,
        id=intrinsics.id,
        world=world,
        rotation=rotation,
        translation=translation,
        focal=np.array(intrinsics.focal_length, dtype=np.float64),
        center=np.array(intrinsics.center, dtype=np.float64),
        image_size=(intrinsics.res_w, intrinsics.res_h),
        radial_distortion=np.array(intrinsics.radial_distortion, dtype=np.float64),
        tangential_distortion=np.array(intrinsics.tangential_distortion, dtype=np.float64),
    )
