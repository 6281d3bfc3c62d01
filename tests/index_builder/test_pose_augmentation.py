"""The PoseAug-style parts on real poses of the shipped sample: what each keeps exactly and what it changes."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from index_builder.ingest.rotations import expmap_to_matrix
from index_builder.training.batches import TrainingViews, augment_poses, mirror
from index_builder.training.config import AugmentConfig
from index_builder.training.detector_noise import DetectorNoise
from index_builder.training.pose_augmentation import (
    ABLATION_ARMS,
    FLEXION_LIMIT_DEG,
    HINGES,
    UPPER_BODY,
    mix_upper_bodies,
    perturb_joint_angles,
    scale_bones,
    tilt_bodies,
)
from model.pose.joint_conventions import SPINE_FRACTION
from model.pose.skeleton import H36M17

J = H36M17.index
HEAD_CHAIN = [J("thorax"), J("neck_nose"), J("head_top"), 18, 19, 20]  # ours, then the field's thorax, nose, top


@pytest.fixture(scope="module")
def poses(sample_db) -> np.ndarray:
    """(300, 21, 3) float64 mm: sample poses with the field's derived joints after them."""
    rows = np.random.default_rng(0).choice(len(sample_db), 300, replace=False)
    return np.concatenate([sample_db.poses[rows], sample_db.field_joints[rows]], axis=1).astype(np.float64)


def bone_lengths(poses: np.ndarray) -> np.ndarray:
    """(N, J, 3) -> (N, 16) mm, in ``H36M17.bones`` order."""
    return np.stack([np.linalg.norm(poses[:, c] - poses[:, p], axis=-1) for p, c in H36M17.bones], axis=1)


def flexion_deg(poses: np.ndarray) -> np.ndarray:
    """(N, J, 3) -> (N, 4) the angle of each hinge's distal segment from the line of its proximal one."""
    out = []
    for proximal, hinge, distal, *_ in HINGES:
        upper, lower = poses[:, hinge] - poses[:, proximal], poses[:, distal] - poses[:, hinge]
        out.append(np.arctan2(np.linalg.norm(np.cross(upper, lower), axis=-1), (upper * lower).sum(-1)))
    return np.degrees(np.stack(out, axis=1))


def distances(poses: np.ndarray, joints: list[int]) -> np.ndarray:
    points = poses[:, joints]
    return np.linalg.norm(points[:, :, None] - points[:, None], axis=-1)


def todays_augment(world: np.ndarray, rng: np.random.Generator, bone_scale: float, global_scale: float) -> np.ndarray:
    """``augment_poses`` as it was before the PoseAug parts: bone lengths, then mirroring half the poses."""
    n = len(world)
    factor = rng.uniform(1 - bone_scale, 1 + bone_scale, (n, H36M17.num_joints))
    factor[:, list(H36M17.right)] = factor[:, list(H36M17.left)]
    factor *= rng.uniform(1 - global_scale, 1 + global_scale, (n, 1))
    out = world.copy()
    for parent, child in H36M17.bones:
        out[:, child] = out[:, parent] + (world[:, child] - world[:, parent]) * factor[:, child, None]
    thorax = J("thorax")
    out[:, 17:] = out[:, thorax, None] + (world[:, 17:] - world[:, thorax, None]) * factor[:, thorax, None, None]
    out[:, 17] = out[:, 0] + SPINE_FRACTION * (out[:, 18] - out[:, 0])
    flip = rng.random(n) < 0.5
    out[flip] = mirror(out[flip])
    return out


def test_the_default_config_augments_as_before(poses):
    config = AugmentConfig()
    new = augment_poses(poses, np.random.default_rng(5), config)
    old = todays_augment(poses, np.random.default_rng(5), config.bone_scale, config.global_scale)
    np.testing.assert_array_equal(new, old)


def test_widths_scale_within_their_range_left_and_right_alike(poses):
    scaled = scale_bones(poses, np.random.default_rng(1), 0.0, 0.0, (0.85, 1.35))
    ratio = bone_lengths(scaled) / bone_lengths(poses)
    bone = {child: k for k, (_, child) in enumerate(H36M17.bones)}
    hips, shoulders = ratio[:, bone[J("l_hip")]], ratio[:, bone[J("l_shoulder")]]
    np.testing.assert_allclose(ratio[:, bone[J("r_hip")]], hips, rtol=1e-9)
    np.testing.assert_allclose(ratio[:, bone[J("r_shoulder")]], shoulders, rtol=1e-9)
    for width in (hips, shoulders):
        assert width.min() >= 0.85 - 1e-9 and width.max() <= 1.35 + 1e-9
        assert width.min() < 0.9 and width.max() > 1.3  # the range is used, not just allowed
    assert np.abs(hips - shoulders).max() > 0.2  # drawn apart: broad shoulders on narrow hips and the reverse
    others = [bone[c] for c in range(1, 17) if c not in (J("l_hip"), J("r_hip"), J("l_shoulder"), J("r_shoulder"))]
    np.testing.assert_allclose(ratio[:, others], 1.0, rtol=1e-9)
    # the field's joints ride with the thorax, which a wider shoulder line does not move
    np.testing.assert_allclose(scaled[:, 18:] - scaled[:, 0, None], poses[:, 18:] - poses[:, 0, None], atol=1e-9)


@pytest.mark.parametrize("part", ["angles", "mixing", "tilt"])
def test_bone_lengths_are_kept(poses, part):
    rng = np.random.default_rng(2)
    expected = bone_lengths(poses)
    if part == "angles":
        out = perturb_joint_angles(poses, rng, 30.0)
    elif part == "tilt":
        out = tilt_bodies(poses, rng, 1.0, 90.0)
    else:  # each bone keeps the length it had in the pose it came from
        out = mix_upper_bodies(poses, rng, 1.0)
        upper = np.isin([child for _, child in H36M17.bones], UPPER_BODY)
        expected = np.where(upper, expected[donors(out, poses)], expected)
    assert np.abs(out - poses).max() > 10.0
    np.testing.assert_allclose(bone_lengths(out), expected, atol=1e-6)


def test_elbows_and_knees_bend_only_within_their_range(poses):
    out = perturb_joint_angles(poses, np.random.default_rng(3), 20.0)
    before, after = flexion_deg(poses), flexion_deg(out)
    assert after.max() <= FLEXION_LIMIT_DEG + 1e-6
    assert (np.abs(after - before) > 1.0).any(axis=1).mean() > 0.5
    # no hyperextension: a bent knee still folds backwards, about the body's left axis (hips -> left hip)
    left = out[:, J("l_hip")] - out[:, J("r_hip")]
    for k, (proximal, hinge, distal, *_) in enumerate(HINGES[2:], start=2):
        normal = np.cross(out[:, hinge] - out[:, proximal], out[:, distal] - out[:, hinge])
        bent = after[:, k] > 20.0
        assert bent.sum() > 30 and ((normal[bent] * left[bent]).sum(-1) > 0).mean() > 0.97
    # pushed hard, every flexion still lies in [0, limit] and many reach the limits
    hard = flexion_deg(perturb_joint_angles(poses, np.random.default_rng(4), 170.0))
    assert hard.max() <= FLEXION_LIMIT_DEG + 1e-6 and (hard > FLEXION_LIMIT_DEG - 1e-6).mean() > 0.05


def donors(mixed: np.ndarray, poses: np.ndarray) -> np.ndarray:
    """(N,) the pose whose upper body each row now carries (itself where unmixed), found by the upper joints'
    heights above the pelvis, which a turn about the vertical keeps."""
    heights = lambda p: p[:, UPPER_BODY, 1] - p[:, :1, 1]  # noqa: E731
    gap = np.abs(heights(mixed)[:, None] - heights(poses)[None]).max(-1)
    assert np.allclose(gap.min(1), 0.0, atol=1e-6)
    return gap.argmin(1)


def test_mixing_keeps_the_legs_and_turns_the_donors_upper_body_about_the_vertical(poses):
    out = mix_upper_bodies(poses, np.random.default_rng(6), 0.5)
    mixed = np.any(out != poses, axis=(1, 2))
    assert 0.35 < mixed.mean() < 0.65
    legs = [0, 1, 2, 3, 4, 5, 6]
    np.testing.assert_array_equal(out[:, legs], poses[:, legs])
    donor = donors(out, poses)
    assert (donor[mixed] != np.flatnonzero(mixed)).all() and (donor[~mixed] == np.flatnonzero(~mixed)).all()
    upper = list(UPPER_BODY) + [17, 18, 19, 20]
    got, had = out[mixed][:, upper] - out[mixed][:, :1], poses[donor[mixed]][:, upper] - poses[donor[mixed]][:, :1]
    np.testing.assert_allclose(got[..., 1], had[..., 1], atol=1e-9)  # heights kept
    # horizontally, one turn per pose: (z + ix) multiplied by a unit complex number
    flat = lambda v: v[..., 2] + 1j * v[..., 0]  # noqa: E731
    turn = (flat(got) * flat(had).conj()).sum(-1) / (np.abs(flat(had)) ** 2).sum(-1)
    np.testing.assert_allclose(np.abs(turn), 1.0, atol=1e-9)
    np.testing.assert_allclose(flat(got), turn[:, None] * flat(had), atol=1e-6)
    # the turn puts the donor's hip line on the receiver's
    hips = lambda p: flat(p[:, J("l_hip")] - p[:, J("r_hip")])  # noqa: E731
    np.testing.assert_allclose(np.angle(turn * hips(poses[donor[mixed]]) / hips(poses[mixed])), 0.0, atol=1e-9)


def upright(poses: np.ndarray) -> np.ndarray:
    """(1, 21, 3): the sample pose whose trunk is closest to vertical."""
    trunk = poses[:, J("thorax")] - poses[:, 0]
    return poses[[np.argmax(trunk[:, 1] / np.linalg.norm(trunk, axis=-1))]]


def with_upper_body_turned(pose: np.ndarray, axis: np.ndarray, deg: float) -> np.ndarray:
    """(1, 21, 3) with its upper body (spine, above it, the field's joints) turned about ``axis`` at the pelvis."""
    upper = list(UPPER_BODY) + [17, 18, 19, 20]
    out = pose.copy()
    rotation = expmap_to_matrix(np.radians(deg) * axis / np.linalg.norm(axis))
    out[:, upper] = pose[:, :1] + (pose[:, upper] - pose[:, :1]) @ rotation.T
    return out


def test_implausible_donors_are_refused(poses):
    standing = upright(poses)
    left = standing[0, J("l_hip")] - standing[0, J("r_hip")]
    vertical = np.array([0.0, 1.0, 0.0])
    twisted = with_upper_body_turned(standing, vertical, 90.0)  # shoulders square to the hips
    head_down = with_upper_body_turned(standing, left, 180.0)  # trunk hanging straight down
    for donor in (twisted, head_down):
        batch = np.concatenate([standing, donor])
        out = mix_upper_bodies(batch, np.random.default_rng(0), 1.0)
        np.testing.assert_array_equal(out[0], standing[0])  # refused
        np.testing.assert_allclose(out[1], standing[0], atol=1e-6)  # the plausible way round is taken
    turned = with_upper_body_turned(standing, vertical, 40.0)  # within a spine's twist: taken
    out = mix_upper_bodies(np.concatenate([standing, turned]), np.random.default_rng(0), 1.0)
    np.testing.assert_allclose(out[0], turned[0], atol=1e-6)


def test_tilt_turns_about_a_horizontal_axis_through_the_pelvis(poses):
    out = tilt_bodies(poses, np.random.default_rng(7), 0.5, 90.0)
    np.testing.assert_array_equal(out[:, 0], poses[:, 0])
    tilted = np.any(out != poses, axis=(1, 2))
    assert 0.35 < tilted.mean() < 0.65
    before, after = poses[tilted] - poses[tilted, :1], out[tilted] - out[tilted, :1]
    u, _, vt = np.linalg.svd(np.einsum("nki,nkj->nij", after, before))
    rotation = u @ vt  # Kabsch: after = before @ rotation.T
    np.testing.assert_allclose(np.linalg.det(rotation), 1.0, atol=1e-9)
    np.testing.assert_allclose(after, before @ np.swapaxes(rotation, 1, 2), atol=1e-6)
    axis = np.stack([rotation[:, 2, 1] - rotation[:, 1, 2], rotation[:, 0, 2] - rotation[:, 2, 0],
                     rotation[:, 1, 0] - rotation[:, 0, 1]], axis=-1)  # 2 sin(angle) times the axis
    np.testing.assert_allclose(axis[:, 1], 0.0, atol=1e-9)
    angle = np.degrees(np.arccos(np.clip((np.trace(rotation, axis1=1, axis2=2) - 1) / 2, -1, 1)))
    assert angle.max() <= 90.0 + 1e-6 and angle.max() > 75.0


def test_the_field_joints_stay_rigid_with_the_thorax_and_head(poses):
    for out in (perturb_joint_angles(poses, np.random.default_rng(8), 30.0),
                tilt_bodies(poses, np.random.default_rng(8), 1.0, 90.0),
                scale_bones(poses, np.random.default_rng(8), 0.1, 0.0, (0.85, 1.35))):
        # the sample stores the field's spine in float32, on the line to 1e-3 mm
        np.testing.assert_allclose(out[:, 17], out[:, 0] + SPINE_FRACTION * (out[:, 18] - out[:, 0]), atol=1e-3)
    turned = perturb_joint_angles(poses, np.random.default_rng(8), 30.0)
    np.testing.assert_allclose(distances(turned, HEAD_CHAIN), distances(poses, HEAD_CHAIN), atol=1e-6)
    assert np.abs(turned[:, 19] - poses[:, 19]).max() > 20.0  # the head did turn, the field's nose with it
    mixed = mix_upper_bodies(poses, np.random.default_rng(8), 1.0)
    np.testing.assert_allclose(distances(mixed, HEAD_CHAIN), distances(poses[donors(mixed, poses)], HEAD_CHAIN),
                               atol=1e-6)


def test_the_ablation_arms_are_augment_overrides_and_all_of_them_trains(poses):
    parts = ("proportions", "angles", "mixing", "tilt")
    assert set(ABLATION_ARMS) == {*parts, "all", "proportions_half", "all_half"}
    everything = {k: v for arm in parts for k, v in ABLATION_ARMS[arm].items()}
    assert ABLATION_ARMS["all"] == everything
    assert ABLATION_ARMS["all_half"] == {**everything, "bone_scale": AugmentConfig().bone_scale, "body_fraction": 0.5}
    for values in ABLATION_ARMS.values():
        assert replace(AugmentConfig(), **values) != AugmentConfig()
    config = replace(AugmentConfig(), **ABLATION_ARMS["all_half"])
    views = TrainingViews(poses[:, :17], 0, config, DetectorNoise.load(), poses[:, 17:]).batch(64)
    for name in ("pose3d", "clean2d", "pose2d", "image", "pose3d_features", "crop", "rays"):
        value = getattr(views, name)
        assert len(value) == 64 and np.isfinite(value).all(), name
    assert views.pose3d.shape == (64, 17, 3)
