"""Training and batch-embedding throughput on the CPU and, where one is present, the GPU, in one run.

    .venv/bin/python benchmarks/gpu_throughput.py [--steps 300] [--batch 4096] [--repeat 20]

Rows (each on every device torch sees: the CPU, and CUDA when available):
- train: the default config's training loop (``train_unihpr``: view sampling in numpy, the three encoders, the
  pairwise loss, then the decoders) for ``--steps`` alignment and ``--steps // 4`` decoder steps on the shipped pose
  sample; steps/s and poses/s over the whole run.
- encode (torch): the pose2d encoder on batches of ``--batch`` poses; poses/s, median of ``--repeat`` calls.
- encode (ONNX Runtime): the same encoder exported as the bundle exports it, on each execution provider this
  onnxruntime offers (the CUDA provider only with onnxruntime-gpu); the plain library doing the builder's work.
- search (FAISS): exact inner-product k = 10 for ``--batch`` queries over 1 M random unit vectors of D = 128, on
  the CPU and on the GPU when faiss has GPUs.
A library that is missing prints one line saying so.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from index_builder.datasets.motion_database import MotionDatabase
from index_builder.training.batches import NO_AUGMENT, TrainingViews
from index_builder.training.config import DEFAULT
from index_builder.training.detector_noise import DetectorNoise
from index_builder.training.loop import train_unihpr
from model.nn.networks import UniHPR

SAMPLE = Path(__file__).resolve().parents[1] / "index_builder" / "data" / "bandai_sample.npz"


def median_seconds(call, repeat: int) -> float:
    call()  # warm-up: allocations, kernel selection
    times = []
    for _ in range(repeat):
        tick = time.perf_counter()
        call()
        times.append(time.perf_counter() - tick)
    return statistics.median(times)


def train_rate(device: torch.device, steps: int, db: MotionDatabase) -> tuple[float, float]:
    config = replace(DEFAULT, align_steps=steps, decode_steps=max(1, steps // 4), validate_every=10**9,
                     checkpoint_every=10**9)
    with tempfile.TemporaryDirectory() as tmp:
        result = train_unihpr(config, db.split("train"), db.split("val"), Path(tmp) / "bench.pt", device=device,
                              progress=False)
    total = config.align_steps + config.decode_steps
    return total / result.wall_seconds, total * config.batch_size / result.wall_seconds


def torch_encode_rate(device: torch.device, features: np.ndarray, repeat: int) -> float:
    model = UniHPR(DEFAULT.model).to(device).eval()
    x = torch.from_numpy(features).to(device)

    def call():
        with torch.no_grad():
            model.encode(x, "pose2d")
        if device.type == "cuda":
            torch.cuda.synchronize()
    return len(features) / median_seconds(call, repeat)


def onnx_encode_rates(features: np.ndarray, repeat: int) -> dict[str, float]:
    try:
        import onnxruntime as ort

        from model.nn.onnx_export import _export_one, graphs_of
    except ImportError as err:
        print(f"ONNX Runtime: not installed ({err})")
        return {}
    module, _ = graphs_of(UniHPR(DEFAULT.model).eval())["encoder_pose2d"]
    rates = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "encoder_pose2d.onnx")
        _export_one(module, torch.from_numpy(features[:2]), Path(path))
        for provider in ort.get_available_providers():
            if provider not in ("CPUExecutionProvider", "CUDAExecutionProvider"):
                continue
            session = ort.InferenceSession(path, providers=[provider])
            if session.get_providers()[0] != provider:
                print(f"ONNX Runtime: {provider} offered but not used")
                continue
            name = session.get_inputs()[0].name
            rates[provider] = len(features) / median_seconds(lambda: session.run(None, {name: features}), repeat)
    return rates


def faiss_rates(batch: int, repeat: int) -> dict[str, float]:
    try:
        import faiss
    except ImportError as err:
        print(f"FAISS: not installed ({err})")
        return {}
    rng = np.random.default_rng(0)
    base = rng.normal(size=(1_000_000, 128)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    queries = base[rng.integers(0, len(base), batch)]
    cpu = faiss.IndexFlatIP(128)
    cpu.add(base)
    rates = {"cpu": batch / median_seconds(lambda: cpu.search(queries, 10), max(3, repeat // 4))}
    gpus = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
    if gpus:
        gpu = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, cpu)
        rates["gpu"] = batch / median_seconds(lambda: gpu.search(queries, 10), repeat)
    else:
        print("FAISS: no GPU in this build or machine")
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--skip-train", action="store_true")
    args = parser.parse_args()

    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    gpu_name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, "
          f"GPU: {gpu_name}")
    db = MotionDatabase.load(SAMPLE)
    views = TrainingViews(db.poses.astype(np.float64), 0, NO_AUGMENT, DetectorNoise.load()).batch(args.batch)
    features = np.ascontiguousarray(views.pose2d)

    rows = []
    for device in devices:
        if not args.skip_train:
            steps_s, poses_s = train_rate(device, args.steps, db)
            rows.append((f"train, {device.type}", f"{steps_s:.1f} steps/s", f"{poses_s:,.0f} poses/s"))
        rows.append((f"encode torch, {device.type}", f"{torch_encode_rate(device, features, args.repeat):,.0f} "
                     "poses/s", f"batch {args.batch}"))
    for provider, rate in onnx_encode_rates(features, args.repeat).items():
        rows.append((f"encode ONNX Runtime, {provider}", f"{rate:,.0f} poses/s", f"batch {args.batch}"))
    for where, rate in faiss_rates(args.batch, args.repeat).items():
        rows.append((f"FAISS flat k=10 over 1M, {where}", f"{rate:,.0f} queries/s", f"batch {args.batch}"))
    print("| what | rate | notes |\n|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
