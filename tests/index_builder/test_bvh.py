"""BVH parsing and forward kinematics against positions computed by hand (round trips share the loader's own
convention and cannot catch a convention error)."""

import numpy as np
import pytest

from index_builder.errors import BvhParseError
from index_builder.ingest.bvh import forward_kinematics, parse_bvh, read_bvh


def chain_bvh(root_channels: str, a_channels: str, b_block: str, motion: str) -> str:
    return f"""HIERARCHY
ROOT Root
{{
  OFFSET 0 0 0
  CHANNELS {len(root_channels.split())} {root_channels}
  JOINT A
  {{
    OFFSET 0 10 0
    CHANNELS {len(a_channels.split())} {a_channels}
{b_block}
  }}
}}
MOTION
Frames: 1
Frame Time: 0.0333333
{motion}
"""


def test_zxy_order_and_position_channels_replace_offset():
    # Root: 6 channels, at (1, 2, 3), Rz(90) (x -> y, y -> -x).
    # A: 3 channels Z X Y = (0, 90, 0), so R_A = Rz(90) @ Rx(90); A sits at root + Rz(90) (0, 10, 0) = (-9, 2, 3).
    # B: 6 channels whose position (0, 4, 0) REPLACES its OFFSET (0, 100, 0):
    #    B = A + Rz(90) Rx(90) (0, 4, 0) = A + Rz(90) (0, 0, 4) = (-9, 2, 7).
    b_block = """    JOINT B
    {
      OFFSET 0 100 0
      CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
      End Site
      {
        OFFSET 0 1 0
      }
    }"""
    text = chain_bvh(
        "Xposition Yposition Zposition Zrotation Xrotation Yrotation",
        "Zrotation Xrotation Yrotation",
        b_block,
        "1 2 3 90 0 0  0 90 0  0 4 0 0 0 0",
    )
    clip = parse_bvh(text, "chain.bvh")
    positions = forward_kinematics(clip, scale=1.0).positions[0]
    np.testing.assert_allclose(positions, [[1, 2, 3], [-9, 2, 3], [-9, 2, 7]], atol=1e-9)


def test_xyz_order_three_channel_joints_and_scale():
    # Root: Ry(90) (x -> -z, z -> x). A: X Y Z = (90, 0, 90): R_A = Rx(90) @ Rz(90), at Ry(90) (0, 10, 0) = (0, 10, 0).
    # B: 3 rotation channels, OFFSET (0, 0, 6): B = A + Ry(90) Rx(90) Rz(90) (0, 0, 6) = A + Ry(90) Rx(90) (0, 0, 6)
    #    = A + Ry(90) (0, -6, 0) = (0, 4, 0). Scale 10 turns file units into mm.
    b_block = """    JOINT B
    {
      OFFSET 0 0 6
      CHANNELS 3 Xrotation Yrotation Zrotation
      End Site
      {
        OFFSET 0 1 0
      }
    }"""
    text = chain_bvh(
        "Xposition Yposition Zposition Xrotation Yrotation Zrotation",
        "Xrotation Yrotation Zrotation",
        b_block,
        "0 0 0 0 90 0  90 0 90  0 0 0",
    )
    positions = forward_kinematics(parse_bvh(text, "chain.bvh"), scale=10.0).positions[0]
    np.testing.assert_allclose(positions, [[0, 0, 0], [0, 100, 0], [0, 40, 0]], atol=1e-9)


def test_reads_hierarchy_end_sites_and_frame_time(tmp_path):
    path = tmp_path / "one.bvh"
    path.write_text(chain_bvh("Xposition Yposition Zposition Zrotation Xrotation Yrotation",
                              "Zrotation Xrotation Yrotation", "", "0 0 0 0 0 0 0 0 0"))
    clip = read_bvh(path)
    assert clip.skeleton.names == ("Root", "A")
    assert clip.skeleton.parents.tolist() == [-1, 0]
    assert clip.num_frames == 1 and clip.fps == pytest.approx(30.0, rel=1e-5)


GOOD = chain_bvh("Xposition Yposition Zposition Zrotation Xrotation Yrotation", "Zrotation Xrotation Yrotation", "",
                 "0 0 0 0 0 0 0 0 0")


@pytest.mark.parametrize(
    "text, problem",
    [
        (GOOD.split("MOTION")[0], "no MOTION section"),
        (GOOD.replace("Frames: 1", "Frames: 3"), "header says 3 frames but the file has 1"),
        (GOOD.replace("CHANNELS 3 Zrotation", "CHANNELS 2 Zrotation"), "wrong channel count"),
        (GOOD.replace("0 0 0 0 0 0 0 0 0", "0 0 0 0 0 0 0 0"), "frame 0 has 8 values but the hierarchy declares 9"),
        (GOOD.replace("0 0 0 0 0 0 0 0 0", "0 0 0 0 0 x 0 0 0"), "not a number"),
        (GOOD.replace("OFFSET 0 10 0", "OFFSET 0 10"), "OFFSET value is not a number"),
        (GOOD[: GOOD.index("JOINT A") + 12], "MOTION"),
    ],
)
def test_bad_files_name_the_file_and_the_problem(tmp_path, text, problem):
    path = tmp_path / "bad.bvh"
    path.write_text(text)
    with pytest.raises(BvhParseError) as err:
        read_bvh(path)
    assert str(path) in str(err.value)
    assert problem in str(err.value)
