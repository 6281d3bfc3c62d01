"""Resident memory and liveness of the HTTP service under its heaviest allowed requests and under mixed load.

    .venv/bin/python benchmarks/service_memory.py [--bundle bundles/default] [--duration 60] [--clients 16]
                                                  [--json PATH] [--skip-known-bad] [--rss-limit-gb 16]

Each scenario runs on a fresh server: ``python -m uvicorn --factory service.main:create_app`` on 127.0.0.1 and a
free port, with ``UNIHPR_BUNDLE_PATH`` set (the environment's other ``UNIHPR_*`` variables are dropped, so the
server runs the documented default limits). The server's RSS (the process and its children, bytes) is sampled
every 100 ms with psutil. Before a scenario the server is warmed up with one small request of each kind and its
idle RSS is taken as the median over one second. Then:

- heavy single requests, each within the documented limits (16 MiB body, 256 inputs, 25 MP per image, k <= 1000):
  64 photos of 4000 x 3000 in one JSON /embed (JPEG quality lowered until the body fits), 256 pose queries with
  k = 100 in one /retrieve, and a /embed body of 256 poses padded with decimals to just under the body limit;
- the known-bad requests: 64 single-colour 5000 x 5000 PNGs in one /embed, and 256 queries with k = 1000;
- a mixed load: ``--clients`` threads, each with its own keep-alive client, cycling through image and pose /embed
  and /retrieve requests for ``--duration`` seconds.

For each single request it records the status, the wall time, the peak RSS above idle, the RSS five seconds after
the answer, and the /healthz latency (p50/p99/max, ms) of a poller that runs alongside. For the load: RSS at the
start, after the ramp, at the end and at peak, statuses, and requests per second. A request gets at most
``--timeout`` seconds; if the server's RSS passes ``--rss-limit-gb`` the sampler kills it and the scenario is
reported as killed. Every loop is bounded in count or time and the server is killed in ``finally``.

The photo is ``--image`` (default an MPII test photo from ../shared/data/pose-images), cropped to 4:3 and
resized; images are generated in memory with Pillow and nothing is written but ``--json``.

This file is the command line and the report; the scenarios are in ``memory_scenarios``, the request bodies in
``request_bodies``, the RSS sampler and /healthz poller in ``server_monitors`` and the server in ``service_harness``.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
# run as a script: the repository goes on the path before its modules are imported
sys.path.insert(0, str(REPO_ROOT))

from benchmarks import memory_scenarios as scenarios  # noqa: E402
from benchmarks.request_bodies import heavy_requests  # noqa: E402
from benchmarks.service_harness import DEFAULT_IMAGE, pose_keypoints, running_server  # noqa: E402

# ------------------------------------------------------------------ reporting

def fmt(value, digits: int = 0) -> str:
    """A number for the table ('-' for None)."""
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def print_request_table(results: list[scenarios.RequestResult]) -> None:
    """Markdown table of the single-request scenarios (MiB, %, s, ms)."""
    print("\n| scenario | body MiB | status | wall s | idle MiB | peak above idle MiB | after MiB | after vs idle % "
          "| healthz p50 ms | healthz p99 ms | healthz max ms | note |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        status = fmt(r.status) if r.killed_at_mb is None else f"killed at {r.killed_at_mb:.0f} MiB"
        print(f"| {r.name} | {fmt(r.body_mb, 1)} | {status} | {fmt(r.wall_s, 1)} | {fmt(r.idle_mb)} | "
              f"{fmt(r.peak_above_idle_mb)} | {fmt(r.after_mb)} | {fmt(r.after_vs_idle_pct, 1)} | "
              f"{fmt(r.healthz.get('p50_ms'), 1)} | {fmt(r.healthz.get('p99_ms'), 1)} | "
              f"{fmt(r.healthz.get('max_ms'), 1)} | {r.note or (r.error or '')[:80]} |")


def print_load_table(load: scenarios.LoadResult) -> None:
    """Markdown table of the mixed load (MiB, %, requests/s, ms)."""
    print(f"\nmixed load: {load.clients} clients, {load.duration_s:.0f} s")
    print("| idle MiB | first MiB | after ramp MiB | last MiB | peak MiB | growth % | growth after ramp % | "
          "req/s | statuses | errors | healthz p50 / p99 / max ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    hz = load.healthz
    print(f"| {fmt(load.idle_mb)} | {fmt(load.first_mb)} | {fmt(load.ramp_mb)} | {fmt(load.last_mb)} | "
          f"{fmt(load.peak_mb)} | {fmt(load.growth_pct, 1)} | {fmt(load.growth_after_ramp_pct, 1)} | "
          f"{fmt(load.throughput_rps, 1)} | {load.statuses} | {load.errors or '-'} | "
          f"{fmt(hz.get('p50_ms'), 1)} / {fmt(hz.get('p99_ms'), 1)} / {fmt(hz.get('max_ms'), 1)} |")
    print(f"completed per kind: {load.requests}")


# ------------------------------------------------------------------ main

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, default=REPO_ROOT / "bundles" / "default")
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE, help="photo to upscale for image requests")
    parser.add_argument("--duration", type=float, default=60.0, help="mixed load length, s")
    parser.add_argument("--ramp", type=float, default=5.0, help="mixed load ramp-up excluded from growth, s")
    parser.add_argument("--clients", type=int, default=16, help="mixed load clients")
    parser.add_argument("--timeout", type=float, default=120.0, help="client timeout per request, s")
    parser.add_argument("--rss-limit-gb", type=float, default=16.0, help="kill the server above this RSS, GiB")
    parser.add_argument("--skip-known-bad", action="store_true", help="skip the known-bad requests")
    parser.add_argument("--skip-load", action="store_true", help="skip the mixed load")
    parser.add_argument("--json", type=Path, default=None, help="write the numbers here")
    parser.add_argument("--source", type=Path, default=REPO_ROOT,
                        help="source tree whose service runs (e.g. a `git archive` of a commit)")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.clients < 1 or args.timeout <= 0:
        parser.error("--duration, --clients and --timeout must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bundle = args.bundle.resolve()
    if not (bundle / "manifest.json").is_file():
        print(f"no bundle at {bundle}; build it with `unihpr-build index --sample --out {args.bundle}`",
              file=sys.stderr)
        return 2
    limit = int(args.rss_limit_gb * (1 << 30))
    warm = (pose_keypoints(bundle, 8, seed=2), args.image.read_bytes())

    with running_server(bundle, source=args.source) as server:
        limits = httpx.get(f"{server.url}/info", timeout=10).json()["limits"]
    max_body, max_batch, max_pixels = limits["max_body_bytes"], limits["max_batch"], limits["max_image_pixels"]
    print(f"limits: body {max_body} bytes, batch {max_batch}, image {max_pixels} pixels, k {limits['k']}")

    heavy = heavy_requests(args.image, bundle, limits)
    results: list[scenarios.RequestResult] = []
    for name, path, body, note, known_bad in heavy:
        if known_bad and args.skip_known_bad:
            continue
        print(f"[{len(results) + 1}/{len(heavy)}] {name} ({len(body) / scenarios.MIB:.1f} MiB) on a fresh server",
              flush=True)
        with running_server(bundle, source=args.source) as server:
            result = scenarios.measure_request(server, name, path, body, warm, args.timeout, limit, note=note)
        print(f"    status {result.status}, {fmt(result.wall_s, 1)} s, peak +{fmt(result.peak_above_idle_mb)} MiB, "
              f"healthz p99 {fmt(result.healthz.get('p99_ms'), 1)} ms", flush=True)
        results.append(result)

    load = None
    if not args.skip_load:
        print(f"mixed load: {args.clients} clients for {args.duration:.0f} s on a fresh server", flush=True)
        bodies = scenarios.load_bodies(bundle, args.image.read_bytes())
        with running_server(bundle, source=args.source) as server:
            load = scenarios.mixed_load(server, bodies, args.clients, args.duration, args.ramp, args.timeout, limit,
                                        warm)

    print_request_table(results)
    if load is not None:
        print_load_table(load)
    if args.json is not None:
        args.json.write_text(json.dumps({"limits": limits, "requests": [asdict(r) for r in results],
                                         "load": asdict(load) if load is not None else None}, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
