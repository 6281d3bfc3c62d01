"""/retrieve through the Milvus backend against FAISS, in one run on the same library.

Moves a FAISS bundle's vectors into a Milvus collection (``unihpr-build to-milvus``'s library function, timed),
serves the two bundles from two API servers on loopback (``UNIHPR_INDEX_BACKEND=faiss`` / ``milvus``) and sends
them the same /retrieve requests interleaved: 2D keypoint queries (cosine order, k = 10), the same with a label
filter, and re-ranked; reports median / p95 ms per request and the two backends' top-10 agreement.

Without ``--milvus-uri`` it starts milvus-lite on 127.0.0.1 (a pure-Python server over FAISS with the Milvus gRPC
protocol): its latency is that of a Python gRPC server on the same 2 cores, NOT of Milvus Standalone or
Distributed (C++ query nodes on their own machines); the numbers measure the interface's overhead and check
agreement, they do not predict a Milvus cluster's latency.

    python benchmarks/milvus_backend.py --bundle bundles/default [--milvus-uri http://host:19530]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
from benchmarks.service_harness import paired, percentile, pose_keypoints, start_server  # noqa: E402

QUERIES = 64  # distinct 2D queries, cycled through the requests


def serve(bundle: Path, port: int, backend: str, uri: str | None) -> None:
    import uvicorn

    from service.config import Settings
    from service.main import create_app

    app = create_app(Settings(bundle_path=bundle, index_backend=backend, milvus_uri=uri))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def start(bundle: Path, backend: str, uri: str | None) -> tuple[subprocess.Popen, str]:
    """This script's server mode serving ``bundle`` through ``backend``."""
    return start_server(bundle, __file__, extra_args=["--backend", backend, *(["--milvus-uri", uri] if uri else [])])


@contextlib.contextmanager
def milvus(uri: str | None, work: Path):
    if uri:
        yield uri
        return
    from tests.milvus_lite_server import milvus_lite_server

    with milvus_lite_server(work / "milvus-data") as (local, _):
        yield local


def run(args: argparse.Namespace) -> None:
    from index_builder.bundle.library_update import copy_to_milvus
    from index_builder.bundle.milvus_collection import MilvusTarget
    from model.runtime.bundle_format import read_manifest

    manifest = read_manifest(args.bundle)
    kp = pose_keypoints(args.bundle, QUERIES)
    content = manifest.database.contents[0]
    bodies = {
        "2D k=10": lambda i: {"query": {"keypoints": kp[i % len(kp)].tolist()}, "k": 10, "rerank": False,
                              "include_pose3d": False},
        f"2D k=10, filter content={content}": lambda i: {
            "query": {"keypoints": kp[i % len(kp)].tolist()}, "k": 10, "rerank": False, "include_pose3d": False,
            "filters": {"include": {"content": [content]}}},
        "2D k=10 re-ranked": lambda i: {"query": {"keypoints": kp[i % len(kp)].tolist()}, "k": 10,
                                        "include_pose3d": False},
    }
    with tempfile.TemporaryDirectory() as tmp, milvus(args.milvus_uri, Path(tmp)) as uri:
        started = time.perf_counter()
        moved = copy_to_milvus(args.bundle, MilvusTarget(uri), Path(tmp) / "milvus-bundle").out
        move_s = time.perf_counter() - started
        servers = [start(args.bundle, "faiss", None), start(moved, "milvus", uri)]
        rows = []
        try:
            with httpx.Client(base_url=servers[0][1], timeout=60) as fa, \
                    httpx.Client(base_url=servers[1][1], timeout=60) as mi:
                for name, body in bodies.items():
                    agree = []
                    for i in range(50):
                        a = [x["id"] for x in fa.post("/retrieve", json=body(i)).json()["results"]]
                        b = [x["id"] for x in mi.post("/retrieve", json=body(i)).json()["results"]]
                        agree.append(len(set(a) & set(b)) / max(1, len(a)))
                    counter = iter(range(10**9))
                    payloads = [json.dumps(body(i)).encode() for i in range(len(kp))]
                    headers = {"content-type": "application/json"}

                    def call(client, payloads=payloads, counter=counter):
                        r = client.post("/retrieve", content=payloads[next(counter) % len(payloads)], headers=headers)
                        assert r.status_code == 200, r.text

                    t_faiss, t_milvus = paired(lambda: call(fa), lambda: call(mi), args.requests)
                    rows.append({"scenario": name, "faiss_p50": percentile(t_faiss, 50),
                                 "faiss_p95": percentile(t_faiss, 95), "milvus_p50": percentile(t_milvus, 50),
                                 "milvus_p95": percentile(t_milvus, 95), "top10_agreement": float(np.mean(agree))})
        finally:
            for proc, _ in servers:
                proc.terminate()
                proc.wait(timeout=30)
    print(f"bundle {args.bundle} ({manifest.index.ntotal} vectors, {manifest.index.factory}); Milvus at "
          f"{'milvus-lite on 127.0.0.1' if not args.milvus_uri else 'the given URI'}; moved in {move_s:.1f} s; "
          f"{args.requests} requests per scenario and backend, interleaved")
    print("| scenario | FAISS p50 / p95 ms | Milvus p50 / p95 ms | top-10 agreement |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['scenario']} | {r['faiss_p50']:.2f} / {r['faiss_p95']:.2f} | {r['milvus_p50']:.2f} / "
              f"{r['milvus_p95']:.2f} | {r['top10_agreement']:.3f} |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, default=REPO_ROOT / "bundles" / "default",
                        help="a FAISS bundle (its vectors are moved into a Milvus collection for the run)")
    parser.add_argument("--milvus-uri", help="a Milvus server (default: milvus-lite started on 127.0.0.1)")
    parser.add_argument("--requests", type=int, default=200, help="requests per scenario and backend")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--backend", default="faiss", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not (args.bundle / "manifest.json").is_file():
        raise SystemExit(f"{args.bundle}: no bundle (build one with `unihpr-build index --sample --out ...`)")
    if args.serve:
        serve(args.bundle, args.port, args.backend, args.milvus_uri)
    else:
        run(args)


if __name__ == "__main__":
    main()
