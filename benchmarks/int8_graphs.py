"""int8 graphs (``unihpr-build index --int8``): what they save in time and cost in accuracy.

    .venv/bin/python benchmarks/int8_graphs.py [--bundle bundles/default] [--sample] [--repeat 300]
                                               [--int8-bundle PATH [--rounds 3] [--seconds 5] [--requests 500]]

Quantizes the query encoders and the decoders of a float32 bundle into a temporary folder as the builder does
(``index_builder.bundle.int8_graphs``), then compares the float32 and the int8 graphs:

- time: one ONNX Runtime call of 1 and of 64 rows of each graph (one intra-op thread, as the service runs them),
  the median of ``--repeat`` calls in this process, float32 and int8 alternated call by call;
- agreement: cosine between the two encoders' embeddings of the held-out views;
- lifting: PA-MPJPE (mm) of encoder + decoder3d against the true 3D in the crop's camera, float32, with the int8
  encoder, and all int8, for the held-out test poses of ``unihpr-build evaluate`` (3 fps) through one H36M-like rig
  camera and one seeded random camera each: clean 2D, noisy 2D (pose2d), simulated detector features (image);
- the fixed real rig of ``unihpr-build evaluate`` (the published H36M calibrations, lens distortion, people off the
  image centre, intrinsics given): MPJPE and PA-MPJPE (mm) of the float32 and the int8 encoder + decoder3d;
- batch dependence: 256 poses through encoder_pose2d and decoder3d one at a time against in one call;
- retrieval: 2D of rig camera 0 against the float32 pose3d embeddings of all four rig views of the same poses (the
  paper protocol's gallery, which holds the query's exact view): how often the top-1 is that exact view, and the
  top-1 PA-MPJPE (mm) of the retrieved pose.

The database vectors stay float32 in both arms, as in an int8 bundle. With ``--int8-bundle PATH`` (the same data
built with ``--int8``) it also serves both bundles from this tree (``service_harness.running_server``) and measures,
alternating between them for ``--rounds`` rounds: 64-pose ``/embed`` and ``/lift3d`` requests per second from
``wrk`` (8 connections, ``--seconds`` a run), and the p50 of one-pose and 64-pose requests to each route sent one at a
time (``service_harness.paired``: the two servers' requests interleaved).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from benchmarks.service_harness import paired, percentile, pose_keypoints, running_server, wrk_rps  # noqa: E402
from index_builder.bundle.int8_graphs import QUANTIZED, cosine_rows, quantize_graph  # noqa: E402
from index_builder.bundle.writer import run_encoder  # noqa: E402
from index_builder.config import get_paths  # noqa: E402
from index_builder.datasets.sample import load_poses  # noqa: E402
from index_builder.evaluation.held_out import build_held_out, subsample_rows  # noqa: E402
from index_builder.evaluation.real_cameras import crop_rig_lifter, fixed_real_rig  # noqa: E402
from index_builder.training.config import EvalSettings  # noqa: E402
from index_builder.training.detector_noise import DetectorNoise  # noqa: E402
from model.nn.onnx_export import INPUT_NAME, OUTPUT_NAME  # noqa: E402
from model.pose.metrics import pa_mpjpe  # noqa: E402
from model.pose.units import MM_PER_M  # noqa: E402
from model.runtime.onnx_sessions import cpu_session  # noqa: E402

ROUTES = ("/embed", "/lift3d")


def run(session, x: np.ndarray) -> np.ndarray:
    """A bundle graph over ``x`` in batches, as the builder runs it (``writer.run_encoder``)."""
    return run_encoder(session, np.ascontiguousarray(x, dtype=np.float32))


def call_us(float32, int8, x: np.ndarray, repeat: int) -> tuple[float, float]:
    """Median microseconds of one call of each session on ``x``, the two alternated call by call."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    a, b = paired(*(lambda s=session: s.run([OUTPUT_NAME], {INPUT_NAME: x}) for session in (float32, int8)), repeat)
    return percentile(a, 50) * 1e3, percentile(b, 50) * 1e3


def batch_dependence(float32: dict, int8: dict, features: np.ndarray, embeddings: np.ndarray) -> None:
    """Each row run alone against the same rows run as one call: dynamic quantization scales a call's activations by
    the whole batch, so an int8 graph's answer for a pose moves with its batch mates (float32 graphs: not at all)."""
    for arm, graphs in (("float32", float32), ("int8", int8)):
        encoder, decoder = graphs["encoder_pose2d"][0], graphs["decoder3d"][0]
        alone = np.concatenate([run(encoder, row[None]) for row in features])
        cosine = cosine_rows(alone, run(encoder, features))
        lifted = np.concatenate([run(decoder, row[None]) for row in embeddings])
        moved = np.linalg.norm(lifted - run(decoder, embeddings), axis=-1).max(-1) * MM_PER_M
        print(f"{arm}: {len(features)} poses alone against in one call: encoder_pose2d cosine >= {cosine.min():.6f}; "
              f"decoder3d's largest joint move median {np.median(moved):.2f} mm, max {moved.max():.2f} mm")


def graph_times(float_graphs: dict, int8_graphs: dict, inputs: dict[str, np.ndarray], repeat: int) -> None:
    print("\n| graph | file (MB) float32 -> int8 | one call, 1 row (us) | one call, 64 rows (us) |")
    print("|---|---|---|---|")
    for name, x in inputs.items():
        arms = float_graphs[name][0], int8_graphs[name][0]
        one, batch = call_us(*arms, x[:1], repeat), call_us(*arms, x[:64], max(20, repeat // 10))
        print(f"| {name} | {float_graphs[name][1] / 1e6:.1f} -> {int8_graphs[name][1] / 1e6:.1f} | "
              f"{one[0]:.0f} -> {one[1]:.0f} ({one[1] / one[0]:.2f}x) | "
              f"{batch[0]:.0f} -> {batch[1]:.0f} ({batch[1] / batch[0]:.2f}x) |")


def http_rounds(float_bundle: Path, int8_bundle: Path, rounds: int, seconds: float, requests: int) -> None:
    """Both bundles served at once; per round and route, each one's 64-pose throughput and one-at-a-time p50s."""
    import httpx

    kp = pose_keypoints(float_bundle, 64)
    bodies = {n: json.dumps({"inputs": [{"modality": "pose2d", "keypoints": k.tolist(), "layout": "h36m17"}
                                        for k in kp[:n]]}).encode() for n in (1, 64)}
    headers = {"Content-Type": "application/json"}
    print("\n| round | route | 64 poses, 8 connections: requests/s float32 -> int8 | one pose: p50 (ms) | "
          "64 poses: p50 (ms) |")
    print("|---|---|---|---|---|")
    with running_server(float_bundle) as a, running_server(int8_bundle) as b, \
            httpx.Client(base_url=a.url, timeout=60) as ca, httpx.Client(base_url=b.url, timeout=60) as cb:
        for r in range(1, rounds + 1):
            for route in ROUTES:
                rps = [wrk_rps(server.url, route, bodies[64], 8, seconds) for server in (a, b)]
                p50 = {}
                for n in (1, 64):
                    ta, tb = paired(lambda: ca.post(route, content=bodies[n], headers=headers).raise_for_status(),
                                    lambda: cb.post(route, content=bodies[n], headers=headers).raise_for_status(),
                                    requests)
                    p50[n] = (percentile(ta, 50), percentile(tb, 50))
                print(f"| {r} | `{route}` | {rps[0]:.0f} -> {rps[1]:.0f} | {p50[1][0]:.3f} -> {p50[1][1]:.3f} | "
                      f"{p50[64][0]:.3f} -> {p50[64][1]:.3f} |", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, default=REPO_ROOT / "bundles" / "default",
                        help="a float32 bundle (built without --int8)")
    parser.add_argument("--sample", action="store_true", help="held-out poses of the shipped sample, not the cache")
    parser.add_argument("--repeat", type=int, default=300)
    parser.add_argument("--int8-bundle", type=Path, default=None,
                        help="the same data built with --int8: also compare the two over HTTP")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0, help="wrk's run per bundle, route and round")
    parser.add_argument("--requests", type=int, default=500, help="one-at-a-time requests per size, route and round")
    args = parser.parse_args(argv)

    db, path = load_poses(get_paths(), prefer_cache=not args.sample)
    test = db.split("test")
    settings = EvalSettings()
    rows, _ = subsample_rows(test, settings.eval_fps)
    held = build_held_out(test, rows, settings, DetectorNoise.load())
    print(f"{path}: {len(rows)} held-out test poses; bundle {args.bundle}")

    def graph(folder: Path, name: str) -> tuple:
        """(session, file size in bytes) of one graph; sessions hold their graph, so the folder may go."""
        path = folder / f"{name}.onnx"
        return cpu_session(path, threads=1, errors_only=True), path.stat().st_size

    with tempfile.TemporaryDirectory(prefix="unihpr-int8-") as tmp:
        for name, kept in QUANTIZED.items():
            quantize_graph(args.bundle / f"{name}.onnx", Path(tmp) / f"{name}.onnx", kept)
        float32 = {name: graph(args.bundle, name) for name in QUANTIZED}
        int8 = {name: graph(Path(tmp), name) for name in QUANTIZED}
    gallery = np.concatenate([run(cpu_session(args.bundle / "encoder_pose3d.onnx"), v.pose3d_features)
                              for v in held.rig])

    views = {"clean 2D, rig camera 0": ("pose2d", held.rig[0].pose2d, held.rig[0].pose3d),
             "clean 2D, random cameras": ("pose2d", held.random.pose2d, held.random.pose3d),
             "noisy 2D, rig camera 0": ("pose2d", held.noisy_rig[0], held.rig[0].pose3d),
             "noisy 2D, random cameras": ("pose2d", held.noisy_random, held.random.pose3d),
             "detector features, rig camera 0": ("image", held.rig[0].image, held.rig[0].pose3d),
             "detector features, random cameras": ("image", held.random.image, held.random.pose3d)}
    print("\n| views | encoder cosine int8 / float32: median (min) | lifted PA-MPJPE (mm): float32 | int8 encoder | "
          "int8 encoder and decoder |")
    print("|---|---|---|---|---|")
    embedded = {}
    for label, (modality, features, truth) in views.items():
        encoder = f"encoder_{modality}"
        emb = {arm: run(graphs[encoder][0], features) for arm, graphs in (("float32", float32), ("int8", int8))}
        embedded[label] = emb
        cos = cosine_rows(emb["float32"], emb["int8"])
        pa = [float(np.mean(pa_mpjpe(run(decoder, e) * MM_PER_M, truth))) for e, decoder in
              ((emb["float32"], float32["decoder3d"][0]), (emb["int8"], float32["decoder3d"][0]),
               (emb["int8"], int8["decoder3d"][0]))]
        print(f"| {label} | {np.median(cos):.4f} ({cos.min():.4f}) | {pa[0]:.2f} | {pa[1]:.2f} | {pa[2]:.2f} |")

    def rig_lifter(graphs: dict):
        encoder, decoder = graphs["encoder_pose2d"][0], graphs["decoder3d"][0]
        return crop_rig_lifter(lambda features, modality: run(decoder, run(encoder, features)) * MM_PER_M)

    rig = [fixed_real_rig({"unihpr": rig_lifter(graphs)}, {}, test, rows)["runs"]["intrinsics"]["lifters"]["unihpr"]
           for graphs in (float32, int8)]
    print(f"\nfixed real rig (the published H36M calibrations of S9, lens distortion, intrinsics given; {len(rows)} "
          "frames): MPJPE / PA-MPJPE float32 " + " -> int8 ".join(f"{e['mpjpe_mm']:.2f} / {e['pa_mpjpe_mm']:.2f}"
                                                                  for e in rig) + " mm")

    n = len(rows)
    truth = np.concatenate([v.pose3d for v in held.rig])
    for arm in ("float32", "int8"):
        queries = embedded["clean 2D, rig camera 0"][arm]
        top1 = np.concatenate([(queries[i : i + 1024] @ gallery.T).argmax(1) for i in range(0, n, 1024)])
        exact = float(np.mean(top1 == np.arange(n)))
        error = float(np.mean(pa_mpjpe(truth[top1], held.rig[0].pose3d)))
        print(f"retrieval, {arm} encoder: exact view top-1 {exact:.3f}, top-1 PA-MPJPE {error:.1f} mm ({n} queries, "
              f"gallery {len(gallery)})")

    first = embedded["clean 2D, rig camera 0"]["float32"]
    batch_dependence(float32, int8, held.rig[0].pose2d[:256], first[:256])
    graph_times(float32, int8, {"encoder_pose2d": held.rig[0].pose2d, "encoder_image": held.rig[0].image,
                                "decoder3d": first, "decoder2d": first}, args.repeat)
    if args.int8_bundle is not None:
        http_rounds(args.bundle, args.int8_bundle, args.rounds, args.seconds, args.requests)


if __name__ == "__main__":
    main()
