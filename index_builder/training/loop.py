"""Training: UniHPR's two steps (align, then decode) and the Martinez baseline, resumable from checkpoints.

Step 1 aligns the three encoders with the configured contrastive loss. Step 2 fits the 3D and 2D decoders on the
embeddings of all three modalities, with the encoders frozen or fine-tuned (alignment loss kept, down-weighted).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from index_builder.datasets.motion_database import MotionDatabase
from index_builder.errors import ArtifactError
from index_builder.progress import progress_bar
from index_builder.training.batches import TrainingViews, Views, validation_views
from index_builder.training.checkpoint import load_checkpoint, save_checkpoint
from index_builder.training.config import TrainConfig
from index_builder.training.detector_noise import DetectorNoise
from model.nn.losses import DecoderLoss, PairwiseInfoNCE, SingularValueLoss
from model.nn.martinez import MartinezLifter
from model.nn.networks import UniHPR
from model.pose.features import MODALITIES
from model.pose.metrics import mpjpe
from model.pose.perspective_crop import to_real_camera

PHASES = ("align", "decode", "done")


def select_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def tensors(views: Views, device: torch.device) -> dict[str, torch.Tensor]:
    """The batch as tensors: features per modality, 3D target (mm) and clean 2D target."""
    return {
        "image": torch.from_numpy(views.image).to(device),
        "pose2d": torch.from_numpy(views.pose2d).to(device),
        "pose3d": torch.from_numpy(views.pose3d_features).to(device),
        "target3d": torch.from_numpy(views.pose3d).to(device),
        "target2d": torch.from_numpy(np.ascontiguousarray(views.clean2d, dtype=np.float32)).to(device),
    }


def training_views(train_db: MotionDatabase, config: TrainConfig, noise: DetectorNoise) -> TrainingViews:
    """The endless training batches of ``train_db`` at the config's frame step, with the field's joints where the
    database has them."""
    poses = train_db.every_nth_frame(config.frame_step)
    return TrainingViews(poses.poses, config.seed, config.augment, noise, poses.field_joints)


def alignment_loss(config: TrainConfig) -> PairwiseInfoNCE:
    if config.loss == "pairwise":
        return PairwiseInfoNCE()
    return SingularValueLoss(singular_value_weight=config.singular_value_weight,
                             pairwise_weight=config.pairwise_weight)


def lr_factor(step: int, total: int, warmup: int, floor: float) -> float:
    """Linear warm-up, then cosine decay to ``floor`` (a share of the peak)."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


@torch.no_grad()
def evaluate_progress(model: UniHPR, views: Views, device: torch.device) -> dict[str, float]:
    """Lifting MPJPE (mm) from clean 2D and pose2d -> pose3d recall@1 on the validation views."""
    was_training = model.training
    model.eval()
    batch = tensors(views, device)
    emb2d = model.encode(batch["pose2d"], "pose2d")
    emb3d = model.encode(batch["pose3d"], "pose3d")
    lifted = model.decoder3d(emb2d).cpu().numpy()
    recall = (torch.argmax(emb2d @ emb3d.T, dim=1) == torch.arange(len(emb2d), device=device)).float().mean()
    model.train(was_training)
    return {"val_mpjpe_mm": float(mpjpe(lifted, views.pose3d).mean()), "val_recall1_2d_3d": float(recall)}


@dataclass
class TrainResult:
    checkpoint: Path
    wall_seconds: float
    history: list[dict]


def train_unihpr(config: TrainConfig, train_db: MotionDatabase, val_db: MotionDatabase, out: Path,
                 noise: DetectorNoise | None = None, device: torch.device | None = None,
                 progress: bool = True) -> TrainResult:
    """Train (or resume) UniHPR into checkpoint ``out``; returns when both steps are done."""
    device = device or select_device()
    noise = noise or DetectorNoise.load()
    torch.manual_seed(config.seed)
    model = UniHPR(config.model).to(device)
    sampler = training_views(train_db, config, noise)
    val_views = validation_views(val_db, config.val_poses)
    align_loss = alignment_loss(config)
    decoder_loss = DecoderLoss(mpjpe_weight=config.decoder_mpjpe_weight,
                               keypoint_2d_weight=config.decoder_keypoint_2d_weight)

    state = {"phase": "align", "step": 0, "wall_seconds": 0.0, "history": []}
    resume = None
    if out.exists():
        saved_config, resume = load_checkpoint(out)
        if saved_config != config:
            raise ArtifactError(f"{out}: checkpoint was trained with another config; remove it or use the same one")
        state = {k: resume[k] for k in state}
        model.load_state_dict(resume["model"])
        if resume.get("sampler_rng"):
            sampler.restore(resume["sampler_rng"])
        torch.set_rng_state(resume["torch_rng"])

    def optimiser_for(phase: str) -> torch.optim.Optimizer:
        params = model.parameters()
        if phase == "decode" and config.decode_mode == "frozen":
            params = list(model.decoder3d.parameters()) + list(model.decoder2d.parameters())
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)

    while state["phase"] != "done":
        phase = state["phase"]
        total = config.align_steps if phase == "align" else config.decode_steps
        optimiser = optimiser_for(phase)
        if resume is not None and resume.get("optimiser") and resume["phase"] == phase:
            optimiser.load_state_dict(resume["optimiser"])
        resume = None
        freeze = phase == "decode" and config.decode_mode == "frozen"
        model.encoder.requires_grad_(not freeze)
        bar = progress_bar(total=total, initial=state["step"], desc=f"{config.name}: {phase}", enabled=progress,
                           unit="step")
        started = time.perf_counter() - state["wall_seconds"]
        while state["step"] < total:
            step = state["step"]
            for group in optimiser.param_groups:
                group["lr"] = config.lr * lr_factor(step, total, config.warmup_steps, config.min_lr_fraction)
            model.train()
            if freeze:
                model.encoder.eval()
            batch = tensors(sampler.batch(config.batch_size), device)
            emb = {m: model.encode(batch[m], m) for m in MODALITIES}
            terms = {}
            if phase == "align" or config.decode_mode == "finetune":
                weight = 1.0 if phase == "align" else config.decode_align_weight
                terms = {k: weight * v for k, v in align_loss(*(emb[m] for m in MODALITIES),
                                                               model.logit_scale.exp()).items()}
            if phase == "decode":
                # One decoder serves every modality: the embeddings are meant to be interchangeable.
                for m in MODALITIES:
                    dec = decoder_loss(model.decoder3d(emb[m]), batch["target3d"], model.decoder2d(emb[m]),
                                       batch["target2d"])
                    for k, v in dec.items():
                        terms[f"{k}_{m}"] = v / len(MODALITIES)
            loss = sum(terms.values())
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            with torch.no_grad():
                model.logit_scale.clamp_(0, math.log(config.max_logit_scale))
            state["step"] += 1
            state["wall_seconds"] = time.perf_counter() - started
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.3f}")
            last = state["step"] == total
            if state["step"] % config.validate_every == 0 or last:
                record = {"phase": phase, "step": state["step"], "loss": float(loss.item()),
                          "wall_seconds": round(state["wall_seconds"], 1),
                          **evaluate_progress(model, val_views, device)}
                state["history"].append(record)
                bar.write(f"{config.name} {phase} {state['step']}: loss {record['loss']:.3f}, "
                          f"val MPJPE {record['val_mpjpe_mm']:.1f} mm, recall@1 {record['val_recall1_2d_3d']:.3f}")
            if last:
                state["phase"] = PHASES[PHASES.index(phase) + 1]
                state["step"] = 0
            if last or state["step"] % config.checkpoint_every == 0:
                save_checkpoint(out, config, {**state, "model": model.state_dict(),
                                              "optimiser": optimiser.state_dict(),
                                              "sampler_rng": sampler.state(), "torch_rng": torch.get_rng_state()})
            if last:
                break
        bar.close()
    return TrainResult(checkpoint=out, wall_seconds=state["wall_seconds"], history=state["history"])


MARTINEZ_INPUTS = ("crop", "rays")


def martinez_pairs(views: Views, inputs: str) -> tuple[np.ndarray, np.ndarray]:
    """What a Martinez lifter reads and must answer: (N, 17, 2) float32 input, (N, 17, 3) float32 mm target.

    inputs: "crop" reads x, y of UniHPR's pose2d features (box-normalised, after the perspective crop) and answers
        in the crop's virtual camera; "rays" reads the absolute undistorted image coordinates (the pixels with the
        intrinsics applied, as Martinez et al. read pixels from calibrated cameras) and answers in the real camera.
    """
    if inputs == "crop":
        return views.pose2d[..., :2], views.pose3d
    if inputs == "rays":
        return views.rays, to_real_camera(views.pose3d, views.crop).astype(np.float32)
    raise ValueError(f"unknown Martinez inputs {inputs!r}; known: {', '.join(MARTINEZ_INPUTS)}")


def train_martinez(config: TrainConfig, train_db: MotionDatabase, val_db: MotionDatabase, out: Path,
                   budget_poses: int | None, device: torch.device | None = None, progress: bool = True,
                   noise: DetectorNoise | None = None, inputs: str = "crop") -> TrainResult:
    """The Martinez lifter on the same views as UniHPR's pose2d encoder.

    budget_poses: train on exactly this many poses (the same-budget baseline); None trains to convergence with
    early stopping on the validation views (at most ``martinez_max_steps``), keeping the best weights.
    inputs: see ``martinez_pairs``; recorded in the checkpoint.
    """
    device = device or select_device()
    torch.manual_seed(config.seed)
    model = MartinezLifter(config.martinez).to(device)
    sampler = training_views(train_db, config, noise or DetectorNoise.load())
    val_views = validation_views(val_db, config.val_poses)
    val_x, val_target = martinez_pairs(val_views, inputs)
    val_input = torch.from_numpy(val_x).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.martinez_lr)
    total = budget_poses // config.martinez_batch_size if budget_poses else config.martinez_max_steps
    decay = torch.optim.lr_scheduler.ExponentialLR(optimiser,
                                                   gamma=config.martinez_lr_decay ** (1 / config.martinez_decay_steps))
    best, best_state, waited, history = math.inf, None, 0, []
    started = time.perf_counter()
    bar = progress_bar(total=total, desc=f"martinez ({'same budget' if budget_poses else 'early stopping'})",
                       enabled=progress, unit="step")
    for step in range(1, total + 1):
        model.train()
        x, target = martinez_pairs(sampler.batch(config.martinez_batch_size), inputs)
        pred = model(torch.from_numpy(x).to(device))
        loss = (pred - torch.from_numpy(target).to(device)).norm(dim=-1).mean()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        decay.step()
        model.apply_max_norm()
        bar.update()
        if step % config.validate_every == 0 or step == total:
            model.eval()
            with torch.no_grad():
                val = float(mpjpe(model(val_input).cpu().numpy(), val_target).mean())
            history.append({"step": step, "val_mpjpe_mm": val, "wall_seconds": round(time.perf_counter() - started, 1)})
            bar.set_postfix(val_mpjpe=f"{val:.1f}")
            if val < best:
                best, waited = val, 0
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                waited += 1
                if budget_poses is None and waited >= config.martinez_patience:
                    break
    bar.close()
    if budget_poses is None and best_state is not None:
        model.load_state_dict(best_state)
    wall = time.perf_counter() - started
    save_checkpoint(out, config, {"model": model.state_dict(), "steps": step, "poses_drawn":
                                  step * config.martinez_batch_size, "wall_seconds": wall, "history": history,
                                  "early_stopping": budget_poses is None, "inputs": inputs},
                    network="martinez")
    return TrainResult(checkpoint=out, wall_seconds=wall, history=history)
