"""Motion search latency: a 3 s query at 30 fps over a bundle, split by stage, and how it grows.

    .venv/bin/python benchmarks/motion_search.py --bundle bundles/full [--small-bundle bundles/default]
                                                 [--queries 40] [--video PATH]

``bundles/full`` is the whole Bandai cache indexed at 10 fps (``unihpr-build index --fps 10 --out bundles/full``,
README). What it measures, on whatever cores the machine gives it (2 here, shared with other jobs: the load average
is printed):

1. **In process, by stage** (the service's own functions, one ONNX Runtime, one FAISS and one BLAS thread as
   the service runs them): ``prepare`` (``service.inputs.pose2d_to_features``: validation, joint formulas,
   perspective crop), ``embed`` (the pose2d encoder on every frame), ``lift`` (the 3D decoder on every frame, for
   the lifted path), ``candidates`` (the anchor searches of the index and of the descriptor index, the windows),
   ``alignment`` (gathering the windows' vectors and descriptors, the costs, subsequence DTW, tracing the ends),
   ``verification`` (the best candidate segments each fitted with one camera, re-aligned under it, refined under
   perspective). Queries: 3 s of the bundle's clips at 30 fps (90 frames), replayed at a random speed in 0.5-2x,
   seen by a random camera, 2D in pixels with the image size.
2. **Over HTTP** (``create_app`` on uvicorn in a child process, a keep-alive client): the same queries as JSON
   ``sequence`` requests, p50 / p99 of the whole request and the server's stages from ``Server-Timing``.
3. **Growth with query length** (1, 3, 10, 30 s; in process) and **with library size** (the same 3 s queries over
   ``--small-bundle``, the shipped sample's bundle, against ``--bundle``).
4. **A video** (``--video``, default Debian's opencv-doc ``vtest.avi``): 3 s of it (frames 510-539, where a person
   walks near the camera) re-encoded as a 30 fps MP4 (each frame three times, 90 frames), uploaded ``--video-runs``
   times: decode, BlazePose detector and landmarks, tracking, encoder, candidates, alignment and verification from
   ``Server-Timing``.

5. **Stored-vector reads** on the bundle's index: FAISS's ``reconstruct_batch`` against the service's reader
   (``model.retrieval.stored_vectors``) for a re-ranking's 100 ids and for window ids as the alignment reads them.

It builds nothing (bundles must exist) and talks only to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from benchmarks.service_harness import start_server  # noqa: E402
from model.pose.cameras import look_at  # noqa: E402
from model.retrieval.motion_search import QueryShape  # noqa: E402

DEFAULT_VIDEO = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
QUERY_FPS = 30.0
FOCAL, SIZE = 1145.0, 1000.0
K = 10
WARMUP = 3


# ------------------------------------------------------------------------------------------------- queries


def make_queries(catalog, count: int, seconds: float, seed: int) -> list[dict]:
    """``count`` pose2d sequences: ``seconds`` at 30 fps of random clips long enough, replayed at a random speed
    in 0.5-2x (so each covers seconds x speed of its clip), through a random camera."""
    from service.motion_search import clip_layout

    rng = np.random.default_rng(seed)
    layout = clip_layout(catalog)
    out = []
    while len(out) < count:
        speed = float(rng.uniform(0.5, 2.0))
        clip = int(rng.integers(len(catalog.clip_name)))
        rate = float(layout.rate[clip])
        need = int(np.ceil(seconds * speed * rate)) + 2
        if layout.length(clip) < need:
            continue
        start = int(rng.integers(0, layout.length(clip) - need + 1))
        world = catalog.poses[layout.row(clip, np.arange(start, start + need))].astype(np.float64)
        times = np.arange(int(seconds * QUERY_FPS)) / QUERY_FPS
        position = times * speed * rate
        lo = np.floor(position).astype(int)
        frac = (position - lo)[:, None, None]
        poses = world[lo] * (1 - frac) + world[lo + 1] * frac
        az, el = rng.uniform(0, 2 * np.pi), np.deg2rad(rng.uniform(0, 30))
        distance = rng.uniform(3000, 7000)
        eye = np.array([np.sin(az) * np.cos(el), np.sin(el), np.cos(az) * np.cos(el)]) * distance
        rotation = look_at(eye + np.array([0.0, 900.0, 0.0]), np.array([0.0, 900.0, 0.0]))
        cam = poses @ rotation.T + np.array([0.0, 0.0, distance])
        pixels = cam[..., :2] / cam[..., 2:] * FOCAL + SIZE / 2
        out.append({"frames": [{"keypoints": np.round(p, 2).tolist(), "image_size": [SIZE, SIZE]} for p in pixels],
                    "fps": QUERY_FPS})
    return out


# ------------------------------------------------------------------------------------------------ in process


def in_process(bundle, queries: list[dict]) -> dict[str, list[float]]:
    """Per-stage ms of every query through the service's functions (module docstring)."""
    from service.inputs import pose2d_to_features
    from service.motion_search import lifts_of, query_shape, run_search
    from service.schemas.inputs import SequenceInput

    stages: dict[str, list[float]] = {s: [] for s in ("prepare", "embed", "lift", "candidates", "alignment",
                                                       "verification", "total")}
    lifted_path = bundle.reranking is not None and bundle.reranking.descriptors is not None
    parsed = [SequenceInput.model_validate(q) for q in queries]
    for i, sequence in enumerate(parsed):
        started = time.perf_counter()
        frames = sequence.frames
        batch = pose2d_to_features(frames, [f"sequence.frames[{j}]" for j in range(len(frames))], 8)
        features = batch.features
        prepared = time.perf_counter()
        embeddings = bundle.models.run_sync("encoder_pose2d", features)
        embedded = time.perf_counter()
        times = np.arange(len(frames)) / sequence.fps
        present = np.ones(len(frames), bool)
        shape: QueryShape | None = query_shape(features, ["encoder_pose2d"], present, batch.frames[:, 2])
        lifts = lifts_of(bundle, bundle.models.run_sync("decoder3d", embeddings), present) if lifted_path else None
        lifted = time.perf_counter()
        segments, stats = run_search(bundle, embeddings, times, present, None, 1.0, K, False, shape, lifts=lifts)
        done = time.perf_counter()
        if i < WARMUP:
            continue
        stages["prepare"].append((prepared - started) * 1e3)
        stages["embed"].append((embedded - prepared) * 1e3)
        stages["lift"].append((lifted - embedded) * 1e3)
        for name in ("candidates", "alignment", "verification"):
            stages[name].append(stats.timings.get(name, 0.0))
        stages["total"].append((done - started) * 1e3)
    return stages


def load(path: Path):
    from service.artifacts import load_bundle
    from service.config import Settings
    from service.device import choose_device
    from service.native_threads import limit_blas_threads

    settings = Settings(bundle_path=path, ort_threads=1, faiss_threads=1)
    limit_blas_threads(settings.blas_threads)
    return load_bundle(path, settings, choose_device("cpu"))


# ------------------------------------------------------------------------------------------------ over HTTP


def serve(bundle: Path, port: int) -> None:
    import uvicorn

    from service.config import Settings
    from service.main import create_app

    app = create_app(Settings(bundle_path=bundle, max_video_seconds=60.0))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def server_timing(header: str) -> dict[str, float]:
    out = {}
    for part in header.split(","):
        name, _, value = part.strip().partition(";dur=")
        if value:
            out[name] = float(value)
    return out


def over_http(url: str, queries: list[dict]) -> dict[str, list[float]]:
    import httpx

    stages: dict[str, list[float]] = {"request": []}
    with httpx.Client(base_url=url, timeout=120) as client:
        for i, query in enumerate(queries):
            body = json.dumps({"sequence": query, "k": K}).encode()
            started = time.perf_counter()
            response = client.post("/retrieve", content=body, headers={"content-type": "application/json"})
            elapsed = (time.perf_counter() - started) * 1e3
            response.raise_for_status()
            if i < WARMUP:
                continue
            stages["request"].append(elapsed)
            for name, ms in server_timing(response.headers.get("server-timing", "")).items():
                stages.setdefault(name, []).append(ms)
    stages["body_kb"] = [len(json.dumps({"sequence": queries[0], "k": K})) / 1024]
    return stages


def video_clip(path: Path) -> bytes:
    """3 s of the video (frames 510-539) as a 30 fps MP4, each frame three times (90 frames)."""
    import av

    with av.open(str(path)) as source:
        frames = [f.to_ndarray(format="rgb24") for i, f in enumerate(source.decode(video=0)) if 510 <= i < 540]
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as out:
        stream = out.add_stream("mpeg4", rate=30)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            for _ in range(3):
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buffer.getvalue()


def video_runs(url: str, data: bytes, runs: int) -> tuple[dict[str, list[float]], dict]:
    import httpx

    stages: dict[str, list[float]] = {"request": []}
    info = {}
    with httpx.Client(base_url=url, timeout=300) as client:
        for i in range(runs + 1):
            started = time.perf_counter()
            response = client.post("/retrieve", files={"video": ("clip.mp4", data)}, data={"k": str(K)})
            elapsed = (time.perf_counter() - started) * 1e3
            response.raise_for_status()
            body = response.json()
            info = {k: v for k, v in body["video"].items() if k != "track"}
            if i == 0:
                continue  # warm-up: the first video imports PyAV and creates a detector
            stages["request"].append(elapsed)
            for name, ms in server_timing(response.headers.get("server-timing", "")).items():
                stages.setdefault(name, []).append(ms)
    return stages, info


# ------------------------------------------------------------------------------------------------ reads


def stored_reads(bundle, seed: int, repeats: int = 30) -> list[tuple[str, float, float]]:
    """FAISS's ``reconstruct_batch`` against ``model.retrieval.stored_vectors.StoredVectors`` (what the service
    reads with) on the bundle's index, one FAISS thread: (what is read, reconstruct ms, reader ms), medians."""
    import faiss

    index, reader = bundle.index.index, bundle.index.stored
    views, poses = bundle.views, len(bundle.catalog)
    rng = np.random.default_rng(seed)

    def windows(count: int) -> np.ndarray:  # runs of 30 library frames in 2 views, as the alignment reads them
        starts = rng.integers(0, poses - 30, count // 60)
        return ((starts[:, None] + np.arange(30)).reshape(-1, 1) * views + np.arange(2)).ravel().astype(np.int64)

    cases = (("100 random ids (a re-ranking's lifted candidates)", lambda: rng.integers(0, index.ntotal, 100)),
             ("4,080 window ids (the old alignment budget)", lambda: windows(4096)),
             ("8,160 window ids (the alignment budget)", lambda: windows(8192)))
    faiss.omp_set_num_threads(1)
    out = []
    for name, make in cases:
        faiss_ms, reader_ms = [], []
        for _ in range(repeats):
            ids = make()
            faiss_ms.append(_elapsed_ms(lambda: index.reconstruct_batch(ids)))
            reader_ms.append(_elapsed_ms(lambda: reader(ids)))
        out.append((name, float(np.median(faiss_ms)), float(np.median(reader_ms))))
    return out


def _elapsed_ms(call) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1e3


# ------------------------------------------------------------------------------------------------ report


def p(values: list[float], q: float) -> str:
    return f"{np.percentile(values, q):.1f}" if values else "-"


def table(title: str, stages: dict[str, list[float]]) -> None:
    print(f"\n{title}")
    print(f"{'stage':<14} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'mean ms':>8}  n")
    for name, values in stages.items():
        if name == "body_kb" or not values:
            continue
        print(f"{name:<14} {p(values, 50):>8} {p(values, 90):>8} {p(values, 99):>8} {np.mean(values):>8.1f}  "
              f"{len(values)}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, default=REPO_ROOT / "bundles" / "full")
    parser.add_argument("--small-bundle", type=Path, default=REPO_ROOT / "bundles" / "default")
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--video-runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.bundle, args.port)
        return
    for path in (args.bundle, args.small_bundle):
        if not (path / "manifest.json").is_file():
            raise SystemExit(f"{path}: no bundle (build it: see the module docstring)")

    print(f"motion search benchmark: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start")
    bundle = load(args.bundle)
    info = bundle.manifest.index
    print(f"{args.bundle}: {len(bundle.catalog)} poses x {bundle.views} views = {info.ntotal} vectors, "
          f"{info.factory}, nprobe {info.operating_point.nprobe}")
    queries = make_queries(bundle.catalog, args.queries + WARMUP, 3.0, args.seed)
    table(f"in process, 3 s at 30 fps (90 frames), {args.bundle.name}", in_process(bundle, queries))

    print(f"\nstored-vector reads, {args.bundle.name} (median ms, one FAISS thread)")
    for name, faiss_ms, reader_ms in stored_reads(bundle, args.seed):
        print(f"{name:<52} reconstruct_batch {faiss_ms:7.3f}  StoredVectors {reader_ms:7.3f}  "
              f"{faiss_ms / reader_ms:4.1f}x")

    print("\ngrowth with query length (in process, p50 ms)")
    print(f"{'seconds':>8} {'frames':>7} {'prepare':>8} {'embed':>7} {'lift':>7} {'candid.':>8} {'align.':>7} "
          f"{'verif.':>7} {'total':>7}")
    for seconds in (1.0, 3.0, 10.0, 30.0):
        count = max(5, args.queries // (1 if seconds <= 3 else 4)) + WARMUP
        stages = in_process(bundle, make_queries(bundle.catalog, count, seconds, args.seed + 1))
        print(f"{seconds:>8g} {int(seconds * QUERY_FPS):>7} " + " ".join(
            f"{p(stages[s], 50):>7}" for s in ("prepare", "embed", "lift", "candidates", "alignment",
                                                "verification", "total")))

    small = load(args.small_bundle)
    small_queries = make_queries(small.catalog, args.queries + WARMUP, 3.0, args.seed)
    small_stages = in_process(small, small_queries)
    print("\ngrowth with library size (in process, 3 s queries, p50 ms)")
    for name, b, stages in ((args.small_bundle.name, small, small_stages),
                            (args.bundle.name, bundle, in_process(bundle, queries))):
        print(f"{name:<10} {b.manifest.index.ntotal:>9} vectors ({b.manifest.index.factory}, nprobe "
              f"{b.manifest.index.operating_point.nprobe}): candidates {p(stages['candidates'], 50)}, alignment "
              f"{p(stages['alignment'], 50)}, verification {p(stages['verification'], 50)}, total "
              f"{p(stages['total'], 50)}")
    del small

    proc, url = start_server(args.bundle, __file__, ready_s=300.0)
    try:
        stages = over_http(url, queries)
        table(f"over HTTP, 3 s at 30 fps, JSON body {stages['body_kb'][0]:.0f} KiB, {args.bundle.name}", stages)
        if args.video.is_file():
            clip = video_clip(args.video)
            stages, info = video_runs(url, clip, args.video_runs)
            table(f"over HTTP, a 3 s video ({len(clip) / 1024:.0f} KiB MP4, {info.get('decoded_frames')} frames at "
                  f"{info.get('fps')} fps, {info.get('sampled_frames')} sampled, person in "
                  f"{info.get('person_frames')})", stages)
        else:
            print(f"\n{args.video}: absent, the video run is skipped (apt-get install opencv-doc)")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
