"""One definition per joint of our ``unihpr17`` convention, shared by every source (SPEC section 3; numpy only).

The field's ``h36m17`` convention differs on four joints (``model.pose.joint_conventions``); the encoders read
``unihpr17``, and ``layout_to_unihpr17`` brings every input layout to it.

Every source (mocap skeletons, ``coco17`` and ``blazepose33`` keypoints) is first reduced to the same 15
*landmarks*: nose, both ears, shoulders, elbows, wrists, hips, knees and ankles. Each h36m17 joint is then one
fixed affine combination of those landmarks (the rows of ``FORMULA_WEIGHTS`` sum to 1), applied alike to 3D mocap
and to 2D detections. Training 2D is the projection of 3D joints made by these same formulas, so a model never
sees a joint defined one way in training and another way at serving.

The formulas:

=============  ============================================  ==============================================
joint          formula                                       why
=============  ============================================  ==============================================
pelvis         (l_hip + r_hip) / 2                           the mid-hip is visible to every detector
r/l hip, knee, ankle   the landmark itself
thorax         (l_shoulder + r_shoulder) / 2                 the mid-shoulder
spine          (pelvis + thorax) / 2                         halfway up the trunk
neck_nose      nose                                          H36M's joint 9 sits on the face; the nose carries
                                                             the facing direction that 2D lifting needs
head_top       mid_ears + (mid_ears - thorax)                the head extends above the ears about as far as
                                                             the ears sit above the shoulders
l/r shoulder, elbow, wrist   the landmark itself
=============  ============================================  ==============================================

Mocap skeletons have no ears or nose: the builder places them rigidly in the head joint's frame
(``index_builder.ingest.mocap_skeletons``). A joint is missing when any landmark it uses is missing; its confidence is
the smallest confidence among the landmarks it uses.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from model.pose.joint_combinations import combine_points
from model.pose.joint_conventions import FIELD, OURS, conversion_matrix, convert_joints
from model.pose.joint_layouts import LANDMARKS, LAYOUTS, NUM_LANDMARKS
from model.pose.skeleton import H36M17

FORMULAS_VERSION = "1"



def _formula_weights() -> np.ndarray:
    """(17, 15) float64: h36m17 joint j = sum_k W[j, k] * landmark k."""
    lm = {name: i for i, name in enumerate(LANDMARKS)}
    weights = np.zeros((H36M17.num_joints, NUM_LANDMARKS))

    def put(joint: str, terms: dict[str, float]) -> None:
        for name, w in terms.items():
            weights[H36M17.index(joint), lm[name]] += w

    pelvis = {"l_hip": 0.5, "r_hip": 0.5}
    thorax = {"l_shoulder": 0.5, "r_shoulder": 0.5}
    put("pelvis", pelvis)
    put("thorax", thorax)
    put("spine", {k: 0.5 * v for k, v in (pelvis | thorax).items()})
    put("neck_nose", {"nose": 1.0})
    # head_top = 2 * mid_ears - thorax
    put("head_top", {"l_ear": 1.0, "r_ear": 1.0})
    put("head_top", {k: -v for k, v in thorax.items()})
    for side in ("l", "r"):
        for part in ("hip", "knee", "ankle", "shoulder", "elbow", "wrist"):
            put(f"{side}_{part}", {f"{side}_{part}": 1.0})
    return weights


FORMULA_WEIGHTS = _formula_weights()
FORMULA_WEIGHTS.setflags(write=False)



def landmarks_to_h36m17(landmarks: np.ndarray, confidence: np.ndarray | None = None):
    """Apply the joint formulas: the shared landmarks -> unihpr17 joints (``model.pose.joint_conventions``).

    landmarks: (..., 15, C) float, C = 2 or 3, in ``LANDMARKS`` order; missing values may be NaN.
    confidence: optional (..., 15) float in [0, 1]; 0 marks a missing landmark.
    returns: joints (..., 17, C) float64 (NaN where a used landmark is NaN), and, when ``confidence`` is
        given, (..., 17) float64: the smallest confidence among the landmarks each joint uses.
    """
    assert landmarks.shape[-2] == NUM_LANDMARKS, f"expected {NUM_LANDMARKS} landmarks, got {landmarks.shape}"
    assert confidence is None or confidence.shape == landmarks.shape[:-1], "one confidence per landmark"
    return combine_points(FORMULA_WEIGHTS, landmarks, confidence)


def layout_to_unihpr17(keypoints: np.ndarray, layout: str, confidence: np.ndarray | None = None):
    """Map keypoints of a registered layout (``model.pose.joint_layouts``) to unihpr17, the joints the encoders
    read: landmark layouts through the shared formulas (a landmark the layout lacks is missing), the field's
    ``h36m17`` through ``model.pose.joint_conventions``, ``unihpr17`` as it is.

    keypoints: (..., K, C) in the layout's order (K its size).
    confidence: optional (..., K) in [0, 1].
    returns: as ``landmarks_to_h36m17``.
    """
    if layout == OURS:
        return keypoints if confidence is None else (keypoints, confidence)
    if layout == FIELD:
        return convert_joints(keypoints, FIELD, OURS, confidence)
    if layout not in LAYOUTS:
        raise KeyError(f"unknown layout {layout!r}; known: {', '.join(LAYOUTS)}")
    spec = LAYOUTS[layout]
    assert keypoints.shape[-2] == spec.size, f"{layout} has {spec.size} keypoints"
    index, lacking = _landmark_gather(layout)
    landmarks = keypoints[..., index, :]
    conf = None if confidence is None else confidence[..., index]
    if lacking.any():  # landmarks the layout lacks are missing: NaN, confidence 0
        landmarks = np.where(lacking[:, None], np.nan, landmarks)
        conf = None if conf is None else np.where(lacking, 0.0, conf)
    return landmarks_to_h36m17(landmarks, conf)


@lru_cache
def layout_weights(layout: str) -> tuple[np.ndarray, np.ndarray]:
    """``layout_to_unihpr17`` as one weight matrix: (17, K) float64, unihpr17 joint j = sum_k W[j, k] * keypoint k of
    the layout (K its size), and (17,) bool, the joints the layout cannot give (their formula uses a landmark the
    layout lacks: always missing). For the compiled feature rows (``model.pose.features.pose2d_rows``)."""
    if layout == OURS:
        weights, unavailable = np.eye(H36M17.num_joints), np.zeros(H36M17.num_joints, bool)
    elif layout == FIELD:
        weights, unavailable = conversion_matrix(FIELD, OURS), np.zeros(H36M17.num_joints, bool)
    else:
        if layout not in LAYOUTS:
            raise KeyError(f"unknown layout {layout!r}; known: {', '.join(LAYOUTS)}")
        index, lacking = _landmark_gather(layout)
        weights = np.zeros((H36M17.num_joints, LAYOUTS[layout].size))
        for landmark in np.flatnonzero(~lacking):
            weights[:, index[landmark]] += FORMULA_WEIGHTS[:, landmark]
        unavailable = (FORMULA_WEIGHTS[:, lacking] != 0).any(axis=1)
    for array in (weights, unavailable):
        array.setflags(write=False)  # shared by every call through the cache
    return weights, unavailable


@lru_cache
def _landmark_gather(layout: str) -> tuple[np.ndarray, np.ndarray]:
    """(15,) where each landmark sits in ``layout`` (0 where it lacks it) and (15,) bool: lacking."""
    sources = LAYOUTS[layout].landmark_index
    index, lacking = np.array([0 if s is None else s for s in sources]), np.array([s is None for s in sources])
    index.setflags(write=False)
    lacking.setflags(write=False)
    return index, lacking
