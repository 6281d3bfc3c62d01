"""Request examples of the OpenAPI document, one set per route; every example is a request the service accepts
(the image is a real photo in which BlazePose finds a person: ``data/example_person.jpg``, public domain)."""

from __future__ import annotations

import base64
from pathlib import Path

EXAMPLE_IMAGE_B64 = base64.b64encode((Path(__file__).parent / "data" / "example_person.jpg").read_bytes()).decode()

_STAND_H36M17_PX = [[500, 500], [470, 500], [472, 620], [474, 740], [530, 500], [528, 620], [526, 740],
                    [500, 420], [500, 340], [500, 310], [500, 260], [540, 345], [560, 420], [565, 490],
                    [460, 345], [440, 420], [435, 490]]
_STAND_H36M17_MM = [[0, 0, 0], [-120, 0, 0], [-115, 420, 30], [-110, 840, 60], [120, 0, 0], [115, 420, 30],
                    [110, 840, 60], [0, -240, -10], [0, -480, -20], [0, -560, -50], [0, -720, -30],
                    [160, -460, -20], [190, -200, -10], [200, 40, 20], [-160, -460, -20], [-190, -200, -10],
                    [-200, 40, 20]]

_CAMERA = {"focal": [1145.0, 1145.0], "principal_point": [512.0, 500.0], "distortion": [-0.12, 0.03, 0.0, 0.0, 0.0]}

EMBED_EXAMPLES = {
    "pose2d": {"summary": "a 2D pose in pixels",
               "value": {"inputs": [{"modality": "pose2d", "keypoints": _STAND_H36M17_PX, "layout": "h36m17",
                                     "image_size": [1000, 1000]}]}},
    "camera": {"summary": "a 2D pose with its camera's intrinsics and lens distortion (pixels, OpenCV order)",
               "value": {"inputs": [{"modality": "pose2d", "keypoints": _STAND_H36M17_PX, "layout": "h36m17",
                                     "image_size": [1024, 1000], "camera": _CAMERA}]}},
    "pose3d": {"summary": "a 3D pose, camera frame, mm",
               "value": {"inputs": [{"modality": "pose3d", "keypoints": _STAND_H36M17_MM, "layout": "h36m17",
                                     "units": "mm"}]}},
    "image": {"summary": "an image (base64 JPEG/PNG)",
              "value": {"inputs": [{"modality": "image", "image_b64": EXAMPLE_IMAGE_B64}]}},
}
RETRIEVE_EXAMPLES = {
    "pose2d": {"summary": "top 5 for a 2D pose, walking clips only",
               "value": {"query": {"modality": "pose2d", "keypoints": _STAND_H36M17_PX, "layout": "h36m17"},
                         "k": 5, "filters": {"include": {"content": ["walk"]}, "exclude": {"style": ["elderly"]}}}},
    "image": {"summary": "the best clip for each of the 3 nearest, grouped by clip",
              "value": {"query": {"image_b64": EXAMPLE_IMAGE_B64}, "k": 3, "group_by_clip": True}},
    "batch": {"summary": "two queries",
              "value": {"queries": [{"keypoints": _STAND_H36M17_PX},
                                    {"modality": "pose3d", "keypoints": _STAND_H36M17_MM}], "k": 3}},
    "cosine": {"summary": "the top 10 by cosine alone: no geometric re-ranking, no confidence",
               "value": {"query": {"modality": "pose2d", "keypoints": _STAND_H36M17_PX, "layout": "h36m17",
                                   "image_size": [1000, 1000]}, "k": 10, "rerank": False}},
}
LIFT_EXAMPLES = {
    "pose2d": {"summary": "2D pose to 3D",
               "value": {"keypoints": _STAND_H36M17_PX, "layout": "h36m17", "image_size": [1000, 1000]}},
    "camera": {"summary": "2D pose to 3D in that camera's frame, with its intrinsics",
               "value": {"keypoints": _STAND_H36M17_PX, "layout": "h36m17", "image_size": [1024, 1000],
                         "camera": _CAMERA}},
    "fov": {"summary": "2D pose to 3D, the lens known only by its horizontal field of view",
            "value": {"keypoints": _STAND_H36M17_PX, "layout": "h36m17", "image_size": [1000, 1000],
                      "fov_deg": 75}},
    "image": {"summary": "an image", "value": {"image_b64": EXAMPLE_IMAGE_B64}},
    "image_fov": {"summary": "an image taken with a 40 degree horizontal field of view",
                  "value": {"image_b64": EXAMPLE_IMAGE_B64, "fov_deg": 40}},
    "batch": {"summary": "a batch", "value": {"inputs": [{"keypoints": _STAND_H36M17_PX}]}},
}
RELOAD_EXAMPLES = {"default": {"summary": "reload the configured bundle", "value": {}}}
