"""The full Bandai data as the cache holds it: every clip, rigid bones, standing heights, left/right, labels, split."""

from collections import Counter

import numpy as np

from index_builder.datasets.bandai import LICENCE
from index_builder.datasets.pose_checks import FLEXIBLE_BONES, bone_ranges, standing_heights, standing_mask
from index_builder.ingest.labels import canonical_label
from model.pose.skeleton import H36M17

RIGID_TOLERANCE_MM = 1.0


def test_every_clip_is_ingested(full_bandai):
    assert len(full_bandai.clips) == 3076
    assert len(full_bandai) == 31914 + 384931
    assert full_bandai.poses.dtype == np.float32 and np.isfinite(full_bandai.poses).all()
    assert "CC BY-NC 4.0" in full_bandai.licence and full_bandai.licence == LICENCE


def test_rigid_bones_keep_their_length_in_every_clip(full_bandai):
    ranges = bone_ranges(full_bandai)
    for bone in ranges:
        print(f"{bone.name:<22} {'rigid' if bone.rigid else 'flexible':<8} mean {bone.mean_mm:6.1f} mm, "
              f"worst within-clip range {bone.worst_clip_range_mm:.4f} mm ({bone.worst_clip})")
        if bone.rigid:
            assert bone.worst_clip_range_mm < RIGID_TOLERANCE_MM, bone
    flexible = [b for b in ranges if not b.rigid]
    assert len(flexible) == len(FLEXIBLE_BONES)
    # The clavicle and spine really bend in this data; a range of zero would mean they were mapped rigidly.
    assert all(b.worst_clip_range_mm > RIGID_TOLERANCE_MM for b in flexible)


def test_standing_frames_measure_like_an_adult(full_bandai):
    stand = standing_mask(full_bandai.poses)
    assert stand.sum() > 1000
    height, pelvis_drop = standing_heights(full_bandai.poses[stand])
    print(f"standing frames {stand.sum()}: ankle to head top {np.percentile(height, [0, 50, 100]).round()} mm, "
          f"pelvis below head top {np.percentile(pelvis_drop, [0, 50, 100]).round()} mm")
    per_clip = {}
    for clip, h in zip(full_bandai.clip[stand], height):
        per_clip.setdefault(clip, []).append(h)
    medians = np.array([np.median(v) for v in per_clip.values()])
    assert ((medians > 1400) & (medians < 1900)).all(), medians.min()
    assert ((pelvis_drop > 600) & (pelvis_drop < 900)).all()


def test_left_is_left_on_a_known_frame(full_bandai):
    # dataset-1_walk_normal_001 walks toward +Z with Y up, so the character's left is +X (left = up x forward).
    clip = int(np.nonzero(full_bandai.clips.name == "dataset-1_walk_normal_001")[0][0])
    pose = full_bandai.poses[full_bandai.clips.start[clip]]
    j = H36M17.index
    end = full_bandai.poses[full_bandai.clips.start[clip] + full_bandai.clips.length[clip] - 1]
    assert end[j("pelvis"), 2] - pose[j("pelvis"), 2] > 5000  # it does walk toward +Z
    for side in ("hip", "shoulder", "knee"):
        assert pose[j(f"l_{side}"), 0] > pose[j(f"r_{side}"), 0]
    assert pose[j("neck_nose"), 2] > pose[j("thorax"), 2]  # the face looks where the body walks


def test_labels_are_normalised_across_the_two_datasets(full_bandai):
    assert canonical_label("dataset-1_masculinity") == "masculine"
    assert canonical_label("dataset-2_walk") == "walk"
    styles = Counter(full_bandai.clips.style.tolist())
    assert "masculinity" not in styles and "old" not in styles and "tired" not in styles
    clips = full_bandai.clips
    both = {s for s in styles if {"dataset-1", "dataset-2"} <= set(clips.dataset[clips.style == s])}
    assert {"masculine", "elderly", "exhausted", "youthful", "feminine", "active", "normal"} <= both
    assert Counter(full_bandai.clips.content.tolist())["walk"] == 15 * 2 + Counter(
        full_bandai.clips.content[full_bandai.clips.dataset == "dataset-2"].tolist())["walk"]


def test_split_is_by_clip_stratified_and_deterministic(full_bandai):
    clips = full_bandai.clips
    assert set(clips.split.tolist()) == {"train", "val", "test"}
    for stratum in {(d, c) for d, c in zip(clips.dataset, clips.content)}:
        members = (clips.dataset == stratum[0]) & (clips.content == stratum[1])
        if members.sum() >= 3:
            assert (clips.split[members] == "test").any(), stratum
    test_share = (clips.split == "test").mean()
    assert 0.12 < test_share < 0.18
    # Every frame of a clip has the clip's split: rows are grouped by clip, never shared.
    assert np.array_equal(np.repeat(np.arange(len(clips)), clips.length), full_bandai.clip)


def test_a_kept_source_is_the_file_byte_for_byte(bandai_bvh):
    from index_builder.datasets.bandai import _bvh_to_poses, _RawClip
    from model.runtime.motion_sources import ClipSources

    raw = bandai_bvh.read_bytes()
    name, _, _, _, blob = _bvh_to_poses(_RawClip(bandai_bvh.stem, "dataset-1", raw.decode("utf-8")), True)
    assert ClipSources.from_blobs(["bvh"], [blob]).text(0) == raw and len(blob) < len(raw) / 3
    assert _bvh_to_poses(_RawClip(name, "dataset-1", raw.decode("utf-8")))[4] is None
