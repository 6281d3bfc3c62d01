"""COCO-format keypoint label files (COCO, OCHuman, Human-Art, CrowdPose) and their mapping to h36m17.

A file is a JSON object with ``images`` (id, file_name, width, height), ``annotations`` (image_id, bbox
[x, y, w, h], keypoints as a flat [x1, y1, v1, x2, y2, v2, ...] list) and ``categories`` (the keypoint names).
Visibility v: 0 not labelled (x = y = 0), 1 labelled but not visible, 2 labelled and visible.

Two layouts:
- ``coco17``: nose, eyes, ears, shoulders, elbows, wrists, hips, knees, ankles (left before right). Mapped to h36m17
  with the shared joint formulas (``model.pose.joint_formulas``). Human-Art lists 21 names in its category (4 extra
  hand/foot points, stored under ``keypoints_21``) while its ``keypoints`` holds the 17 COCO ones.
- ``crowdpose14``: shoulders, elbows, wrists, hips, knees, ankles (left before right), then head (top) and neck.
  It has no nose or ears, so h36m17's neck_nose and head_top come out missing; CrowdPose's own head and neck points
  stay in ``keypoints`` but are not mapped, because they are defined differently from the formulas' head joints.

The layout is read from the category's keypoint names unless the caller names it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index_builder.errors import DataFileError
from model.pose.joint_formulas import layout_to_unihpr17
from model.pose.joint_layouts import LAYOUTS

# The layouts COCO-format files come in (``model.pose.joint_layouts``); the service accepts only coco17 of them.
FILE_LAYOUTS = ("coco17", "crowdpose14")


@dataclass(frozen=True)
class KeypointAnnotation:
    """One labelled person.

    layout: 'coco17' or 'crowdpose14', the order of ``keypoints``.
    annotation_id, image_id: ids from the file; file_name: the image's path as the file gives it;
    image_size: (width, height), px; bbox: (4,) float32 (x, y, w, h), px; iscrowd: the COCO flag.
    keypoints: (K, 2) float32, px (x right, y down), in the file's layout; (0, 0) where unlabelled.
    visibility: (K,) int8, 0 not labelled, 1 labelled not visible, 2 visible.
    """

    layout: str
    annotation_id: int
    image_id: int
    file_name: str
    image_size: tuple[int, int]
    bbox: np.ndarray
    keypoints: np.ndarray
    visibility: np.ndarray
    iscrowd: bool


@dataclass(frozen=True)
class KeypointFile:
    """A label file: its layout ('coco17' or 'crowdpose14') and its annotations, in file order."""

    path: str
    layout: str
    annotations: tuple[KeypointAnnotation, ...]

    def __len__(self) -> int:
        return len(self.annotations)


def _infer_layout(path: Path, categories: object) -> str:
    names = []
    for category in categories if isinstance(categories, list) else []:
        if isinstance(category, dict) and isinstance(category.get("keypoints"), list):
            names.append(tuple(category["keypoints"]))
    if not names:
        raise DataFileError(str(path), "no category lists keypoint names: pass layout= ('coco17' or 'crowdpose14')")
    for layout in FILE_LAYOUTS:
        layout_names = LAYOUTS[layout].keypoints
        # Human-Art's category lists 4 more names after COCO's 17; its 'keypoints' still holds 17.
        if all(n[: len(layout_names)] == layout_names for n in names):
            return layout
    raise DataFileError(
        str(path), f"unknown keypoint names {list(names[0])}: pass layout= ('coco17' or 'crowdpose14')"
    )


def _number(path: Path, where: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DataFileError(str(path), f"{where}: expected a number, got {value!r}")
    return float(value)


def load_coco_keypoints(path: str | Path, layout: str | None = None) -> KeypointFile:
    """Read a COCO-format keypoint file.

    layout: 'coco17' or 'crowdpose14'; None reads it from the category's keypoint names.
    returns: a ``KeypointFile`` with one ``KeypointAnnotation`` per annotation.
    raises: DataFileError naming the file and the problem: unreadable or malformed JSON, no 'annotations', an
        annotation without keypoints or with the wrong number of values, a visibility outside 0-2, an image id
        missing from 'images'.
    """
    path = Path(path)
    if layout is not None and layout not in FILE_LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; known: {', '.join(FILE_LAYOUTS)}")
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except OSError as err:
        raise DataFileError(str(path), f"cannot read: {err}") from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataFileError(str(path), f"malformed JSON: {err}") from err
    if not isinstance(data, dict):
        raise DataFileError(str(path), f"expected a COCO JSON object, got a {type(data).__name__}")
    if not isinstance(data.get("annotations"), list):
        raise DataFileError(str(path), "no 'annotations' list")
    if layout is None:
        layout = _infer_layout(path, data.get("categories"))
    num_keypoints = LAYOUTS[layout].size

    images: dict[int, tuple[str, tuple[int, int]]] = {}
    for i, image in enumerate(data.get("images") or []):
        try:
            images[image["id"]] = (str(image["file_name"]), (int(image["width"]), int(image["height"])))
        except (KeyError, TypeError, ValueError) as err:
            raise DataFileError(str(path), f"images[{i}]: needs id, file_name, width and height ({err!r})") from err

    annotations = []
    for i, ann in enumerate(data["annotations"]):
        where = f"annotations[{i}]"
        if not isinstance(ann, dict):
            raise DataFileError(str(path), f"{where}: expected an object")
        flat = ann.get("keypoints")
        if not isinstance(flat, list):
            raise DataFileError(str(path), f"{where}: no 'keypoints' list")
        if len(flat) != 3 * num_keypoints:
            raise DataFileError(str(path), f"{where}: {len(flat)} keypoint values, {layout} needs "
                                           f"3 x {num_keypoints} = {3 * num_keypoints}")
        values = np.array([_number(path, f"{where}.keypoints", v) for v in flat]).reshape(num_keypoints, 3)
        visibility = values[:, 2]
        if not np.isin(visibility, (0, 1, 2)).all():
            flags = sorted(set(visibility.tolist()))
            raise DataFileError(str(path), f"{where}: visibility flags must be 0, 1 or 2, got {flags}")
        bbox = ann.get("bbox")
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise DataFileError(str(path), f"{where}: bbox must be [x, y, w, h], got {bbox!r}")
        if not isinstance(ann.get("image_id"), (int, str)) or ann["image_id"] not in images:
            raise DataFileError(str(path), f"{where}: image_id {ann.get('image_id')!r} is not in 'images'")
        file_name, image_size = images[ann["image_id"]]
        annotations.append(KeypointAnnotation(
            layout=layout,
            annotation_id=int(_number(path, f"{where}.id", ann.get("id", i))),
            image_id=ann["image_id"],
            file_name=file_name,
            image_size=image_size,
            bbox=np.array([_number(path, f"{where}.bbox", v) for v in bbox], dtype=np.float32),
            keypoints=values[:, :2].astype(np.float32),
            visibility=visibility.astype(np.int8),
            iscrowd=bool(ann.get("iscrowd", 0)),
        ))
    return KeypointFile(path=str(path), layout=layout, annotations=tuple(annotations))


def keypoints_to_h36m17(keypoints: np.ndarray, visibility: np.ndarray, layout: str) -> tuple[np.ndarray, np.ndarray]:
    """Map labelled keypoints to h36m17 with the shared joint formulas, confidence = (v > 0).

    keypoints: (..., K, 2) px in ``layout`` ('coco17' or 'crowdpose14'); visibility: (..., K) flags 0-2.
    returns: joints (..., 17, 2) float64 px, NaN where a landmark a joint needs is unlabelled (and, for
        crowdpose14, always for neck_nose and head_top); confidence (..., 17) float64, 1 where the joint is
        labelled, 0 where it is missing.
    """
    assert layout in FILE_LAYOUTS, f"unknown layout {layout!r}"
    assert keypoints.shape[-2:] == (LAYOUTS[layout].size, 2), keypoints.shape
    assert visibility.shape == keypoints.shape[:-1], (visibility.shape, keypoints.shape)
    labelled = visibility > 0
    points = np.where(labelled[..., None], keypoints.astype(np.float64), np.nan)  # unlabelled (0, 0) -> NaN
    return layout_to_unihpr17(points, layout, labelled.astype(np.float64))


def annotation_to_h36m17(annotation: KeypointAnnotation) -> tuple[np.ndarray, np.ndarray]:
    """``keypoints_to_h36m17`` for one annotation: (17, 2) float64 px and (17,) float64 confidence."""
    return keypoints_to_h36m17(annotation.keypoints, annotation.visibility, annotation.layout)
