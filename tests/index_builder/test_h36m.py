"""Human3.6M loaders (VideoPose3D npz files written here in the same format) and the published camera table."""

import pickle

import numpy as np
import pytest

from index_builder.datasets.h36m import (
    H36M32_TO_H36M17,
    LICENCE,
    ZUP_TO_YUP,
    action_content,
    load_h36m_2d,
    load_h36m_3d,
)
from index_builder.datasets.h36m_cameras import EXTRINSICS, INTRINSICS, h36m_camera
from index_builder.datasets.motion_database import MotionDatabase
from index_builder.errors import DataFileError
from index_builder.ingest.rotations import quaternion_to_matrix
from model.pose.cameras import project_world
from model.pose.joint_conventions import FIELD, OURS, convert_joints, with_derived
from model.pose.skeleton import H36M17
from model.pose.units import MM_PER_M

J = H36M17.index


def write_3d(path, positions):
    np.savez(path, positions_3d=np.array(positions, dtype=object))
    return path


def write_2d(path, positions, metadata):
    np.savez(path, positions_2d=np.array(positions, dtype=object), metadata=np.array(metadata, dtype=object))
    return path


def marked_pose(frames: int = 2) -> np.ndarray:
    """(T, 32, 3) metres, Z up: joint j of frame t at (j, 100 + j + t, 1000 + j) mm."""
    j = np.arange(32, dtype=np.float64)
    pose_mm = np.stack([j, 100 + j, 1000 + j], axis=-1)  # (32, 3)
    return np.stack([pose_mm + [0, t, 0] for t in range(frames)]) / 1000.0


def standing_pose() -> np.ndarray:
    """(1, 32, 3) metres, H36M world (Z up): a person facing +X, so the character's left is +Y (up x forward)."""
    pose = np.zeros((1, 32, 3))
    pose[0, :] = [0.2, 0.3, 0.9]  # every unused joint at the pelvis
    side = {1: -1, 2: -1, 3: -1, 25: -1, 26: -1, 27: -1, 6: 1, 7: 1, 8: 1, 17: 1, 18: 1, 19: 1}
    height = {0: 0.9, 1: 0.9, 6: 0.9, 2: 0.5, 7: 0.5, 3: 0.08, 8: 0.08, 12: 1.1, 13: 1.45, 14: 1.55, 15: 1.75,
              17: 1.42, 25: 1.42, 18: 1.15, 26: 1.15, 19: 0.9, 27: 0.9}
    for j, h in height.items():
        pose[0, j] = [0.2, 0.3 + 0.15 * side.get(j, 0), h]
    pose[0, 14, 0] += 0.1  # the neck/nose joint sits forward of the thorax
    return pose


def field_poses(db) -> np.ndarray:
    """The loaded poses in the field's h36m17 convention, H36M's own joints: (N, 17, 3) float64 mm."""
    return with_derived(db.poses.astype(np.float64), db.field_joints)


# --- 3D ---------------------------------------------------------------------------------------------------------

def test_known_32_joint_pose_becomes_h36m17_mm_in_our_y_up_frame(tmp_path):
    path = write_3d(tmp_path / "data_3d_h36m.npz", {"S1": {"Walking 1": marked_pose()}})
    db = load_h36m_3d(path)
    assert db.poses.shape == (2, 17, 3) and db.poses.dtype == np.float32
    # VideoPose3D's subset, in h36m17 order (hip, rhip, rknee, rfoot, lhip, ..., head, lshoulder, ..., rwrist).
    kept = [0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27]
    assert list(H36M32_TO_H36M17) == kept
    # (x, y, z)_h36m mm = (k, 100 + k + t, 1000 + k)  ->  ours (x, z, -y) = (k, 1000 + k, -(100 + k + t)).
    for t in range(2):
        expected = np.array([[k, 1000 + k, -(100 + k + t)] for k in kept], dtype=np.float64)
        np.testing.assert_allclose(field_poses(db)[t], expected, atol=1e-3)
    # head top by hand: H36M joint 15 at (15, 100, 1015) mm in frame 0
    np.testing.assert_allclose(field_poses(db)[0, J("head_top")], [15.0, 1015.0, -115.0], atol=1e-3)
    # the poses the encoders read are unihpr17: thorax at the mid-shoulders, exactly
    shoulders = (db.poses[:, J("l_shoulder")] + db.poses[:, J("r_shoulder")]) / 2
    np.testing.assert_allclose(db.poses[:, J("thorax")], shoulders, atol=1e-3)


def test_units_and_axes_are_named_and_right_handed():
    assert MM_PER_M == 1000.0
    assert np.isclose(np.linalg.det(ZUP_TO_YUP), 1.0)  # a rotation: nothing is mirrored
    np.testing.assert_array_equal(ZUP_TO_YUP @ [0, 0, 1], [0, 1, 0])  # H36M up is our up


def test_standing_person_keeps_height_and_left_side(tmp_path):
    db = load_h36m_3d(write_3d(tmp_path / "d.npz", {"S5": {"Directions": standing_pose()}}))
    pose = field_poses(db)[0]
    assert pose[J("head_top"), 1] - pose[J("pelvis"), 1] == pytest.approx(850.0, abs=1e-3)  # Y is up, in mm
    assert pose[J("pelvis"), 1] == pytest.approx(900.0, abs=1e-3)
    up = pose[J("head_top")] - pose[J("pelvis")]
    forward = pose[J("neck_nose")] - pose[J("thorax")]
    forward[1] = 0.0
    left = pose[J("l_hip")] - pose[J("r_hip")]
    # Left = up x forward in a right-handed frame, as in the Bandai data: a mirrored conversion flips this sign.
    assert np.dot(np.cross(up, forward), left) > 0
    np.testing.assert_allclose(left, [0.0, 0.0, -300.0], atol=1e-3)  # H36M +Y (the left) is our -Z


def test_clip_table_labels_and_split_by_subject(tmp_path):
    positions = {
        "S9": {"Walking 1": marked_pose(3), "SittingDown 2": marked_pose(1)},
        "S1": {"TakingPhoto": marked_pose(2), "Walking": marked_pose(4)},
        "S11": {"WalkDog 1": marked_pose(2)},
    }
    db = load_h36m_3d(write_3d(tmp_path / "data_3d_h36m.npz", positions))
    clips = db.clips
    assert list(clips.name) == ["S1/TakingPhoto", "S1/Walking", "S9/SittingDown 2", "S9/Walking 1", "S11/WalkDog 1"]
    assert list(clips.dataset) == ["S1", "S1", "S9", "S9", "S11"]
    assert list(clips.content) == ["Photo", "Walking", "SittingDown", "Walking", "WalkDog"]
    assert list(clips.style) == [""] * 5
    assert list(clips.split) == ["train", "train", "test", "test", "test"]
    assert list(clips.length) == [2, 4, 1, 3, 2] and list(clips.start) == [0, 2, 6, 7, 10]
    assert (clips.fps == 50).all()
    assert list(db.frame[db.clip == 1]) == [0, 1, 2, 3]
    assert db.source == "human36m" and db.licence == LICENCE and "Human3.6M licence applies" in LICENCE
    assert set(db.split("test").clips.dataset) == {"S9", "S11"}
    assert len(db.split("val")) == 0


def test_action_content_strips_the_take_number():
    assert action_content("Walking 1") == "Walking"
    assert action_content("WalkTogether 2") == "WalkTogether"
    assert action_content("Directions") == "Directions"
    assert action_content("WalkingDog 1") == "WalkDog"


def test_database_saves_and_loads_in_the_cache_format(tmp_path):
    db = load_h36m_3d(write_3d(tmp_path / "in.npz", {"S7": {"Eating 2": marked_pose(3)}}))
    db.save(tmp_path / "cache.npz")
    again = MotionDatabase.load(tmp_path / "cache.npz")
    np.testing.assert_array_equal(again.poses, db.poses)
    assert list(again.clips.name) == ["S7/Eating 2"] and again.source == "human36m"


@pytest.mark.parametrize(
    "positions, problem",
    [
        ({"S1": {"Walking 1": np.zeros((5, 31, 3))}}, "must be (T, 32, 3)"),
        ({"S1": {"Walking 1": np.zeros((0, 32, 3))}}, "must be (T, 32, 3)"),
        ({"S1": {"Walking 1": np.full((2, 32, 3), np.nan)}}, "non-finite"),
        ({"S2": {"Walking 1": np.zeros((2, 32, 3))}}, "not in the standard protocol"),
        ({}, "no clips"),
        ({"S1": [1, 2]}, "subject name -> dict of actions"),
        ({"S1": {"Walking 1": [[0.0, 0.0, 0.0], [0.0]]}}, "is not an array"),
        ({"S1": {"Walking 1": np.zeros((2, 32, 3), dtype=np.int64)}}, "must be floats"),
    ],
)
def test_bad_3d_content_names_file_and_problem(tmp_path, positions, problem):
    path = write_3d(tmp_path / "bad.npz", positions)
    with pytest.raises(DataFileError) as err:
        load_h36m_3d(path)
    assert str(path) in str(err.value) and problem in str(err.value)


def test_wrong_shape_names_the_clip(tmp_path):
    path = write_3d(tmp_path / "bad.npz", {"S1": {"Walking 1": np.zeros((5, 31, 3))}})
    with pytest.raises(DataFileError, match=r"\['S1'\]\['Walking 1'\].*got \(5, 31, 3\)"):
        load_h36m_3d(path)


def test_bad_3d_files_name_file_and_problem(tmp_path):
    missing_key = tmp_path / "missing.npz"
    np.savez(missing_key, poses=np.zeros(3))
    with pytest.raises(DataFileError, match="missing key.*positions_3d") as err:
        load_h36m_3d(missing_key)
    assert err.value.source == str(missing_key)

    text = tmp_path / "text.npz"
    text.write_text("not numpy at all")
    with pytest.raises(DataFileError, match="not an npz") as err:
        load_h36m_3d(text)
    assert err.value.source == str(text)

    plain_pickle = tmp_path / "pickle.npz"  # refused before anything is unpickled
    plain_pickle.write_bytes(pickle.dumps({"positions_3d": {}}))
    with pytest.raises(DataFileError, match="not an npz"):
        load_h36m_3d(plain_pickle)

    not_a_dict = tmp_path / "array.npz"
    np.savez(not_a_dict, positions_3d=np.zeros((2, 32, 3)))
    with pytest.raises(DataFileError, match="must be a pickled dict"):
        load_h36m_3d(not_a_dict)

    with pytest.raises(DataFileError, match="no such file"):
        load_h36m_3d(tmp_path / "absent.npz")


# --- 2D ---------------------------------------------------------------------------------------------------------

H36M_META = {"layout_name": "h36m", "num_joints": 17,
             "keypoints_symmetry": [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]]}


def views(frames: int, joints: int = 17) -> list[np.ndarray]:
    """4 cameras; camera c, frame t, joint j at (100 c + j, 10 t + 0.5) px."""
    j = np.arange(joints, dtype=np.float32)
    return [np.stack([np.stack([100 * c + j, np.full(joints, 10 * t + 0.5, np.float32)], axis=-1)
                      for t in range(frames)]) for c in range(4)]


def test_2d_file_is_keyed_by_subject_action_camera(tmp_path):
    path = write_2d(tmp_path / "data_2d_h36m_gt.npz",
                    {"S1": {"Walking 1": views(3)}, "S9": {"Eating": views(2)}}, H36M_META)
    data = load_h36m_2d(path)
    assert data.name == "gt" and data.layout_name == "h36m" and data.num_joints == 17
    assert data.keypoints_symmetry == ((4, 5, 6, 11, 12, 13), (1, 2, 3, 14, 15, 16))
    assert sorted(data.keypoints) == sorted([("S1", "Walking 1", c) for c in range(4)]
                                            + [("S9", "Eating", c) for c in range(4)])
    kp = data.keypoints[("S1", "Walking 1", 2)]
    assert kp.shape == (3, 17, 2) and kp.dtype == np.float32
    np.testing.assert_array_equal(kp[1, 5], [205.0, 10.5])
    # H36M's own joints are the field's h36m17: converted to unihpr17 as the service converts a request
    np.testing.assert_allclose(data.to_unihpr17(("S1", "Walking 1", 2)), convert_joints(kp, FIELD, OURS))


def test_2d_coco_layout_maps_through_the_shared_formulas(tmp_path):
    meta = {"layout_name": "coco", "num_joints": 17,
            "keypoints_symmetry": [[1, 3, 5, 7, 9, 11, 13, 15], [2, 4, 6, 8, 10, 12, 14, 16]]}
    data = load_h36m_2d(write_2d(tmp_path / "data_2d_h36m_detectron_pt_coco.npz", {"S1": {"Walking": views(1)}},
                                 meta))
    h36m = data.to_unihpr17(("S1", "Walking", 0))
    # COCO hips are 11 and 12 at x = 11 and 12 px: pelvis = mid-hip = 11.5 px; nose (0) -> neck_nose.
    assert h36m[0, J("pelvis"), 0] == pytest.approx(11.5)
    assert h36m[0, J("neck_nose"), 0] == pytest.approx(0.0)


@pytest.mark.parametrize(
    "positions, metadata, problem",
    [
        ({"S1": {"Walking": views(2)[:3]}}, H36M_META, "list of 4 arrays"),
        ({"S1": {"Walking": views(2, joints=16)}}, H36M_META, "must be (T, 17, 2)"),
        ({"S1": {"Walking": [v[..., :1] for v in views(2)]}}, H36M_META, "must be (T, 17, 2)"),
        ({"S1": {"Walking": views(2)}}, {"layout_name": "h36m", "num_joints": 17}, "keypoints_symmetry"),
        ({"S1": {"Walking": views(2)}}, dict(H36M_META, num_joints=16), "has 17 joints"),
        ({}, H36M_META, "no clips"),
    ],
)
def test_bad_2d_content_names_file_and_problem(tmp_path, positions, metadata, problem):
    path = write_2d(tmp_path / "data_2d_h36m_bad.npz", positions, metadata)
    with pytest.raises(DataFileError) as err:
        load_h36m_2d(path)
    assert str(path) in str(err.value) and problem in str(err.value)


def test_2d_file_without_metadata_is_refused(tmp_path):
    path = tmp_path / "data_2d_h36m_gt.npz"
    np.savez(path, positions_2d=np.array({"S1": {"Walking": views(1)}}, dtype=object))
    with pytest.raises(DataFileError, match="missing key.*metadata"):
        load_h36m_2d(path)


# --- cameras ----------------------------------------------------------------------------------------------------

def test_camera_table_is_the_published_one():
    assert [c.id for c in INTRINSICS] == ["54138969", "55011271", "58860488", "60457274"]
    assert set(EXTRINSICS) == {"S1", "S5", "S6", "S7", "S8", "S9", "S11"}
    assert INTRINSICS[0].focal_length == (1145.0494384765625, 1143.7811279296875)
    assert EXTRINSICS["S11"][3].translation == (-1590.738037109375, -3854.1689453125, 1578.017578125)
    values = [v for c in INTRINSICS for v in (*c.center, *c.focal_length, *c.radial_distortion,
                                               *c.tangential_distortion)]
    for cams in EXTRINSICS.values():
        for cam in cams:
            assert abs(np.linalg.norm(cam.orientation) - 1) < 1e-6  # unit quaternions
            values += [*cam.orientation, *cam.translation]
    # The published numbers are float32 values printed in full: a mistyped digit would almost surely break this.
    assert all(float(np.float32(v)) == v for v in values)


def test_quaternion_to_matrix_by_hand():
    # 90 degrees about z: (w, x, y, z) = (cos 45, 0, 0, sin 45) takes x to y and y to -x.
    s = np.sqrt(0.5)
    np.testing.assert_allclose(quaternion_to_matrix(np.array([s, 0, 0, s])),
                               [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-12)
    # 180 degrees about x: (0, 1, 0, 0).
    np.testing.assert_allclose(quaternion_to_matrix(np.array([0.0, 1, 0, 0])), np.diag([1.0, -1, -1]), atol=1e-12)


def test_matrix_matches_videopose3d_qrot_on_every_camera():
    def qrot(q, v):  # VideoPose3D common/quaternion.py, real part first
        uv = np.cross(q[1:], v)
        return v + 2 * (q[0] * uv + np.cross(q[1:], uv))

    v = np.random.default_rng(0).normal(size=(5, 3))
    for cams in EXTRINSICS.values():
        for cam in cams:
            q = np.array(cam.orientation)
            np.testing.assert_allclose(v @ quaternion_to_matrix(q).T, [qrot(q, x) for x in v], atol=1e-6)


def test_s1_camera_0_by_hand():
    cam = h36m_camera("S1", 0)
    w, x, y, z = 0.1407056450843811, -0.1500701755285263, -0.755240797996521, 0.6223280429840088
    # The depth axis is the third column of R(q) (camera -> world), i.e. the third row of world -> camera.
    depth_axis = [2 * (x * z + w * y), 2 * (y * z - w * x), 1 - 2 * (x * x + y * y)]
    np.testing.assert_allclose(cam.rotation[2], depth_axis, atol=1e-7)
    np.testing.assert_allclose(cam.rotation[2], [-0.399319, -0.897784, -0.185819], atol=1e-6)
    np.testing.assert_allclose(cam.rotation @ cam.rotation.T, np.eye(3), atol=1e-7)
    # The camera's own centre is at depth 0; the middle of the capture area (world origin) is in front of it.
    np.testing.assert_allclose(cam.world_to_camera(cam.translation), 0.0, atol=1e-9)
    origin = cam.world_to_camera(np.zeros(3))
    # (the code normalises q; the published one is unit to 4e-9, which moves the depth by 5e-5 mm)
    assert origin[2] == pytest.approx(-np.dot(depth_axis, cam.translation), abs=1e-3)
    assert origin[2] == pytest.approx(5474.48, abs=0.01)  # mm: 1841*0.3993 + 4955*0.8978 + 1563*0.1858
    u, v = cam.focal * origin[:2] / origin[2] + cam.center
    assert 0 < u < cam.image_size[0] and 0 < v < cam.image_size[1]


def test_every_camera_is_upright_and_sees_the_capture_area():
    for subject in EXTRINSICS:
        for index in range(4):
            cam = h36m_camera(subject, index)
            assert cam.rotation[1, 2] < -0.9  # camera y (down) points down the world's Z (up)
            assert cam.world_to_camera(np.array([0.0, 0.0, 900.0]))[2] > 3000  # a pelvis at the centre, in front
            assert 1000 < cam.translation[2] < 2000  # mounted 1-2 m high


def test_yup_cameras_see_converted_points_the_same():
    points = np.random.default_rng(1).normal(size=(6, 3)) * 1000  # mm, H36M world
    for subject, index in [("S1", 0), ("S9", 3)]:
        h36m, yup = h36m_camera(subject, index), h36m_camera(subject, index, world="yup")
        np.testing.assert_allclose(yup.world_to_camera(points @ ZUP_TO_YUP.T), h36m.world_to_camera(points),
                                   atol=1e-6)
        assert yup.translation[1] == pytest.approx(h36m.translation[2])  # height is Y in ours
        assert yup.rotation[1, 1] < -0.9
        # The same pixels through the shared pinhole code (model.pose.cameras), which assumes a Y-up world.
        in_camera = h36m.world_to_camera(points)
        expected = h36m.focal * in_camera[:, :2] / in_camera[:, 2:] + h36m.center
        np.testing.assert_allclose(project_world(points @ ZUP_TO_YUP.T, yup.as_camera()), expected, atol=1e-6)


def test_unknown_camera_requests_are_refused():
    with pytest.raises(KeyError, match="S2"):
        h36m_camera("S2", 0)
    with pytest.raises(IndexError):
        h36m_camera("S1", 4)
    with pytest.raises(ValueError, match="world frame"):
        h36m_camera("S1", 0, world="zup")
