"""Two revisions' services side by side, the same requests sent to each in turn: what a change buys over HTTP.

    .venv/bin/python benchmarks/service_ab.py --before REV [--bundle bundles/default] [--requests 1000]
                                              [--throughput S [--connections 8] [--rounds 4]]

Checks REV out into a temporary git worktree, starts its service and this tree's (``running_server``: uvicorn on
127.0.0.1, configured as a deployment is, each tree's own ``service`` package), and times every scenario on both
with ``paired``: one request to each in turn, the order swapped every pair, so that the machine's drift (several
tens of percent over minutes on a shared 2-core machine) hits both alike, where two runs one after the other
compare two moments as much as two revisions. Prints p50 and p99 per scenario and revision and the ratio of the
p50s (after / before). With ``--throughput S`` (and ``wrk`` installed), then the requests per second of 64-pose
``/embed`` batches from ``--connections`` concurrent connections (``wrk_rps``, S seconds a run), each revision in
turn for ``--rounds`` rounds, the order swapped every round.

Two servers on one machine evict each other's caches: absolute times come out above a lone server's
(``service_latency.py`` measures those); the ratio is what this script is for.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

import httpx
import orjson

REPO_ROOT = Path(__file__).resolve().parents[1]
# run as a script: the repository goes on the path before its modules are imported
sys.path.insert(0, str(REPO_ROOT))

from benchmarks.service_harness import (  # noqa: E402
    QUERY_CAMERA,
    paired,
    percentile,
    pose_keypoints,
    running_server,
    wrk_rps,
)

BATCH = 64


def scenarios(bundle: Path) -> dict[str, tuple[str, bytes]]:
    """name -> (path, JSON body): poses of the bundle's database through its views, as ``service_latency.py``."""
    keypoints = pose_keypoints(bundle, BATCH)
    poses = [{"modality": "pose2d", "keypoints": k.tolist(), "layout": "h36m17"} for k in keypoints]
    return {
        "/embed pose2d x1": ("/embed", orjson.dumps({"inputs": poses[:1]})),
        f"/embed pose2d x{BATCH}": ("/embed", orjson.dumps({"inputs": poses})),
        "/retrieve k=10, no re-ranking": ("/retrieve", orjson.dumps({"query": poses[0], "k": 10, "rerank": False})),
        "/retrieve k=10, re-ranked": ("/retrieve", orjson.dumps({"query": poses[0], "k": 10})),
        "/retrieve k=10, re-ranked, camera": ("/retrieve",
                                              orjson.dumps({"query": {**poses[0], **QUERY_CAMERA}, "k": 10})),
        "/lift3d pose2d x1": ("/lift3d", orjson.dumps(poses[0])),
        f"/lift3d pose2d x{BATCH}": ("/lift3d", orjson.dumps({"inputs": poses})),
    }


def worktree(stack: ExitStack, revision: str) -> Path:
    """A detached git worktree of ``revision`` in a temporary folder, removed when ``stack`` closes."""
    folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="unihpr-before-"))) / "tree"
    subprocess.run(["git", "worktree", "add", "--detach", "--quiet", str(folder), revision], cwd=REPO_ROOT,
                   check=True)
    stack.callback(subprocess.run, ["git", "worktree", "remove", "--force", str(folder)], cwd=REPO_ROOT,
                   check=False)
    return folder


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, help="the git revision to compare this tree with")
    parser.add_argument("--bundle", type=Path, default=REPO_ROOT / "bundles" / "default")
    parser.add_argument("--requests", type=int, default=1000, help="timed requests per scenario and revision")
    parser.add_argument("--throughput", type=float, default=0.0, metavar="S",
                        help="also the 64-pose /embed throughput with wrk, S seconds a run (0: not measured)")
    parser.add_argument("--connections", type=int, default=8, help="wrk's concurrent connections")
    parser.add_argument("--rounds", type=int, default=4, help="throughput runs per revision, alternating")
    args = parser.parse_args(argv)
    if args.throughput and shutil.which("wrk") is None:
        parser.error("--throughput needs wrk on the PATH (Debian: apt-get install wrk)")
    bundle = args.bundle.resolve()
    with ExitStack() as stack:
        before = worktree(stack, args.before)
        servers = [stack.enter_context(running_server(bundle, source=tree)) for tree in (before, REPO_ROOT)]
        clients = [stack.enter_context(httpx.Client(base_url=server.url, timeout=60)) for server in servers]
        print(f"{args.before} (before) against this tree (after), {args.requests} requests each, interleaved; ms")
        print(f"{'scenario':32s} {'before p50':>10s} {'p99':>7s} {'after p50':>10s} {'p99':>7s} "
              f"{'after / before':>15s}")
        bodies = scenarios(bundle)
        for name, (path, body) in bodies.items():
            def call(client: httpx.Client, path=path, body=body) -> None:
                response = client.post(path, content=body, headers={"Content-Type": "application/json"})
                response.raise_for_status()

            times = paired(lambda: call(clients[0]), lambda: call(clients[1]), args.requests)
            p50 = [percentile(t, 50) for t in times]
            p99 = [percentile(t, 99) for t in times]
            print(f"{name:32s} {p50[0]:10.3f} {p99[0]:7.3f} {p50[1]:10.3f} {p99[1]:7.3f} {p50[1] / p50[0]:15.3f}",
                  flush=True)
        if args.throughput:
            path, body = bodies[f"/embed pose2d x{BATCH}"]
            rates: list[list[float]] = [[], []]
            for i in range(args.rounds):
                for side in (0, 1)[:: 1 if i % 2 == 0 else -1]:
                    rates[side].append(wrk_rps(servers[side].url, path, body, args.connections, args.throughput))
            print(f"\n/embed pose2d x{BATCH} with wrk, {args.connections} connections, {args.rounds} runs of "
                  f"{args.throughput:g} s each, alternating; requests/s")
            for label, r in zip(("before", "after"), rates):
                print(f"  {label:8s} {', '.join(f'{x:.0f}' for x in r)}  (median {statistics.median(r):.0f})")
            print(f"  after / before (medians): {statistics.median(rates[1]) / statistics.median(rates[0]):.3f}")


if __name__ == "__main__":
    main()
