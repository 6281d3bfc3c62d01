"""`unihpr-build index | verify | weights`: write, check and feed artifact bundles."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import torch
import typer

from index_builder.bundle.blazepose_assets import fetch_blazepose_models
from index_builder.bundle.indexing import KINDS, plan_reason
from index_builder.bundle.milvus_options import BackendOpt, MilvusTokenOpt, MilvusUriOpt, milvus_target
from index_builder.bundle.reranking import validation_line
from index_builder.bundle.writer import DEFAULT_VIEWS, build_bundle
from index_builder.config import get_paths
from index_builder.datasets.motion_database import MotionDatabase
from index_builder.datasets.sample import load_poses
from index_builder.errors import ArtifactError, ConfigError
from index_builder.evaluation.report.model_card import write_model_card
from index_builder.training.checkpoint import float16_change_mm, load_unihpr, save_weights
from model.runtime.bundle_format import BundleError, verify_bundle

app = typer.Typer(no_args_is_help=True)


@app.command()
def index(
    out: Annotated[Path | None, typer.Option(help="bundle directory to write (default: bundles/default)")] = None,
    weights: Annotated[Path | None, typer.Option(help="trained model (checkpoint or shipped weights; default: "
                                                      "weights/unihpr_default.pt)")] = None,
    use_sample: Annotated[bool, typer.Option("--sample", help="index the shipped sample, not the full cache")] = False,
    poses: Annotated[Path | None, typer.Option(help="pose database to index (from `unihpr-build ingest`) instead "
                                                    "of the Bandai cache")] = None,
    views: Annotated[int, typer.Option(min=1, max=64, help="virtual views per pose")] = DEFAULT_VIEWS,
    evaluation: Annotated[Path | None, typer.Option(help="eval.json whose metrics go into the manifest")] = None,
    threads: Annotated[int, typer.Option(min=1, help="torch CPU threads")] = 2,
    fps: Annotated[float | None, typer.Option(min=0.1, help="index each clip at about this many frames per "
                                                            "second (default: every frame)")] = None,
    index_kind: Annotated[str, typer.Option(help=f"FAISS index: auto (by size) or one of "
                                                 f"{', '.join(KINDS)}")] = "auto",
    backend: BackendOpt = "faiss",
    milvus_uri: MilvusUriOpt = None,
    milvus_token: MilvusTokenOpt = None,
    int8: Annotated[bool, typer.Option(
        "--int8", help="query encoders and decoders with int8 weights (ONNX Runtime, per channel): faster on CPUs, "
                       "embeddings and lifts a little less exact (benchmarks/README.md, `int8_graphs.py`); the "
                       "database vectors stay float32")] = False,
) -> None:
    """Export the model to ONNX, embed the pose database under virtual views, index it and write the bundle
    (with --backend milvus the vectors go into a Milvus collection named after the bundle version)."""
    if index_kind not in ("auto", *KINDS):
        raise ConfigError(f"--index-kind {index_kind}: one of auto, {', '.join(KINDS)}")
    milvus = milvus_target(backend, milvus_uri, milvus_token)
    paths = get_paths()
    out, weights = out or paths.default_bundle, weights or paths.default_weights
    torch.set_num_threads(threads)
    if not weights.is_file():
        raise ArtifactError(f"{weights}: no such model; train one with `unihpr-build train`")
    model, config, _ = load_unihpr(weights)
    if poses is not None and use_sample:
        raise ConfigError("--poses and --sample choose different databases: give one")
    if poses is not None:
        if not poses.is_file():
            raise ArtifactError(f"{poses}: no such pose database; make one with `unihpr-build ingest`")
        db, path = MotionDatabase.load(poses), poses
    else:
        db, path = load_poses(paths, prefer_cache=not use_sample)
    typer.echo(f"poses: {path} ({len(db)} poses x {views} views{f', indexed at {fps:g} fps' if fps else ''})")
    metrics = json.loads(evaluation.read_text()) if evaluation else None
    timings: dict[str, float] = {}
    manifest = build_bundle(model, config, db, out, fetch_blazepose_models(), views=views, evaluation=metrics,
                            index_kind=index_kind, fps=fps, timings=timings, milvus=milvus, int8=int8)
    info, point = manifest.index, manifest.index.operating_point
    effort = f"efSearch {point.ef_search}" if info.type == "hnsw" else f"nprobe {point.nprobe}"
    typer.echo(f"{out}: {info.ntotal} vectors at {', '.join(f'{r:g}' for r in manifest.database.fps)} fps, "
               f"{info.factory} ({plan_reason(info)}), {effort} (recall@10 {point.recall_at_10:.3f}), built in "
               f"{manifest.builder.build_seconds} s: export {timings['export']:.0f} s, embedding "
               f"{timings['embedding']:.0f} s, index {timings['index']:.0f} s, re-ranking {timings['rerank']:.0f} s")
    if info.backend is not None:
        typer.echo(f"  vectors in Milvus collection {info.backend.collection} at {info.backend.uri}: "
                   f"{info.backend.index_type} {info.backend.index_params}, recall@10 {info.backend.recall_at_10}")
    for method, entry in (manifest.rerank.methods if manifest.rerank is not None else {}).items():
        typer.echo(f"  {validation_line(method, entry)}")
    for name, graph in manifest.graphs.items():
        if graph.precision == "int8":
            cosine = "" if graph.int8_min_cosine is None else f", cosine >= {graph.int8_min_cosine:.4f}"
            typer.echo(f"  {name}: int8, against float32 on {graph.parity_samples} held-out inputs: max |diff| "
                       f"{graph.int8_max_abs_diff:.1e}{cosine}")


@app.command()
def verify(bundle: Annotated[Path, typer.Argument(help="bundle directory")]) -> None:
    """Check a bundle's manifest, hashes, shapes and models; exit 1 with the fault on any problem."""
    try:
        manifest = verify_bundle(bundle).manifest
    except BundleError as err:
        raise ArtifactError(str(err)) from err
    typer.echo(f"{bundle}: ok ({manifest.model_version}, {manifest.index.ntotal} vectors, "
               f"{len(manifest.files)} files verified)")


@app.command()
def weights(
    run: Annotated[Path | None, typer.Option("--run", help="run directory with a finished unihpr.pt (default: "
                                                           "runs/default)")] = None,
    out: Annotated[Path | None, typer.Option(help="where the shipped weights go (default: "
                                                  "weights/unihpr_default.pt)")] = None,
    report: Annotated[Path | None, typer.Option(help="eval.json of this run, for the model card")] = None,
) -> None:
    """Strip a finished training checkpoint to the shipped-weights form and write its model card beside it."""
    paths = get_paths()
    run, out = run or paths.default_run, out or paths.default_weights
    save_weights(out, run / "unihpr.pt")
    db, _ = load_poses(paths)
    change = float16_change_mm(run / "unihpr.pt", out, db.split("val"))
    typer.echo(f"float16 weights move lifted validation poses by at most {change:.3f} mm")
    card = out.parent / "MODEL_CARD.md"
    write_model_card(out, report, db, card, change)
    typer.echo(f"{out}: {out.stat().st_size / 1e6:.1f} MB; {card}")
