"""PoseAug-style changes of world poses for training (Gong et al., CVPR 2021), each part switchable for an ablation.

The mocap is a few actors, mostly walking upright. These parts widen what the encoders see while keeping every
pose one a person can take:

- proportions: every bone scaled (left and right alike), hip and shoulder widths on a range of their own;
- joint angles: each limb segment turned about its proximal joint, elbows and knees only about their hinge and
  within their range of flexion;
- part mixing: a pose takes the upper body of another pose of its batch where the two fit together;
- tilt: the whole body turned about a horizontal axis through the pelvis (bending over, lying, upside down).

Poses are (N, 17, 3) mm world coordinates, Y up, ``unihpr17`` order (``model.pose.skeleton.H36M17``), or (N, 21, 3)
with the field convention's four derived joints after them (``NUM_EXTENDED``, ``DERIVED`` order): the field's
thorax, neck/nose and head top move rigidly with our thorax and head, and its spine stays at ``SPINE_FRACTION``
of pelvis -> field thorax. Every function is vectorised over N, draws from the generator it is given, and returns
a new array.
"""

from __future__ import annotations

import numpy as np

from index_builder.ingest.rotations import expmap_to_matrix
from model.pose.joint_conventions import DERIVED_INDEX, SPINE_FRACTION
from model.pose.skeleton import H36M17, ROOT

NUM_EXTENDED = H36M17.num_joints + len(DERIVED_INDEX)  # unihpr17 joints, then the field's four derived joints
FIELD_SPINE, FIELD_THORAX = H36M17.num_joints, H36M17.num_joints + 1
FIELD_HEAD = tuple(range(H36M17.num_joints + 1, NUM_EXTENDED))  # the field's thorax (neck base), neck/nose, head top
_J = H36M17.index
THORAX = _J("thorax")
L_HIP, R_HIP, L_SHOULDER, R_SHOULDER = _J("l_hip"), _J("r_hip"), _J("l_shoulder"), _J("r_shoulder")
LEGS = tuple(_J(name) for name in ("r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle"))
UPPER_BODY = tuple(j for j in range(H36M17.num_joints) if j != ROOT and j not in LEGS)  # spine and all above it
UP = np.array([0.0, 1.0, 0.0])

# Elbows and knees: (proximal, hinge, distal joint, then the signs of the body's left and up axes that give the
# flexion axis of a straight limb). A forearm flexes forwards, about minus the left axis; a shin backwards, about
# plus it; held out sideways, the forearm flexes forwards about up (left arm: minus), the shin backwards about up
# (left leg: plus). Flexing turns the distal segment about this axis by a positive angle.
HINGES = (
    (L_SHOULDER, _J("l_elbow"), _J("l_wrist"), -1.0, -1.0),
    (R_SHOULDER, _J("r_elbow"), _J("r_wrist"), -1.0, 1.0),
    (L_HIP, _J("l_knee"), _J("l_ankle"), 1.0, 1.0),
    (R_HIP, _J("r_knee"), _J("r_ankle"), 1.0, -1.0),
)
# Ball joints: (centre, the joints its segment carries); the head chain carries the field's head joints too.
BALLS = (
    (L_SHOULDER, (_J("l_elbow"), _J("l_wrist"))),
    (R_SHOULDER, (_J("r_elbow"), _J("r_wrist"))),
    (L_HIP, (_J("l_knee"), _J("l_ankle"))),
    (R_HIP, (_J("r_knee"), _J("r_ankle"))),
    (THORAX, (_J("neck_nose"), _J("head_top"))),
)
FLEXION_LIMIT_DEG = 160.0  # elbows and knees flex to about 150-160 degrees (the sample's largest: 159)
STRAIGHT_DEG = 10.0  # a limb bent less than this has no reliable plane of its own: its hinge comes from the body
SIDEWAYS_SIN = 0.5  # a limb within 30 degrees of the left axis flexes about the up axis instead
MAX_TWIST_DEG = 60.0  # a spine turns the shoulders about 45-60 degrees over the hips
TRUNK_MARGIN_DEG = 30.0  # how much further below horizontal a donor's trunk may point than the receiver's
LEVEL_COS = 0.5  # a hip or shoulder line steeper than 60 degrees has no usable yaw

# The ablation's arms: the AugmentConfig overrides each one switches on ("all": every one of them).
_PARTS: dict[str, dict[str, object]] = {
    # Bandai's actors' hips and shoulders sit 65 and 100 mm from the pelvis and thorax; Human3.6M's published mean
    # skeleton has 133 and 151 mm, and its limbs are 10-15% longer: widths up to about 2x, every bone +-15%.
    "proportions": {"width_scale": (0.9, 2.1), "bone_scale": 0.15},
    "angles": {"joint_angle_deg": 20.0},
    "mixing": {"part_mix_fraction": 0.3},
    "tilt": {"tilt_fraction": 0.2, "tilt_deg": 90.0},
}
_ALL = {key: value for arm in _PARTS.values() for key, value in arm.items()}
# The wide bodies cost the actors' own poses accuracy (the prior over proportions widens), so two arms give them to
# half the poses only, with the recipe's bone scale.
ABLATION_ARMS: dict[str, dict[str, object]] = {
    **_PARTS, "all": _ALL,
    "proportions_half": {"width_scale": (0.9, 2.1), "body_fraction": 0.5},
    "all_half": {**_ALL, "bone_scale": 0.08, "body_fraction": 0.5}}


def scale_bones(poses: np.ndarray, rng: np.random.Generator, bone_scale: float, global_scale: float,
                width_scale: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """Rebuild each pose along the kinematic tree with random bone lengths, mirrored bones scaled alike.

    Each bone is scaled by U(1 - bone_scale, 1 + bone_scale), the whole skeleton by U(1 - global_scale,
    1 + global_scale), and the hip bones (pelvis -> hips) and shoulder bones (thorax -> shoulders) each by a further
    U(*width_scale): one draw for the hips and one for the shoulders, so bodies get wider or narrower than the
    actors'. With the default width_scale nothing more is drawn, so the generator's stream is as before.
    poses: (N, 17, 3) mm, or (N, 21, 3) with the field's four derived joints after them (``NUM_EXTENDED``), which
        move rigidly with the thorax, scaled as its bone. returns: the same shape, pelvis unchanged.
    """
    n = poses.shape[0]
    factor = rng.uniform(1 - bone_scale, 1 + bone_scale, (n, H36M17.num_joints))
    factor[:, list(H36M17.right)] = factor[:, list(H36M17.left)]
    factor *= rng.uniform(1 - global_scale, 1 + global_scale, (n, 1))
    if tuple(width_scale) != (1.0, 1.0):
        width = rng.uniform(*width_scale, (n, 2))
        factor[:, [L_HIP, R_HIP]] *= width[:, :1]
        factor[:, [L_SHOULDER, R_SHOULDER]] *= width[:, 1:]
    out = poses.copy()
    for parent, child in H36M17.bones:  # parents come first, so out[:, parent] is already rebuilt
        out[:, child] = out[:, parent] + (poses[:, child] - poses[:, parent]) * factor[:, child, None]
    if poses.shape[1] == NUM_EXTENDED:
        extra = slice(H36M17.num_joints, None)
        offset = poses[:, extra] - poses[:, THORAX, None]
        out[:, extra] = out[:, THORAX, None] + offset * factor[:, THORAX, None, None]
        out[:, FIELD_SPINE] = _field_spine(out)
    return out


def perturb_joint_angles(poses: np.ndarray, rng: np.random.Generator, max_deg: float) -> np.ndarray:
    """Turn each limb segment about its proximal joint by up to ``max_deg``, carrying the joints below it.

    Elbows and knees bend only about their hinge axis, the normal of the plane of their three joints (for a limb
    bent less than ``STRAIGHT_DEG``, the body's axis of ``HINGES``), by U(-max_deg, max_deg), with the flexion
    kept between straight and ``FLEXION_LIMIT_DEG`` (a limb past that is brought back to it). Then the upper arms
    (about the shoulders), thighs (hips) and the head and neck (thorax) turn about a uniformly random axis by
    U(0, max_deg), the field's head joints with our head.
    poses: (N, J, 3) mm, J = 17 or 21. returns: (N, J, 3) float64 mm, every bone length kept.
    """
    out = poses.astype(np.float64)
    n = len(out)
    most = np.radians(max_deg)
    left = _unit(out[:, L_HIP] - out[:, R_HIP])
    up = _unit(out[:, THORAX] - out[:, ROOT])
    for proximal, hinge, distal, left_sign, up_sign in HINGES:
        upper, lower = out[:, hinge] - out[:, proximal], out[:, distal] - out[:, hinge]
        normal, along = np.cross(upper, lower), _dot(upper, lower)
        bent = np.arctan2(np.linalg.norm(normal, axis=-1), along) >= np.radians(STRAIGHT_DEG)
        axis = np.where(bent[:, None], _unit(normal), _straight_hinge(upper, left_sign * left, up_sign * up))
        flexion = np.arctan2(_dot(normal, axis), along)  # signed about the axis: negative is hyperextended
        target = np.clip(flexion + rng.uniform(-most, most, n), 0.0, np.radians(FLEXION_LIMIT_DEG))
        _turn(out, [distal], out[:, hinge], expmap_to_matrix(axis * (target - flexion)[:, None]))
    for centre, carried in BALLS:
        if centre == THORAX and out.shape[1] == NUM_EXTENDED:
            carried = carried + FIELD_HEAD
        axis = _unit(rng.normal(size=(n, 3)))
        _turn(out, list(carried), out[:, centre], expmap_to_matrix(axis * rng.uniform(0.0, most, (n, 1))))
    if out.shape[1] == NUM_EXTENDED:
        out[:, FIELD_SPINE] = _field_spine(out)
    return out


def mix_upper_bodies(poses: np.ndarray, rng: np.random.Generator, fraction: float) -> np.ndarray:
    """Give a share of the poses the upper body of another pose of the batch, where the two fit together.

    Each pose is offered, with probability ``fraction``, the upper body (``UPPER_BODY``: spine and everything
    above it, and the field's derived joints) of a random other pose, the donor: taken relative to the donor's
    pelvis, turned about the vertical so the donor's hip line has the receiver's yaw, and put on the receiver's
    pelvis. The receiver's pelvis and legs stay exactly as they were, as does every bone's length (each from the
    pose it came from).

    An offer is taken only where the result is a pose people take; otherwise the pose stays as it was:
    - both hip lines and the donor's shoulder line lie within 60 degrees of horizontal, since a steeper line has
      no yaw to match (a body lying on its side);
    - the turned donor's shoulder line is within ``MAX_TWIST_DEG`` in yaw of the receiver's hip line, about as far
      as a spine turns the shoulders over the hips (after the turn this is the donor's own twist);
    - the donor's trunk (pelvis -> thorax) points below horizontal by at most ``TRUNK_MARGIN_DEG`` more than the
      receiver's does (counting an upward trunk as 0): the receiver's legs carry how far its own trunk leaned,
      and an upper body hanging head-down over legs that stand upright (a donor bent double or upside down) is
      not a pose anyone holds.
    poses: (N, J, 3) mm, J = 17 or 21, N >= 2. returns: (N, J, 3) float64 mm.
    """
    out = poses.astype(np.float64)
    n = len(out)
    assert n >= 2, "mixing needs another pose in the batch"
    offered = rng.random(n) < fraction
    donor = (np.arange(n) + rng.integers(1, n, n)) % n  # never the pose itself
    upper = list(UPPER_BODY) + list(range(H36M17.num_joints, out.shape[1]))
    hips = out[:, L_HIP] - out[:, R_HIP]
    turn = expmap_to_matrix((_yaw(hips) - _yaw(hips[donor]))[:, None] * UP)
    relative = out[donor][:, upper] - out[donor][:, ROOT, None]
    placed = out[:, ROOT, None] + np.einsum("nij,nkj->nki", turn, relative)
    shoulders = np.einsum("nij,nj->ni", turn, out[donor, L_SHOULDER] - out[donor, R_SHOULDER])
    level = (_level(hips) >= LEVEL_COS) & (_level(hips[donor]) >= LEVEL_COS) & (_level(shoulders) >= LEVEL_COS)
    twist = np.angle(np.exp(1j * (_yaw(shoulders) - _yaw(hips))))  # wrapped to (-pi, pi]
    trunk = _elevation(out[:, THORAX] - out[:, ROOT])
    below = np.maximum(-_elevation(out[donor, THORAX] - out[donor, ROOT]), 0.0)
    fits = level & (np.abs(twist) <= np.radians(MAX_TWIST_DEG))
    fits &= below <= np.maximum(-trunk, 0.0) + np.radians(TRUNK_MARGIN_DEG)
    take = offered & fits
    out[np.ix_(take, upper)] = placed[take]
    return out


def tilt_bodies(poses: np.ndarray, rng: np.random.Generator, fraction: float, max_deg: float) -> np.ndarray:
    """Turn a share ``fraction`` of the bodies about a random horizontal axis through the pelvis by U(0, max_deg).

    The data is mostly upright; cameras already vary the yaw and the position, so this adds bending, lying and
    (past 90 degrees) upside-down bodies. poses: (N, J, 3) mm, J = 17 or 21. returns: (N, J, 3) float64 mm,
    each body rigidly turned, the pelvis where it was.
    """
    out = poses.astype(np.float64)
    n = len(out)
    tilted = rng.random(n) < fraction
    heading = rng.uniform(0.0, 2 * np.pi, n)
    axis = np.stack([np.cos(heading), np.zeros(n), np.sin(heading)], axis=-1)
    angle = np.where(tilted, rng.uniform(0.0, np.radians(max_deg), n), 0.0)
    _turn(out, list(range(out.shape[1])), out[:, ROOT], expmap_to_matrix(axis * angle[:, None]))
    return out


def _straight_hinge(limb: np.ndarray, left: np.ndarray, up: np.ndarray) -> np.ndarray:
    """Hinge axes of straight limbs: the signed left axis made perpendicular to the limb, or the signed up axis
    where the limb points within 30 degrees of sideways. (N, 3) each -> (N, 3) unit, perpendicular to the limb."""
    direction = _unit(limb)
    side = left - _dot(left, direction)[:, None] * direction
    vertical = up - _dot(up, direction)[:, None] * direction
    return np.where(np.linalg.norm(side, axis=-1, keepdims=True) > SIDEWAYS_SIN, _unit(side), _unit(vertical))


def _turn(poses: np.ndarray, joints: list[int], centre: np.ndarray, rotation: np.ndarray) -> None:
    """Turn poses[:, joints] in place by rotation (N, 3, 3) about centre (N, 3)."""
    relative = poses[:, joints] - centre[:, None]
    poses[:, joints] = centre[:, None] + np.einsum("nij,nkj->nki", rotation, relative)


def _field_spine(poses: np.ndarray) -> np.ndarray:
    """(N, 21, 3) -> (N, 3): the field's spine, ``SPINE_FRACTION`` of the way from the pelvis to its thorax."""
    return poses[:, ROOT] + SPINE_FRACTION * (poses[:, FIELD_THORAX] - poses[:, ROOT])


def _unit(v: np.ndarray) -> np.ndarray:
    """(N, 3) -> unit vectors, zero where v is: a zero axis turns nothing (``expmap_to_matrix`` gives I)."""
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.where(norm > 1e-9, v / np.maximum(norm, 1e-9), 0.0)


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("ni,ni->n", a, b)


def _yaw(v: np.ndarray) -> np.ndarray:
    """(N, 3) -> (N,) heading about +Y in radians: a turn by t about +Y adds t."""
    return np.arctan2(v[:, 0], v[:, 2])


def _level(v: np.ndarray) -> np.ndarray:
    """(N, 3) -> (N,) cosine of the angle between v and the horizontal plane."""
    return np.linalg.norm(v[:, [0, 2]], axis=-1) / np.maximum(np.linalg.norm(v, axis=-1), 1e-9)


def _elevation(v: np.ndarray) -> np.ndarray:
    """(N, 3) -> (N,) angle of v above the horizontal, radians (negative below)."""
    return np.arctan2(v[:, 1], np.linalg.norm(v[:, [0, 2]], axis=-1))
