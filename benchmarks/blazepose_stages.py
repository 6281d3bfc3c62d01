"""Where BlazePose's time goes: the two model invocations and the numpy/Pillow work around them, per stage.

    .venv/bin/python benchmarks/blazepose_stages.py [--repeat 30] [--before REV] [--image PATH] [--big 4000x3000]

Runs ``BlazePose.run`` on one real photo (default the MPII test photo ``052475643.jpg``, 854 x 480, from
../shared/data/pose-images) and on the same photo cropped to the aspect of ``--big`` and upscaled to it (bilinear),
``--repeat`` times each after one warm-up call, with one LiteRT thread per model (the service's default). The stages
are timed from outside by wrapping ``BlazePose._detect_rois``, ``BlazePose._landmarks`` and the model call
``_Model.__call__`` (each call records its start and end), so the code under test is not changed:

- letterbox: ``_detect_rois`` up to the detector call (the 224 x 224 zero-border warp and the scaling to [-1, 1]);
- detector / landmarks: the invocations as ``Timings`` reports them (set_tensor, invoke, output copies);
- decode+NMS: ``_detect_rois`` after the detector call (SSD decoding, weighted NMS, conversion to pixels);
- ROI warp: ``_landmarks`` up to the landmark model call (rotated 256 x 256 crop, scaling to [0, 1]);
- refine+project: ``_landmarks`` after the call (heatmap refinement, projection to pixels, the ``Person``);
- outside: the rest of ``run`` (input checks, ``to_planes`` where the implementation has it, ROIs, sorting).

pre/post = total - detector - landmarks (the service's ``blazepose_prepost``), and its share of total. Each cell is
the median over the repeats, in ms. With ``--before REV`` the ``model/runtime/blazepose.py`` and
``model/runtime/blazepose_anchors.py`` of git revision REV are loaded as a second implementation and timed in the
same run, interleaved call by call with the working tree's, so both see the same machine load.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import numpy as np
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]
# run as a script: this tree's packages must come before an installed copy, hence the imports below the change
sys.path.insert(0, str(REPO_ROOT))

import model.runtime.blazepose as current  # noqa: E402
from index_builder.bundle.blazepose_assets import fetch_blazepose_models  # noqa: E402

DEFAULT_IMAGE = REPO_ROOT.parent / "shared" / "data" / "pose-images" / "mpii" / "052475643.jpg"
STAGES = ("letterbox", "detector", "decode+NMS", "ROI warp", "landmarks", "refine+project", "outside")


def load_revision(rev: str, into: Path) -> ModuleType:
    """``model/runtime/blazepose.py`` of git revision ``rev`` as a module, importing that revision's anchors module."""
    def show(path: str) -> str:
        return subprocess.run(["git", "show", f"{rev}:{path}"], cwd=REPO_ROOT, check=True, capture_output=True,
                              text=True).stdout

    tag = f"_bench_{rev.replace('~', '_').replace('^', '_')}"
    anchors_src = show("model/runtime/blazepose_anchors.py")
    source = show("model/runtime/blazepose.py")
    assert source.count("from model.runtime.blazepose_anchors import") == 1, (
        "the revision imports its anchors differently")
    source = source.replace("from model.runtime.blazepose_anchors import", f"from {tag}_anchors import")
    modules = {}
    for name, text in ((f"{tag}_anchors", anchors_src), (tag, source)):
        path = into / f"{name}.py"
        path.write_text(text)
        spec = importlib.util.spec_from_file_location(name, path)
        modules[name] = importlib.util.module_from_spec(spec)
        sys.modules[name] = modules[name]
        spec.loader.exec_module(modules[name])
    return modules[tag]


class Clock:
    """Start/end times of the wrapped calls of one ``run``."""

    def __init__(self):
        self.spans: dict[str, list[tuple[float, float]]] = {}

    def wrap(self, name: str, fn):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.spans.setdefault(name, []).append((start, time.perf_counter()))
        return timed


@contextmanager
def instrumented(module: ModuleType, clock: Clock):
    """Wrap the stage boundaries of ``module``'s BlazePose for the duration of the block."""
    targets = [(module.BlazePose, "_detect_rois", "detect"), (module.BlazePose, "_landmarks", "landmarks"),
               (module._Model, "__call__", "model")]
    saved = [(cls, attr, cls.__dict__[attr]) for cls, attr, _ in targets]
    try:
        for cls, attr, name in targets:
            setattr(cls, attr, clock.wrap(name, cls.__dict__[attr]))
        yield
    finally:
        for cls, attr, fn in saved:
            setattr(cls, attr, fn)


def stage_times(clock: Clock, timings) -> dict[str, float]:
    """Per-stage ms of one ``run`` from the recorded spans (see the module docstring)."""
    ms = 1e3
    models = clock.spans.get("model", [])
    (d0, d1), = clock.spans["detect"]
    det_call = [m for m in models if d0 <= m[0] <= d1]
    out = dict.fromkeys(STAGES, 0.0)
    out["detector"] = timings.detector_ms
    out["landmarks"] = float(sum(timings.landmark_ms))
    if det_call:  # the detector call splits _detect_rois into before (letterbox) and after (decode, NMS)
        out["letterbox"] = (det_call[0][0] - d0) * ms
        out["decode+NMS"] = (d1 - det_call[0][1]) * ms
    inside = (d1 - d0) * ms
    for l0, l1 in clock.spans.get("landmarks", []):
        call = [m for m in models if l0 <= m[0] <= l1]
        if call:
            out["ROI warp"] += (call[0][0] - l0) * ms
            out["refine+project"] += (l1 - call[0][1]) * ms
        inside += (l1 - l0) * ms
    out["outside"] = timings.total_ms - inside
    out["total"] = timings.total_ms
    out["pre/post"] = timings.total_ms - out["detector"] - out["landmarks"]
    out["share"] = out["pre/post"] / timings.total_ms
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--before", default=None, help="git revision to time side by side with the working tree")
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    parser.add_argument("--big", default="4000x3000", help="WxH of the upscaled copy")
    args = parser.parse_args(argv)

    files = fetch_blazepose_models()
    with Image.open(args.image) as im:
        photo = im.convert("RGB")
    big_w, big_h = (int(v) for v in args.big.split("x"))
    crop_w = min(photo.width, round(photo.height * big_w / big_h))
    left = (photo.width - crop_w) // 2
    big = photo.crop((left, 0, left + crop_w, photo.height)).resize((big_w, big_h), Image.Resampling.BILINEAR)

    with tempfile.TemporaryDirectory() as tmp:
        impls = [("working tree", current)]
        if args.before:
            impls.insert(0, (f"before ({args.before})", load_revision(args.before, Path(tmp))))
        runs = [(label, module, module.BlazePose(files.detector, files.landmarks, num_threads=1))
                for label, module in impls]
        print(f"BlazePose stages, median of {args.repeat} runs per row, ms; pre/post = total - detector - landmarks")
        header = ("| image | implementation | people | " + " | ".join(STAGES)
                  + " | total | pre/post | share |")
        print(header)
        print("|" + "---|" * (header.count("|") - 1))
        for name, pil in ((f"{args.image.name} {photo.width}x{photo.height}", photo),
                          (f"upscaled {big.width}x{big.height}", big)):
            array = np.asarray(pil)
            rows: dict[str, list[dict[str, float]]] = {label: [] for label, *_ in runs}
            people = {}
            for i in range(args.repeat + 1):
                for label, module, bp in runs:  # interleaved: every implementation sees the same load
                    clock = Clock()
                    with instrumented(module, clock):
                        found, timings = bp.run(array)
                    people[label] = len(found)
                    if i:  # the first round is the warm-up
                        rows[label].append(stage_times(clock, timings))
            for label, samples in rows.items():
                med = {k: statistics.median(s[k] for s in samples) for k in samples[0]}
                cells = [f"{med[k]:.2f}" for k in (*STAGES, "total", "pre/post")] + [f"{100 * med['share']:.0f}%"]
                print(f"| {name} | {label} | {people[label]} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
