"""MediaPipe BlazePose (detector + full landmark model) in numpy and ai-edge-litert, without mediapipe.

The pipeline follows MediaPipe's pose graph configs, single image, no tracking or smoothing:

1. ``pose_detection_cpu.pbtxt``: the whole image, letterboxed (aspect kept, zero border) to 224x224, values in
   [-1, 1] -> SSD decoding with 2254 anchors -> sigmoid scores >= ``min_detection_score`` -> weighted NMS
   (IoU 0.3). See ``model/runtime/blazepose_anchors.py``.
2. ``pose_detection_to_roi.pbtxt``: ROI centre = detection keypoint 0 (hip centre); side = 2 * |kp1 - kp0|
   * 1.25, square; rotation = 90 degrees - angle(kp0 -> kp1), so the body stands upright in the crop.
3. ``pose_landmark_by_roi_cpu.pbtxt`` and ``pose_landmark_by_roi_post_processing.pbtxt``: the rotated ROI is
   warped (bilinear, replicated border) to 256x256, values in [0, 1] -> 39 landmarks x (x, y, z, visibility
   logit, presence logit), divided by 256; pose presence (1x1, already a probability) must be >= 0.5;
   landmarks refined from the 64x64x39 heatmap (kernel 7, as RefineLandmarksFromHeatmapCalculator does);
   the first 33 are projected back through the ROI to image pixels, sigmoid applied to visibility/presence.

Coordinates: image pixels, continuous, (0, 0) = top-left corner of the top-left pixel, x right, y down.
Landmark order is BlazePose's 33 (``BLAZEPOSE33``; left = the person's left).

Thread safety: a LiteRT ``Interpreter`` is not thread-safe. Each ``BlazePose`` owns one interpreter per model,
each guarded by its own ``threading.Lock`` held from ``set_tensor`` to the copy of the outputs, so one instance
may be shared by threads (calls serialise per model; the detector of one call can overlap the landmark model
of another). For parallel throughput create one instance per worker thread.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from ai_edge_litert.interpreter import Interpreter

from model.pose.joint_layouts import LAYOUTS
from model.runtime.blazepose_anchors import (
    DETECTOR_INPUT,
    NUM_ANCHORS,
    Detections,
    decode_detections,
    ssd_anchor_centres,
    weighted_nms,
)

LANDMARK_INPUT = 256  # landmark model input side (pixels)
NUM_RAW_LANDMARKS = 39  # 33 pose landmarks + 6 extra points (33-34: the graph's ROI-tracking auxiliaries)
NUM_LANDMARKS = 33
ROI_SCALE = 1.25  # RectTransformationCalculator scale_x = scale_y in pose_detection_to_roi.pbtxt
ROI_TARGET_ANGLE = math.pi / 2  # rotation_vector_target_angle_degrees: 90
HEATMAP_KERNEL = 7  # RefineLandmarksFromHeatmapCalculatorOptions.kernel_size
HEATMAP_MIN_CONFIDENCE = 0.5  # ... .min_confidence_to_refine (proto default)
BORDERS = {"zero": cv2.BORDER_CONSTANT, "replicate": cv2.BORDER_REPLICATE}

# A crop is a fraction of a millisecond on one core; OpenCV's own thread pool would only contend with the worker
# threads that each run one BlazePose (and with ONNX Runtime and FAISS) for the machine's few cores.
cv2.setNumThreads(1)

BLAZEPOSE33 = LAYOUTS["blazepose33"].keypoints


@dataclass
class Person:
    """One detected person; all coordinates in image pixels.

    box (4,) float32 [x0, y0, x1, y1]: bounds of the 33 landmarks, clipped to the image.
    keypoints (33, 2) float32 (x, y), BlazePose order; may lie outside the image for cut-off limbs.
    visibility (33,) float32 in [0, 1]: sigmoid of the visibility logit (in view and not occluded).
    presence (33,) float32 in [0, 1]: sigmoid of the presence logit (inside the frame).
    score: pose presence from the landmark model, in [0, 1]; detection_score: the detector's score.
    roi: (x_centre, y_centre, side, rotation radians) of the crop fed to the landmark model.
    """

    box: np.ndarray
    keypoints: np.ndarray
    visibility: np.ndarray
    presence: np.ndarray
    score: float
    detection_score: float
    roi: tuple[float, float, float, float]


@dataclass
class Timings:
    """Wall times of one ``run`` call, in milliseconds (model invocations measured without pre/post)."""

    detector_ms: float = 0.0
    landmark_ms: list[float] = field(default_factory=list)  # one per ROI run through the landmark model
    total_ms: float = 0.0


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def warp_roi(image: np.ndarray, centre: tuple[float, float], side: float, rotation: float, out_size: int,
             border: str, value_range: tuple[float, float] = (0.0, 255.0)) -> np.ndarray:
    """Crop a square ROI of an (H, W, 3) uint8 image, rotated by ``rotation`` (radians), to (out_size, out_size, 3)
    float32, pixel values mapped linearly from 0..255 onto ``value_range`` (ImageToTensorCalculator's
    output_tensor_float_range).

    The output's unit square (u, v) maps to image point centre + R(rotation) @ ((u - 0.5) side, (v - 0.5) side)
    with R = [[cos, -sin], [sin, cos]] (the transform LandmarkProjectionCalculator inverts). Bilinear sampling at
    output pixel centres; ``border`` is "zero" (black) or "replicate" (edge pixels), as ImageToTensorCalculator's
    BORDER_ZERO and its default. One OpenCV affine warp of the 8-bit image, then the conversion to float: the
    crop is rounded to 8 bits as in MediaPipe's own CPU converter (``cv::warpPerspective`` on the 8-bit image,
    then ``convertTo``). Only the sampled pixels are read: no copy of the image is made.
    """
    assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8, (image.shape, image.dtype)
    assert border in ("zero", "replicate"), border
    k = side / out_size
    c, s = math.cos(rotation) * k, math.sin(rotation) * k
    t0 = 0.5 - out_size / 2  # the first output pixel centre, from the middle, in output pixels
    # output pixel index -> image pixel index (continuous - 0.5), as WARP_INVERSE_MAP reads it
    to_image = np.array([[c, -s, centre[0] - 0.5 + (c - s) * t0],
                         [s, c, centre[1] - 0.5 + (s + c) * t0]])
    crop = cv2.warpAffine(image, to_image, (out_size, out_size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=BORDERS[border], borderValue=0)
    lo, hi = value_range
    out = crop.astype(np.float32)
    out *= np.float32((hi - lo) / 255.0)
    out += np.float32(lo)
    return out


def roi_from_detection(keypoints: np.ndarray) -> tuple[float, float, float, float]:
    """AlignmentPointsRectsCalculator + RectTransformationCalculator on detection keypoints (4, 2) in pixels.

    Returns (x_centre, y_centre, side, rotation): centre at keypoint 0, side 2 * |kp1 - kp0| * 1.25 (already
    square in pixels, so square_long changes nothing), rotation normalised to [-pi, pi).
    """
    (x0, y0), (x1, y1) = keypoints[0], keypoints[1]
    side = 2.0 * math.hypot(x1 - x0, y1 - y0) * ROI_SCALE
    rotation = ROI_TARGET_ANGLE - math.atan2(-(y1 - y0), x1 - x0)
    rotation = rotation - 2 * math.pi * math.floor((rotation + math.pi) / (2 * math.pi))
    return float(x0), float(y0), float(side), float(rotation)


def refine_from_heatmap(xy: np.ndarray, heatmap: np.ndarray, kernel: int = HEATMAP_KERNEL,
                        min_confidence: float = HEATMAP_MIN_CONFIDENCE) -> np.ndarray:
    """RefineLandmarksFromHeatmapCalculator: xy (L, 2) ROI-normalised, heatmap (H, W, L) logits -> (L, 2).

    Each landmark becomes the sigmoid-weighted mean of heatmap cell indices / size in a kernel x kernel window
    around it (cut at the heatmap's edges), when the window's max confidence reaches ``min_confidence``; landmarks
    outside the heatmap are kept. (Cell index / size, not (index + 0.5) / size: MediaPipe's convention, kept for
    parity.) All L windows are gathered at once.
    """
    hm_h, hm_w, n = heatmap.shape
    assert xy.shape == (n, 2), (xy.shape, heatmap.shape)
    off = (kernel - 1) // 2
    col = (xy[:, 0] * hm_w).astype(np.int64)  # truncation toward zero, as the C++ cast
    row = (xy[:, 1] * hm_h).astype(np.int64)
    inside = (col >= 0) & (col < hm_w) & (row >= 0) & (row < hm_h)
    d = np.arange(-off, off + 1)
    rows, cols = row[:, None] + d, col[:, None] + d  # (L, kernel) each
    in_rows, in_cols = (rows >= 0) & (rows < hm_h), (cols >= 0) & (cols < hm_w)
    window = heatmap[np.clip(rows, 0, hm_h - 1)[:, :, None], np.clip(cols, 0, hm_w - 1)[:, None, :],
                     np.arange(n)[:, None, None]]  # (L, kernel, kernel)
    conf = _sigmoid(window) * (in_rows[:, :, None] & in_cols[:, None, :])  # cells off the heatmap weigh nothing
    total = conf.sum(axis=(1, 2))
    refine = inside & (conf.max(axis=(1, 2)) >= min_confidence) & (total > 0)
    out = xy.copy()
    safe = np.where(refine, total, 1.0)
    out[refine, 0] = ((conf * cols[:, None, :]).sum(axis=(1, 2)) / safe / hm_w)[refine]
    out[refine, 1] = ((conf * rows[:, :, None]).sum(axis=(1, 2)) / safe / hm_h)[refine]
    return out


class _Model:
    """A LiteRT interpreter with its lock; outputs looked up by shape, not by index."""

    def __init__(self, path: str | Path, num_threads: int):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"BlazePose model not found: {self.path}")
        self.interpreter = Interpreter(model_path=str(self.path), num_threads=num_threads)
        self.interpreter.allocate_tensors()
        (self.input,) = self.interpreter.get_input_details()
        self.outputs = {tuple(int(d) for d in o["shape"]): o["index"]
                        for o in self.interpreter.get_output_details()}
        self.lock = threading.Lock()

    def output_index(self, shape: tuple[int, ...]) -> int:
        if shape not in self.outputs:
            raise ValueError(f"{self.path.name}: no output of shape {shape} (has {sorted(self.outputs)})")
        return self.outputs[shape]

    def __call__(self, x: np.ndarray, shapes: list[tuple[int, ...]]) -> tuple[list[np.ndarray], float]:
        """Run on x (the input's shape, float32); return copies of the outputs with ``shapes`` and the ms."""
        indices = [self.output_index(s) for s in shapes]
        with self.lock:
            start = time.perf_counter()
            self.interpreter.set_tensor(self.input["index"], x)
            self.interpreter.invoke()
            outs = [self.interpreter.get_tensor(i).copy() for i in indices]
            return outs, (time.perf_counter() - start) * 1e3


class BlazePose:
    """BlazePose person detector + 33-landmark model on one RGB image (no tracking between calls).

    Arguments:
        detector_path: ``pose_detection.tflite`` (see ``index_builder.bundle.blazepose_assets``).
        landmark_path: ``pose_landmark_full.tflite``.
        num_threads: LiteRT (XNNPACK) threads per interpreter.
        min_detection_score: detector score threshold after the sigmoid (the Pose Landmarker's
            min_pose_detection_confidence default, 0.5; the legacy graph used 0.2 then picked one person).
        min_presence_score: pose presence threshold of the landmark model (0.5 in the graph).
        nms_iou: weighted-NMS IoU threshold on the detector's (face) boxes (0.3 in the graph).
    """

    def __init__(self, detector_path: str | Path, landmark_path: str | Path, num_threads: int = 1,
                 min_detection_score: float = 0.5, min_presence_score: float = 0.5, nms_iou: float = 0.3):
        self.detector = _Model(detector_path, num_threads)
        self.landmarker = _Model(landmark_path, num_threads)
        det_in = tuple(int(d) for d in self.detector.input["shape"])
        lm_in = tuple(int(d) for d in self.landmarker.input["shape"])
        if det_in != (1, DETECTOR_INPUT, DETECTOR_INPUT, 3) or lm_in != (1, LANDMARK_INPUT, LANDMARK_INPUT, 3):
            raise ValueError(f"unexpected BlazePose inputs: detector {det_in}, landmarks {lm_in}")
        self.anchors = ssd_anchor_centres()
        assert self.anchors.shape == (NUM_ANCHORS, 2), self.anchors.shape
        self.min_detection_score = min_detection_score
        self.min_presence_score = min_presence_score
        self.nms_iou = nms_iou

    def detect(self, image: np.ndarray, max_people: int | None = None) -> list[Person]:
        """People in ``image`` (H, W, 3) uint8 RGB, largest box first; [] when there is none."""
        return self.run(image, max_people)[0]

    def run(self, image: np.ndarray, max_people: int | None = None) -> tuple[list[Person], Timings]:
        """Like ``detect``, also returning the stage timings.

        With ``max_people`` only that many detections (those with the largest ROIs) go through the landmark
        model; people whose pose presence falls below ``min_presence_score`` are dropped.
        """
        if not (isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 3
                and image.dtype == np.uint8):
            raise ValueError(f"image must be (H, W, 3) uint8 RGB, got {getattr(image, 'shape', None)} "
                             f"{getattr(image, 'dtype', type(image).__name__)}")
        if image.shape[0] < 1 or image.shape[1] < 1:
            raise ValueError(f"empty image {image.shape}")
        if max_people is not None and max_people < 1:
            raise ValueError(f"max_people must be >= 1 or None, got {max_people}")
        start = time.perf_counter()
        timings = Timings()
        dets, timings.detector_ms = self._detect_rois(image)
        rois = [roi_from_detection(kps) for kps in dets.keypoints]
        order = sorted(range(len(rois)), key=lambda i: -rois[i][2])[:max_people]
        people = []
        for i in order:
            person, ms = self._landmarks(image, rois[i], float(dets.scores[i]))
            timings.landmark_ms.append(ms)
            if person is not None:
                people.append(person)
        people.sort(key=lambda p: -float(np.prod(p.box[2:] - p.box[:2])))
        timings.total_ms = (time.perf_counter() - start) * 1e3
        return people, timings

    def _detect_rois(self, image: np.ndarray) -> tuple[Detections, float]:
        """Detections with boxes and keypoints converted to image pixels."""
        h, w = image.shape[:2]
        side = float(max(h, w))  # letterbox: the square around the whole image
        x = warp_roi(image, (w / 2, h / 2), side, 0.0, DETECTOR_INPUT, "zero", (-1.0, 1.0))[None]  # (1, 224, 224, 3)
        (raw_boxes, raw_scores), ms = self.detector(x, [(1, NUM_ANCHORS, 12), (1, NUM_ANCHORS, 1)])
        dets = weighted_nms(decode_detections(raw_boxes[0], raw_scores[0], self.anchors, self.min_detection_score),
                            self.nms_iou)
        to_px = np.array([w / 2, h / 2], np.float32) - side / 2  # letterbox removal + scale to pixels
        dets.boxes = dets.boxes * side + np.tile(to_px, 2)
        dets.keypoints = dets.keypoints * side + to_px
        return dets, ms

    def _landmarks(self, image: np.ndarray, roi: tuple[float, float, float, float],
                   detection_score: float) -> tuple[Person | None, float]:
        cx, cy, side, rotation = roi
        if not side > 0:
            return None, 0.0
        h, w = image.shape[:2]
        x = warp_roi(image, (cx, cy), side, rotation, LANDMARK_INPUT, "replicate", (0.0, 1.0))[None]  # (1, 256, 256, 3)
        (raw, flag, heatmap), ms = self.landmarker(
            x, [(1, NUM_RAW_LANDMARKS * 5), (1, 1), (1, 64, 64, NUM_RAW_LANDMARKS)])
        score = float(flag.reshape(()))  # the model emits a probability (no activation in the graph)
        if score < self.min_presence_score:
            return None, ms
        raw = raw.reshape(NUM_RAW_LANDMARKS, 5)
        raw = raw[:NUM_LANDMARKS]  # refinement is per landmark: skipping the extra points changes nothing
        xy = refine_from_heatmap(raw[:, :2] / LANDMARK_INPUT, heatmap[0, :, :, :NUM_LANDMARKS])  # ROI-normalised
        c, s = math.cos(rotation), math.sin(rotation)
        u, v = (xy[:, 0] - 0.5) * side, (xy[:, 1] - 0.5) * side
        keypoints = np.stack([cx + c * u - s * v, cy + s * u + c * v], axis=1).astype(np.float32)
        lo = np.clip(keypoints.min(0), 0, [w, h])
        hi = np.clip(keypoints.max(0), 0, [w, h])
        return Person(
            box=np.concatenate([lo, hi]).astype(np.float32),
            keypoints=keypoints,
            visibility=_sigmoid(raw[:, 3]).astype(np.float32),
            presence=_sigmoid(raw[:, 4]).astype(np.float32),
            score=score,
            detection_score=detection_score,
            roi=(cx, cy, side, rotation),
        ), ms
