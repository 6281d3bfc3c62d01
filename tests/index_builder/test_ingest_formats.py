"""DeepMimic, CMU exponential maps and h36m17 arrays on real files; unit and up-axis detection; resampling."""

from __future__ import annotations

import numpy as np
import pytest

from index_builder.errors import DataFileError
from index_builder.ingest import IngestConfig
from index_builder.ingest.clip_steps import FileTask, IngestedClip, SkippedClip, ingest_file
from index_builder.ingest.config import CMU_UNIT_TO_MM, UNIT_TO_MM
from index_builder.ingest.file_formats import motion_format
from index_builder.ingest.resampling import resample
from index_builder.ingest.units import ADULT_LEG_MM, detect_unit, detect_up_axis, to_y_up
from tests.index_builder.test_ingest_rigs import ADULT_HEIGHT_MM

CONFIG = IngestConfig(source="test", licence="test fixtures", workers=1)
Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])  # +90 degrees about X: +Y -> +Z


def ingest_one(path, config=CONFIG):
    fmt = motion_format(path)
    assert fmt is not None, path
    return ingest_file(FileTask(path=path, clip_id=path.stem, fmt=fmt), config)


def test_deepmimic_walk(extra_mocap):
    clip = ingest_one(extra_mocap / "deepmimic/data/motions/humanoid3d_walk.txt")
    assert isinstance(clip, IngestedClip), clip
    report = clip.report
    print(f"deepmimic walk: {report.frames} frames, height {report.height_mm:.0f} mm, "
          f"left/right {report.left_right:.2f}")
    assert clip.kind == "deepmimic" and clip.unit == "m" and clip.source_fps == pytest.approx(30.0, rel=1e-3)
    assert report.frames == 39 and report.facing_from == "feet" and report.left_right > 0.8
    assert ADULT_HEIGHT_MM[0] < report.height_mm < ADULT_HEIGHT_MM[1]
    assert report.rigid_range_mm < 1.0


def test_deepmimic_crawl_checks_left_right_by_the_face(extra_mocap):
    clip = ingest_one(extra_mocap / "deepmimic/data/motions/humanoid3d_crawl.txt")
    assert isinstance(clip, IngestedClip), clip
    assert clip.report.facing_from == "nose" and clip.report.left_right > 0.5
    assert clip.source_fps == pytest.approx(60.0, rel=1e-3) and len(clip.poses) == 88  # 2.93 s at 30 fps


def test_deepmimic_skeleton_is_not_a_clip(extra_mocap):
    assert motion_format(extra_mocap / "deepmimic/data/characters/humanoid3d.txt") is None


def test_cmu_exponential_maps(extra_mocap):
    path = extra_mocap / "dmgnn/data/cmu/test/walking/walking_1.txt"
    assert motion_format(path) == "cmu-expmap"
    clip = ingest_one(path)
    assert isinstance(clip, IngestedClip), clip
    report = clip.report
    print(f"cmu expmap walk: {report.frames} frames, height {report.height_mm:.0f} mm, "
          f"left/right {report.left_right:.2f}")
    assert clip.kind == "cmu-expmap" and clip.unit == "cmu" and clip.source_fps == pytest.approx(120.0)
    assert report.frames == 359 - 1  # row 0 is the constant rest row
    assert len(clip.poses) == 90  # 357 / 120 s at 30 fps, every 4th row
    assert report.left_right > 0.8 and ADULT_HEIGHT_MM[0] < report.height_mm < ADULT_HEIGHT_MM[1]
    assert report.rigid_range_mm < 1.0


def test_cmu_exponential_maps_need_their_skeleton(extra_mocap, tmp_path):
    lonely = tmp_path / "walking_1.txt"
    lonely.write_bytes((extra_mocap / "dmgnn/data/cmu/test/walking/walking_1.txt").read_bytes())
    skipped = ingest_one(lonely)
    assert isinstance(skipped, SkippedClip) and "dmgnn-cmu-skeleton.json" in skipped.reason


@pytest.mark.parametrize("units, up", [("m", "z"), ("cm", "y"), ("mm", "y")])
def test_joint_arrays_with_their_units_and_axes(bvh_rigs, tmp_path, units, up):
    reference = ingest_one(bvh_rigs / "mocapbank.bvh")
    poses_mm = reference.poses.astype(np.float64)  # Y up
    stored = poses_mm @ Y_UP_TO_Z_UP.T if up == "z" else poses_mm
    path = tmp_path / "clip.npz"
    np.savez(path, poses=stored / UNIT_TO_MM[units], fps=np.array(30.0), units=np.array(units), up=np.array(up))
    clip = ingest_one(path)
    assert isinstance(clip, IngestedClip), clip
    assert clip.kind == "joint-array" and clip.unit == units and clip.up == up and clip.report.facing_from == "nose"
    np.testing.assert_allclose(clip.poses, reference.poses, atol=1e-2)


def test_npy_arrays_detect_unit_and_up_axis(bvh_rigs, tmp_path):
    reference = ingest_one(bvh_rigs / "mocapbank.bvh")
    zup_m = reference.poses.astype(np.float64) @ Y_UP_TO_Z_UP.T / 1000.0
    path = tmp_path / "clip.npy"
    np.save(path, zup_m)
    clip = ingest_one(path)
    assert isinstance(clip, IngestedClip), clip
    assert clip.unit == "m" and clip.up == "z"
    np.testing.assert_allclose(clip.poses, reference.poses, atol=1e-2)


@pytest.mark.parametrize("unit", ["mm", "cm", "m", "inch", "cmu"])
def test_unit_from_the_leg_length(unit):
    for leg_mm in (700.0, ADULT_LEG_MM, 1000.0):
        assert detect_unit(leg_mm / UNIT_TO_MM[unit], "clip") == unit
    assert UNIT_TO_MM["cmu"] == pytest.approx(56.444, abs=1e-3) == CMU_UNIT_TO_MM


def test_a_leg_that_fits_no_unit_is_refused():
    with pytest.raises(DataFileError, match="fits no unit"):
        detect_unit(3.0e5, "clip")


def test_up_axis_from_the_body(bvh_rigs):
    poses = ingest_one(bvh_rigs / "mocapbank.bvh").poses.astype(np.float64)  # Y up
    assert detect_up_axis(poses) == "y"
    z_up = poses @ Y_UP_TO_Z_UP.T
    assert detect_up_axis(z_up) == "z"
    np.testing.assert_allclose(to_y_up(z_up, "z"), poses, atol=1e-9)


def test_resampling_keeps_equal_rates_and_interpolates_others():
    joints = np.arange(10, dtype=np.float64)[:, None, None] * np.ones((1, 17, 3))
    same = resample(joints, np.arange(10) * 0.0333333, 30.0)
    assert same is joints
    down = resample(joints, np.arange(10) / 120.0, 30.0)
    np.testing.assert_array_equal(down[:, 0, 0], [0.0, 4.0, 8.0])
    up = resample(joints, np.arange(10) / 20.0, 30.0)  # 0.45 s at 20 fps -> 14 frames at 30 fps
    np.testing.assert_allclose(up[:, 0, 0], np.arange(14) * 20.0 / 30.0)
    uneven = resample(joints, np.array([0, 0.1, 0.15, 0.2, 0.3, 0.35, 0.4, 0.5, 0.55, 0.6]), 10.0)
    np.testing.assert_allclose(uneven[:, 0, 0], [0, 1, 3, 4, 6, 7, 9])
