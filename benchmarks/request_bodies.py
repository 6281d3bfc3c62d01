"""The request bodies of the memory benchmark: large photos, flat PNGs, pose queries and padded pose batches.

Images are made in memory with Pillow from one photo; nothing is written to disk.
"""

from __future__ import annotations

import base64
import io
import json
import random
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.service_harness import pose_keypoints


def photo_jpeg(path: Path, width: int, height: int, max_bytes: int) -> tuple[bytes, int]:
    """The photo at ``path`` centre-cropped to width:height and resized to width x height pixels, as JPEG of at
    most ``max_bytes``: (bytes, the JPEG quality used, the highest of 90..5 in steps of 5 that fits)."""
    with Image.open(path) as img:
        img = img.convert("RGB")
        scale = min(img.width / width, img.height / height)
        crop_w, crop_h = round(width * scale), round(height * scale)
        left, top = (img.width - crop_w) // 2, (img.height - crop_h) // 2
        big = img.crop((left, top, left + crop_w, top + crop_h)).resize((width, height), Image.BICUBIC)
    for quality in range(90, 0, -5):
        buffer = io.BytesIO()
        big.save(buffer, "JPEG", quality=quality, optimize=True)
        if buffer.tell() <= max_bytes:
            return buffer.getvalue(), quality
    raise ValueError(f"a {width}x{height} JPEG of {path.name} does not fit in {max_bytes} bytes")


def flat_png(width: int, height: int, colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A single-colour RGB PNG of width x height pixels (it compresses about 1000:1)."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, "PNG")
    return buffer.getvalue()


def images_body(image: bytes, count: int) -> bytes:
    """JSON /embed body with ``count`` copies of ``image`` as base64 image inputs."""
    item = json.dumps({"modality": "image", "image_b64": base64.b64encode(image).decode()})
    return ('{"inputs": [' + ", ".join([item] * count) + "]}").encode()


def images_body_overhead(count: int) -> int:
    """Bytes an ``images_body`` of ``count`` inputs adds around the base64 text."""
    return len(images_body(b"", count))


def pose_input(keypoints: np.ndarray) -> dict:
    """One h36m17 pose2d input from (17, 2) pixels."""
    return {"modality": "pose2d", "keypoints": np.round(keypoints, 2).tolist(), "layout": "h36m17"}


def retrieve_body(keypoints: np.ndarray, k: int) -> bytes:
    """JSON /retrieve body: one pose2d query per row of (Q, 17, 2) pixels, ``k`` results each."""
    return json.dumps({"queries": [pose_input(kp) for kp in keypoints], "k": k}).encode()


def padded_poses_body(keypoints: np.ndarray, target_bytes: int, seed: int = 0) -> bytes:
    """JSON /embed body of one h36m17 pose2d [x, y, c] input per row of (N, 17, 2) pixels whose numbers carry
    seeded random decimals, as many as brings the body to at most ``target_bytes`` (JSON numbers have no
    length limit, so this is the only way 256 poses reach the body limit)."""
    count = len(keypoints)
    numbers = count * 17 * 3
    skeleton = {"inputs": [{"modality": "pose2d", "keypoints": [[0, 0, 0]] * 17, "layout": "h36m17"}] * count}
    base = len(json.dumps(skeleton))
    digits = max(1, (target_bytes - base) // numbers - 8)  # "123.", the confidence's "0." and slack
    rng = random.Random(seed)

    def number(value: float) -> str:
        return f"{int(value)}." + "".join(rng.choices("0123456789", k=digits))

    items = []
    for kp in keypoints:
        joints = ", ".join(f"[{number(x)}, {number(y)}, 0.{''.join(rng.choices('0123456789', k=digits))}]"
                           for x, y in np.abs(kp))
        items.append(f'{{"modality": "pose2d", "keypoints": [{joints}], "layout": "h36m17"}}')
    body = ('{"inputs": [' + ", ".join(items) + "]}").encode()
    if len(body) > target_bytes:
        raise ValueError(f"padded body of {len(body)} bytes is over the target {target_bytes}")
    return body


def heavy_requests(photo: Path, bundle: Path, limits: dict) -> list[tuple[str, str, bytes, str, bool]]:
    """The heavy single requests, (name, path, JSON body, note, known-bad), for a service with ``limits`` (its
    /info ``limits``): three within them (the largest JPEG upload, the most queries with k = 100, the most poses
    padded to the body limit), then the two known-bad ones (flat 5000 x 5000 PNGs, the most queries with k = 1000)."""
    max_body, max_batch = limits["max_body_bytes"], limits["max_batch"]
    per_image = (max_body - images_body_overhead(64)) // 64 * 3 // 4  # base64: 4 characters per 3 bytes
    jpeg, quality = photo_jpeg(photo, 4000, 3000, per_image)
    png = flat_png(5000, 5000)
    queries = pose_keypoints(bundle, max_batch, seed=3)
    return [
        ("embed 64 x 4000x3000 JPEG", "/embed", images_body(jpeg, 64),
         f"JPEG q{quality}, {len(jpeg) / 1024:.0f} KiB each", False),
        (f"retrieve {max_batch} queries k=100", "/retrieve", retrieve_body(queries, 100), "", False),
        (f"embed {max_batch} poses padded to the body limit", "/embed",
         padded_poses_body(queries, max_body), "h36m17 [x, y, c], long decimals", False),
        ("known-bad: embed 64 x 5000x5000 flat PNG", "/embed", images_body(png, 64),
         f"{len(png) / 1024:.0f} KiB each", True),
        (f"known-bad: retrieve {max_batch} queries k=1000", "/retrieve", retrieve_body(queries, 1000), "", True),
    ]
