"""Photo consistency (SPEC 6, "photos with the same person at the edge and at the centre"): a known camera
rotation of a real photo must rotate the lifted camera-frame pose alike.

For each labelled person of ``../shared/data/pose-images`` that BlazePose finds in the photo (one-to-one, IoU >=
``FOUND_IOU`` with the label box, as ``index_builder.datasets.labelled_photos``), the photo is warped with the
homography ``H = K R K^-1`` of a camera rotation R (Pillow, bicubic): what a camera turned by R about its centre sees. K
is the photo's intrinsics as the service takes them (``images.photo_intrinsics``: the EXIF FocalLengthIn35mmFilm where
the photo has one, else the default field of view of its width; the principal point at the centre). R turns by
an angle drawn uniformly from ``ANGLE_RANGE_DEG`` (seeded by the photo and the person) about the axis that moves
the person toward an image edge: away from the principal point through the person's box centre, or, where that
leaves no room, toward the left / right edge on the person's side, then the top / bottom edge
(``choose_rotation``); when the person's labelled points would leave the image the angle shrinks by ``SHRINK``
until they stay, and the person is skipped below the range's lower end in every direction. BlazePose runs on the
warped photo and finds the person again by the label box carried through H.

Both detections are lifted as the service lifts a photo (``images.lift_camera_frame``: perspective crop with K,
image encoder, 3D decoder, back to the camera frame). A camera-frame point X appears as R X to the rotated camera,
so the warped photo's pose should be R times the original's: the reported angle is that of the rotation that best
aligns R x original onto warped (Kabsch, root-relative; 0 is perfect consistency). It is a consistency check, not
an accuracy: a lifter can be consistent and wrong. For reference, the same angle without the perspective crop
(``image_features`` of the raw pixels, the pre-crop image path).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from index_builder.bundle.blazepose_assets import BlazePoseFiles
from index_builder.config import portable_path
from index_builder.datasets.labelled_photos import FOUND_IOU, LabelledPerson, load_labelled_people
from index_builder.evaluation.images import lift_camera_frame, photo_intrinsics
from index_builder.evaluation.real_cameras import stable_seed
from model.nn.networks import UniHPR
from model.pose.features import image_features
from model.pose.joint_formulas import layout_to_unihpr17
from model.pose.perspective_crop import Intrinsics
from model.pose.skeleton import root_centred
from model.runtime.blazepose import BlazePose, Person
from model.runtime.blazepose_anchors import box_iou

LOG = logging.getLogger(__name__)

ANGLE_RANGE_DEG = (5.0, 25.0)  # the camera rotation's angle, uniform
SHRINK = 0.8  # the angle's factor while the person would leave the image
TARGET_MEDIAN_DEG = 5.0  # issue #12: median misalignment below this


def camera_matrix(intrinsics: Intrinsics) -> np.ndarray:
    """(3, 3) K of the first row (distortion ignored)."""
    (fx, fy), (cx, cy) = intrinsics.focal[0], intrinsics.principal_point[0]
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def axis_angle(axis: np.ndarray, angle_deg: float) -> np.ndarray:
    """(3, 3) rotation by ``angle_deg`` about the unit ``axis`` (Rodrigues)."""
    a = np.asarray(axis, np.float64) / np.linalg.norm(axis)
    k = np.array([[0.0, -a[2], a[1]], [a[2], 0.0, -a[0]], [-a[1], a[0], 0.0]])
    t = np.deg2rad(angle_deg)
    return np.eye(3) + np.sin(t) * k + (1 - np.cos(t)) * k @ k


def rotation_toward(direction: np.ndarray, angle_deg: float) -> np.ndarray:
    """(3, 3) camera-frame rotation R (a point X appears at R X) that moves the image centre's ray by ``angle_deg``
    toward the image direction ``direction`` (2,): R z = (sin t u, cos t), so points move along u in the image."""
    u = np.asarray(direction, np.float64) / np.linalg.norm(direction)
    return axis_angle(np.array([-u[1], u[0], 0.0]), angle_deg)


def homography(K: np.ndarray, R: np.ndarray) -> np.ndarray:
    """(3, 3) H = K R K^-1: pixel x of the original photo -> pixel H x of the camera turned by R."""
    return K @ R @ np.linalg.inv(K)


def apply_homography(H: np.ndarray, points: np.ndarray) -> np.ndarray:
    """points: (..., 2) pixels -> (..., 2) pixels through H (continuous coordinates, pixel i spans [i, i + 1])."""
    p = np.concatenate([points, np.ones(points.shape[:-1] + (1,))], -1) @ H.T
    return p[..., :2] / p[..., 2:3]


def warp_image(image: Image.Image, H: np.ndarray) -> Image.Image:
    """The photo as the turned camera sees it, same size, bicubic; Pillow maps each output pixel through H^-1
    (its 8 coefficients, normalised so the last is 1), in the same continuous coordinates as ``apply_homography``."""
    inverse = np.linalg.inv(H)
    inverse = inverse / inverse[2, 2]
    return image.transform(image.size, Image.PERSPECTIVE, tuple(float(c) for c in inverse.ravel()[:8]),
                           Image.BICUBIC)


def kabsch_rotation(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(N, 3, 3) the proper rotations Q minimising sum_j |Q source_j - target_j|^2. source, target: (N, J, 3),
    already centred as wanted (here: root-relative)."""
    u, _, vt = np.linalg.svd(np.einsum("nji,njk->nik", source, target))  # H = source^T target
    d = np.sign(np.linalg.det(np.einsum("nij,njk->nik", u, vt)))
    fix = np.ones((len(d), 3))
    fix[:, 2] = d
    return np.einsum("nji,nj,nkj->nik", vt, fix, u)  # V diag(1, 1, d) U^T


def rotation_angle_deg(rotation: np.ndarray) -> np.ndarray:
    """(N, 3, 3) -> (N,) angle of each rotation, degrees."""
    cos = (np.trace(rotation, axis1=1, axis2=2) - 1.0) / 2.0
    return np.rad2deg(np.arccos(np.clip(cos, -1.0, 1.0)))


def misalignment_deg(expected: np.ndarray, found: np.ndarray) -> np.ndarray:
    """(N, 17, 3) poses -> (N,) angle of the rotation best aligning ``expected`` onto ``found``, root-relative."""
    a = root_centred(expected)
    b = root_centred(found)
    return rotation_angle_deg(kabsch_rotation(a, b))


def match_boxes(boxes: np.ndarray, detected: list[Person]) -> dict[int, Person]:
    """Labels (L, 4) to detections: one-to-one, greedy by IoU >= FOUND_IOU (as ``labelled_photos``)."""
    if not len(boxes) or not detected:
        return {}
    iou = np.stack([box_iou(b, np.stack([d.box for d in detected]).astype(np.float64)) for b in boxes])
    out = {}
    while iou.size and iou.max() >= FOUND_IOU:
        li, di = np.unravel_index(np.argmax(iou), iou.shape)
        iou[li, :] = iou[:, di] = -1
        out[int(li)] = detected[di]
    return out


def h36m_of(person: Person) -> tuple[np.ndarray, np.ndarray]:
    """A detection as h36m17 pixels (17, 2) and visibilities (17,), the shared formulas."""
    return layout_to_unihpr17(person.keypoints.astype(np.float64), "blazepose33", person.visibility.astype(np.float64))


def _box_through(H: np.ndarray, box: np.ndarray) -> np.ndarray:
    corners = np.array([[box[0], box[1]], [box[2], box[1]], [box[0], box[3]], [box[2], box[3]]], np.float64)
    mapped = apply_homography(H, corners)
    return np.concatenate([mapped.min(0), mapped.max(0)])


def _inside(points: np.ndarray, size: tuple[int, int]) -> bool:
    return bool(((points >= 0) & (points <= np.asarray(size, np.float64))).all())


DIRECTIONS = ("outward", "horizontal", "vertical")  # tried in this order, see ``choose_rotation``


def choose_rotation(person: LabelledPerson, K: np.ndarray, size: tuple[int, int], rng: np.random.Generator,
                    angle_range: tuple[float, float] = ANGLE_RANGE_DEG) -> tuple[np.ndarray, float, float, str] | None:
    """R, its angle, the drawn angle and the direction for one person; None when its labelled points leave the
    image in every direction at every angle down to the range's lower end (or lie outside it already).

    Directions, each moving the person toward an image edge: ``outward`` (from the principal point through the
    centre of the person's box), then ``horizontal`` (toward the left or right edge on the person's side), then
    ``vertical`` (toward the top or bottom edge on its side); in each the drawn angle shrinks by ``SHRINK`` until
    the points stay inside.
    """
    drawn = float(rng.uniform(*angle_range))
    points = person.box_points()
    box = np.concatenate([points.min(0), points.max(0)])
    away = (box[:2] + box[2:]) / 2.0 - K[:2, 2]
    if np.linalg.norm(away) < 1e-3 * size[0]:  # at the centre: any direction is toward an edge
        away = rng.normal(size=2)
    if not _inside(points, size):
        return None
    sides = np.where(away >= 0, 1.0, -1.0)
    for name, direction in zip(DIRECTIONS, (away, np.array([sides[0], 0.0]), np.array([0.0, sides[1]]))):
        angle = drawn
        while angle >= angle_range[0] - 1e-9:
            R = rotation_toward(direction, angle)
            if _inside(apply_homography(homography(K, R), points), size):
                return R, angle, drawn, name
            angle *= SHRINK
    return None


def _ray_angle(K: np.ndarray, point: np.ndarray) -> float:
    ray = np.linalg.solve(K, np.array([point[0], point[1], 1.0]))
    return float(np.rad2deg(np.arccos(ray[2] / np.linalg.norm(ray))))


@torch.no_grad()
def _lift_without_crop(model: UniHPR, pixels: np.ndarray, visibility: np.ndarray) -> np.ndarray:
    model.eval()
    features = torch.from_numpy(image_features(pixels, visibility))
    return model.decoder3d(model.encode(features, "image")).numpy().astype(np.float64)


def _stats(values: list[float]) -> dict:
    if not values:
        return {"median": None, "mean": None, "max": None}
    v = np.asarray(values)
    return {"median": round(float(np.median(v)), 3), "mean": round(float(v.mean()), 3), "max": round(float(v.max()), 3)}


def photo_consistency(model: UniHPR, pose_images: Path, blazepose_files: BlazePoseFiles, seed: int = 0,
                      angle_range: tuple[float, float] = ANGLE_RANGE_DEG) -> dict:
    """The section: one warp per labelled person BlazePose finds; per person and pooled misalignment angles."""
    start = time.perf_counter()
    people = load_labelled_people(Path(pose_images))
    blazepose = BlazePose(blazepose_files.detector, blazepose_files.landmarks, num_threads=1)
    rows, skipped, sources = [], {"would leave the image": 0, "not found after the warp": 0}, set()
    found = 0
    for image_path in dict.fromkeys(p.image for p in people):
        labels = [p for p in people if p.image == image_path]
        with Image.open(image_path) as opened:
            image = opened.convert("RGB")
            intrinsics, source = photo_intrinsics(opened)
        K = camera_matrix(intrinsics)
        boxes = np.stack([p.box for p in labels])
        original = match_boxes(boxes, blazepose.detect(np.asarray(image)))
        found += len(original)
        name = portable_path(image_path)
        for li in sorted(original):
            rng = np.random.default_rng([seed, stable_seed(f"{name}#{li}")])
            chosen = choose_rotation(labels[li], K, image.size, rng, angle_range)
            if chosen is None:
                skipped["would leave the image"] += 1
                continue
            R, angle, drawn, direction = chosen
            H = homography(K, R)
            warped = match_boxes(np.stack([_box_through(H, b) for b in boxes]),
                                 blazepose.detect(np.asarray(warp_image(image, H))))
            if li not in warped:
                skipped["not found after the warp"] += 1
                continue
            sources.add(source)
            (px0, vis0), (px1, vis1) = h36m_of(original[li]), h36m_of(warped[li])
            pixels, visibility = np.stack([px0, px1]), np.stack([vis0, vis1])
            lifted = lift_camera_frame(model, pixels, visibility, Intrinsics(*(np.repeat(x, 2, 0) for x in (
                intrinsics.focal, intrinsics.principal_point, intrinsics.distortion))))
            plain = _lift_without_crop(model, pixels, visibility)
            rotated = np.stack([lifted[0] @ R.T, plain[0] @ R.T])
            crop_angle, plain_angle = misalignment_deg(rotated, np.stack([lifted[1], plain[1]]))
            centre = [(p.min(0) + p.max(0)) / 2.0 for p in (px0, px1)]
            rows.append({"photo": name, "dataset": labels[li].dataset, "person": li, "intrinsics": source,
                         "direction": direction, "rotation_deg": round(angle, 3), "drawn_deg": round(drawn, 3),
                         "off_axis_before_deg": round(_ray_angle(K, centre[0]), 2),
                         "off_axis_after_deg": round(_ray_angle(K, centre[1]), 2),
                         "angle_deg": round(float(crop_angle), 3),
                         "angle_without_crop_deg": round(float(plain_angle), 3)})
    angles = [r["angle_deg"] for r in rows]
    median = _stats(angles)["median"]
    LOG.info("photo consistency: %d people, median %.2f deg", len(rows), median if median is not None else np.nan)
    return {
        "status": "computed",
        "pose_images": portable_path(pose_images),
        "labelled_people": len(people),
        "found": found,
        "people": len(rows),
        "skipped": skipped,
        "angle_range_deg": list(angle_range),
        "intrinsics_sources": sorted(sources),
        "angle_deg": _stats(angles),
        "angle_without_crop_deg": _stats([r["angle_without_crop_deg"] for r in rows]),
        "rotation_deg": _stats([r["rotation_deg"] for r in rows]),
        "directions": {d: sum(r["direction"] == d for r in rows) for d in DIRECTIONS},
        "per_person": rows,
        "target": {"target": f"median misalignment < {TARGET_MEDIAN_DEG:g} degrees",
                   "short": f"median < {TARGET_MEDIAN_DEG:g} degrees", "value": median,
                   "threshold": TARGET_MEDIAN_DEG, "met": None if median is None else bool(median < TARGET_MEDIAN_DEG)},
        "wall_seconds": round(time.perf_counter() - start, 1),
    }
