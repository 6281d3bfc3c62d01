"""``evaluate_run``: every section of SPEC 6 but index fidelity for one run directory, in one JSON-ready dict that
``index_builder.evaluation.report.document`` writes."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import numpy as np

from index_builder.bundle.blazepose_assets import BlazePoseFiles
from index_builder.config import get_paths, portable_path
from index_builder.datasets.extra_mocap import training_databases
from index_builder.datasets.labelled_photos import photos_present
from index_builder.datasets.motion_database import MotionDatabase
from index_builder.errors import ArtifactError
from index_builder.evaluation.adapters import decode3d, encode, martinez_lifter, rig_embeddings, unihpr_lifter
from index_builder.evaluation.checkpoints import checkpoint_entry, unihpr_checkpoint
from index_builder.evaluation.conventions import PROTOCOL as CONVENTIONS_PROTOCOL
from index_builder.evaluation.conventions import joint_conventions
from index_builder.evaluation.generalisation import PROTOCOL as GENERALISATION_PROTOCOL
from index_builder.evaluation.generalisation import (
    evaluate_protocols,
    generalisation_study,
    nearest_2d_lifter,
    protocol_sets,
)
from index_builder.evaluation.held_out import alignment_views, build_held_out, subsample_rows
from index_builder.evaluation.images import image_sections
from index_builder.evaluation.lifting import lifting_errors, lifting_sets, summarise_lifting
from index_builder.evaluation.motion.protocol import PROTOCOL as MOTION_PROTOCOL
from index_builder.evaluation.motion.protocol import motion_search_protocol
from index_builder.evaluation.photo_consistency import ANGLE_RANGE_DEG, photo_consistency
from index_builder.evaluation.real_cameras import (
    BIN_NAMES,
    OFFSET_RADIUS_MM,
    TRAJECTORY_CLIP_MM,
    TRAJECTORY_WINDOW_S,
    crop_rig_lifter,
    fixed_real_rig,
    rays_rig_lifter,
)
from index_builder.evaluation.retrieval.cross_modal import alignment_recall
from index_builder.evaluation.retrieval.paper import retrieval_paper
from index_builder.evaluation.retrieval.prvipe import retrieval_prvipe
from index_builder.evaluation.retrieval.real_cameras import CANDIDATES, GALLERY_FPS, retrieval_real
from index_builder.evaluation.seed_study import seed_study
from index_builder.progress import progress_bar
from index_builder.training.checkpoint import load_martinez, load_unihpr
from index_builder.training.config import EvalSettings
from index_builder.training.detector_noise import DetectorNoise
from model.pose.units import MM_PER_M
from model.retrieval.lifted_candidates import LIFTED_CANDIDATES

LOG = logging.getLogger(__name__)


@contextmanager
def timed(stage: str, timings: dict[str, float]) -> Iterator[None]:
    """Say when a stage starts and ends, and record its wall time (s) in ``timings[stage]``."""
    LOG.info("%s ...", stage)
    tick = time.perf_counter()
    yield
    timings[stage] = time.perf_counter() - tick
    LOG.info("%s: %.1f s", stage, timings[stage])


def evaluate_run(run: Path, db: MotionDatabase, data_file: Path, settings: EvalSettings | None = None,
                 progress: bool = True, pose_images: Path | None = None,
                 blazepose_files: BlazePoseFiles | None = None) -> dict:
    """Every section of SPEC 6 but index fidelity, for the checkpoints of one run directory, on ``db``'s test split:
    lifting, the fixed real rig (``real_cameras``), the joint conventions (``conventions``), retrieval (the paper
    and Pr-VIPE protocols, and from real cameras over the whole library with re-ranking: ``retrieval_real``),
    alignment, the seed study; plus image ->
    lift3d and photo consistency on the labelled photos (``images``, ``photo_consistency``) when ``pose_images``
    and ``blazepose_files`` are given and present. ``settings``: by default those of the run's config
    (``TrainConfig.evaluation``).

    Raises ArtifactError when ``run/unihpr.pt`` is missing or the database has no test clips; a missing Martinez
    checkpoint (``martinez_budget``, ``martinez_converged``: lifting and the rig; ``martinez_absolute``: the rig),
    study folder, photo folder or BlazePose model leaves a note instead, and the protocol runs without it.
    """
    started = time.perf_counter()
    unihpr_path = unihpr_checkpoint(run)
    test = db.split("test")
    if len(test) == 0:
        raise ArtifactError(f"{data_file}: no test clips to evaluate on")
    model, config, state = load_unihpr(unihpr_path)
    settings = settings or config.evaluation
    checkpoints = {"unihpr": checkpoint_entry(unihpr_path, state)}
    lifters = {"unihpr": unihpr_lifter(model)}
    notes = [] if state.get("phase") == "done" else [f"{unihpr_path}: training not finished "
                                                    f"(phase {state.get('phase')}, step {state.get('step')})"]
    absolute = None  # Martinez on absolute image coordinates: the fixed real rig only
    for name, inputs in (("martinez_budget", "crop"), ("martinez_converged", "crop"), ("martinez_absolute", "rays")):
        path = run / f"{name}.pt"
        where = "the fixed real rig" if inputs == "rays" else "lifting and the fixed real rig"
        if not path.is_file():
            notes.append(f"{path}: missing, left out of {where} (run `unihpr-build baselines --run {run}`)")
            continue
        martinez, _, m_state = load_martinez(path)
        if m_state.get("inputs", "crop") != inputs:
            notes.append(f"{path}: reads {m_state.get('inputs', 'crop')!r}, not {inputs!r}; left out of {where}")
            continue
        checkpoints[name] = checkpoint_entry(path, m_state)
        if inputs == "rays":
            absolute = martinez
        else:
            lifters[name] = martinez_lifter(martinez)

    rows, steps = subsample_rows(test, settings.eval_fps)
    noise = DetectorNoise.load()
    held = build_held_out(test, rows, settings, noise)
    align = alignment_views(test, settings, noise)
    n, cams = len(rows), len(held.rig)
    LOG.info("held out: %d test clips, %d frames; evaluating %d frames (frame step by clip fps: %s)",
             len(test.clips), len(test), n, steps)
    timings: dict[str, float] = {}

    with timed("lifting", timings):
        sets = lifting_sets(held)
        errors = {name: lifting_errors(lift, sets)
                  for name, lift in progress_bar(lifters.items(), desc="lifting", enabled=progress)}
        lifting = summarise_lifting(errors, sets, held, test, settings)

    with timed("joint_conventions", timings):
        conventions = joint_conventions(lambda features, modality: encode(model, features, modality),
                                        lambda embeddings: decode3d(model, embeddings), test, rows, settings)
        if conventions["status"] != "computed":
            notes.append(conventions["note"])

    with timed("real_rig", timings):
        rig_lifters = {"unihpr": crop_rig_lifter(lifters["unihpr"])}
        rig_inputs = {"unihpr": "pose2d features of the perspective crop -> pose2d encoder -> 3D decoder"}
        record = lifting["baseline_of_record"]
        if record:
            rig_lifters[record] = crop_rig_lifter(lifters[record])
            rig_inputs[record] = "crop: x, y of the same pose2d features (the baseline of record)"
        if absolute is not None:
            rig_lifters["martinez_absolute"] = rays_rig_lifter(absolute)
            rig_inputs["martinez_absolute"] = "rays: undistorted normalised image coordinates"
        real_rig = fixed_real_rig(rig_lifters, rig_inputs, test, rows, settings.real_rig_subject, settings.seed)

    with timed("generalisation", timings):
        if settings.generalisation_poses > 0:
            paths = get_paths()
            unseen = protocol_sets(test, paths, settings, noise)
            trained_on = training_databases(config, db, paths)[0].every_nth_frame(config.frame_step)
            general_lifters = {"unihpr": lifters["unihpr"], "nn_2d": nearest_2d_lifter(trained_on.poses, noise,
                                                                                       settings.seed)}
            if record:
                general_lifters[record] = lifters[record]
            general = evaluate_protocols(general_lifters, record, unseen)
            general["study"] = generalisation_study(run / "generalisation", db, unseen, settings, noise)
            if general["study"]["status"] != "computed":
                notes.append(general["study"]["note"])
        else:
            general = {"status": "skipped", "note": "generalisation not evaluated (generalisation_poses = 0)"}
            notes.append(general["note"])

    with timed("retrieval_paper", timings):
        rng = np.random.default_rng([settings.seed, 3])
        q = n if settings.max_queries is None else min(settings.max_queries, n)
        query_rows = np.sort(rng.choice(n, size=q, replace=False))
        query_cams = rng.integers(0, cams, q)
        emb = rig_embeddings(model, held)
        paper, _ = retrieval_paper(emb, held, query_rows, query_cams, settings, progress)
    with timed("retrieval_prvipe", timings):
        prvipe = retrieval_prvipe(emb["pose2d"], held, query_rows, settings, progress)

    with timed("retrieval_real", timings):
        real_retrieval = retrieval_real(model, db, settings, progress)

    with timed("alignment", timings):
        recall = alignment_recall(model, align, settings.chunk)
        alignment = {"gallery": int(len(align.pose3d)), "min_gap_s": settings.align_gap_s,
                     "cameras": "one seeded random camera per pose", "pose2d": "clean projected 2D",
                     "image": "simulated detector features", "recall_at_1": recall,
                     "mean_recall_at_1": float(np.mean(list(recall.values())))}

    with timed("seed_study", timings):
        study = seed_study(run / "study", sets, align, settings, progress, lambda m: retrieval_prvipe(
            np.stack([encode(m, v.pose2d, "pose2d") for v in held.rig]), held, query_rows,
            settings)["hit_at_k"]["unihpr"]["1"])

    with timed("image_lifting", timings):
        images = image_sections(model, pose_images, blazepose_files)
        if images["image_lifting"]["status"] != "computed":
            notes.append(images["image_lifting"]["note"])

    with timed("photo_consistency", timings):
        if pose_images is not None and photos_present(pose_images) and blazepose_files is not None:
            consistency = photo_consistency(model, pose_images, blazepose_files, settings.seed)
        else:
            consistency = {"status": "skipped", "note": "photo consistency not computed: the labelled photos or "
                                                        "the BlazePose models unavailable"}
            notes.append(consistency["note"])

    with timed("motion_search", timings):
        if settings.motion_queries > 0:
            motion = motion_search_protocol(model, db, settings.motion_queries, settings.seed, get_paths().cache_dir,
                                            progress)
        else:
            motion = {"status": "skipped", "note": "motion search not evaluated (motion_queries = 0)"}
        if motion["status"] != "computed":
            notes.append(motion["note"])

    return {
        "format_version": 1,
        "run": {"path": portable_path(run), "config": config.to_dict(), "checkpoints": checkpoints},
        "data": {"file": portable_path(data_file), "source": db.source, "licence": db.licence, "split": "test",
                 "test_clips": int(len(test.clips)), "test_frames": int(len(test)), "eval_fps": settings.eval_fps,
                 "frame_step_by_clip_fps": steps, "eval_frames": int(n)},
        "settings": asdict(settings),
        "protocols": {
            "lifting": f"every evaluated frame through all {cams} H36M-like rig cameras and through one seeded random "
                       "camera, each view taken through the perspective crop with that camera's intrinsics (a virtual "
                       "camera aimed at the person; 3D targets in that virtual camera); GT 2D = clean projection "
                       f"(pose2d), noisy 2D = clean + N(0, {settings.noisy_2d_sigma}) normalised units (pose2d), "
                       "detector = simulated detector features (image); Martinez reads x, y of the same features",
            "real_rig": f"the {settings.real_rig_subject} calibrations of the 4 published H36M cameras (lens "
                        "distortion included) fixed in the world; each test clip's pelvis at the floor centre (the "
                        f"H36M world origin) + a per-clip offset uniform in a {OFFSET_RADIUS_MM / MM_PER_M:g} m disc "
                        "(seeded by the clip name) + its own horizontal trajectory relative to its "
                        f"{TRAJECTORY_WINDOW_S:g} s moving average, clipped to "
                        f"{TRAJECTORY_CLIP_MM / MM_PER_M:g} m; the "
                        f"{n} evaluated frames through every camera, views with all 17 joints inside the image kept; "
                        "2D = clean projection with the lens distortion; MPJPE / PA-MPJPE root-relative in the real "
                        f"camera frame, per off-axis bin of the pelvis ray ({', '.join(BIN_NAMES)} degrees); run "
                        "twice: intrinsics and distortion given, and neither (default field of view)",
            "photo_consistency": "each labelled person BlazePose finds, its photo warped by H = K R K^-1 (a camera "
                                 f"rotation R of {ANGLE_RANGE_DEG[0]:g}-{ANGLE_RANGE_DEG[1]:g} degrees, seeded, moving "
                                 "the person toward an image edge, shrunk while the person would leave the image); "
                                 "BlazePose on both photos; angle of the rotation best aligning R x the lifted "
                                 "camera-frame pose of the original onto that of the warped photo (Kabsch, "
                                 "root-relative): a consistency check, not an accuracy",
            "retrieval_paper": f"{q} queries (one seeded random rig camera each), gallery = pose3d embeddings of all "
                               f"{cams} rig views of the {n} evaluated frames ({cams * n})",
            "retrieval_prvipe": f"each rig camera in turn: {q} query 2D poses; gallery = pose2d embeddings of the "
                                f"other {cams - 1} cameras' views ({(cams - 1) * n}); hit: NP-MPJPE <= "
                                f"{settings.hit_threshold}",
            "retrieval_real": f"gallery = the whole database ({real_retrieval['gallery']['poses']} poses of "
                              f"{real_retrieval['gallery']['clips']} clips at about {GALLERY_FPS:g} fps) under the "
                              f"{real_retrieval['gallery']['views']} virtual views, exact search; queries = clean 2D "
                              "of test poses the gallery holds, through the fixed real rig (the "
                              f"{settings.real_rig_subject} H36M calibrations, off-centre, lens distortion, true "
                              "intrinsics) and through random cameras (none of the indexed views), "
                              f"{settings.real_retrieval_queries} each, with the query's clip excluded from the "
                              f"gallery and included; re-ranking of the {CANDIDATES} best by cosine and the "
                              f"{LIFTED_CANDIDATES} nearest the decoder's lift of the query by joint distances "
                              "(model.retrieval.lifted_candidates, as the service does) with the weight "
                              f"and the expected-error curve chosen on {settings.real_retrieval_queries} random-camera "
                              "queries of the validation split; PA-MPJPE against the query's true 3D; oracle floor = "
                              "the gallery pose of least PA-MPJPE",
            "alignment": f"{len(align.pose3d)} poses >= {settings.align_gap_s:g} s apart within their clip, "
                         "one seeded random camera each; query modality -> gallery modality recall@1",
            "motion_search": MOTION_PROTOCOL,
            "joint_conventions": CONVENTIONS_PROTOCOL,
            "generalisation": GENERALISATION_PROTOCOL,
        },
        "lifting": lifting,
        "real_rig": real_rig,
        "generalisation": general,
        "joint_conventions": conventions,
        "retrieval_paper": paper,
        "retrieval_prvipe": prvipe,
        "retrieval_real": real_retrieval,
        "alignment": alignment,
        "seed_study": study,
        **images,  # image_lifting, detector_errors
        "photo_consistency": consistency,
        "motion_search": motion,
        "index_fidelity": {"status": "not computed by evaluate",
                           "note": "recall@10 of the ANN index against exact search on the full database with its "
                                   "virtual views is measured where the index is built (the bundle, SPEC 6-7)"},
        "notes": notes,
        "wall_seconds": {**{k: round(v, 1) for k, v in timings.items()},
                         "total": round(time.perf_counter() - started, 1)},
    }
