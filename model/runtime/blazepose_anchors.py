"""BlazePose detector post-processing: SSD anchors, box/keypoint decoding and weighted NMS (numpy only).

Mirrors MediaPipe's ``pose_detection_cpu.pbtxt`` (SsdAnchorsCalculator -> TensorsToDetectionsCalculator ->
NonMaxSuppressionCalculator). Every coordinate here is normalised to the 224x224 letterboxed detector input,
(0, 0) = top-left corner, (1, 1) = bottom-right corner.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

DETECTOR_INPUT = 224  # detector input side (pixels); also the box/keypoint scale of the raw outputs
NUM_ANCHORS = 2254
NUM_DETECTION_KEYPOINTS = 4  # 0 hip centre, 1 full-body scale/rotation point, 2 shoulder centre, 3 upper-body point


@dataclass(frozen=True)
class SsdAnchorOptions:
    """SsdAnchorsCalculatorOptions of the pose detector (fixed-size anchors, so only centres matter)."""

    input_size: int = DETECTOR_INPUT
    num_layers: int = 5
    strides: tuple[int, ...] = (8, 16, 32, 32, 32)
    min_scale: float = 0.1484375  # unused with fixed_anchor_size, kept to document the graph
    max_scale: float = 0.75
    anchor_offset: float = 0.5
    aspect_ratios: tuple[float, ...] = (1.0,)
    interpolated_scale_aspect_ratio: float = 1.0  # adds one more anchor per location


def ssd_anchor_centres(opts: SsdAnchorOptions = SsdAnchorOptions()) -> np.ndarray:
    """Anchor centres (N, 2) float32 (x, y), in the order the model emits its N boxes.

    Layers with the same stride share one feature map (SsdAnchorsCalculator merges them); each location
    gets len(aspect_ratios) + 1 anchors per merged layer, all with the same centre. With the default options
    N = 28*28*2 + 14*14*2 + 7*7*6 = 2254.
    """
    assert len(opts.strides) == opts.num_layers, (opts.strides, opts.num_layers)
    per_layer = len(opts.aspect_ratios) + (1 if opts.interpolated_scale_aspect_ratio > 0 else 0)
    centres = []
    layer = 0
    while layer < opts.num_layers:
        stride = opts.strides[layer]
        last = layer
        while last < opts.num_layers and opts.strides[last] == stride:
            last += 1
        n_per_location = per_layer * (last - layer)
        side = math.ceil(opts.input_size / stride)
        grid = (np.arange(side, dtype=np.float32) + opts.anchor_offset) / side
        ys, xs = np.meshgrid(grid, grid, indexing="ij")  # row-major: y outer, x inner
        xy = np.stack([xs.ravel(), ys.ravel()], axis=1)  # (side*side, 2)
        centres.append(np.repeat(xy, n_per_location, axis=0))
        layer = last
    return np.concatenate(centres, axis=0).astype(np.float32)


@dataclass
class Detections:
    """Decoded detections, normalised to the letterboxed detector input.

    boxes (K, 4) [x0, y0, x1, y1] (the face box), keypoints (K, 4, 2) (x, y), scores (K,) in [0, 1].
    """

    boxes: np.ndarray
    keypoints: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)


def decode_detections(raw_boxes: np.ndarray, raw_scores: np.ndarray, anchors: np.ndarray,
                      min_score: float, score_clip: float = 100.0) -> Detections:
    """TensorsToDetectionsCalculator: raw (N, 12) and (N,) or (N, 1) logits -> detections above min_score.

    Box layout (reverse_output_order): x_centre, y_centre, w, h, then 4 keypoints (x, y); all offsets are in
    input pixels (x_scale = y_scale = w_scale = h_scale = 224) relative to the anchor centre, anchor size 1.
    """
    raw_boxes = np.asarray(raw_boxes, dtype=np.float32).reshape(-1, 4 + 2 * NUM_DETECTION_KEYPOINTS)
    raw_scores = np.asarray(raw_scores, dtype=np.float32).reshape(-1)
    assert raw_boxes.shape[0] == raw_scores.shape[0] == anchors.shape[0], (
        raw_boxes.shape, raw_scores.shape, anchors.shape)
    logits = np.clip(raw_scores.astype(np.float64), -score_clip, score_clip)  # exp(100) overflows float32
    scores = (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)
    keep = np.flatnonzero(scores >= min_score)
    raw, anc = raw_boxes[keep] / DETECTOR_INPUT, anchors[keep]
    centre = raw[:, 0:2] + anc
    half = raw[:, 2:4] / 2
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    keypoints = raw[:, 4:].reshape(-1, NUM_DETECTION_KEYPOINTS, 2) + anc[:, None, :]
    return Detections(boxes=boxes, keypoints=keypoints, scores=scores[keep])


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one box (4,) against boxes (K, 4), all [x0, y0, x1, y1]."""
    lo = np.maximum(box[:2], boxes[:, :2])
    hi = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
    area = np.prod(np.clip(box[2:] - box[:2], 0, None))
    areas = np.prod(np.clip(boxes[:, 2:] - boxes[:, :2], 0, None), axis=1)
    union = area + areas - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def weighted_nms(dets: Detections, iou_threshold: float = 0.3) -> Detections:
    """NonMaxSuppressionCalculator, algorithm WEIGHTED, overlap IoU.

    Repeatedly takes the best-scoring detection, gathers every remaining one whose IoU with it exceeds
    ``iou_threshold`` (itself included) and replaces its box and keypoints by their score-weighted mean; the
    merged detection keeps the best score. Output is sorted by score, best first.
    """
    order = np.argsort(-dets.scores, kind="stable")
    boxes, kps, scores = [], [], []
    while order.size:
        best = order[0]
        overlap = box_iou(dets.boxes[best], dets.boxes[order]) > iou_threshold
        overlap[0] = True
        group = order[overlap]
        w = dets.scores[group][:, None]
        boxes.append((dets.boxes[group] * w).sum(0) / w.sum())
        kps.append((dets.keypoints[group] * w[:, :, None]).sum(0) / w.sum())
        scores.append(dets.scores[best])
        order = order[~overlap]
    if not scores:
        return Detections(np.zeros((0, 4), np.float32), np.zeros((0, NUM_DETECTION_KEYPOINTS, 2), np.float32),
                          np.zeros((0,), np.float32))
    return Detections(np.asarray(boxes, np.float32), np.asarray(kps, np.float32), np.asarray(scores, np.float32))
