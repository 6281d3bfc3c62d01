"""Every BVH rig family on a real file: recognised, unit and axes detected, left/right check passing, an adult's
height, rigid bones; unknown rigs named; a TOML mapping adds a rig without code."""

from __future__ import annotations

import numpy as np
import pytest

from index_builder.errors import ConfigError, UnknownRigError
from index_builder.ingest import IngestConfig, load_user_mapping, recognise_rig
from index_builder.ingest.bvh import read_bvh
from index_builder.ingest.clip_steps import FileTask, IngestedClip, ingest_file
from tests.index_builder.ingest_fixtures import CMU_BVH

CONFIG = IngestConfig(source="test", licence="test fixtures", workers=1)
ADULT_HEIGHT_MM = (1400.0, 1900.0)


def ingest_one(path, config=CONFIG) -> IngestedClip:
    result = ingest_file(FileTask(path=path, clip_id=path.stem, fmt="bvh"), config)
    assert isinstance(result, IngestedClip), result
    return result


def assert_plausible(clip: IngestedClip, kind: str, unit: str, fps: float) -> None:
    report = clip.report
    print(f"{kind}: {report.frames} frames at {clip.source_fps:.1f} fps, height {report.height_mm:.0f} mm "
          f"({report.standing_frames} standing), left/right {report.left_right:.2f} from the {report.facing_from}, "
          f"rigid range {report.rigid_range_mm:.4f} mm")
    assert clip.kind == kind and clip.unit == unit and clip.up == "y"
    assert clip.source_fps == pytest.approx(fps, rel=1e-3)
    assert report.left_right > 0.8 and report.facing_from == "feet"
    assert ADULT_HEIGHT_MM[0] < report.height_mm < ADULT_HEIGHT_MM[1]
    assert report.rigid_range_mm < 1.0
    assert clip.poses.dtype == np.float32 and clip.poses.shape[1:] == (17, 3) and np.isfinite(clip.poses).all()


def test_mixamo(bvh_rigs):
    clip = ingest_one(bvh_rigs / "mixamo_freebvh.bvh")
    assert_plausible(clip, "mixamo", "cm", 30.0)
    assert len(clip.poses) == clip.report.frames == 69


def test_mocapbank(bvh_rigs):
    clip = ingest_one(bvh_rigs / "mocapbank.bvh")
    assert_plausible(clip, "mocapbank", "cm", 30.0)
    assert len(clip.poses) == 455


def test_cmu_in_its_common_bvh_conversion():
    clip = ingest_one(CMU_BVH)
    assert_plausible(clip, "cmu", "cmu", 120.0)
    assert len(clip.poses) == 2  # 6 frames at 120 fps span 1/24 s: frames 0 and 4 at 30 fps


def test_iclone(extra_mocap):
    for path in sorted((extra_mocap / "iclone").rglob("*.bvh")):
        assert_plausible(ingest_one(path), "iclone", "cm", 60.0)


def test_bandai_through_the_generic_path_matches_the_loader(bandai_bvh):
    from index_builder.ingest.mocap_skeletons import BANDAI, clip_to_h36m17
    from model.pose.units import MM_PER_CM

    clip = ingest_one(bandai_bvh)
    assert_plausible(clip, "bandai", "cm", 30.0)
    np.testing.assert_array_equal(clip.poses, clip_to_h36m17(read_bvh(bandai_bvh), MM_PER_CM, BANDAI))


def test_z_up_file_is_turned_y_up(bvh_rigs, tmp_path):
    # The MocapBank file under a new root joint turned +90 degrees about X (Rx(90) takes +Y to +Z): Z up.
    lines = (bvh_rigs / "mocapbank.bvh").read_text().splitlines()
    motion_at = next(i for i, line in enumerate(lines) if line.strip() == "MOTION")
    hierarchy = "\n".join(lines[:motion_at]).replace(
        "ROOT Hips", "ROOT ZUp\n{\nOFFSET 0 0 0\nCHANNELS 3 Zrotation Xrotation Yrotation\nJOINT Hips", 1) + "\n}"
    rows = [line for line in lines[motion_at + 3 :] if line.strip()]
    motion = "\n".join(f"0 90 0 {row}" for row in rows)
    path = tmp_path / "zup.bvh"
    path.write_text(f"{hierarchy}\nMOTION\nFrames: {len(rows)}\nFrame Time: 0.033333\n{motion}\n")
    turned = ingest_one(path)
    original = ingest_one(bvh_rigs / "mocapbank.bvh")
    assert turned.up == "z" and original.up == "y"
    np.testing.assert_allclose(turned.poses, original.poses, atol=1e-3)
    assert turned.report.height_mm == pytest.approx(original.report.height_mm, abs=1e-3)


def test_unknown_rig_names_the_joints_it_could_not_map(bvh_rigs):
    clip = read_bvh(bvh_rigs / "mocapbank.bvh")
    renamed = clip.skeleton.names[:]
    skeleton = clip.skeleton.__class__(
        names=tuple(n.replace("LeftKnee", "Knee_L").replace("LeftElbow", "Elbow_L") for n in renamed),
        parents=clip.skeleton.parents, offsets=clip.skeleton.offsets, channels=clip.skeleton.channels,
        end_sites=clip.skeleton.end_sites)
    with pytest.raises(UnknownRigError) as err:
        recognise_rig(skeleton, "renamed.bvh")
    message = str(err.value)
    assert "unknown rig" in message and "closest is mocapbank" in message
    assert "LeftKnee (l_knee)" in message and "LeftElbow (l_elbow)" in message and "--mapping" in message


def test_hierarchy_out_of_order_is_not_a_rig(bvh_rigs):
    clip = read_bvh(bvh_rigs / "mocapbank.bvh")
    names = list(clip.skeleton.names)
    knee, ankle = names.index("LeftKnee"), names.index("LeftAnkle")
    names[knee], names[ankle] = "LeftAnkle", "LeftKnee"
    skeleton = clip.skeleton.__class__(names=tuple(names), parents=clip.skeleton.parents,
                                       offsets=clip.skeleton.offsets, channels=clip.skeleton.channels)
    with pytest.raises(UnknownRigError, match="LeftKnee is not above LeftAnkle"):
        recognise_rig(skeleton, "swapped.bvh")


USER_MAPPING = """
name = "studio"
prefix = "Rig_"
head = "Head"
toes = []

[head_frame]
up = "+Y"
forward = "+Z"
left = "+X"

[joints]
l_hip = "LHip"
r_hip = "RHip"
l_knee = "LKnee"
r_knee = "RKnee"
l_ankle = "LAnkle"
r_ankle = "RAnkle"
l_shoulder = "LShoulder"
r_shoulder = "RShoulder"
l_elbow = "LElbow"
r_elbow = "RElbow"
l_wrist = "LWrist"
r_wrist = "RWrist"
"""


def test_user_mapping_adds_a_rig_without_code(bvh_rigs, tmp_path):
    text = (bvh_rigs / "mocapbank.bvh").read_text()
    for word in ("Hip", "Knee", "Ankle", "Shoulder", "Elbow", "Wrist"):
        text = text.replace(f"Left{word}", f"Rig_L{word}").replace(f"Right{word}", f"Rig_R{word}")
    path = tmp_path / "studio.bvh"
    path.write_text(text)
    with pytest.raises(UnknownRigError):
        recognise_rig(read_bvh(path).skeleton, str(path))

    mapping = tmp_path / "studio.toml"
    mapping.write_text(USER_MAPPING.replace("toes = []\n", ""))
    family = load_user_mapping(mapping)
    config = IngestConfig(source="test", licence="test", families=(family,), workers=1)
    clip = ingest_one(path, config)
    original = ingest_one(bvh_rigs / "mocapbank.bvh")
    assert clip.kind == "studio"
    np.testing.assert_array_equal(clip.poses, original.poses)
    assert clip.report == original.report


def test_bad_user_mappings_are_refused_with_the_reason(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(USER_MAPPING.replace('l_wrist = "LWrist"\n', ""))
    with pytest.raises(ConfigError, match="missing l_wrist"):
        load_user_mapping(path)
    path.write_text(USER_MAPPING.replace('left = "+X"', 'left = "-X"'))
    with pytest.raises(ConfigError, match="left-handed"):
        load_user_mapping(path)
    path.write_text(USER_MAPPING.replace("toes = []", "toes = ['a']"))
    with pytest.raises(ConfigError, match="toes"):
        load_user_mapping(path)
