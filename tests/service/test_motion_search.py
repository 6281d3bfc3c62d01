"""Motion search over HTTP: sequences of 2D and 3D poses built from the served library's own clips (at 0.5x, 1x
and 2x, from a camera between the virtual views, with dropped frames), videos (a real one: Debian's opencv-doc
``vtest.avi``, pedestrians walking; cut, re-encoded and synthetic clips made with PyAV), and every error case."""

from __future__ import annotations

import io
import json
from pathlib import Path

import av
import httpx
import numpy as np
import pytest

from model.pose.cameras import look_at
from service.main import create_app
from tests.service.live_server import make_settings, serve
from tests.service.poses import CENTRE_PX, DISTANCE_MM, FOCAL_PX

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
QUERY_FPS = 30.0
SPEEDS = (0.5, 1.0, 2.0)


@pytest.fixture(scope="module")
def small_server(tiny_bundle):
    """Small sequence and video limits, for the over-the-limit answers."""
    settings = make_settings(tiny_bundle, max_sequence_frames=100, max_sequence_seconds=5.0, max_video_seconds=3.0,
                             max_video_bytes=2_000_000)
    with serve(create_app(settings)) as live:
        yield live


@pytest.fixture()
def small_client(small_server):
    with httpx.Client(base_url=small_server.url, timeout=120) as c:
        yield c


@pytest.fixture(scope="module")
def video_server(tiny_bundle):
    """Long videos allowed, sampled at 1 frame a second (the whole of vtest.avi in a few seconds)."""
    settings = make_settings(tiny_bundle, max_video_seconds=90.0, video_sample_fps=1.0)
    with serve(create_app(settings)) as live:
        yield live


def clip_rows(database, clip: int) -> np.ndarray:
    _, _, metadata = database
    rows = np.flatnonzero(metadata["clip"] == clip)
    return rows[np.argsort(metadata["frame"][rows])]


def moving_clip(database, frames: int = 30) -> int:
    """The clip with the most motion over ``frames`` library frames (long enough), so it is decidable."""
    poses, _, metadata = database
    best, best_motion = -1, -1.0
    for clip in range(len(metadata["clip_name"])):
        rows = clip_rows(database, clip)
        if len(rows) < frames + 4:
            continue
        p = poses[rows[:frames]] - poses[rows[:frames], :1]
        motion = float(np.linalg.norm(np.diff(p, axis=0), axis=-1).mean())
        if motion > best_motion:
            best, best_motion = clip, motion
    return best


def played(world: np.ndarray, speed: float, rate: float) -> tuple[np.ndarray, np.ndarray]:
    """Poses (T, 17, 3) at ``rate`` fps replayed at ``speed`` and sampled at 30 fps (linear interpolation)."""
    times = np.arange(0, (len(world) - 1) / rate / speed + 1e-9, 1 / QUERY_FPS)
    position = times * speed * rate
    lo = np.floor(position).astype(int)
    hi = np.minimum(lo + 1, len(world) - 1)
    frac = (position - lo)[:, None, None]
    return world[lo] * (1 - frac) + world[hi] * frac, times


CAMERA = look_at(np.array([DISTANCE_MM * np.sin(0.4), 1800.0, DISTANCE_MM * np.cos(0.4)]),
                 np.array([0.0, 900.0, 0.0]))  # 23 degrees off view 0, higher than the virtual views


def pose2d_frames(world: np.ndarray) -> list[dict]:
    cam = (world - world[:, :1]) @ CAMERA.T + np.array([0.0, 0.0, DISTANCE_MM])
    pixels = cam[..., :2] / cam[..., 2:] * FOCAL_PX + CENTRE_PX
    return [{"keypoints": np.round(p, 2).tolist(), "image_size": [1000, 1000]} for p in pixels]


def sequence_query(database, clip: int, speed: float, start: int = 2, frames: int = 30) -> tuple[list, float]:
    poses, _, metadata = database
    rows = clip_rows(database, clip)[start : start + frames]
    world, _ = played(poses[rows].astype(np.float64), speed, 10.0)
    return pose2d_frames(world), QUERY_FPS


def test_limits_are_listed_by_info(client):
    limits = client.get("/info").json()["limits"]
    assert limits["max_sequence_frames"] >= 2 and limits["sequence_fps"][0] < limits["sequence_fps"][1]
    assert {"MP4", "WebM", "AVI"} <= set(limits["video_formats"]) and limits["max_video_bytes"] > 0


@pytest.mark.parametrize("speed", SPEEDS)
def test_a_clip_played_at_another_speed_finds_itself_first(client, database, speed):
    clip = moving_clip(database)
    _, _, metadata = database
    frames, fps = sequence_query(database, clip, speed)
    response = client.post("/retrieve", json={"sequence": {"frames": frames, "fps": fps}, "k": 5})
    assert response.status_code == 200, response.text
    body = response.json()
    top = body["results"][0]
    name = str(metadata["clip_name"][clip])
    assert top["clip"] == name and top["metadata"]["clip"] == name
    fps_clip = float(metadata["clip_fps"][clip])
    rows = clip_rows(database, clip)
    clip_frames = metadata["frame"][rows]
    span = np.searchsorted(clip_frames, [top["metadata"]["first_frame"], top["metadata"]["last_frame"]])
    assert 26 <= span[1] - span[0] <= 33  # the 30 library frames the query plays, at whatever speed
    # the aligned clip poses are the query's own (or an equivalent cycle of a periodic motion): within 60 mm
    poses, _, _ = database
    world, _ = played(poses[rows[2:32]].astype(np.float64), speed, 10.0)
    pairs = np.array(top["alignment"])
    aligned = poses[rows[np.searchsorted(clip_frames, pairs[:, 1])]]
    query = world[pairs[:, 0]]
    error = np.linalg.norm((aligned - aligned[:, :1]) - (query - query[:, :1]), axis=-1).mean()
    assert error < 60.0
    assert top["start"] == pytest.approx(top["metadata"]["first_frame"] / fps_clip)
    assert top["end"] == pytest.approx(top["metadata"]["last_frame"] / fps_clip)
    alignment = np.array(top["alignment"])
    assert alignment.shape[1] == 2 and (np.diff(alignment[:, 0]) > 0).all() and (np.diff(alignment[:, 1]) >= 0).all()
    assert alignment[:, 0].max() < len(frames) and set(alignment[:, 1]) <= set(clip_frames.tolist())
    assert -1 <= top["score"] <= 1 and top["fit_residual"] >= 0
    assert top["id"] == f"{name}#{top['metadata']['first_frame']}-{top['metadata']['last_frame']}"
    assert body["sequence"]["frames"] == len(frames) and body["sequence"]["rate"] == 10.0
    assert "CC BY-NC" in body["licence"] and body["model_version"]
    timing = response.headers["server-timing"]
    assert "candidates" in timing and "alignment" in timing and "encoder" in timing and "lift" in timing
    for i, a in enumerate(body["results"]):  # no two segments of one clip overlap
        for b in body["results"][:i]:
            if a["clip"] == b["clip"]:
                assert a["end"] < b["start"] or b["end"] < a["start"]


def test_3d_sequences_dropped_frames_and_filters(client, database):
    poses, _, metadata = database
    clip = moving_clip(database)
    name = str(metadata["clip_name"][clip])
    rows = clip_rows(database, clip)[2:32]
    world, _ = played(poses[rows].astype(np.float64), 1.0, 10.0)
    frames = [{"modality": "pose3d", "keypoints": np.round(p, 1).tolist(), "frame": "world_yup", "layout": "unihpr17"}
              for p in world]
    body = client.post("/retrieve", json={"sequence": {"frames": frames, "fps": 30}, "k": 3}).json()
    assert body["results"][0]["clip"] == name and body["results"][0]["fit_residual"] < 1.0  # mm: its own poses

    frames2d, fps = sequence_query(database, clip, 1.0)
    dropped = [None if 20 <= i < 45 else f for i, f in enumerate(frames2d)]  # 0.8 s lost
    body = client.post("/retrieve", json={"sequence": {"frames": dropped, "fps": fps}, "k": 3}).json()
    assert body["results"][0]["clip"] == name
    assert body["sequence"]["present_frames"] == len(frames2d) - 25
    used = {q for q, _ in body["results"][0]["alignment"]}
    assert not used & set(range(20, 45))

    times = (np.arange(len(frames2d)) / fps) ** 1.05  # irregular timing given per frame
    body = client.post("/retrieve", json={"sequence": {"frames": frames2d, "times": times.tolist()}, "k": 3}).json()
    assert body["results"][0]["clip"] == name

    excluded = client.post("/retrieve", json={"sequence": {"frames": frames2d, "fps": fps}, "k": 10,
                                              "filters": {"exclude": {"clip": [name]}}}).json()
    assert excluded["results"] and name not in {r["clip"] for r in excluded["results"]}
    grouped = client.post("/retrieve", json={"sequence": {"frames": frames2d, "fps": fps}, "k": 10,
                                             "group_by_clip": True}).json()
    clips = [r["clip"] for r in grouped["results"]]
    assert len(clips) == len(set(clips))


def error_of(response: httpx.Response, status: int, field: str | None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["field"] == field, error
    return error


def test_bad_sequences_are_4xx_with_the_field(client, small_client, database):
    frames, _ = sequence_query(database, moving_clip(database), 1.0)
    post = lambda c, body: c.post("/retrieve", json=body)  # noqa: E731
    assert error_of(post(client, {"sequence": {"frames": []}}), 422, "sequence.frames")["code"] == "invalid_sequence"
    error_of(post(client, {"sequence": {"frames": frames[:1]}}), 422, "sequence.frames")
    error_of(post(client, {"sequence": {"frames": [None, None, None]}}), 422, "sequence.frames")
    assert error_of(post(client, {"sequence": {"frames": frames[:5], "fps": 1000}}), 422,
                    "sequence.fps")["code"] == "out_of_range"
    error_of(post(client, {"sequence": {"frames": frames[:5], "fps": 0.1}}), 422, "sequence.fps")
    error_of(post(client, {"sequence": {"frames": frames[:5], "fps": 0}}), 422, "sequence.fps")
    error_of(post(client, {"sequence": {"frames": frames[:3], "times": [0, 0.1, 0.1]}}), 422, "sequence.times[2]")
    error_of(post(client, {"sequence": {"frames": frames[:3], "times": [0, 0.1]}}), 422, "sequence.times")
    error_of(post(client, {"sequence": {"frames": frames[:3], "fps": 30}, "query": frames[0]}), 422, None)
    error_of(post(client, {"sequence": {"frames": [frames[0], {"modality": "image", "image_b64": "AAAA"}]}}), 422,
             "sequence.frames[1].modality")
    bad_pose = {"keypoints": frames[1]["keypoints"][:5]}
    error_of(post(client, {"sequence": {"frames": [frames[0], bad_pose]}}), 422, "sequence.frames[1].keypoints")
    nan_pose = {"keypoints": [[float("nan"), 1.0]] + frames[1]["keypoints"][1:]}
    body = json.dumps({"sequence": {"frames": [frames[0], nan_pose]}})  # NaN: what json.dumps writes
    error_of(client.post("/retrieve", content=body, headers={"content-type": "application/json"}), 422,
             "sequence.frames[1].keypoints[0]")
    assert error_of(post(small_client, {"sequence": {"frames": frames[:1] * 101}}), 413,
                    "sequence.frames")["code"] == "sequence_too_long"
    error_of(post(small_client, {"sequence": {"frames": frames[:90], "fps": 10}}), 413, "sequence.frames")
    error_of(post(client, {"sequence": {"frames": frames[:5]}, "k": 0}), 422, "k")
    assert error_of(post(client, {"sequence": {"frames": frames[:5]}, "k": 101}), 422, "k")["code"] == "out_of_range"


# ---------------------------------------------------------------------------------------------------- videos


def encode(frames: list[np.ndarray], container: str, codec: str, fps: int = 10) -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def vtest() -> bytes:
    if not VTEST.is_file():
        pytest.skip(f"{VTEST} is absent: install Debian's opencv-doc package (apt-get install opencv-doc)")
    return VTEST.read_bytes()


@pytest.fixture(scope="module")
def vtest_cut(vtest) -> bytes:
    """12 s of vtest.avi where people walk near the camera (frames 470-589), re-encoded as MP4 at 10 fps."""
    with av.open(io.BytesIO(vtest)) as source:
        frames = [f.to_ndarray(format="rgb24") for i, f in enumerate(source.decode(video=0)) if 470 <= i < 590]
    return encode(frames, "mp4", "mpeg4")


def upload(c: httpx.Client, data: bytes, name: str = "clip.mp4", **fields) -> httpx.Response:
    return c.post("/retrieve", files={"video": (name, data, "application/octet-stream")},
                  data={k: str(v) for k, v in fields.items()})


def test_a_real_video_is_tracked_and_searched(client, vtest_cut):
    response = upload(client, vtest_cut, k=3)
    assert response.status_code == 200, response.text
    body = response.json()
    video = body["video"]
    assert video["container"] == "mov" and video["width"] == 768 and video["height"] == 576
    assert video["sampled_frames"] == video["decoded_frames"] == 120 and video["fps"] == 10.0
    track = video["track"]
    assert len(track) == 120 and video["people_tracked"] >= 2  # pedestrians come and go
    assert video["person_frames"] >= 25  # the person walking past near the camera (BlazePose misses some frames)
    seen = [t for t in track if t["box"] is not None]
    boxes = np.array([t["box"] for t in seen])
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    gaps = np.diff([t["frame"] for t in seen])
    assert (np.linalg.norm(np.diff(centres, axis=0), axis=1) < 40 + 40 * gaps).all()  # one person, no jumps
    assert body["results"] and all(-1 <= r["score"] <= 1 for r in body["results"])
    top = body["results"][0]
    assert {q for q, _ in top["alignment"]} <= {t["frame"] for t in track if t["box"] is not None}
    timing = response.headers["server-timing"]
    for stage in ("decode", "detector", "landmarks", "track", "encoder", "candidates", "alignment"):
        assert f"{stage};dur=" in timing


def test_the_original_avi_at_one_frame_a_second(video_server, vtest):
    with httpx.Client(base_url=video_server.url, timeout=300) as c:
        response = upload(c, vtest, name="vtest.avi", k=2)
    assert response.status_code == 200, response.text
    video = response.json()["video"]
    assert video["container"] == "avi" and video["decoded_frames"] == 795
    assert video["sample_fps"] == 1.0 and video["sampled_frames"] == 80 and video["person_frames"] >= 2


def test_bad_videos_are_4xx_naming_video(client, small_client, vtest_cut):
    grey = [np.full((120, 160, 3), 128, np.uint8)] * 10
    assert error_of(upload(client, encode(grey, "webm", "libvpx"), name="grey.webm"), 422,
                    "video")["code"] == "no_person"
    assert error_of(upload(client, b"RIFF\x00\x00\x00\x00AVI " + bytes(2000)), 422, "video")["code"] == "invalid_video"
    error_of(upload(client, vtest_cut[: len(vtest_cut) // 3]), 422, "video")  # truncated: the index is at the end
    assert error_of(upload(client, b"GIF89a" + bytes(100)), 415, "video")["code"] == "unsupported_video_format"
    error_of(upload(client, b""), 422, "video")
    assert error_of(upload(small_client, vtest_cut), 413, "video")["code"] == "video_too_large"  # 12 s > 3 s
    error_of(upload(small_client, bytes(8) + b"ftyp" + bytes(2_100_000)), 413, "video")  # > max_video_bytes
    error_of(upload(client, vtest_cut, sample_fps=1000), 422, "sample_fps")
    error_of(upload(client, vtest_cut, align_to_query="true"), 422, "align_to_query")  # not a video option
    response = client.post("/retrieve", files={"video": ("a.mp4", vtest_cut), "image": ("a.jpg", b"\xff\xd8\xff")})
    error_of(response, 422, "video")


def test_the_fit_reads_only_the_joints_a_layout_gives_exactly(client, database):
    """The library's own poses sent as the field's h36m17 (the default layout) and as unihpr17: the conversion
    moves neck/nose and head top by tens of mm, and the camera fit weights those two joints 0 for h36m17 input,
    so the clip's own segment is fitted as closely either way."""
    frames, fps = sequence_query(database, moving_clip(database), 1.0)
    residuals = {}
    for layout in ("h36m17", "unihpr17"):
        sent = [{**frame, "layout": layout} for frame in frames]
        response = client.post("/retrieve", json={"sequence": {"frames": sent, "fps": fps}, "k": 1})
        assert response.status_code == 200, response.text
        residuals[layout] = response.json()["results"][0]["fit_residual"]
    assert residuals["h36m17"] < 0.01 and residuals["unihpr17"] < 0.01, residuals
    assert residuals["h36m17"] < 2.0 * residuals["unihpr17"] + 0.002, residuals
