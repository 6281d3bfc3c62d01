"""Latency and throughput of the HTTP service against the same work done in-process, and the HTTP floor.

    .venv/bin/python benchmarks/service_latency.py [--bundle bundles/default] [--requests 300] [--concurrency 8]
                                                   [--image PATH] [--server auto|plain] [--pin] [--load wrk|httpx]

It starts the service (``create_app`` on uvicorn, loopback, a free port; ``--server auto`` lets uvicorn choose its
event loop and HTTP parser as ``unihpr-serve`` does, ``plain`` forces asyncio and h11) in a child process with two
extra routes that read the body: ``POST /_bench/bare``, a bare ASGI route in front of the app (no middleware,
routing or validation: the floor of the server itself), answering ``{}`` or, with an ``X-Bench-Answer-Bytes``
header, a JSON object of that many bytes; and ``POST /_bench/empty``, a FastAPI endpoint behind the service's
middleware answering ``{}``. Then, in this process:

- HTTP: a keep-alive httpx client, sequential requests for p50/p99 latency, each scenario's interleaved with its
  floor's (``paired``: one of each in turn, the order swapped every pair, so that the machine's drift over minutes
  moves both alike); throughput from ``--concurrency`` connections of ``wrk`` where it is installed (``--load``;
  else as many threads of this process with an httpx client each, which take about a CPU themselves), with
  ``--pin`` the server on one CPU and the clients on the others (the direct throughput then on that one CPU
  too). Scenarios: /embed with one pose2d, /embed with a batch of 64, /retrieve with k = 10 without re-ranking
  (its cost is measured on its own below), each with its floor: the bare route sent the same body and answering
  as many bytes as the scenario's answer (so the floor moves the same bytes through server and client); and the
  bare route and the FastAPI endpoint answering ``{}``, interleaved likewise.
- direct: the same inputs through the service's layout conversion and ``model.pose.features`` + ONNX Runtime (one
  intra-op thread, spinning off, as the service) + FAISS (the bundle's operating point, k x views candidates), in
  this process.
- the batch by part: the 64-pose /embed body through the service's own functions in this process (parse and
  validate, the features, the encoder through the micro-batcher, the answer), and the rest of its HTTP time
  above its floor (thread hops, middleware, socket I/O).
- re-ranking: /retrieve k = 10 with and without it (``rerank: false``) in one interleaved loop (request pairs, so
  load changes on the machine hit both alike), for 2D without image geometry (the weak-perspective fit) and with
  ``image_size`` and a camera (the pinhole fit); the p50 ratio of each pair of series.
- an image /retrieve, its server-side stages from the ``Server-Timing`` header (decode, detector, landmarks,
  encoder, search) and the rest (HTTP, JSON, base64, result assembly).

Counts are bounded (``--requests`` per scenario); it builds nothing and talks only to 127.0.0.1. Client and
server share the machine's cores, so throughput numbers are a lower bound on a dedicated server.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path

import numpy as np
from fastapi import Request
from fastapi.responses import JSONResponse

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from benchmarks.service_harness import (  # noqa: E402  (run as a script: the repository is not on the path)
    DEFAULT_IMAGE,
    QUERY_CAMERA,
    WARMUP,
    paired,
    percentile,
    pose_keypoints,
    run_bundle_benchmark,
    start_server,
    wrk_rps,
)

BATCH = 64
K = 10
ANSWER_BYTES = b"x-bench-answer-bytes"
LOADS = {"wrk": "wrk, one thread, keep-alive connections", "httpx": "httpx clients in threads of this process"}
SCENARIOS = ("embed1", "embed64", "retrieve")  # each measured against the bare route with its body and answer size
ALL_CPUS = os.sched_getaffinity(0)
SERVICE_CPUS = {min(ALL_CPUS)}  # --pin: the service (over HTTP or in process) on one CPU, the clients on the rest
CLIENT_CPUS = ALL_CPUS - SERVICE_CPUS


# ------------------------------------------------------------------ the server (child process)

async def empty_endpoint(request: Request) -> JSONResponse:
    """The HTTP floor: read the body, answer {} (same app, middleware and server as the real routes)."""
    await request.body()
    return JSONResponse({})


SERVERS = {  # --server: uvicorn's event loop and HTTP parser
    "auto": {"loop": "auto", "http": "auto"},  # as unihpr-serve: uvloop and httptools where installed
    "plain": {"loop": "asyncio", "http": "h11"},  # the pure-Python pair uvicorn falls back to
}


def serve(args: argparse.Namespace) -> None:
    import uvicorn

    from service.config import Settings
    from service.main import create_app

    app = create_app(Settings(bundle_path=args.bundle))
    app.add_api_route("/_bench/empty", empty_endpoint, methods=["POST"], include_in_schema=False)
    uvicorn.run(with_bare_floor(app), host="127.0.0.1", port=args.port, log_level="warning", access_log=False,
                **SERVERS[args.server])


def server_implementation(choice: str) -> str:
    """What uvicorn runs for ``--server choice``, in words (its "auto" takes uvloop and httptools when they
    import)."""
    import importlib.util

    chosen = SERVERS[choice]
    loop = chosen["loop"] if chosen["loop"] != "auto" else (
        "uvloop" if importlib.util.find_spec("uvloop") else "asyncio")
    http = chosen["http"] if chosen["http"] != "auto" else (
        "httptools" if importlib.util.find_spec("httptools") else "h11")
    return f"uvicorn with the {loop} event loop and the {http} HTTP parser"


def with_bare_floor(app):
    """``app`` behind one bare ASGI route, ``POST /_bench/bare``: it reads the body and answers ``{}`` with no
    middleware, routing or validation, on the same server and settings: the floor of the server itself. With an
    ``X-Bench-Answer-Bytes: N`` header it answers a JSON object of N bytes instead (made once per size), so a
    scenario's floor also moves its answer's bytes through the server and the client."""
    answers = {2: b"{}"}

    async def asgi(scope, receive, send):
        if scope["type"] != "http" or scope["path"] != "/_bench/bare":
            await app(scope, receive, send)
            return
        more = True
        while more:
            more = (await receive()).get("more_body", False)
        size = int(dict(scope["headers"]).get(ANSWER_BYTES, b"2"))
        if size not in answers:
            answers[size] = b'{"pad":"' + b"0" * max(0, size - 10) + b'"}'
        body = answers[size]
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    return asgi


# ------------------------------------------------------------------ measuring

def sequential(call, n: int) -> list[float]:
    """ms per call, after a warm-up."""
    for _ in range(WARMUP):
        call()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def concurrent(make_call, n: int, workers: int) -> float:
    """Calls per second with ``workers`` threads, each with its own ``make_call()`` (e.g. its own client), after
    a short warm-up per worker."""
    calls = [make_call() for _ in range(workers)]
    for call in calls:
        call()
    per_worker = max(1, n // workers)
    barrier = threading.Barrier(workers + 1)

    def run(call):
        barrier.wait()
        for _ in range(per_worker):
            call()

    with ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(run, c) for c in calls]
        barrier.wait()
        start = time.perf_counter()
        for f in futures:
            f.result()
        elapsed = time.perf_counter() - start
    return per_worker * workers / elapsed


@contextmanager
def pinned(cpus_of: dict[int, set[int]]):
    """Every thread of each process ``pid`` in ``cpus_of`` on its CPUs for the block (threads started meanwhile
    inherit them), then back on every CPU. ``os.sched_setaffinity`` moves one thread: each task id in turn."""
    def place(pid: int, cpus: set[int]) -> None:
        for task in os.listdir(f"/proc/{pid}/task"):
            with suppress(ProcessLookupError):  # a thread that has just ended
                os.sched_setaffinity(int(task), cpus)

    for pid, cpus in cpus_of.items():
        place(pid, cpus)
    try:
        yield
    finally:
        for pid in cpus_of:
            place(pid, ALL_CPUS)


def rerank_split(url: str, kp: np.ndarray, n: int) -> dict[str, dict[str, float]]:
    """/retrieve k = K re-ranked and not, interleaved, for an on-axis 2D query and one with image geometry."""
    import httpx

    bodies = {"on_axis": {"keypoints": kp[0].tolist(), "layout": "h36m17"},
              "camera": {"keypoints": kp[0].tolist(), "layout": "h36m17", **QUERY_CAMERA}}
    headers = {"Content-Type": "application/json"}
    out = {}
    with httpx.Client(base_url=url, timeout=60) as client:
        for name, query in bodies.items():
            on = json.dumps({"query": query, "k": K}).encode()
            off = json.dumps({"query": query, "k": K, "rerank": False}).encode()
            probe = client.post("/retrieve", content=on, headers=headers).json()
            assert probe["reranked"], "the bundle has no re-ranking calibration (rebuild it)"

            def call(body):
                r = client.post("/retrieve", content=body, headers=headers)
                assert r.status_code == 200, r.text

            with_ms, without_ms = paired(lambda: call(on), lambda: call(off), n)
            out[name] = {"with_p50": percentile(with_ms, 50), "with_p99": percentile(with_ms, 99),
                         "without_p50": percentile(without_ms, 50), "without_p99": percentile(without_ms, 99),
                         "server_rerank_ms": server_stage(client, on, "rerank"),
                         "server_search_with_ms": server_stage(client, on, "search"),
                         "server_search_without_ms": server_stage(client, off, "search")}
    return out


def server_stage(client, body: bytes, stage: str, n: int = 50) -> float:
    """Median ms of one Server-Timing stage over ``n`` requests."""
    values = []
    for _ in range(n):
        r = client.post("/retrieve", content=body, headers={"Content-Type": "application/json"})
        for part in r.headers["server-timing"].split(","):
            name, dur = part.strip().split(";dur=")
            if name == stage:
                values.append(float(dur))
    return statistics.median(values) if values else float("nan")


def batch_parts(bundle: Path, body: bytes, n: int) -> dict[str, float]:
    """The service's own work on the 64-pose ``/embed`` body, part by part, in this process and without HTTP or
    thread hops (median ms of ``n`` calls each): what the batch's service cost is made of."""
    import asyncio

    from service import pipeline
    from service.config import Settings
    from service.deps import EMBED_BODY
    from service.main import create_app
    from service.plain_poses import plain_pose2d_features
    from service.responses import dumps

    app = create_app(Settings(bundle_path=bundle))

    def timed(f) -> float:
        for _ in range(WARMUP):
            f()
        return statistics.median(_elapsed_ms(f) for _ in range(n))

    async def measure() -> dict[str, float]:
        async with app.router.lifespan_context(app):
            served, settings = app.state.bundle, app.state.settings
            poses = EMBED_BODY._from_json(body, settings)  # plain poses: one array (service.plain_poses)
            rows = plain_pose2d_features(poses, settings.min_visible_joints)
            embeddings = await served.models.run("encoder_pose2d", rows)
            encoder_ms = []
            for _ in range(WARMUP + n):
                started = time.perf_counter()
                await served.models.run("encoder_pose2d", rows)
                encoder_ms.append((time.perf_counter() - started) * 1e3)
            return {
                "parse and validate": timed(lambda: EMBED_BODY._from_json(body, settings)),
                "features (the service's path)": timed(
                    lambda: plain_pose2d_features(poses, settings.min_visible_joints)),
                "encoder through the batcher": statistics.median(encoder_ms[WARMUP:]),
                "answer built and encoded": timed(lambda: dumps({
                    "model_version": served.model_version, "dim": served.dim,
                    "embeddings": pipeline.answer_embedding(embeddings), "people": [None] * len(poses)})),
            }

    return asyncio.run(measure())


def _elapsed_ms(f) -> float:
    started = time.perf_counter()
    f()
    return (time.perf_counter() - started) * 1e3


class Direct:
    """The service's compute without the service: features, ORT session.run, FAISS search."""

    def __init__(self, bundle: Path):
        import faiss

        from model.runtime.bundle_format import read_manifest
        from model.runtime.onnx_sessions import cpu_session

        manifest = read_manifest(bundle)
        self.views = manifest.database.views
        self.encoder = cpu_session(bundle / "encoder_pose2d.onnx", threads=1, errors_only=True)  # as the service
        self.input = self.encoder.get_inputs()[0].name
        self.index = faiss.read_index(str(bundle / "index.faiss"))
        faiss.omp_set_num_threads(1)
        nprobe = manifest.index.operating_point.nprobe
        self.params = faiss.SearchParametersIVF(nprobe=nprobe) if nprobe else None

    def embed(self, keypoints: np.ndarray) -> np.ndarray:
        """keypoints: (N, 17, 2) pixels in the field's h36m17, as the requests send them."""
        from model.pose.features import pose2d_features
        from model.pose.joint_formulas import layout_to_unihpr17

        return self.encoder.run(None, {self.input: pose2d_features(layout_to_unihpr17(keypoints, "h36m17"))})[0]

    def retrieve(self, keypoints: np.ndarray):
        return self.index.search(self.embed(keypoints), K * self.views, params=self.params)


# ------------------------------------------------------------------ main

def run(args: argparse.Namespace) -> None:
    import httpx

    bundle = args.bundle.resolve()
    kp = pose_keypoints(bundle, BATCH)
    single = {"inputs": [{"modality": "pose2d", "keypoints": kp[0].tolist(), "layout": "h36m17"}]}
    batch = {"inputs": [{"modality": "pose2d", "keypoints": k.tolist(), "layout": "h36m17"} for k in kp]}
    query = {"query": single["inputs"][0], "k": K, "rerank": False}  # direct = features + ONNX + FAISS, no fit
    bodies = {name: json.dumps(b).encode() for name, b in
              (("bare", single), ("empty", single), ("embed1", single), ("embed64", batch), ("retrieve", query))}
    paths = {"bare": "/_bench/bare", "empty": "/_bench/empty", "embed1": "/embed", "embed64": "/embed",
             "retrieve": "/retrieve"}
    headers = {name: {"Content-Type": "application/json"} for name in bodies}

    direct = Direct(bundle)
    direct_calls = {"embed1": lambda: direct.embed(kp[:1]), "embed64": lambda: direct.embed(kp),
                    "retrieve": lambda: direct.retrieve(kp[:1])}

    proc, url = start_server(bundle, __file__, extra_args=["--server", args.server])
    rows = []
    try:
        with httpx.Client(base_url=url, timeout=60) as client:  # each scenario's floor: its body, its answer's size
            for name in SCENARIOS:
                answer = client.post(paths[name], content=bodies[name], headers=headers[name])
                assert answer.status_code == 200, answer.text
                floor = f"floor:{name}"
                bodies[floor], paths[floor] = bodies[name], "/_bench/bare"
                headers[floor] = {**headers[name], ANSWER_BYTES.decode(): str(len(answer.content))}
        for pair in (("bare", "empty"), *((f"floor:{s}", s) for s in SCENARIOS)):
            n = args.requests if "embed64" not in pair[1] else max(20, args.requests // 4)
            with httpx.Client(base_url=url, timeout=60) as client:
                def call(name: str, client=client) -> None:
                    r = client.post(paths[name], content=bodies[name], headers=headers[name])
                    assert r.status_code == 200, r.text

                # a scenario and its floor interleaved: the machine's drift over a block would move the ratio
                latencies = dict(zip(pair, paired(lambda: call(pair[0]), lambda: call(pair[1]), n)))
            for name, http_ms in latencies.items():
                clients: list[httpx.Client] = []

                def make_call(name=name):
                    clients.append(httpx.Client(base_url=url, timeout=60))
                    return lambda c=clients[-1]: c.post(paths[name], content=bodies[name], headers=headers[name])

                with pinned({proc.pid: SERVICE_CPUS, os.getpid(): CLIENT_CPUS} if args.pin else {}):
                    if args.load == "wrk":
                        http_rps = wrk_rps(url, paths[name], bodies[name], args.concurrency, args.wrk_seconds,
                                           CLIENT_CPUS if args.pin else None)
                    else:
                        http_rps = concurrent(make_call, n * 2, args.concurrency)
                for c in clients:
                    c.close()
                row = {"name": name, "http_p50": percentile(http_ms, 50), "http_p99": percentile(http_ms, 99),
                       "http_rps": http_rps, "answer_bytes": int(headers[name].get(ANSWER_BYTES.decode(), 2))}
                if name in direct_calls:
                    direct_ms = sequential(direct_calls[name], n)
                    with pinned({os.getpid(): SERVICE_CPUS} if args.pin else {}):
                        direct_rps = concurrent(lambda f=direct_calls[name]: f, n * 2, args.concurrency)
                    row.update(direct_p50=percentile(direct_ms, 50), direct_p99=percentile(direct_ms, 99),
                               direct_rps=direct_rps)
                rows.append(row)
        parts = batch_parts(bundle, bodies["embed64"], max(20, args.requests // 4))
        rerank_rows = rerank_split(url, kp, args.requests)
        image_rows = image_split(url, args, direct) if args.image.is_file() else None
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    report(rows, image_rows, args, bundle, rerank_rows, parts)


def image_split(url: str, args: argparse.Namespace, direct: Direct) -> dict:
    import httpx

    data = args.image.read_bytes()
    body = json.dumps({"query": {"image_b64": base64.b64encode(data).decode()}, "k": K}).encode()
    stages: dict[str, list[float]] = {}
    totals = []
    with httpx.Client(base_url=url, timeout=60) as client:
        for i in range(WARMUP // 2 + args.image_requests):
            start = time.perf_counter()
            r = client.post("/retrieve", content=body, headers={"Content-Type": "application/json"})
            elapsed = (time.perf_counter() - start) * 1e3
            assert r.status_code == 200, r.text
            if i < WARMUP // 2:
                continue
            totals.append(elapsed)
            for part in r.headers["server-timing"].split(","):
                stage, dur = part.strip().split(";dur=")
                stages.setdefault(stage, []).append(float(dur))
    out = {stage: statistics.median(v) for stage, v in stages.items()}
    out["total"] = statistics.median(totals)
    out["rest"] = statistics.median([t - sum(stages[s][i] for s in stages) for i, t in enumerate(totals)])
    out["bytes"] = len(data)
    return out


def report(rows: list[dict], image: dict | None, args: argparse.Namespace, bundle: Path,
           rerank: dict[str, dict[str, float]] | None = None, parts: dict[str, float] | None = None) -> None:
    from model.runtime.bundle_format import read_manifest

    manifest = read_manifest(bundle)
    index = manifest.index
    print(f"\nbundle {bundle} ({manifest.model_version}): {index.factory}, {index.ntotal} vectors, "
          f"D={manifest.embedding.dim}, nprobe={index.operating_point.nprobe}")
    print(f"server: {server_implementation(args.server)}")
    placement = (f" (the service on CPU {sorted(SERVICE_CPUS)}, over HTTP and in process; the clients on CPUs "
                 f"{sorted(CLIENT_CPUS)})" if args.pin else " (all sharing every CPU)")
    print(f"{os.cpu_count()} CPUs; {args.requests} sequential requests per scenario (64-batch: a quarter), "
          f"throughput with {args.concurrency} concurrent clients ({LOADS[args.load]}){placement}; times in ms\n")
    names = {"bare": "bare ASGI route, answer {} (2 B)", "empty": "empty FastAPI endpoint",
             "embed1": "/embed pose2d x1",
             "embed64": f"/embed pose2d x{BATCH}", "retrieve": f"/retrieve k={K}, no re-ranking"}
    names.update({r["name"]: f"  floor: bare, its body, {r['answer_bytes']} B" for r in rows
                  if r["name"].startswith("floor:")})
    floors = {r["name"].split(":")[1]: r["http_p50"] for r in rows if r["name"].startswith("floor:")}
    header = (f"{'scenario':<34}{'HTTP p50':>9}{'HTTP p99':>9}{'direct p50':>11}{'direct p99':>11}"
              f"{'overhead p50':>13}{'/ floor':>8}{'HTTP/direct':>12}{'above floor':>12}{'HTTP req/s':>11}"
              f"{'direct req/s':>13}")
    print(header)
    print("-" * len(header))
    for r in rows:
        if "direct_p50" in r:
            overhead = r["http_p50"] - r["direct_p50"]
            floor = floors[r["name"]]
            extra = (f"{r['direct_p50']:>11.3f}{r['direct_p99']:>11.3f}{overhead:>13.3f}{overhead / floor:>7.2f}x"
                     f"{r['http_p50'] / r['direct_p50']:>11.1f}x{r['http_p50'] - floor:>12.3f}")
            rps = f"{r['http_rps']:>11.0f}{r['direct_rps']:>13.0f}"
        else:
            extra = f"{'':>11}{'':>11}{'':>13}{'':>8}{'':>12}{'':>12}"
            rps = f"{r['http_rps']:>11.0f}{'':>13}"
        print(f"{names[r['name']]:<34}{r['http_p50']:>9.3f}{r['http_p99']:>9.3f}{extra}{rps}")
    bare = next(r["http_p50"] for r in rows if r["name"] == "bare")
    print("\noverhead p50 = HTTP p50 - direct p50 (the service's own cost); / floor = overhead p50 / the floor above "
          "it: the bare ASGI route (no middleware, routing or validation) sent the same body and answering as many "
          "bytes, so the floor moves what the scenario moves; above floor = HTTP p50 - that floor. Against the "
          f"bare route answering {{}} ({bare:.3f} ms): " + ", ".join(
              f"{names[r['name']]} {(r['http_p50'] - r['direct_p50']) / bare:.2f}x" for r in rows if "direct_p50" in r))
    if parts:
        batch = next(r for r in rows if r["name"] == "embed64")
        rest = batch["http_p50"] - floors["embed64"] - sum(parts.values())
        print(f"\n/embed pose2d x{BATCH}, the service's work by part (in process, no HTTP, no thread hop; medians in "
              f"ms; direct features + ONNX: {batch['direct_p50']:.2f}):")
        for name, ms in parts.items():
            print(f"  {name:<30}{ms:>8.2f}")
        print(f"  {'rest: hops, middleware, I/O':<30}{rest:>8.2f}  (HTTP p50 - its floor - the parts)")
    if rerank:
        candidates = "-" if manifest.rerank is None else (
            f"{manifest.rerank.candidates} + {manifest.rerank.lifted_candidates} lifted")
        print(f"\n/retrieve k={K}, geometric re-ranking of {candidates} candidates on and off, {args.requests} "
              "interleaved pairs (ms; server stages: Server-Timing medians):")
        print(f"  {'query':<34}{'with p50':>9}{'p99':>8}{'without p50':>13}{'p99':>8}{'p50 ratio':>11}"
              f"{'rerank':>8}{'search on/off':>15}")
        labels = {"on_axis": "2D, no image geometry (weak fit)", "camera": "2D with image_size (pinhole fit)"}
        for name, r in rerank.items():
            print(f"  {labels[name]:<34}{r['with_p50']:>9.3f}{r['with_p99']:>8.3f}{r['without_p50']:>13.3f}"
                  f"{r['without_p99']:>8.3f}{r['with_p50'] / r['without_p50']:>10.2f}x{r['server_rerank_ms']:>8.3f}"
                  f"{r['server_search_with_ms']:>8.3f}/{r['server_search_without_ms']:.3f}")
    if image:
        print(f"\nimage /retrieve k={K} ({args.image.name}, {image['bytes']} bytes as base64 JSON), "
              f"{args.image_requests} requests, medians in ms:")
        for stage in ("decode", "detector", "landmarks", "blazepose_prepost", "encoder", "search", "rest", "total"):
            if stage in image:
                print(f"  {stage:<18}{image[stage]:>9.2f}")
        print("  (detector, landmarks: the two LiteRT model invocations; blazepose_prepost: crops, SSD decoding, NMS,\n"
              "   heatmap refinement; rest: HTTP, base64 and JSON, thread hops, result assembly = total - stages)")
    else:
        print(f"\nimage split skipped: {args.image} not found")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="sequential requests per scenario")
    parser.add_argument("--concurrency", type=int, default=8, help="clients for the throughput runs")
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE, help="a JPEG/PNG with a person")
    parser.add_argument("--image-requests", type=int, default=30)
    parser.add_argument("--pin", action="store_true",
                        help="throughput with the service on one CPU and the clients on the others, both over HTTP "
                             "and in process (the service's work per CPU, without the clients' share)")
    parser.add_argument("--load", choices=("wrk", "httpx"), default="wrk" if shutil.which("wrk") else "httpx",
                        help="the throughput runs' load generator over HTTP: wrk (C, one thread; the default where "
                             "it is installed, e.g. Debian's wrk package) or httpx clients in threads of this "
                             "process (they take about a CPU themselves)")
    parser.add_argument("--wrk-seconds", type=float, default=5.0, help="length of each wrk run")
    parser.add_argument("--server", choices=sorted(SERVERS), default="auto",
                        help="auto: uvicorn's choice, as unihpr-serve (uvloop and httptools where installed); "
                             "plain: the asyncio loop and the h11 parser")
    run_bundle_benchmark(parser, argv, serve, run)


if __name__ == "__main__":
    main()
