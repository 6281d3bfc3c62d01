"""Bad input, table-driven, over real HTTP: each gets its status and an error body naming the field, and none of
them hurts the server (a normal request still works afterwards)."""

from __future__ import annotations

import base64
import io
import json
import struct
import zlib

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.service.live_server import ADMIN_KEY, READ_KEY
from tests.service.poses import COCO_STANDING

KP = COCO_STANDING.tolist()
GOOD = {"inputs": [{"keypoints": KP, "layout": "coco17"}]}


def raw(text: str) -> dict:
    """A raw JSON body (to send NaN / Infinity literally, which JSON does not have)."""
    return {"content": text.encode(), "headers": {"Content-Type": "application/json"}}


def kp_text(bad: str, at: int = 2) -> str:
    points = [json.dumps(p) for p in KP]
    points[at] = f"[{bad}, 10.0]"
    return "[" + ", ".join(points) + "]"


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG that declares width x height 8-bit grey pixels (a decompression bomb's header)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 1024)) + \
        chunk(b"IEND", b"")


def encoded(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kwargs)
    return buf.getvalue()


NOISE = Image.fromarray(np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8))
JPEG = encoded(NOISE, "JPEG", quality=90)
IMAGES = {
    "empty": b"",
    "truncated_jpeg": JPEG[: len(JPEG) // 2],
    "grey_png": encoded(Image.new("RGB", (320, 240), (128, 128, 128)), "PNG"),
    "bomb_over_2x": png_header_only(9000, 9000),  # 81 Mpx: under Pillow's default limit (89 Mpx), over ours
    "bomb_over_1x": png_header_only(2500, 2000),  # 5 Mpx: over our 4 Mpx limit, under twice it
    "not_an_image": b"%PDF-1.4 this is not an image at all" * 10,
    "gif": encoded(Image.new("RGB", (64, 64)), "GIF"),
    "bmp": encoded(Image.new("RGB", (64, 64)), "BMP"),
    "tiff": encoded(Image.new("RGB", (64, 64)), "TIFF"),
    "webp": encoded(Image.new("RGB", (64, 64)), "WEBP"),
    "bomb_30000": png_header_only(30000, 30000),
}
IMAGE_CASES = [  # name, status, code
    ("empty", 422, "invalid_image"),
    ("truncated_jpeg", 422, "invalid_image"),
    ("grey_png", 422, "no_person"),
    ("bomb_over_2x", 413, "image_too_large"),
    ("bomb_over_1x", 413, "image_too_large"),
    ("not_an_image", 422, "invalid_image"),
    ("gif", 415, "unsupported_image_format"),
    ("bmp", 415, "unsupported_image_format"),
    ("tiff", 415, "unsupported_image_format"),
    ("webp", 415, "unsupported_image_format"),
    ("bomb_30000", 413, "image_too_large"),
]

CASES = [  # id, method, path, request kwargs, status, code, field
    ("wrong joint count", "POST", "/embed", {"json": {"inputs": [{"keypoints": KP[:16], "layout": "coco17"}]}},
     422, "invalid_pose", "inputs[0].keypoints"),
    ("joint of 4 numbers", "POST", "/embed", {"json": {"inputs": [{"keypoints": KP[:3] + [[1, 2, 3, 4]] + KP[4:],
                                                                   "layout": "coco17"}]}},
     422, "invalid_pose", "inputs[0].keypoints[3]"),
    ("NaN keypoint", "POST", "/embed", raw('{"inputs": [{"layout": "coco17", "keypoints": %s}]}' % kp_text("NaN")),
     422, "invalid_pose", "inputs[0].keypoints[2]"),
    ("1e308 keypoint", "POST", "/embed", raw('{"inputs": [{"layout": "coco17", "keypoints": %s}]}' % kp_text("1e308")),
     422, "invalid_pose", "inputs[0].keypoints[2]"),
    ("1e309 keypoint (inf)", "POST", "/embed",
     raw('{"inputs": [{"layout": "coco17", "keypoints": %s}]}' % kp_text("1e309")),
     422, "invalid_pose", "inputs[0].keypoints[2]"),
    ("10^400 keypoint", "POST", "/embed",
     raw('{"inputs": [{"layout": "coco17", "keypoints": %s}]}' % kp_text("1" + "0" * 400)),
     422, "invalid_request", "inputs[0].keypoints[2][0]"),
    ("nesting 100k deep", "POST", "/embed", raw('{"inputs": ' + "[" * 100_000 + "]" * 100_000 + "}"),
     400, "malformed_json", None),
    ("normalised keypoints with image_size 1.7e308", "POST", "/lift3d",
     {"json": {"keypoints": (np.array(KP) / 300).tolist(), "layout": "coco17", "coordinates": "normalized",
               "image_size": [1.7e308, 1.7e308]}}, 422, "invalid_pose", "image_size"),
    ("Infinity keypoint", "POST", "/lift3d", raw('{"layout": "coco17", "keypoints": %s}' % kp_text("-Infinity", 5)),
     422, "invalid_pose", "keypoints[5]"),
    ("NaN in embedding", "POST", "/retrieve", raw('{"query": {"embedding": [NaN%s]}}' % (", 0.1" * 31)),
     422, "invalid_embedding", "query.embedding[0]"),
    ("embedding of wrong length", "POST", "/retrieve", {"json": {"query": {"embedding": [0.1] * 7}}},
     422, "invalid_embedding", "query.embedding"),
    ("confidence above 1", "POST", "/embed", {"json": {"inputs": [{"keypoints": [[1.0, 2.0, 1.5]] + KP[1:],
                                                                   "layout": "coco17"}]}},
     422, "invalid_pose", "inputs[0].keypoints[0]"),
    ("too few visible joints", "POST", "/embed", {"json": {"inputs": [{"keypoints": KP[:5] + [None] * 12,
                                                                       "layout": "coco17"}]}},
     422, "invalid_pose", "inputs[0].keypoints"),
    ("all joints on one point", "POST", "/embed", {"json": {"inputs": [{"keypoints": [[5.0, 5.0]] * 17}]}},
     422, "invalid_pose", "inputs[0].keypoints"),
    ("3D joint missing", "POST", "/embed", {"json": {"inputs": [{"modality": "pose3d",
                                                                 "keypoints": [[0, 0, 0]] * 16 + [None]}]}},
     422, "invalid_pose", "inputs[0].keypoints[16]"),
    ("3D metres sent as mm", "POST", "/embed", {"json": {"inputs": [{"modality": "pose3d", "keypoints":
                                                                     (np.random.default_rng(1).normal(size=(17, 3))
                                                                      * 0.4).tolist()}]}},
     422, "invalid_pose", "inputs[0].keypoints"),
    ("unknown layout", "POST", "/embed", {"json": {"inputs": [{"keypoints": KP, "layout": "mpii16"}]}},
     422, "unknown_layout", "inputs[0].layout"),
    ("3D in a 2D layout", "POST", "/embed", {"json": {"inputs": [{"modality": "pose3d", "keypoints": KP,
                                                                  "layout": "coco17"}]}},
     422, "unknown_layout", "inputs[0].layout"),
    ("unknown modality", "POST", "/embed", {"json": {"inputs": [{"modality": "depth", "keypoints": KP}]}},
     422, "unknown_modality", "inputs[0].modality"),
    ("unknown modality in a query", "POST", "/retrieve", {"json": {"query": {"modality": "text", "text": "x"}}},
     422, "unknown_modality", "query.modality"),
    ("wrong type", "POST", "/embed", {"json": {"inputs": [{"keypoints": "many"}]}},
     422, "invalid_request", "inputs[0].keypoints"),
    ("empty body", "POST", "/embed", {"content": b""}, 400, "empty_body", None),
    ("malformed JSON", "POST", "/retrieve", raw('{"query": {"keypoints": [[1, 2],'), 400, "malformed_json", None),
    ("JSON that is not an object", "POST", "/embed", raw("[1, 2, 3]"), 422, "invalid_request", None),
    ("no inputs", "POST", "/embed", {"json": {"inputs": []}}, 422, "invalid_request", "inputs"),
    ("text/plain", "POST", "/embed", {"content": b"hello", "headers": {"Content-Type": "text/plain"}},
     415, "unsupported_media_type", None),
    ("body over the limit", "POST", "/embed", raw(json.dumps({"inputs": [{"keypoints": KP, "pad": "x" * 300_000}]})),
     413, "body_too_large", None),
    ("batch over the limit", "POST", "/embed", {"json": {"inputs": [{"keypoints": KP, "layout": "coco17"}] * 9}},
     413, "batch_too_large", "inputs"),
    ("query batch over the limit", "POST", "/retrieve", {"json": {"queries": [{"embedding": [0.1] * 32}] * 9}},
     413, "batch_too_large", "queries"),
    ("k = 0", "POST", "/retrieve", {"json": {"query": {"embedding": [0.1] * 32}, "k": 0}},
     422, "out_of_range", "k"),
    ("k = 10^9", "POST", "/retrieve", {"json": {"query": {"embedding": [0.1] * 32}, "k": 10**9}},
     422, "out_of_range", "k"),
    ("k = 1001", "POST", "/retrieve", {"json": {"query": {"embedding": [0.1] * 32}, "k": 1001}},
     422, "out_of_range", "k"),
    ("search effort too high", "POST", "/retrieve", {"json": {"query": {"embedding": [0.1] * 32},
                                                              "search_effort": 1000}},
     422, "out_of_range", "search_effort"),
    ("unknown filter field", "POST", "/retrieve", {"json": {"query": {"embedding": [0.1] * 32},
                                                            "filters": {"include": {"colour": ["red"]}}}},
     422, "unknown_field", "filters.include.colour"),
    ("unknown filter section", "POST", "/retrieve", {"json": {"query": {"embedding": [0.1] * 32},
                                                              "filters": {"only": {"content": ["walk"]}}}},
     422, "unknown_field", "filters.only"),
    ("unknown label", "POST", "/retrieve", {"json": {"query": {"embedding": [0.1] * 32},
                                                     "filters": {"exclude": {"content": ["walk", "swim"]}}}},
     422, "unknown_label", "filters.exclude.content[1]"),
    ("unknown request field", "POST", "/retrieve", {"json": {"query": {"embedding": [0.1] * 32}, "kk": 3}},
     422, "unknown_field", "kk"),
    ("query and queries", "POST", "/retrieve", {"json": {"query": {"embedding": [0.1] * 32},
                                                         "queries": [{"embedding": [0.1] * 32}]}},
     422, "invalid_request", None),
    ("bad base64", "POST", "/embed", {"json": {"inputs": [{"image_b64": "not base64!!"}]}},
     422, "invalid_image", "inputs[0].image_b64"),
    ("multipart without image", "POST", "/embed", {"files": {"picture": ("a.png", b"x")}},
     422, "invalid_request", "image"),
    ("multipart image and inputs", "POST", "/embed",
     {"files": {"image": ("a.jpg", b"\xff\xd8\xff", "image/jpeg")}, "data": {"inputs": json.dumps(GOOD["inputs"])}},
     422, "unknown_field", "inputs"),
    ("multipart query=null and queries", "POST", "/retrieve",
     {"files": {"image": ("a.jpg", b"\xff\xd8\xff", "image/jpeg")},
      "data": {"query": "null", "queries": json.dumps([{"embedding": [0.1] * 32}])}},
     422, "unknown_field", "query"),
    ("missing API key", "POST", "/embed", {"json": GOOD, "headers": {"X-API-Key": ""}},
     401, "missing_api_key", "X-API-Key"),
    ("wrong API key", "POST", "/embed", {"json": GOOD, "headers": {"X-API-Key": "guess"}},
     401, "invalid_api_key", "X-API-Key"),
    ("info without key", "GET", "/info", {"headers": {"X-API-Key": ""}}, 401, "missing_api_key", "X-API-Key"),
    ("read key on admin", "POST", "/admin/reload", {}, 403, "forbidden", "X-API-Key"),
    ("wrong key on admin", "POST", "/admin/reload", {"headers": {"X-API-Key": "guess"}},
     401, "invalid_api_key", "X-API-Key"),
    ("no such route", "GET", "/embeddings", {}, 404, "not_found", None),
    ("wrong method", "GET", "/embed", {}, 405, "method_not_allowed", None),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_request(keyed_client, case):
    _, method, path, kwargs, status, code, field = case
    r = keyed_client.request(method, path, **kwargs)
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error", "model_version"} and set(body["error"]) == {"code", "message", "field"}
    assert body["error"]["code"] == code and body["error"]["field"] == field
    assert body["error"]["message"] and "Traceback" not in r.text
    assert r.headers["x-request-id"] and r.headers["x-model-version"] == body["model_version"]


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("name,status,code", IMAGE_CASES, ids=[c[0] for c in IMAGE_CASES])
def test_bad_image(keyed_client, name, status, code):
    data = IMAGES[name]
    as_json = keyed_client.post("/embed", json={"inputs": [{"image_b64": base64.b64encode(data).decode()}]})
    assert as_json.status_code == status, as_json.text
    assert as_json.json()["error"]["code"] == code and as_json.json()["error"]["field"] == "inputs[0].image_b64"
    as_upload = keyed_client.post("/lift3d", files={"image": (f"{name}.bin", data, "application/octet-stream")})
    assert as_upload.status_code == status, as_upload.text
    assert as_upload.json()["error"]["code"] == code and as_upload.json()["error"]["field"] == "image"


def test_admin_key_works_for_reading_and_the_server_survives(keyed_server, keyed_client):
    """After every bad request above the server still answers normally (runs last in this module)."""
    assert keyed_client.get("/healthz", headers={"X-API-Key": ""}).status_code == 200  # probes are open
    assert httpx.get(f"{keyed_server.url}/metrics").status_code == 200
    for key in (READ_KEY, "read-key-2", ADMIN_KEY):
        r = keyed_client.post("/embed", json=GOOD, headers={"X-API-Key": key})
        assert r.status_code == 200 and len(r.json()["embeddings"][0]) == r.json()["dim"]
    text = httpx.get(f"{keyed_server.url}/metrics").text
    assert 'status="422"' in text and 'status="413"' in text and 'status="401"' in text


def test_chunked_body_over_the_limit(keyed_client):
    """No Content-Length: the body is counted as it streams."""
    def chunks():
        yield b'{"inputs": [{"keypoints": [], "pad": "'
        for _ in range(40):
            yield b"x" * 10_000
        yield b'"}]}'

    r = keyed_client.post("/embed", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"


def test_unexpected_errors_are_logged_and_answered_without_internals(tmp_path, caplog):
    from service.main import create_app
    from tests.service.live_server import make_settings, serve

    app = create_app(make_settings(tmp_path / "no-bundle", require_bundle=False))

    async def broken():
        raise RuntimeError("secret internal detail /etc/passwd")

    app.add_api_route("/broken", broken, methods=["GET"])
    with serve(app) as live, httpx.Client(base_url=live.url) as c:
        r = c.get("/broken", headers={"X-Request-ID": "trace-me"})
        assert r.status_code == 500
        assert r.json() == {"error": {"code": "internal_error", "message": "internal server error", "field": None},
                            "model_version": None}
        assert "secret" not in r.text and r.headers["x-request-id"] == "trace-me"
        assert c.get("/healthz").status_code == 200  # the worker lives on
    assert any("trace-me" in rec.getMessage() and rec.exc_info for rec in caplog.records)
