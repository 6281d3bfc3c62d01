"""The two 17-joint conventions and the conversion between them (SPEC section 3; numpy only).

Both conventions have the h36m17 joint order and agree on 13 joints: the pelvis (exactly the mid-hips) and the
twelve limb joints. They differ on the four joints of the trunk and head:

=============  ==========================================  ===============================================
joint          ``h36m17``: the field's convention           ``unihpr17``: our shared formulas
               (H36M ground truth as VideoPose3D,           (``model.pose.joint_formulas``; what ``h36m17``
               MotionBERT and mmpose produce it)            meant before)
=============  ==========================================  ===============================================
thorax         the neck base, 40-80 mm above the            the mid-shoulders
               shoulder line (the rig's neck joint)
spine          0.47 of the way from pelvis to thorax        halfway from pelvis to thorax
neck_nose      121 mm from the thorax along the head's      the nose
               own up axis
head_top       115 mm further along that axis               mid-ears + (mid-ears - thorax)
=============  ==========================================  ===============================================

The service's encoders and decoder work in ``unihpr17`` (every detector's keypoints reach it through the shared
formulas); ``h36m17`` input is converted to it and output converted back. Each converted joint is one fixed
affine combination of the other convention's joints (weights summing to 1), so a conversion commutes with
rotation, translation and scale, and applies alike to 3D and to 2D (where it ignores perspective foreshortening
between joints, a fraction of a millimetre for the head). Two rows are exact: ``unihpr17``'s thorax and spine
follow from the shoulders and hips. The others are least-squares fits on the Bandai training clips, whose
``h36m17`` joints come from the rigs' neck and head joints (``index_builder.ingest.mocap_skeletons``); the fit's error
is what ``unihpr-build conventions`` prints and what the report's convention protocol measures. A converted
joint is missing where any joint it uses is missing.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from model.pose.joint_combinations import combine_points, finite_points
from model.pose.skeleton import H36M17

FIELD = "h36m17"
OURS = "unihpr17"
CONVENTIONS = (FIELD, OURS)

SPINE_FRACTION = 0.47  # field spine: this fraction of the way from pelvis to thorax
THORAX_TO_NECK_NOSE_MM = 121.0
NECK_NOSE_TO_HEAD_TOP_MM = 115.0

DERIVED = ("spine", "thorax", "neck_nose", "head_top")
DERIVED_INDEX = tuple(H36M17.index(name) for name in DERIVED)
SHARED_INDEX = tuple(j for j in range(H36M17.num_joints) if j not in DERIVED_INDEX)
LIMB_INDEX = tuple(j for j in SHARED_INDEX if H36M17.names[j] != "pelvis")

# The joints each fitted row may use: trunk and head only, so that a raised arm never moves the head, and no joint
# that the others determine (the field's neck/nose lies on the thorax-head top line; our thorax is the
# mid-shoulders), which would leave the fit without a unique answer. The field's head carries no facing direction,
# so our nose is placed on the head axis; the shoulders could guess the facing from where the rig's neck joint
# sits in front of them, but such a fit weights that small neck-to-shoulders offset about five times, so the
# neck's placement, which differs between rigs and data sets, would move our nose five times as far.
FIT_SOURCES = {
    FIELD: ("pelvis", "thorax", "head_top"),
    OURS: ("pelvis", "neck_nose", "head_top", "l_shoulder", "r_shoulder"),
}

# Fitted rows, joint -> {source joint: weight}; the pelvis takes 1 - the sum of the others. Fitted by
# `unihpr-build conventions` on the Bandai training split (every 10th frame); see that command's printed errors.
FITTED_TO_OURS: dict[str, dict[str, float]] = {
    "neck_nose": {"thorax": -0.1539, "head_top": 0.8893},
    "head_top": {"thorax": 0.0904, "head_top": 0.9996},
}
FITTED_TO_FIELD: dict[str, dict[str, float]] = {
    "thorax": {"neck_nose": 0.1132, "head_top": 0.0436, "l_shoulder": 0.4312, "r_shoulder": 0.4312},
    "neck_nose": {"neck_nose": -0.1173, "head_top": 0.6249, "l_shoulder": 0.2177, "r_shoulder": 0.2177},
    "head_top": {"neck_nose": -0.3363, "head_top": 1.1774, "l_shoulder": 0.0149, "r_shoulder": 0.0149},
}


def field_derived_joints(pelvis: np.ndarray, neck_base: np.ndarray, head_up: np.ndarray) -> np.ndarray:
    """The field convention's four trunk and head joints from a rig's neck and head.

    pelvis, neck_base: (..., 3) mm. head_up: (..., 3), the head joint's own up axis (any length).
    returns: (..., 4, 3) float64 mm in ``DERIVED`` order: spine, thorax, neck_nose, head_top.
    """
    up = head_up / np.linalg.norm(head_up, axis=-1, keepdims=True)
    neck_nose = neck_base + THORAX_TO_NECK_NOSE_MM * up
    return np.stack([pelvis + SPINE_FRACTION * (neck_base - pelvis), neck_base, neck_nose,
                     neck_nose + NECK_NOSE_TO_HEAD_TOP_MM * up], axis=-2)


def with_derived(joints: np.ndarray, derived: np.ndarray) -> np.ndarray:
    """``joints`` (..., 17, C) with its four derived joints replaced by ``derived`` (..., 4, C)."""
    out = np.array(joints, dtype=np.result_type(joints, derived), copy=True)
    out[..., list(DERIVED_INDEX), :] = derived
    return out


def _row(terms: dict[str, float]) -> np.ndarray:
    row = np.zeros(H36M17.num_joints)
    for name, weight in terms.items():
        row[H36M17.index(name)] += weight
    row[H36M17.index("pelvis")] += 1.0 - sum(terms.values())
    return row


def conversion_matrix(source: str, target: str, fitted: dict[str, dict[str, float]] | None = None) -> np.ndarray:
    """(17, 17) float64: target joints = M @ source joints. ``fitted`` replaces the module's fitted rows."""
    if source not in CONVENTIONS or target not in CONVENTIONS:
        raise KeyError(f"unknown convention {source!r} or {target!r}; known: {', '.join(CONVENTIONS)}")
    matrix = np.eye(H36M17.num_joints)
    if source == target:
        return matrix
    if target == OURS:
        rows = dict(fitted or FITTED_TO_OURS)
        rows["thorax"] = {"l_shoulder": 0.5, "r_shoulder": 0.5}
        rows["spine"] = {"l_shoulder": 0.25, "r_shoulder": 0.25}  # and 0.5 pelvis: halfway to the mid-shoulders
        for name, terms in rows.items():
            matrix[H36M17.index(name)] = _row(terms)
        return matrix
    rows = dict(fitted or FITTED_TO_FIELD)
    for name, terms in rows.items():
        matrix[H36M17.index(name)] = _row(terms)
    thorax = matrix[H36M17.index("thorax")]
    pelvis = np.eye(H36M17.num_joints)[H36M17.index("pelvis")]
    matrix[H36M17.index("spine")] = pelvis + SPINE_FRACTION * (thorax - pelvis)
    return matrix


def exact_joints(layout: str) -> np.ndarray:
    """(17,) float: 1 for each ``unihpr17`` joint that input in ``layout`` gives exactly, 0 for those it gives
    through a fitted row (``h36m17``'s neck/nose and head top: tens of mm off for a given body). The geometric fits
    of re-ranking and motion search weight the query's joints by this: a true match should not pay for the
    conversion (a half-speed replay of a library clip sent as ``h36m17`` fitted its own segment with a residual of
    0.022 instead of 0.003, about the gap to the next take of the move)."""
    weights = np.ones(H36M17.num_joints)
    if layout == FIELD:
        weights[[H36M17.index(name) for name in FITTED_TO_OURS]] = 0.0
    return weights


def convert_joints(joints: np.ndarray, source: str, target: str, confidence: np.ndarray | None = None):
    """Convert 2D or 3D joints between conventions.

    joints: (..., 17, C) float, C = 2 or 3, NaN where missing. confidence: optional (..., 17) in [0, 1], 0 where
        missing.
    returns: joints (..., 17, C) float64 (NaN where a used joint is missing) and, when ``confidence`` is given,
        (..., 17): the smallest confidence among the joints each converted joint uses.
    """
    if confidence is None and np.isfinite(joints).all():  # complete joints (library poses, mocap): one product
        return np.matmul(_matrix(source, target), joints.astype(np.float64, copy=False))
    present = finite_points(joints)
    if confidence is not None:
        present &= confidence > 0
    return combine_points(_matrix(source, target), joints, confidence, present)


@lru_cache(maxsize=None)
def _matrix(source: str, target: str) -> np.ndarray:
    """``conversion_matrix`` with the module's rows, built once: conversions run on every request."""
    matrix = conversion_matrix(source, target)
    matrix.setflags(write=False)
    return matrix


def fit_conversion(source: np.ndarray, target: np.ndarray, source_convention: str,
                   rows: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """Least-squares weights (summing to 1 with the pelvis) of ``rows`` of ``target`` from ``source`` joints, the
    same weight for a left joint and its right twin so that a conversion commutes with mirroring.

    source, target: (N, 17, 3) mm, the same poses in two conventions.
    returns: joint -> {source joint: weight} for ``conversion_matrix``'s ``fitted``.
    """
    pelvis = H36M17.index("pelvis")
    names = [n for n in FIT_SOURCES[source_convention] if n != "pelvis"]
    groups = [[n] for n in names if not n.startswith(("l_", "r_"))]
    groups += [[n, "r_" + n[2:]] for n in names if n.startswith("l_")]
    relative = source - source[:, pelvis : pelvis + 1]
    basis = np.stack([relative[:, [H36M17.index(n) for n in group]].sum(axis=1) for group in groups], axis=1)
    design = basis.transpose(0, 2, 1).reshape(-1, len(groups))  # one row per pose and coordinate
    out = {}
    for name in rows:
        goal = (target[:, H36M17.index(name)] - target[:, pelvis]).reshape(-1)
        weights, *_ = np.linalg.lstsq(design, goal, rcond=None)
        out[name] = {n: round(float(w), 4) for group, w in zip(groups, weights) for n in group}
    return out
