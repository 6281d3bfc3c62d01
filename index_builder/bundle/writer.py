"""Write an artifact bundle (see ``model.runtime.bundle_format``) from a trained model and a pose database."""

from __future__ import annotations

import logging
import platform
import shutil
import subprocess
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import faiss
import numpy as np

import model.runtime.bundle_format as fmt
from index_builder.atomic_files import atomic_directory
from index_builder.bundle.blazepose_assets import BlazePoseFiles
from index_builder.bundle.indexing import (
    IndexPlan,
    OperatingPoint,
    build_index,
    choose_operating_point,
    describe,
    plan_index,
    write_index,
)
from index_builder.bundle.int8_graphs import quantize_graphs
from index_builder.bundle.milvus_collection import MilvusTarget, publish
from index_builder.bundle.reranking import (
    QUERIES_TEXT,
    Gallery,
    LiftedPath,
    index_search_of,
    query_sets,
    rerank_info,
    validation_line,
    validation_views,
)
from index_builder.datasets.motion_database import MotionDatabase
from index_builder.errors import ArtifactError
from index_builder.progress import progress_bar
from index_builder.training.batches import NO_AUGMENT, sample_cameras, view_poses
from index_builder.training.config import TrainConfig
from index_builder.training.detector_noise import DetectorNoise
from model.nn.networks import UniHPR
from model.nn.onnx_export import INPUT_NAME, OUTPUT_NAME, ExportParityError, export_model
from model.pose.camera_rigs import virtual_view_rotations
from model.pose.features import pose3d_features
from model.pose.joint_formulas import FORMULAS_VERSION
from model.pose.skeleton import H36M17, root_centred
from model.pose.units import MM_PER_M
from model.retrieval.lifted_candidates import DescriptorIndex
from model.runtime.motion_sources import SOURCES, ClipSources, write_sources
from model.runtime.onnx_sessions import cpu_session

LOG = logging.getLogger(__name__)
DEFAULT_VIEWS = 8
PARITY_SAMPLES = 1000
EMBED_BATCH = 8192
NORMALISATION = fmt.NormalisationInfo(
    pose2d="x, y mapped so the box of the joints with confidence > 0 is centred at 0 with its longer half-side 1; "
           "then the confidence (0 = missing joint, coordinates 0)",
    image="BlazePose landmarks mapped to h36m17 by the shared formulas, normalised over all joints like pose2d; "
          "then the sigmoid visibility",
    pose3d="root-relative camera-frame joints divided by mm_per_unit",
    mm_per_unit=MM_PER_M,
    decoder3d_output="metres, root-relative camera frame (OpenCV axes); multiply by mm_per_unit",
    decoder2d_output="normalised 2D like the pose2d input",
)


def code_version() -> str:
    """The package version and, in a checkout, the git commit."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        text = version("unihpr")
    except PackageNotFoundError:
        text = "unknown"
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                                cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        commit = ""
    return f"{text}+{commit}" if commit else text


def random_views(poses: np.ndarray, count: int, seed: int):
    """Views of ``count`` of ``poses`` (N, 17, 3) mm, world frame, through random cameras with detector noise:
    search queries independent of the bundle's virtual views."""
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(poses), size=min(count, len(poses)), replace=False)
    world = poses[rows].astype(np.float64)
    return view_poses(world, sample_cameras(world[:, 0], rng, rig_fraction=0.0), rng, DetectorNoise.load(), NO_AUGMENT)


def held_out_views(db: MotionDatabase, count: int, seed: int):
    """Views of held-out poses through random cameras: parity inputs and realistic search queries."""
    held_out = db.split("test") if (db.clips.split == "test").any() else db
    return random_views(held_out.poses, count, seed)


def run_encoder(session, inputs: np.ndarray, desc: str | None = None) -> np.ndarray:
    """An ONNX encoder over (M, 17, 3) float32 features in batches -> (M, D) float32 embeddings (any bundle graph
    likewise: a decoder over (M, D) embeddings)."""
    chunks = range(0, len(inputs), EMBED_BATCH)
    out = [session.run([OUTPUT_NAME], {INPUT_NAME: inputs[i : i + EMBED_BATCH]})[0]
           for i in progress_bar(chunks, desc=desc, enabled=desc is not None, unit="batch")]
    return np.concatenate(out)


def embed_poses(session, poses: np.ndarray, rotations: np.ndarray, desc: str | None = None) -> np.ndarray:
    """The database vectors of ``poses`` under every virtual view: vector ``pose * V + view``.

    session: the pose3d encoder; poses: (N, 17, 3) float64 mm, root-relative, world frame; rotations: (V, 3, 3)
    world -> camera. returns: (N * V, D) float32, L2-normalised.
    """
    viewed = np.einsum("vij,nkj->nvki", rotations, poses).reshape(-1, H36M17.num_joints, 3)  # (N*V, 17, 3)
    return run_encoder(session, pose3d_features(viewed), desc=desc)


def frames_at_rate(db: MotionDatabase, fps: float) -> MotionDatabase:
    """``db`` with each clip at about ``fps``: the frames whose number is a multiple of round(clip fps / fps)
    (every frame where the clip is not faster). Frames keep their numbers and clips their fps, so a result's time
    (frame / fps) and its source frame stay right."""
    assert fps > 0, fps
    step = np.maximum(1, np.round(db.clips.fps / fps)).astype(np.int64)  # (C,)
    keep = db.frame % step[db.clip] == 0
    lengths = np.bincount(db.clip[keep], minlength=len(db.clips))
    clips = replace(db.clips, start=np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64),
                    length=lengths.astype(np.int64))
    return db.take(keep, clips=clips)


def indexed_rates(db: MotionDatabase, fps: float | None) -> list[float]:
    """The frame rates at which ``frames_at_rate(db, fps)`` indexes the clips (their own rates for None)."""
    rates = db.clips.fps.astype(np.float64)
    if fps is not None:
        rates = rates / np.maximum(1, np.round(rates / fps))
    return sorted({round(float(r), 3) for r in rates})


def index_vectors(vectors: np.ndarray, queries: np.ndarray, kind: str = "auto",
                  progress: bool = True) -> tuple[IndexPlan, faiss.Index, OperatingPoint]:
    """Plan, build and measure the index of the database vectors (N, D) float32, L2-normalised; the operating
    point is chosen on ``queries`` (Q, D) float32 (real query embeddings). ``kind``: see ``plan_index``."""
    plan = plan_index(len(vectors), vectors.shape[1], kind)
    LOG.info("index plan: %s (%s)", plan.factory, plan.reason)
    index = build_index(np.ascontiguousarray(vectors), plan, progress=progress)
    return plan, index, choose_operating_point(index, vectors, queries, progress=progress)


def calibrate_rerank(folder: Path, db: MotionDatabase, poses: np.ndarray, rotations: np.ndarray,
                     index: faiss.Index, point: OperatingPoint, vectors: np.ndarray) -> fmt.RerankInfo | None:
    """The manifest's ``rerank`` section: the weights and expected-error curves chosen on validation queries
    searched in the built ``index`` at its operating point, with the lifted candidates
    (``index_builder.bundle.reranking``), with the exported graphs in ``folder``. poses: (N, 17, 3) mm, the indexed
    poses (rows of ``db``); vectors: (N * V, D) their vectors. None when no validation query found a candidate
    (a bundle served in cosine order)."""
    sessions = {m: cpu_session(folder / fmt.ENCODERS[m], threads=2) for m in ("pose2d", "image", "pose3d")}
    decoder = cpu_session(folder / fmt.DECODER3D, threads=2)
    val = validation_views(db)
    clip = db.clip.astype(np.int64)
    sets = query_sets(val, poses[val.rows], clip[val.rows], lambda m, x: run_encoder(sessions[m], x),
                      lambda embeddings: root_centred(run_encoder(decoder, embeddings).astype(np.float64) * MM_PER_M))
    gallery = Gallery(poses, clip, rotations, index_search_of(index, len(rotations), clip, point.nprobe,
                                                              point.ef_search),
                      LiftedPath(DescriptorIndex(poses), lambda ids: vectors[ids]))
    info, _ = rerank_info(gallery, sets, QUERIES_TEXT.format(n=len(val.rows), source=val.source))
    for method, entry in (info.methods if info is not None else {}).items():
        LOG.info(validation_line(method, entry))
    return info


def write_bundle_sources(folder: Path, names: list[str], sources: ClipSources | None) -> fmt.SourcesInfo | None:
    """``motion_sources.npz`` in ``folder`` when any clip has a source; its manifest section, else None."""
    if sources is None or not sources.kept:
        return None
    sizes = write_sources(folder / SOURCES, names, sources)
    return fmt.SourcesInfo(file=SOURCES, clips=sizes.clips, formats=sizes.formats, raw_bytes=sizes.raw_bytes,
                           stored_bytes=sizes.stored_bytes)


def int8_info(agreement: tuple[float, float | None] | None) -> dict:
    """A graph's manifest fields for its int8 form: (max |diff|, min cosine or None) -> precision and agreement."""
    if agreement is None:
        return {}
    diff, cosine = agreement
    return {"precision": "int8", "int8_max_abs_diff": diff, "int8_min_cosine": cosine}


def build_bundle(model: UniHPR, config: TrainConfig, db: MotionDatabase, out: Path, blazepose: BlazePoseFiles,
                 views: int = DEFAULT_VIEWS, evaluation: dict | None = None, progress: bool = True,
                 index_kind: str = "auto", fps: float | None = None,
                 timings: dict[str, float] | None = None, milvus: MilvusTarget | None = None,
                 int8: bool = False) -> fmt.Manifest:
    """Export, embed, index and write the bundle at ``out`` atomically; returns its manifest.

    milvus: when given, the vectors go into a Milvus collection of this bundle version
    (``index_builder.bundle.milvus_collection``, same plan and operating point) instead of index.faiss; the FAISS index
    is still built in memory to choose the operating point and calibrate re-ranking.
    index_kind: see ``indexing.plan_index``. fps: index each clip at about this rate (``frames_at_rate``); None:
    every frame. timings: when given, receives the seconds of the stages "export", "embedding", "index" (plan,
    k-means, add, operating point, write) and "rerank" (the re-ranking weights and confidence calibration).
    int8: the query encoders and the decoders quantized (``index_builder.bundle.int8_graphs``) once the database is
    embedded, so the operating point and re-ranking are chosen with the graphs the service runs.
    """
    started = time.perf_counter()
    timings = {} if timings is None else timings
    rates = indexed_rates(db, fps)
    if fps is not None:
        db = frames_at_rate(db, fps)
    model = model.eval().cpu()
    import torch

    parity = held_out_views(db, PARITY_SAMPLES, seed=7)
    with torch.no_grad():
        embeddings = model.encode(torch.from_numpy(parity.pose2d), "pose2d").numpy()
    parity_inputs = {"encoder_image": parity.image, "encoder_pose2d": parity.pose2d,
                     "encoder_pose3d": parity.pose3d_features, "decoder3d": embeddings, "decoder2d": embeddings}

    with atomic_directory(out) as tmp:
        try:
            graphs = export_model(model, tmp, parity_inputs)
        except ExportParityError as err:
            raise ArtifactError(str(err)) from err
        timings["export"] = time.perf_counter() - started
        rotations = virtual_view_rotations(views)
        poses = root_centred(db.poses.astype(np.float64))  # (N, 17, 3) mm, world frame
        stage = time.perf_counter()
        vectors = embed_poses(cpu_session(tmp / fmt.ENCODERS["pose3d"], threads=2), poses, rotations,
                              desc="embedding database" if progress else None)
        timings["embedding"] = time.perf_counter() - stage
        LOG.info("embedded %d poses x %d views (%s fps) in %.1f s", len(poses), views,
                 ", ".join(f"{r:g}" for r in rates), timings["embedding"])
        quantized = quantize_graphs(tmp, parity_inputs) if int8 else {}
        for name, (diff, cosine) in quantized.items():
            LOG.info("%s: int8, max |diff| to float32 %.1e%s", name, diff,
                     "" if cosine is None else f", cosine >= {cosine:.4f}")
        stage = time.perf_counter()
        queries = run_encoder(cpu_session(tmp / fmt.ENCODERS["pose2d"], threads=2), parity.pose2d)
        plan, index, point = index_vectors(vectors, queries, index_kind, progress)
        if milvus is None:
            write_index(index, tmp / fmt.INDEX)
        timings["index"] = time.perf_counter() - stage
        LOG.info("index %s built, measured and written in %.1f s", plan.factory, timings["index"])
        stage = time.perf_counter()
        rerank = calibrate_rerank(tmp, db, poses, rotations, index, point, vectors)
        timings["rerank"] = time.perf_counter() - stage
        LOG.info("re-ranking calibrated in %.1f s", timings["rerank"])
        np.save(tmp / fmt.POSES, poses.astype(np.float32))
        np.save(tmp / fmt.VIEW_ROTATIONS, rotations)
        np.savez(tmp / fmt.METADATA, clip=db.clip, frame=db.frame, clip_name=db.clips.name,
                 clip_dataset=db.clips.dataset, clip_content=db.clips.content, clip_style=db.clips.style,
                 clip_source=np.full(len(db.clips), db.source), clip_fps=db.clips.fps)
        for name, source in zip(fmt.BLAZEPOSE, (blazepose.detector, blazepose.landmarks)):
            shutil.copyfile(source, tmp / name)
        sources = write_bundle_sources(tmp, db.clips.name.tolist(), db.sources)
        history = fmt.IndexHistory(trained_vectors=index.ntotal, recall_at_10=point.recall_at_10)
        model_version = f"unihpr-{config.name}-{datetime.now(timezone.utc):%Y%m%d%H%M%S}"
        index_info = fmt.IndexInfo(**describe(plan, point, index.ntotal), history=history)
        if milvus is not None:
            metadata = dict(np.load(tmp / fmt.METADATA, allow_pickle=False))
            backend = publish(milvus, model_version, vectors, views, metadata, index_info, queries)
            index_info = index_info.model_copy(update={"backend": backend})
        manifest = fmt.Manifest(
            schema_version=fmt.SCHEMA_VERSION,
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            code_version=code_version(),
            model_version=model_version,
            builder=fmt.BuilderInfo(python=platform.python_version(),
                                    build_seconds=round(time.perf_counter() - started, 1)),
            joints=fmt.JointsInfo(layout="h36m17", names=list(H36M17.names), parents=list(H36M17.parents),
                                  formulas_version=str(FORMULAS_VERSION)),
            embedding=fmt.EmbeddingInfo(dim=int(vectors.shape[1]), metric="inner_product", normalised=True),
            normalisation=NORMALISATION,
            graphs={g.name: fmt.GraphInfo(input=list(g.input_shape), output=list(g.output_shape),
                                          parity_max_abs_diff=g.max_abs_diff, parity_samples=PARITY_SAMPLES,
                                          **int8_info(quantized.get(g.name)))
                    for g in graphs},
            index=index_info,
            database=fmt.DatabaseInfo(
                poses=len(db), views=views, clips=len(db.clips), source=db.source,
                fps=rates, contents=sorted(set(db.clips.content.tolist())),
                styles=sorted(set(db.clips.style.tolist())),
                view_azimuths_deg=[float(a) for a in np.arange(views) * 360.0 / views]),
            licence=db.licence,
            blazepose=fmt.BlazePoseInfo(licence="Apache-2.0", source="mediapipe==0.10.21 wheel"),
            model={"config": config.to_dict()},
            evaluation=evaluation or {},
            sources=sources,
            rerank=rerank,
        )
        manifest = manifest.model_copy(update={"files": fmt.file_entries(tmp, fmt.required_files(manifest))})
        fmt.write_manifest(tmp, manifest)
    return manifest
