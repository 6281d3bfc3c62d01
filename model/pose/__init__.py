"""Pose geometry in numpy: shapes are in each function's docstring, lengths in mm (``units``)."""

from model.pose.cameras import Camera, look_at, project_to_pixels, world_to_camera
from model.pose.features import (
    MODALITIES,
    cropped_image_features,
    cropped_pose2d_features,
    image_features,
    pose2d_features,
    pose3d_features,
)
from model.pose.joint_conventions import FIELD, OURS, convert_joints
from model.pose.joint_formulas import landmarks_to_h36m17, layout_to_unihpr17
from model.pose.joint_layouts import LANDMARKS, LAYOUTS, KeypointLayout
from model.pose.metrics import mpjpe, n_mpjpe, np_mpjpe, pa_mpjpe, pck_2d, procrustes_align
from model.pose.normalization import denormalize_2d, normalize_2d
from model.pose.perspective_crop import Intrinsics, default_intrinsics, perspective_crop, to_real_camera
from model.pose.skeleton import H36M17, NUM_JOINTS, ROOT, Skeleton, root_centred
from model.pose.units import MM_PER_CM, MM_PER_INCH, MM_PER_M

__all__ = [
    "FIELD", "H36M17", "LANDMARKS", "LAYOUTS", "MM_PER_CM", "MM_PER_INCH", "MM_PER_M", "MODALITIES", "NUM_JOINTS",
    "OURS", "ROOT", "Camera", "Intrinsics", "KeypointLayout", "Skeleton", "convert_joints", "cropped_image_features",
    "cropped_pose2d_features", "default_intrinsics", "denormalize_2d", "image_features", "landmarks_to_h36m17",
    "layout_to_unihpr17", "look_at", "mpjpe", "n_mpjpe", "normalize_2d", "np_mpjpe", "pa_mpjpe", "pck_2d",
    "perspective_crop", "pose2d_features", "pose3d_features", "procrustes_align", "project_to_pixels",
    "root_centred", "to_real_camera", "world_to_camera",
]
