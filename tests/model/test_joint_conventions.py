"""The two joint conventions and the conversion between them (``model.pose.joint_conventions``)."""

import numpy as np
import pytest

from index_builder.config import get_paths
from index_builder.datasets.motion_database import MotionDatabase
from model.pose.joint_conventions import (
    DERIVED,
    FIELD,
    NECK_NOSE_TO_HEAD_TOP_MM,
    OURS,
    SHARED_INDEX,
    SPINE_FRACTION,
    THORAX_TO_NECK_NOSE_MM,
    conversion_matrix,
    convert_joints,
    exact_joints,
    field_derived_joints,
    fit_conversion,
    with_derived,
)
from model.pose.skeleton import H36M17

J = H36M17.index


@pytest.fixture(scope="module")
def sample():
    """The shipped Bandai sample: unihpr17 poses and the field's joints of the same frames."""
    db = MotionDatabase.load(get_paths().sample)
    assert db.field_joints is not None, "the shipped sample carries the field's joints"
    ours = db.poses.astype(np.float64)
    return ours, with_derived(ours, db.field_joints.astype(np.float64))


def random_rotation(rng) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def test_field_joints_follow_the_measured_h36m_geometry():
    pelvis, neck = np.array([0.0, 900.0, 0.0]), np.array([10.0, 1400.0, 20.0])
    up = np.array([0.0, 2.0, 0.0])  # any length
    spine, thorax, nose, top = field_derived_joints(pelvis, neck, up)
    np.testing.assert_allclose(spine, pelvis + SPINE_FRACTION * (neck - pelvis))
    np.testing.assert_allclose(thorax, neck)
    np.testing.assert_allclose(nose - thorax, [0.0, THORAX_TO_NECK_NOSE_MM, 0.0])
    np.testing.assert_allclose(top - nose, [0.0, NECK_NOSE_TO_HEAD_TOP_MM, 0.0])


def test_exact_parts_of_field_to_ours(sample):
    _, field = sample
    ours = convert_joints(field, FIELD, OURS)
    shoulders = (field[:, J("l_shoulder")] + field[:, J("r_shoulder")]) / 2
    np.testing.assert_allclose(ours[:, J("thorax")], shoulders, atol=1e-6)
    np.testing.assert_allclose(ours[:, J("spine")], (field[:, J("pelvis")] + shoulders) / 2, atol=1e-6)
    np.testing.assert_allclose(ours[:, list(SHARED_INDEX)], field[:, list(SHARED_INDEX)], atol=1e-6)


def test_conversions_touch_only_the_four_derived_joints():
    for source, target in ((FIELD, OURS), (OURS, FIELD)):
        matrix = conversion_matrix(source, target)
        np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-12)  # affine: translation moves every joint
        np.testing.assert_array_equal(matrix[list(SHARED_INDEX)], np.eye(17)[list(SHARED_INDEX)])
    np.testing.assert_array_equal(conversion_matrix(FIELD, FIELD), np.eye(17))
    with pytest.raises(KeyError):
        conversion_matrix("mpii16", OURS)


def test_conversion_commutes_with_similarity_and_mirroring(sample):
    rng = np.random.default_rng(0)
    _, field = sample
    pose = field[::500]
    rotation, shift, scale = random_rotation(rng), rng.normal(size=3) * 1000, 1.3
    moved = scale * pose @ rotation.T + shift
    for source, target in ((FIELD, OURS), (OURS, FIELD)):
        np.testing.assert_allclose(convert_joints(moved, source, target),
                                   scale * convert_joints(pose, source, target) @ rotation.T + shift, atol=1e-6)
        mirror = np.array([-1.0, 1.0, 1.0])
        perm = H36M17.mirror_permutation()
        np.testing.assert_allclose(convert_joints((pose * mirror)[:, perm], source, target),
                                   (convert_joints(pose, source, target) * mirror)[:, perm], atol=1e-6)


def test_2d_conversion_is_the_projection_of_the_3d_one_for_distant_people(sample):
    """The same weights serve 2D: far from the camera, converting then projecting equals projecting then
    converting, to under a pixel (1000 px focal length, 5 m away: a person about 350 px tall)."""
    _, field = sample
    pose = field[::700] - field[::700, :1] + np.array([0.0, 0.0, 5000.0])
    project = lambda p: 1000.0 * p[..., :2] / p[..., 2:3]  # noqa: E731
    error = np.abs(convert_joints(project(pose), FIELD, OURS) - project(convert_joints(pose, FIELD, OURS)))
    assert error.max() < 1.0


def test_missing_joints_and_confidence_propagate():
    pose = np.arange(17 * 2, dtype=np.float64).reshape(17, 2)
    pose[J("head_top")] = np.nan
    conf = np.full(17, 0.9)
    conf[J("l_shoulder")] = 0.4
    ours, ours_conf = convert_joints(pose, FIELD, OURS, conf)
    # our neck/nose and head top use the field's head top; our thorax and spine use the shoulders
    assert np.isnan(ours[J("neck_nose")]).all() and np.isnan(ours[J("head_top")]).all()
    assert ours_conf[J("neck_nose")] == 0.0 and ours_conf[J("head_top")] == 0.0
    assert ours_conf[J("thorax")] == pytest.approx(0.4) and ours_conf[J("spine")] == pytest.approx(0.4)
    assert np.isfinite(ours[J("l_knee")]).all() and ours_conf[J("l_knee")] == pytest.approx(0.9)
    conf[J("r_wrist")] = 0.0  # a zero confidence is missing too
    _, ours_conf = convert_joints(np.nan_to_num(pose), FIELD, OURS, conf)
    assert ours_conf[J("r_wrist")] == 0.0


def test_complete_poses_convert_alike_beside_a_pose_with_a_missing_joint():
    """A batch where every joint is given skips the masking: its poses get what they get beside an incomplete one."""
    rng = np.random.default_rng(3)
    poses, conf = rng.normal(size=(3, 17, 2)) * 300, rng.uniform(0.1, 1, (3, 17))
    alone = convert_joints(poses[:2], FIELD, OURS, conf[:2])
    poses[2, J("l_ankle")] = np.nan
    beside = convert_joints(poses, FIELD, OURS, conf)
    np.testing.assert_allclose(beside[0][:2], alone[0], rtol=0, atol=1e-9)
    np.testing.assert_array_equal(beside[1][:2], alone[1])
    assert np.isnan(beside[0][2, J("l_ankle")]).all() and beside[1][2, J("l_ankle")] == 0


def test_the_fit_recovers_known_weights():
    rng = np.random.default_rng(1)
    source = rng.normal(size=(500, 17, 3)) * 200
    truth = {"neck_nose": {"thorax": 0.3, "head_top": 0.5}, "head_top": {"thorax": -0.2, "head_top": 1.1}}
    target = np.einsum("jk,nkc->njc", conversion_matrix(FIELD, OURS, truth), source)
    fitted = fit_conversion(source, target, FIELD, ("neck_nose", "head_top"))
    for joint, terms in truth.items():
        for name, weight in terms.items():
            assert fitted[joint][name] == pytest.approx(weight, abs=1e-4)


def test_the_shipped_weights_fit_the_shipped_sample(sample):
    """The module's fitted rows were fitted on the full training split; on the sample they stay within the errors
    `unihpr-build conventions` printed on the validation split (mean per joint, mm), with some slack."""
    ours, field = sample
    bounds = {(OURS, FIELD): {"spine": 6.0, "thorax": 11.0, "neck_nose": 14.0, "head_top": 30.0},
              (FIELD, OURS): {"neck_nose": 120.0, "head_top": 45.0}}
    given = {OURS: ours, FIELD: field}
    for (source, target), joints in bounds.items():
        error = np.linalg.norm(convert_joints(given[source], source, target) - given[target], axis=-1)
        for name, bound in joints.items():
            assert error[:, J(name)].mean() < bound, (source, target, name, error[:, J(name)].mean())


def test_the_sample_field_joints_sit_where_the_field_puts_them(sample):
    """Bandai's neck joint sits a few cm above the shoulder line, the head axis is upright when standing."""
    ours, field = sample
    shoulders = (ours[:, J("l_shoulder")] + ours[:, J("r_shoulder")]) / 2
    above = field[:, J("thorax"), 1] - shoulders[:, 1]  # world Y up
    assert 15.0 < np.median(above) < 60.0
    axis = field[:, J("head_top")] - field[:, J("thorax")]
    np.testing.assert_allclose(np.linalg.norm(axis, axis=-1), THORAX_TO_NECK_NOSE_MM + NECK_NOSE_TO_HEAD_TOP_MM,
                               rtol=1e-4)
    assert np.median(axis[:, 1] / np.linalg.norm(axis, axis=-1)) > 0.9
    assert list(DERIVED) == ["spine", "thorax", "neck_nose", "head_top"]


def test_exact_joints_mark_what_a_layout_gives_only_through_a_fitted_row():
    field = exact_joints(FIELD)
    assert field[J("neck_nose")] == 0.0 and field[J("head_top")] == 0.0 and field.sum() == 15.0
    assert (exact_joints(OURS) == 1.0).all() and (exact_joints("coco17") == 1.0).all()
