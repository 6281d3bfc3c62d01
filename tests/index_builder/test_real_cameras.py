"""The fixed real rig (index_builder/evaluation/real_cameras.py) and photo consistency
(index_builder/evaluation/photo_consistency.py): the geometry on cases with known answers, both sections end to end
on tiny checkpoints trained on the shipped sample."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from index_builder.config import BuildPaths, get_paths
from index_builder.datasets.labelled_photos import LabelledPerson, Match, photos_present
from index_builder.evaluation import EvalSettings, evaluate_run, write_report
from index_builder.evaluation.held_out import subsample_rows
from index_builder.evaluation.images import detection_pixels, photo_intrinsics
from index_builder.evaluation.photo_consistency import (
    ANGLE_RANGE_DEG,
    apply_homography,
    choose_rotation,
    homography,
    kabsch_rotation,
    misalignment_deg,
    photo_consistency,
    rotation_toward,
    warp_image,
)
from index_builder.evaluation.real_cameras import (
    BIN_NAMES,
    OFFSET_RADIUS_MM,
    TRAJECTORY_CLIP_MM,
    aimed_at_pelvis,
    camera_batch,
    clip_offset,
    content_matched_bins,
    fixed_real_rig,
    matched_ratio,
    off_axis_bins,
    place_on_floor,
    rig_cameras,
    rig_views,
    trajectory_residual,
)
from index_builder.evaluation.report.document import PLOTS
from index_builder.training.config import TINY
from index_builder.training.loop import train_martinez, train_unihpr
from model.pose.camera_rigs import pixels_of
from model.pose.cameras import world_to_camera
from model.pose.normalization import normalize_2d
from model.pose.perspective_crop import pixels_to_rays
from model.pose.skeleton import ROOT

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def test_split(sample_db):
    return sample_db.split("test")


# ------------------------------------------------------------------------------------------- placement


def test_clip_offset_is_in_the_disc_and_fixed_by_the_name():
    names = [f"dataset-1_walk_{i:03d}" for i in range(200)]
    offsets = np.stack([clip_offset(n) for n in names])
    assert (np.linalg.norm(offsets, axis=1) <= OFFSET_RADIUS_MM).all()
    assert np.linalg.norm(offsets, axis=1).max() > 0.8 * OFFSET_RADIUS_MM  # it fills the disc
    np.testing.assert_array_equal(clip_offset(names[7]), offsets[7])  # the same name, the same offset
    assert len({tuple(o) for o in offsets}) == len(names)
    assert not np.allclose(clip_offset(names[7], seed=1), offsets[7])


def test_trajectory_relative_to_its_moving_average_and_clipped(test_split):
    db = test_split
    clip = 0
    rows = np.flatnonzero(db.clip == clip)
    fps = float(db.clips.fps[clip])
    t = (db.frame[rows] - db.frame[rows].min()) / fps
    poses = db.poses.copy()
    poses[rows, :, 0] = poses[rows, :, 0] - poses[rows, ROOT : ROOT + 1, 0] + 2000.0 * t[:, None]  # 2 m/s along x
    poses[rows, :, 2] -= poses[rows, ROOT : ROOT + 1, 2]
    walking = replace(db, poses=poses)
    residual = trajectory_residual(walking)
    length = np.linalg.norm(residual, axis=1)
    assert length.max() <= TRAJECTORY_CLIP_MM + 1e-6
    # a straight line at constant speed equals its centred moving average where the 3 s window fits in the clip
    inside = (t >= 1.5) & (t <= t.max() - 1.5)
    assert inside.any() and np.abs(residual[rows][inside]).max() < 1e-6
    # at the first frame the window holds 0-1.5 s, mean 0.75 s: 1.5 m behind it, clipped to 1 m
    np.testing.assert_allclose(residual[rows[0]], [-TRAJECTORY_CLIP_MM, 0.0], atol=1e-6)
    # an unclipped case against the direct mean of the frames within +-1.5 s
    other = np.flatnonzero(db.clip == 1)
    f = db.frame[other].astype(float)
    xz = db.poses[other][:, ROOT][:, [0, 2]].astype(float)
    direct = xz - np.stack([xz[np.abs(f - g) <= 1.5 * db.clips.fps[1]].mean(0) for g in f])
    direct *= np.minimum(1.0, TRAJECTORY_CLIP_MM / np.maximum(np.linalg.norm(direct, axis=1), 1e-12))[:, None]
    np.testing.assert_allclose(residual[other], direct, atol=1e-6)


def test_place_on_floor_moves_the_pelvis_to_offset_plus_residual(test_split):
    rows, _ = subsample_rows(test_split, 3.0)
    world = place_on_floor(test_split, rows)
    offsets = np.stack([clip_offset(str(n)) for n in test_split.clips.name])
    expected = offsets[test_split.clip[rows]] + trajectory_residual(test_split)[rows]
    np.testing.assert_allclose(world[:, ROOT][:, [0, 2]], expected, atol=1e-6)
    np.testing.assert_allclose(world[..., 1], test_split.poses[rows][..., 1], atol=1e-4)  # heights kept
    local = world - world[:, ROOT : ROOT + 1]
    source = test_split.poses[rows] - test_split.poses[rows][:, ROOT : ROOT + 1]
    np.testing.assert_allclose(local, source, atol=1e-3)  # only moved, not turned


# -------------------------------------------------------------------------------------------- the views


def test_kept_views_lie_inside_the_image_and_undistort_to_the_true_rays(test_split):
    rows, _ = subsample_rows(test_split, 1.0)
    world = place_on_floor(test_split, rows)
    world[::3, :, 0] += 2500.0  # some poses far off the floor centre: some cameras lose them
    cameras = rig_cameras("S9")
    views = rig_views(world, cameras)
    assert 0 < len(views.pose) < 4 * len(rows)
    assert (views.pixels >= 0).all() and (views.pixels <= views.image_size[:, None, :]).all()
    for c, cam in enumerate(cameras):  # what was dropped has a joint outside the image
        mine = views.camera == c
        dropped = np.setdiff1d(np.arange(len(rows)), views.pose[mine])
        batch = camera_batch(cam, len(dropped))
        cam3d = world_to_camera(world[dropped], batch)
        px = pixels_of(world[dropped], batch)
        assert (((px < 0) | (px > batch.size[:, None, :])).any(axis=(1, 2)) | (cam3d[..., 2] <= 0).any(1)).all()
    # the distorted pixels undistort with the same intrinsics to x / z, y / z of the camera-frame joints
    batch = camera_batch(cameras[0], len(rows))
    mine = views.camera == 0
    cam3d = world_to_camera(world[views.pose[mine]], batch[views.pose[mine]])
    rays, residual = pixels_to_rays(views.pixels[mine], views.intrinsics[mine])
    np.testing.assert_allclose(rays, cam3d[..., :2] / cam3d[..., 2:3], atol=1e-7)
    assert residual.max() < 1e-9
    assert np.abs(views.intrinsics.distortion[0]).max() > 0.1  # the lens is applied
    np.testing.assert_allclose(views.target[:, ROOT], 0.0)


def test_aimed_views_put_the_pelvis_on_the_axis_and_keep_the_pose(test_split):
    """The control: the camera turned about its centre, so the pelvis projects to the principal point, the pose
    is the same up to that rotation, its distance is kept, and no lens remains."""
    rows, _ = subsample_rows(test_split, 1.0)
    views = rig_views(place_on_floor(test_split, rows), rig_cameras("S9"))
    pixels, intrinsics, target = aimed_at_pelvis(views)
    np.testing.assert_allclose(pixels[:, ROOT], views.intrinsics.principal_point, atol=1e-6)
    assert not intrinsics.distortion.any()
    np.testing.assert_allclose(np.linalg.norm(target, axis=-1), np.linalg.norm(views.target, axis=-1), atol=1e-6)
    # the pixels are the pinhole projection of the turned pose at the pelvis's own distance
    depth = np.linalg.norm(views.pelvis, axis=-1)[:, None]
    rays, _ = pixels_to_rays(pixels, intrinsics)
    np.testing.assert_allclose(rays, target[..., :2] / (target[..., 2:3] + depth[..., None]), atol=1e-9)
    # a view on the axis already is left alone
    on_axis = np.argmin(views.off_axis)
    assert views.off_axis[on_axis] < 1.0
    np.testing.assert_allclose(target[on_axis], views.target[on_axis], atol=40.0 * views.off_axis[on_axis])


def test_off_axis_bins():
    np.testing.assert_array_equal(off_axis_bins(np.array([0.0, 4.99, 5.0, 9.9, 10.0, 14.9, 15.0, 40.0])),
                                  [0, 0, 1, 1, 2, 2, 3, 3])
    assert len(BIN_NAMES) == 4


def test_content_matched_bins_compare_the_bins_on_like_poses():
    """Two contents, one twice as hard; bin 0 holds mostly the easy one, bin 3 mostly the hard one: their plain means
    differ, their content-matched means do not; a content with too few views in a bin is left out of it."""
    content = np.array(["walk"] * 80 + ["run"] * 20 + ["walk"] * 10 + ["run"] * 40 + ["jump"] * 2)
    bins = np.array([0] * 100 + [3] * 52)
    errors = np.where(content == "run", 30.0, 15.0) + np.where(bins == 3, 1.0, 0.0)  # the far bin costs 1 mm
    matched = content_matched_bins(errors, bins, content, min_views=5)
    walk, run = 90 / 152, 60 / 152
    assert matched["per_bin"]["0-5"] == pytest.approx((walk * 15 + run * 30) / (walk + run), abs=1e-3)
    assert matched["per_bin"]["15+"] == pytest.approx(matched["per_bin"]["0-5"] + 1.0, abs=1e-3)
    assert matched["per_bin"]["5-10"] is None and matched["coverage"]["5-10"] == 0.0
    assert matched["coverage"]["15+"] == pytest.approx(150 / 152, abs=1e-3)  # the 2 "jump" views are left out
    plain = {b: errors[bins == b].mean() for b in (0, 3)}
    assert plain[3] / plain[0] > 1.3  # what the bins' pose mix alone does to the plain means
    counts = {"0-5": 100, "5-10": 0, "10-15": 0, "15+": 52}
    assert matched_ratio(matched["per_bin"], counts) == pytest.approx(matched["per_bin"]["15+"]
                                                                      / matched["per_bin"]["0-5"], abs=1e-3)


def test_rig_section_with_a_blind_lifter(test_split):
    """Counts add up and the errors are those of the lifter's answers, per bin too."""
    rows, _ = subsample_rows(test_split, 1.0)

    def zeros(pixels, intrinsics):
        return np.zeros(pixels.shape[:2] + (3,))

    told = {}

    def spy(pixels, intrinsics):
        told.setdefault("focal", []).append(intrinsics.focal[0].copy())
        return zeros(pixels, intrinsics)

    section = fixed_real_rig({"unihpr": zeros, "martinez_x": spy}, {"unihpr": "-", "martinez_x": "-"}, test_split,
                             rows)
    assert sum(section["bin_counts"].values()) == section["views"] <= section["views_total"] == 4 * len(rows)
    assert sum(section["views_per_camera"].values()) == section["views"]
    world = place_on_floor(test_split, rows)
    views = rig_views(world, rig_cameras("S9"))
    expected = np.linalg.norm(views.target, axis=-1).mean(-1)  # MPJPE of an all-zero answer
    run = section["runs"]["intrinsics"]
    assert run["lifters"]["unihpr"]["mpjpe_mm"] == pytest.approx(expected.mean(), abs=1e-3)
    bins = off_axis_bins(views.off_axis)
    for b, name in enumerate(BIN_NAMES):
        got = run["lifters"]["unihpr"]["per_bin"][name]["mpjpe_mm"]
        assert got is None if not (bins == b).any() else got == pytest.approx(expected[bins == b].mean(), abs=1e-3)
    assert run["better_martinez"] == "martinez_x" and run["ratio_unihpr_to_better_martinez"]["mpjpe_mm"] == 1.0
    # the second run tells every lifter the default field of view, not the calibration
    assert told["focal"][0][0] == pytest.approx(1145.0494, abs=1e-3)
    assert told["focal"][1][0] == pytest.approx(500.0 / math.tan(math.radians(30.0)))
    assert [t["met"] for t in section["targets"]][:2] == [False, False]
    # the control lifts the same views aimed at the pelvis: a blind lifter's error is the same per bin
    aimed = run["aimed"]
    assert told["focal"][2][0] == pytest.approx(1145.0494, abs=1e-3)
    for name in BIN_NAMES:
        real, control = run["lifters"]["unihpr"]["per_bin"][name], aimed["lifters"]["unihpr"]["per_bin"][name]
        assert control["mpjpe_mm"] == pytest.approx(real["mpjpe_mm"], abs=1e-3) if real["mpjpe_mm"] else True
        assert aimed["off_axis_cost"]["unihpr"][name] in (None, pytest.approx(1.0, abs=1e-4))
    # the content-matched bins are those of the lifter's per-view errors and each view's clip content
    content = test_split.clips.content[test_split.clip[rows[views.pose]]]
    assert run["unihpr_content_matched"]["per_bin"] == content_matched_bins(expected, bins, content)["per_bin"]


# --------------------------------------------------------------------------------------- photo geometry


def test_the_warp_moves_a_point_where_k_r_k_inverse_says():
    w, h = 320, 240
    K = np.array([[277.0, 0.0, 160.0], [0.0, 277.0, 120.0], [0.0, 0.0, 1.0]])
    point = np.array([205.3, 141.7])
    yy, xx = np.mgrid[0:h, 0:w] + 0.5  # pixel centres, continuous coordinates
    blob = np.exp(-((xx - point[0]) ** 2 + (yy - point[1]) ** 2) / (2 * 2.0**2))
    image = Image.fromarray(blob.astype(np.float32), mode="F")
    R = rotation_toward(point - K[:2, 2], 8.0)
    H = homography(K, R)
    warped = np.asarray(warp_image(image, H), dtype=np.float64)
    centroid = np.array([(warped * xx).sum(), (warped * yy).sum()]) / warped.sum()
    where = apply_homography(H, point)
    np.testing.assert_allclose(centroid, where, atol=0.05)
    # the point moved away from the principal point (toward the image edge), by about f tan(8 degrees) near the axis
    assert np.linalg.norm(where - K[:2, 2]) > np.linalg.norm(point - K[:2, 2]) + 0.9 * 277.0 * math.tan(
        math.radians(8.0))
    # and H x is the projection of R times x's ray
    ray = np.linalg.solve(K, [*point, 1.0])
    turned = K @ (R @ ray)
    np.testing.assert_allclose(where, turned[:2] / turned[2], atol=1e-9)


def test_detection_pixels_undo_the_label_normalisation():
    """lift_matches reads the detection back in pixels: the inverse of ``labelled_photos``' normalisation."""
    rng = np.random.default_rng(3)
    joints = rng.uniform(100, 400, (17, 2))
    detected = joints + rng.normal(scale=5.0, size=(17, 2))
    person = LabelledPerson("ochuman", Path("x.jpg"), np.array([100.0, 100.0, 400.0, 400.0]), joints,
                            np.zeros(17, bool))
    _, centre, scale = normalize_2d(joints[None])
    match = Match(person=person, label=(joints - centre) / scale, detection=(detected - centre) / scale,
                  visibility=np.ones(17), own={}, scale=float(scale[0]), box_size=np.ptp(joints, 0))
    np.testing.assert_allclose(detection_pixels(match), detected, atol=1e-9)


def test_photo_intrinsics_read_the_35mm_focal_length_as_the_service_does(tmp_path):
    image = Image.new("RGB", (300, 400))
    intrinsics, source = photo_intrinsics(image)
    assert source == "default_fov"
    np.testing.assert_allclose(intrinsics.focal, [[150.0 / math.tan(math.radians(30.0))] * 2])
    np.testing.assert_allclose(intrinsics.principal_point, [[150.0, 200.0]])
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0xA405] = 28  # FocalLengthIn35mmFilm, mm
    image.save(tmp_path / "portrait.jpg", exif=exif)
    with Image.open(tmp_path / "portrait.jpg") as opened:
        intrinsics, source = photo_intrinsics(opened)
    assert source == "exif"
    np.testing.assert_allclose(intrinsics.focal, [[28.0 / 36.0 * 400.0] * 2])  # over the long side


def test_kabsch_recovers_a_known_rotation(test_split):
    pose = test_split.poses[100:101].astype(np.float64)
    R = rotation_toward(np.array([0.6, -0.8]), 17.0)
    np.testing.assert_allclose(np.linalg.det(R), 1.0)
    turned = pose @ R.T + np.array([300.0, -20.0, 4000.0])  # root-relative: a translation does not count
    np.testing.assert_allclose(misalignment_deg(pose, turned), [17.0], atol=1e-6)
    centred = pose - pose[:, ROOT : ROOT + 1]
    np.testing.assert_allclose(kabsch_rotation(centred, centred @ R.T)[0], R, atol=1e-9)
    np.testing.assert_allclose(misalignment_deg(pose, pose), [0.0], atol=1e-4)


def test_rotation_is_shrunk_or_skipped_to_keep_the_person_inside():
    K = np.array([[554.0, 0.0, 320.0], [0.0, 554.0, 240.0], [0.0, 0.0, 1.0]])
    size = (640, 480)

    def person(x0, y0, x1, y1):
        joints = np.full((17, 2), np.nan)
        joints[:4] = [[x0, y0], [x1, y0], [x0, y1], [x1, y1]]
        return LabelledPerson("mpii", Path("x.jpg"), np.array([x0, y0, x1, y1]), joints, np.zeros(17, bool))

    rng = np.random.default_rng(0)
    for _ in range(20):
        small = person(350, 200, 400, 300)
        R, angle, drawn, direction = choose_rotation(small, K, size, rng)
        assert ANGLE_RANGE_DEG[0] <= angle <= drawn <= ANGLE_RANGE_DEG[1]
        moved = apply_homography(homography(K, R), small.box_points())
        assert (moved >= 0).all() and (moved <= size).all()
        assert np.linalg.norm(moved.mean(0) - K[:2, 2]) > np.linalg.norm(small.box_points().mean(0) - K[:2, 2])
    tall = person(500, 2, 630, 478)  # fills the height and touches the right edge: nowhere to go
    assert choose_rotation(tall, K, size, rng) is None


# ----------------------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def rig_run(sample_db, tmp_path_factory) -> Path:
    """A tiny UniHPR, a tiny Martinez on crop features and one on rays (seconds)."""
    run = tmp_path_factory.mktemp("rig_run")
    train_db, val_db = sample_db.split("train"), sample_db.split("val")
    train_unihpr(TINY, train_db, val_db, run / "unihpr.pt", progress=False)
    train_martinez(TINY, train_db, val_db, run / "martinez_budget.pt", budget_poses=TINY.poses_drawn, progress=False)
    train_martinez(TINY, train_db, val_db, run / "martinez_absolute.pt", budget_poses=TINY.poses_drawn,
                   progress=False, inputs="rays")
    return run


def test_evaluate_writes_the_new_sections(rig_run, sample_db, tmp_path):
    settings = replace(EvalSettings(), max_queries=50, eval_fps=1.0, motion_queries=0, real_retrieval_queries=30)
    result = evaluate_run(rig_run, sample_db, get_paths().sample, settings, progress=False)
    rig = result["real_rig"]
    assert rig["status"] == "computed" and rig["subject"] == "S9"
    for run in ("intrinsics", "default_fov"):
        e = rig["runs"][run]
        assert set(e["lifters"]) == {"unihpr", "martinez_budget", "martinez_absolute"}
        assert all(math.isfinite(x["mpjpe_mm"]) and math.isfinite(x["pa_mpjpe_mm"]) for x in e["lifters"].values())
        better = min(("martinez_budget", "martinez_absolute"), key=lambda n: e["lifters"][n]["mpjpe_mm"])
        assert e["better_martinez"] == better
        assert e["ratio_unihpr_to_better_martinez"]["mpjpe_mm"] == pytest.approx(
            e["lifters"]["unihpr"]["mpjpe_mm"] / e["lifters"][better]["mpjpe_mm"], rel=1e-2)
    assert sum(rig["bin_counts"].values()) == rig["views"] > 0
    assert len(rig["targets"]) == 3 and all(isinstance(t["met"], bool) for t in rig["targets"])
    assert result["photo_consistency"]["status"] == "skipped"
    assert "real_rig" in result["wall_seconds"] and "photo_consistency" in result["wall_seconds"]
    assert not any("martinez_absolute" in n for n in result["notes"])

    written = write_report(result, tmp_path / "reports")
    assert tmp_path / "reports" / PLOTS["real_rig"] in written
    md = (tmp_path / "reports" / "eval.md").read_text()
    assert "## Fixed real rig" in md and f"]({PLOTS['real_rig']})" in md and "On the fixed real rig" in md
    assert "reweighted to the content mix of all views" in md
    assert "## Photo consistency" in md and "Skipped: photo consistency not computed" in md
    assert json.loads((tmp_path / "reports" / "eval.json").read_text())["real_rig"]["views"] == rig["views"]
    with Image.open(tmp_path / "reports" / PLOTS["real_rig"]) as image:
        assert image.format == "PNG" and np.asarray(image.convert("L")).std() > 5

    # without martinez_absolute the rig runs on, with a note
    alone = tmp_path / "alone"
    alone.mkdir()
    for name in ("unihpr.pt", "martinez_budget.pt"):
        shutil.copy(rig_run / name, alone / name)
    result = evaluate_run(alone, sample_db, get_paths().sample, settings, progress=False)
    assert set(result["real_rig"]["runs"]["intrinsics"]["lifters"]) == {"unihpr", "martinez_budget"}
    assert any("martinez_absolute.pt: missing" in n for n in result["notes"])


def test_photo_consistency_on_the_labelled_photos(rig_run):
    pose_images = BuildPaths().pose_images
    if not photos_present(pose_images):
        pytest.skip(f"labelled photos not found at {pose_images}")
    from index_builder.bundle.blazepose_assets import fetch_blazepose_models
    from index_builder.training.checkpoint import load_unihpr

    try:
        files = fetch_blazepose_models()
    except Exception as err:
        pytest.skip(f"BlazePose models unavailable: {err}")
    model, _, _ = load_unihpr(rig_run / "unihpr.pt")
    section = photo_consistency(model, pose_images, files)
    assert section["people"] >= 1 and section["people"] + sum(section["skipped"].values()) == section["found"]
    assert section == photo_consistency(model, pose_images, files) | {"wall_seconds": section["wall_seconds"]}
    for row in section["per_person"]:
        assert ANGLE_RANGE_DEG[0] <= row["rotation_deg"] <= ANGLE_RANGE_DEG[1]
        assert 0 <= row["angle_deg"] <= 180 and math.isfinite(row["angle_without_crop_deg"])
    assert section["angle_deg"]["median"] <= section["angle_deg"]["max"]
    assert isinstance(section["target"]["met"], bool)
