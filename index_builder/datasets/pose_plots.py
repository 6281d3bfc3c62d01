"""Pictures of poses, so a person can see that the data is right (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from index_builder.atomic_files import atomic_path  # noqa: E402
from index_builder.datasets.motion_database import MotionDatabase  # noqa: E402
from model.pose.camera_rigs import H36M_LIKE_RIG, random_cameras, ring_cameras  # noqa: E402
from model.pose.cameras import project_world  # noqa: E402
from model.pose.skeleton import H36M17  # noqa: E402

LEFT_COLOUR, RIGHT_COLOUR, CENTRE_COLOUR = "tab:blue", "tab:red", "0.3"


def _bone_colour(child: int) -> str:
    if child in H36M17.left:
        return LEFT_COLOUR
    if child in H36M17.right:
        return RIGHT_COLOUR
    return CENTRE_COLOUR


def draw_3d(ax, pose: np.ndarray) -> None:
    """pose: (17, 3) mm, world Y up; drawn with Y up, left side blue, right side red."""
    x, y, z = pose[:, 0], pose[:, 2], pose[:, 1]  # matplotlib's 3D axes have Z up
    for parent, child in H36M17.bones:
        ax.plot([x[parent], x[child]], [y[parent], y[child]], [z[parent], z[child]], color=_bone_colour(child))
    centre = pose[0]
    half = 1000.0
    ax.set_xlim(centre[0] - half, centre[0] + half)
    ax.set_ylim(centre[2] - half, centre[2] + half)
    ax.set_zlim(centre[1] - half, centre[1] + half)
    ax.set_xlabel("x")
    ax.set_ylabel("z")
    ax.set_zlabel("y (up)")


def draw_2d(ax, keypoints: np.ndarray, size: np.ndarray) -> None:
    """keypoints: (17, 2) pixels; size: (2,) image width and height."""
    for parent, child in H36M17.bones:
        ax.plot(keypoints[[parent, child], 0], keypoints[[parent, child], 1], color=_bone_colour(child))
    ax.set_xlim(0, size[0])
    ax.set_ylim(size[1], 0)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])


def plot_poses_and_views(db: MotionDatabase, out: Path, count: int = 4, seed: int = 0) -> None:
    """Rows: ``count`` random poses; columns: 3D, the four H36M-like rig views, one random camera."""
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(db), size=count, replace=False))
    poses = db.poses[rows].astype(np.float64)
    rig = ring_cameras(poses[:, 0], H36M_LIKE_RIG)
    rnd = random_cameras(poses[:, 0], rng)
    cols = 2 + H36M_LIKE_RIG.num_cameras
    fig = plt.figure(figsize=(3 * cols, 3 * count))
    for r in range(count):
        clip = db.clip[rows[r]]
        ax = fig.add_subplot(count, cols, r * cols + 1, projection="3d")
        draw_3d(ax, poses[r])
        ax.set_title(f"{db.clips.name[clip]}\nframe {db.frame[rows[r]]}", fontsize=7)
        for c in range(H36M_LIKE_RIG.num_cameras):
            ax = fig.add_subplot(count, cols, r * cols + 2 + c)
            draw_2d(ax, project_world(poses[r], rig[r, c]), rig.size[r, c])
            ax.set_title(f"rig camera {c}", fontsize=7)
        ax = fig.add_subplot(count, cols, r * cols + cols)
        draw_2d(ax, project_world(poses[r], rnd[r]), rnd.size[r])
        ax.set_title(f"random camera, f={rnd.focal[r, 0]:.0f}px", fontsize=7)
    fig.suptitle(f"{db.source}: blue = left, red = right. {db.licence[:90]}...", fontsize=7)
    fig.tight_layout()
    with atomic_path(out, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)
