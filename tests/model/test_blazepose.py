"""BlazePose (model/runtime/blazepose.py) against the labelled photos in ../shared/data/pose-images.

A labelled person counts as found when a detected person's box overlaps its label box with IoU >= 0.5 (one-to-one,
greedy by IoU). PCK@0.1: a labelled, visible joint of a found person is correct when the BlazePose joint lies
within 0.1 x the label box diagonal. Only joints both layouts have are compared. Skips only when the shared folder
or the models cannot be obtained.
"""

from __future__ import annotations

import json
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import index_builder.bundle.blazepose_assets as assets
import model.runtime.blazepose as blazepose_module
from index_builder.bundle.blazepose_assets import fetch_blazepose_models
from index_builder.errors import ArtifactError
from model.runtime.blazepose import (
    BLAZEPOSE33,
    LANDMARK_INPUT,
    BlazePose,
    refine_from_heatmap,
    roi_from_detection,
    warp_roi,
)
from model.runtime.blazepose_anchors import NUM_ANCHORS, box_iou, ssd_anchor_centres

REPO_ROOT = Path(__file__).resolve().parents[2]
POSE_IMAGES = REPO_ROOT.parent / "shared" / "data" / "pose-images"
FOUND_IOU = 0.5
PCK_FRACTION = 0.1

BP = {name: i for i, name in enumerate(BLAZEPOSE33)}
COCO17 = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
          "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
          "right_knee", "left_ankle", "right_ankle")
CROWDPOSE14 = COCO17[5:] + ("head", "neck")
MPII16 = ("right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle", "pelvis", "thorax",
          "upper_neck", "head_top", "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow",
          "left_wrist")


@dataclass
class Label:
    box: np.ndarray  # (4,) [x0, y0, x1, y1]
    joints: np.ndarray  # (J, 2) pixels, in the order of `blazepose_index`
    visible: np.ndarray  # (J,) bool: labelled (and, where the layout says so, visible)
    blazepose_index: np.ndarray  # (J,) index into BLAZEPOSE33, -1 where BlazePose has no such joint


def _mapping(names: tuple[str, ...]) -> np.ndarray:
    return np.array([BP.get(n, -1) for n in names])


def _coco_labels(label_file: Path, names: tuple[str, ...], image_dir: Path, prefix: str = "") -> dict:
    data = json.loads(label_file.read_text())
    files = {im["id"]: image_dir / im["file_name"].removeprefix(prefix) for im in data["images"]}
    labels: dict[Path, list[Label]] = {}
    for ann in data["annotations"]:
        kp = np.asarray(ann["keypoints"], np.float32).reshape(-1, 3)
        path = files[ann["image_id"]]
        if ann.get("iscrowd") or not (kp[:, 2] > 0).any() or not path.is_file():
            continue  # unlabelled people (no keypoints) and images not shipped in the folder
        x, y, w, h = ann["bbox"]
        labels.setdefault(path, []).append(Label(np.array([x, y, x + w, y + h], np.float32), kp[:, :2],
                                                 kp[:, 2] > 0, _mapping(names)))
    return labels


def _mpii_labels(label_file: Path, image_dir: Path) -> dict:
    labels: dict[Path, list[Label]] = {}
    for ann in json.loads(label_file.read_text()):
        joints = np.asarray(ann["joints"], np.float32)
        vis = np.asarray(ann["joints_vis"]) > 0
        labelled = (joints > 0).all(axis=1)  # MPII marks unlabelled joints with -1 coordinates
        pts = joints[labelled]
        box = np.concatenate([pts.min(0), pts.max(0)])  # tight box of the labelled joints (head top included)
        labels.setdefault(image_dir / ann["image"], []).append(Label(box, joints, vis & labelled, _mapping(MPII16)))
    return labels


DATASETS = {
    "mpii": lambda root: _mpii_labels(root / "mpii" / "test_mpii.json", root / "mpii"),
    "ochuman": lambda root: _coco_labels(root / "ochuman" / "test_ochuman.json", COCO17, root / "ochuman"),
    "crowdpose": lambda root: _coco_labels(root / "crowdpose" / "test_crowdpose.json", CROWDPOSE14,
                                           root / "crowdpose"),
    "humanart": lambda root: _coco_labels(root / "humanart" / "test_humanart.json", COCO17, root / "humanart",
                                          prefix="HumanArt/images/"),
}


@pytest.fixture(scope="module")
def blazepose() -> BlazePose:
    global _FETCH_ERROR
    if _FETCH_ERROR is None:
        try:
            files = fetch_blazepose_models()
            return BlazePose(files.detector, files.landmarks)
        except ArtifactError as exc:  # no network and no cache: the models cannot be obtained
            _FETCH_ERROR = str(exc)
    pytest.skip(f"BlazePose models unavailable: {_FETCH_ERROR}")  # tried once per session, not once per test


_FETCH_ERROR: str | None = None


@pytest.fixture(scope="module")
def pose_images() -> Path:
    if not (POSE_IMAGES / "README.md").is_file():
        pytest.skip(f"labelled photos not found at {POSE_IMAGES}")
    return POSE_IMAGES


def _load_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def evaluate(bp: BlazePose, labels: dict) -> dict:
    """Found rate, PCK@0.1 and timings over the labelled people of one dataset."""
    n_people = n_found = n_joints = n_correct = 0
    det_ms, lm_ms = [], []
    for path, people in labels.items():
        detected, timings = bp.run(_load_rgb(path))
        det_ms.append(timings.detector_ms)
        lm_ms.extend(timings.landmark_ms)
        n_people += len(people)
        if not detected:
            continue
        iou = np.stack([box_iou(lab.box, np.stack([p.box for p in detected])) for lab in people])  # (L, D)
        while iou.size and iou.max() >= FOUND_IOU:
            li, di = np.unravel_index(np.argmax(iou), iou.shape)
            iou[li, :] = iou[:, di] = -1
            lab, person = people[li], detected[di]
            n_found += 1
            use = lab.visible & (lab.blazepose_index >= 0)
            diag = float(np.hypot(*(lab.box[2:] - lab.box[:2])))
            err = np.linalg.norm(person.keypoints[lab.blazepose_index[use]] - lab.joints[use], axis=1)
            n_joints += int(use.sum())
            n_correct += int((err <= PCK_FRACTION * diag).sum())
    return {"people": n_people, "found": n_found, "found_rate": n_found / max(n_people, 1),
            "joints": n_joints, "pck": n_correct / max(n_joints, 1),
            "detector_ms": float(np.median(det_ms)), "landmark_ms": float(np.median(lm_ms)) if lm_ms else 0.0}


def _report(name: str, r: dict) -> None:
    print(f"\n{name}: found {r['found']}/{r['people']} ({r['found_rate']:.2f}), PCK@{PCK_FRACTION} "
          f"{r['pck']:.3f} over {r['joints']} joints; median detector {r['detector_ms']:.1f} ms, "
          f"landmarks {r['landmark_ms']:.1f} ms")


def test_mpii_found_and_pck(blazepose, pose_images):
    r = evaluate(blazepose, DATASETS["mpii"](pose_images))
    _report("mpii", r)
    assert r["people"] == 5
    assert r["found"] == r["people"], r
    assert r["pck"] >= 0.9, r


def test_crowded_datasets_report(blazepose, pose_images):
    """OCHuman, CrowdPose and Human-Art: occlusion, crowds, acrobatics. BlazePose is a single-person-first model
    (weighted NMS on face boxes merges overlapping people), so the numbers are printed; the asserts only guard
    against regressions on the pooled sets."""
    results = {name: evaluate(blazepose, DATASETS[name](pose_images)) for name in ("ochuman", "crowdpose", "humanart")}
    for name, r in results.items():
        _report(name, r)
    assert {n: r["people"] for n, r in results.items()} == {"ochuman": 5, "crowdpose": 4, "humanart": 2}
    found = sum(r["found"] for r in results.values())
    correct = sum(r["pck"] * r["joints"] for r in results.values())
    joints = sum(r["joints"] for r in results.values())
    assert found >= 3, results
    assert correct / joints >= 0.75, results


def test_no_person_in_plain_images(blazepose):
    assert blazepose.detect(np.full((480, 640, 3), 128, np.uint8)) == []
    assert blazepose.detect(np.zeros((300, 200, 3), np.uint8)) == []


def test_people_sorted_largest_first_and_well_formed(blazepose, pose_images):
    image = _load_rgb(pose_images / "ochuman" / "000817.jpg")  # two people
    people = blazepose.detect(image)
    assert len(people) >= 2
    areas = [float(np.prod(p.box[2:] - p.box[:2])) for p in people]
    assert areas == sorted(areas, reverse=True)
    for p in people:
        assert p.keypoints.shape == (33, 2) and p.keypoints.dtype == np.float32
        assert p.box.shape == (4,) and p.box.dtype == np.float32
        assert p.visibility.shape == p.presence.shape == (33,)
        assert ((p.visibility >= 0) & (p.visibility <= 1)).all() and ((p.presence >= 0) & (p.presence <= 1)).all()
        assert 0.5 <= p.score <= 1.0 and 0.5 <= p.detection_score <= 1.0
    assert len(blazepose.detect(image, max_people=1)) == 1


def test_rejects_bad_images(blazepose):
    for bad in (np.zeros((10, 10), np.uint8), np.zeros((10, 10, 4), np.uint8), np.zeros((10, 10, 3), np.float32)):
        with pytest.raises(ValueError):
            blazepose.detect(bad)


def test_ssd_anchors_match_the_graph():
    anchors = ssd_anchor_centres()
    assert anchors.shape == (NUM_ANCHORS, 2)
    np.testing.assert_allclose(anchors[0], [0.5 / 28, 0.5 / 28])  # stride 8: 28x28 grid, 2 anchors per cell
    np.testing.assert_allclose(anchors[1], anchors[0])
    np.testing.assert_allclose(anchors[2], [1.5 / 28, 0.5 / 28])  # x runs fastest
    np.testing.assert_allclose(anchors[28 * 28 * 2], [0.5 / 14, 0.5 / 14])  # stride 16
    np.testing.assert_allclose(anchors[-1], [6.5 / 7, 6.5 / 7])  # 3 stride-32 layers merged: 6 per cell
    np.testing.assert_allclose(anchors[-6], anchors[-1])


def test_roi_and_warp_geometry():
    # hip centre at (100, 200), scale point straight above: upright person, no rotation, side 2 * 50 * 1.25
    assert roi_from_detection(np.array([[100, 200], [100, 150], [0, 0], [0, 0]], np.float32)) == pytest.approx(
        (100, 200, 125, 0.0))
    # scale point to the right: the body points right; rotation +90 degrees brings it upright
    assert roi_from_detection(np.array([[100, 200], [150, 200], [0, 0], [0, 0]], np.float32))[3] == pytest.approx(
        np.pi / 2)
    # a marked pixel lands where the inverse of the projection used for landmarks says it should
    image = np.zeros((100, 120, 3), np.uint8)
    image[30, 80] = 255  # pixel centre (80.5, 30.5)
    centre, side, rot = (60.0, 50.0), 64.0, 0.7
    crop = warp_roi(image, centre, side, rot, 64, border="zero")
    v, u = np.unravel_index(np.argmax(crop[..., 0]), crop.shape[:2])
    uu, vv = ((u + 0.5) / 64 - 0.5) * side, ((v + 0.5) / 64 - 0.5) * side
    x = centre[0] + np.cos(rot) * uu - np.sin(rot) * vv
    y = centre[1] + np.sin(rot) * uu + np.cos(rot) * vv
    assert np.hypot(x - 80.5, y - 30.5) <= 1.0


def test_fetch_uses_the_cache_and_refuses_a_bad_hash(tmp_path, monkeypatch):
    def fake_wheel(into: Path, payload: bytes) -> Path:
        wheel = into / "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl"
        with zipfile.ZipFile(wheel, "w") as zf:
            for member, _ in assets.MODELS.values():
                zf.writestr(member, payload)
        return wheel

    monkeypatch.setattr(assets, "_download_wheel", lambda into: fake_wheel(into, b"not a model"))
    with pytest.raises(ArtifactError, match="sha256 mismatch"):
        fetch_blazepose_models(tmp_path / "cache")
    assert not any((tmp_path / "cache").glob("*.tflite")) and not any((tmp_path / "cache").glob(".*"))

    # files already cached with the right hashes are used without downloading anything
    cache = tmp_path / "good"
    cache.mkdir()
    for name in assets.MODELS:
        (cache / name).write_bytes(b"x")
    monkeypatch.setattr(assets, "MODELS", {n: (m, assets.sha256_of(cache / n)) for n, (m, _) in assets.MODELS.items()})
    monkeypatch.setattr(assets, "_download_wheel", lambda into: pytest.fail("downloaded although cached"))
    files = fetch_blazepose_models(cache)
    assert files.detector == cache / "pose_detection.tflite" and files.landmarks == cache / "pose_landmark_full.tflite"


def test_one_instance_shared_by_threads_gives_the_sequential_result(blazepose, pose_images):
    images = [_load_rgb(p) for p in sorted((pose_images / "mpii").glob("*.jpg"))]
    expected = [[p.keypoints for p in blazepose.detect(im)] for im in images]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda im: [p.keypoints for p in blazepose.detect(im)], images * 2))
    for want, have in zip(expected * 2, got):
        assert len(want) == len(have)
        for a, b in zip(want, have):
            np.testing.assert_array_equal(a, b)


# Reference implementations: the straightforward per-channel, per-landmark code this module ran before its pre- and
# post-processing were vectorised (commit 040d5fb), with float crops. The refinement must give the same landmarks;
# the crops are the same up to their 8-bit rounding (OpenCV's warp, as in MediaPipe).

def reference_warp(image: np.ndarray, centre: tuple[float, float], side: float, rotation: float, out_size: int,
                   border: str, value_range: tuple[float, float] = (0.0, 255.0)) -> np.ndarray:
    height, width = image.shape[:2]
    planes = np.ascontiguousarray(image.transpose(2, 0, 1)).reshape(3, -1)
    t = ((np.arange(out_size, dtype=np.float32) + 0.5) / out_size - 0.5) * np.float32(side)
    c, s = np.float32(np.cos(rotation)), np.float32(np.sin(rotation))
    xs = np.float32(centre[0] - 0.5) + c * t[None, :] - s * t[:, None]
    ys = np.float32(centre[1] - 0.5) + s * t[None, :] + c * t[:, None]
    x0, y0 = np.floor(xs), np.floor(ys)
    fx, fy = xs - x0, ys - y0
    x0, y0 = x0.astype(np.int64), y0.astype(np.int64)
    out = np.zeros((3, out_size, out_size), np.float32)
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            xi, yi = x0 + dx, y0 + dy
            weight = wx * wy
            if border == "zero":
                weight = weight * ((xi >= 0) & (xi < width) & (yi >= 0) & (yi < height))
            idx = np.clip(yi, 0, height - 1) * width + np.clip(xi, 0, width - 1)
            for ch in range(3):
                out[ch] += weight * np.take(planes[ch], idx)
    lo, hi = value_range
    return out.transpose(1, 2, 0) * np.float32((hi - lo) / 255.0) + np.float32(lo)


def reference_refine(xy: np.ndarray, heatmap: np.ndarray, kernel: int = 7, min_confidence: float = 0.5) -> np.ndarray:
    hm_h, hm_w, n = heatmap.shape
    out = xy.copy()
    off = (kernel - 1) // 2
    for i in range(n):
        col, row = int(xy[i, 0] * hm_w), int(xy[i, 1] * hm_h)
        if col < 0 or col >= hm_w or row < 0 or row >= hm_h:
            continue
        r0, r1 = max(0, row - off), min(hm_h, row + off + 1)
        c0, c1 = max(0, col - off), min(hm_w, col + off + 1)
        conf = 1.0 / (1.0 + np.exp(-heatmap[r0:r1, c0:c1, i]))
        total = conf.sum()
        if conf.max() >= min_confidence and total > 0:
            rows, cols = np.mgrid[r0:r1, c0:c1]
            out[i, 0] = (cols * conf).sum() / total / hm_w
            out[i, 1] = (rows * conf).sum() / total / hm_h
    return out


def _parity_images(pose_images: Path) -> list[np.ndarray]:
    """The MPII photos, the two-person OCHuman photo and a 4000 x 3000 upscale of an MPII photo."""
    images = [_load_rgb(p) for p in sorted((pose_images / "mpii").glob("*.jpg"))]
    images.append(_load_rgb(pose_images / "ochuman" / "000817.jpg"))
    with Image.open(pose_images / "mpii" / "052475643.jpg") as im:
        images.append(np.asarray(im.convert("RGB").crop((107, 0, 747, 480)).resize((4000, 3000),
                                                                                   Image.Resampling.BILINEAR)))
    return images


def test_warp_matches_the_reference_on_photos(blazepose, pose_images):
    """Letterbox (zero border) and the detected ROIs plus ROIs reaching past the image (replicate border)."""
    worst = 0.0
    for image in _parity_images(pose_images):
        h, w = image.shape[:2]
        crops = [((w / 2, h / 2), max(h, w), 0.0, 224, "zero", (-1.0, 1.0))]
        crops += [((p.roi[0], p.roi[1]), p.roi[2], p.roi[3], LANDMARK_INPUT, "replicate", (0.0, 1.0))
                  for p in blazepose.detect(image)]
        crops += [((0.1 * w, 0.9 * h), 0.8 * h, 2.5, LANDMARK_INPUT, border, (0.0, 255.0))  # mostly off the image
                  for border in ("zero", "replicate")]
        for centre, side, rotation, size, border, value_range in crops:
            got = warp_roi(image, centre, side, rotation, size, border, value_range)
            want = reference_warp(image, centre, side, rotation, size, border, value_range)
            assert got.shape == want.shape == (size, size, 3) and got.dtype == np.float32
            worst = max(worst, float(np.abs(got - want).max()) * 255.0 / (value_range[1] - value_range[0]))
    print(f"\nwarp vs reference, worst |difference| in 0..255 units: {worst:.4f}")
    assert worst <= 1.0, worst  # the 8-bit rounding of the crop (as MediaPipe's), OpenCV's 1/32-pixel weights


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (5, 1), (2, 2), (9, 4)])
@pytest.mark.parametrize("border", ["zero", "replicate"])
def test_warp_on_tiny_images_matches_the_reference(shape, border):
    image = np.random.default_rng(sum(shape)).integers(0, 256, (*shape, 3), dtype=np.uint8)
    for centre, side, rotation in (((0.5, 0.5), 3.0, 0.3), ((shape[1] / 2, shape[0] / 2), 10.0, -1.2)):
        np.testing.assert_allclose(warp_roi(image, centre, side, rotation, 16, border),
                                   reference_warp(image, centre, side, rotation, 16, border), atol=1.0)


def test_refine_matches_the_reference():
    rng = np.random.default_rng(7)
    heatmap = (rng.normal(size=(64, 64, 33)) * 4).astype(np.float32)
    # inside, at and past every edge, and far outside the heatmap
    xy = rng.uniform(-0.1, 1.1, size=(33, 2)).astype(np.float32)
    xy[:4] = [[0.0, 0.0], [0.999, 0.999], [0.02, 0.98], [-0.001, 0.5]]
    got = refine_from_heatmap(xy, heatmap)
    np.testing.assert_allclose(got, reference_refine(xy, heatmap), atol=1e-6)
    assert not np.allclose(got, xy)  # the windows changed something
    np.testing.assert_array_equal(refine_from_heatmap(xy, np.full_like(heatmap, -5.0)), xy)  # nothing confident


def test_pipeline_matches_the_reference_pipeline(blazepose, pose_images, monkeypatch):
    """Whole ``run`` with the fast refinement against the same with the reference one (the same crops)."""
    images = _parity_images(pose_images)
    fast = [blazepose.detect(image) for image in images]
    monkeypatch.setattr(blazepose_module, "refine_from_heatmap", reference_refine)
    worst = {"keypoints": 0.0, "box": 0.0, "score": 0.0}
    for got, image in zip(fast, images):
        want = blazepose.detect(image)
        assert len(got) == len(want) >= 1
        for a, b in zip(got, want):
            worst["keypoints"] = max(worst["keypoints"], float(np.abs(a.keypoints - b.keypoints).max()))
            worst["box"] = max(worst["box"], float(np.abs(a.box - b.box).max()))
            worst["score"] = max(worst["score"], abs(a.score - b.score), abs(a.detection_score - b.detection_score),
                                 float(np.abs(a.visibility - b.visibility).max()))
    print(f"\nfast vs reference refinement, worst differences: {worst}")
    assert worst["keypoints"] <= 0.5 and worst["box"] <= 0.5 and worst["score"] <= 1e-3, worst


def test_8bit_crops_move_landmarks_as_little_as_rounding_can(blazepose, pose_images, monkeypatch):
    """The crops are rounded to 8 bits, as MediaPipe's CPU converter rounds them; against float crops (the
    reference warp) the same people are found, and the landmarks the model sees (visibility >= 0.5) move by a
    small fraction of the person's box: the landmark model is sensitive to the rounding only where it is unsure."""
    images = _parity_images(pose_images)
    fast = [blazepose.detect(image) for image in images]
    monkeypatch.setattr(blazepose_module, "warp_roi", reference_warp)
    shifts, boxes, scores = [], [], []
    for got, image in zip(fast, images):
        want = blazepose.detect(image)
        assert len(got) == len(want) >= 1
        for a, b in zip(got, want):
            diagonal = float(np.hypot(*(b.box[2:] - b.box[:2])))
            shifts += list(np.hypot(*(a.keypoints - b.keypoints).T)[b.visibility >= 0.5] / diagonal)
            boxes.append(float(np.abs(a.box - b.box).max()) / diagonal)
            scores.append(max(abs(a.score - b.score), abs(a.detection_score - b.detection_score)))
    print(f"\n8-bit vs float crops, visible landmarks' shift / box diagonal: median {np.median(shifts):.4f}, "
          f"p95 {np.percentile(shifts, 95):.4f}, max {max(shifts):.4f}; box {max(boxes):.4f}; scores {max(scores):.4f}")
    assert np.median(shifts) <= 0.005 and np.percentile(shifts, 95) <= 0.03 and max(shifts) <= 0.1
    assert max(boxes) <= 0.05 and max(scores) <= 0.05
