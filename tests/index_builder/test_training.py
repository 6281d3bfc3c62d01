"""Training: the tiny config end to end, resuming, baselines, configs and the training views."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from index_builder.errors import ArtifactError, ConfigError
from index_builder.training.batches import TrainingViews, mirror, scale_bones, validation_views
from index_builder.training.checkpoint import load_martinez, load_unihpr
from index_builder.training.config import DEFAULT, TINY, AugmentConfig, config_from_dict, resolve_config
from index_builder.training.detector_noise import DetectorNoise
from index_builder.training.loop import evaluate_progress, train_martinez, train_unihpr
from model.nn.config import MartinezConfig
from model.nn.martinez import MartinezLifter
from model.pose.skeleton import H36M17

torch.set_num_threads(2)


def test_tiny_config_trains_and_learns(tiny_run, sample_db):
    model, config, state = load_unihpr(tiny_run)
    assert config == TINY and state["phase"] == "done"
    print(f"tiny training wall time {state['wall_seconds']:.1f} s")
    assert state["wall_seconds"] < 300  # a generous ceiling: the test is not a benchmark
    history = state["history"]
    first_align = next(h for h in history if h["phase"] == "align")
    last = history[-1]
    assert last["phase"] == "decode"
    assert last["val_mpjpe_mm"] < 250  # from ~1000 mm before the decoder trains
    assert first_align["val_recall1_2d_3d"] > 5 / TINY.val_poses  # far above chance after a few dozen steps


def test_resume_from_a_mid_run_checkpoint_matches_an_uninterrupted_run(sample_db, tmp_path, monkeypatch):
    import index_builder.training.loop as training

    config = resolve_config("tiny", ["align_steps=20", "decode_steps=10", "checkpoint_every=10", "validate_every=10"])
    train_db, val_db = sample_db.split("train"), sample_db.split("val")
    full = train_unihpr(config, train_db, val_db, tmp_path / "full.pt", progress=False)

    calls = {"n": 0}
    real_save = training.save_checkpoint

    def save_then_stop(*args, **kwargs):
        real_save(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt  # the session ends right after the first checkpoint

    monkeypatch.setattr(training, "save_checkpoint", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        train_unihpr(config, train_db, val_db, tmp_path / "cut.pt", progress=False)
    monkeypatch.setattr(training, "save_checkpoint", real_save)
    resumed = train_unihpr(config, train_db, val_db, tmp_path / "cut.pt", progress=False)
    assert [h["step"] for h in resumed.history] == [h["step"] for h in full.history]
    assert resumed.history[-1]["val_mpjpe_mm"] == pytest.approx(full.history[-1]["val_mpjpe_mm"], rel=1e-4)


def test_a_checkpoint_of_another_config_is_refused(tiny_run, sample_db):
    other = resolve_config("tiny", ["seed=5"])
    with pytest.raises(ArtifactError, match="another config"):
        train_unihpr(other, sample_db.split("train"), sample_db.split("val"), tiny_run, progress=False)


def test_martinez_has_the_published_size_and_trains(sample_db, tmp_path):
    assert 4.2e6 < sum(p.numel() for p in MartinezLifter(MartinezConfig()).parameters()) < 4.4e6
    result = train_martinez(TINY, sample_db.split("train"), sample_db.split("val"), tmp_path / "m.pt",
                            budget_poses=TINY.batch_size * 150, progress=False)
    model, _, state = load_martinez(tmp_path / "m.pt")
    assert state["poses_drawn"] == TINY.martinez_batch_size * (TINY.batch_size * 150 // TINY.martinez_batch_size)
    # Predicting the pelvis for every joint scores about 400 mm on these views; 150 steps reach about 130 mm.
    assert result.history and result.history[-1]["val_mpjpe_mm"] < 250
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            assert module.weight.norm(dim=1).max() <= TINY.martinez.max_norm + 1e-5


def test_configs_round_trip_and_reject_bad_values():
    assert config_from_dict(DEFAULT.to_dict()) == DEFAULT
    written_before = {k: v for k, v in DEFAULT.to_dict().items()
                      if k not in ("decoder_mpjpe_weight", "martinez_lr", "evaluation")}
    assert config_from_dict(written_before) == DEFAULT  # checkpoints older than a key read it as its default
    assert resolve_config("default", ["evaluation.max_queries=50"]).evaluation.max_queries == 50
    assert resolve_config("default", ["model.encoder.width=256"]).model.encoder.width == 256
    assert resolve_config("default", ["augment.width_scale=0.85,1.35"]).augment.width_scale == (0.85, 1.35)
    for bad in (["loss=triplet"], ["nope=1"], ["batch_size=abc"], ["model.encoder.nope=1"], ["decode_mode=x"],
                ["augment.width_scale=1.2"], ["augment.width_scale=1.3,0.9"], ["augment.tilt_fraction=2"]):
        with pytest.raises(ConfigError):
            resolve_config("default", bad)


def test_views_are_consistent_across_modalities(sample_db):
    views = TrainingViews(sample_db.poses[:500].astype(np.float64), 0, AugmentConfig(), DetectorNoise.load()).batch(64)
    assert views.pose3d.shape == (64, 17, 3) and np.allclose(views.pose3d[:, 0], 0)
    np.testing.assert_allclose(views.pose3d_features * 1000.0, views.pose3d, atol=1e-2)
    assert views.pose2d.shape == views.image.shape == (64, 17, 3)
    assert np.abs(views.clean2d).max() <= 1.0 + 1e-6
    assert ((views.image[..., 2] >= 0) & (views.image[..., 2] <= 1)).all()


def test_bone_scaling_keeps_mirrored_bones_equal_and_mirror_swaps_sides(sample_db):
    poses = sample_db.poses[:50].astype(np.float64)
    scaled = scale_bones(poses, np.random.default_rng(0), 0.1, 0.0)
    length = lambda p, a, b: np.linalg.norm(p[:, H36M17.index(a)] - p[:, H36M17.index(b)], axis=-1)  # noqa: E731
    ratio_l = length(scaled, "l_knee", "l_ankle") / length(poses, "l_knee", "l_ankle")
    ratio_r = length(scaled, "r_knee", "r_ankle") / length(poses, "r_knee", "r_ankle")
    np.testing.assert_allclose(ratio_l, ratio_r)
    assert not np.allclose(ratio_l, 1.0)
    flipped = mirror(poses)
    np.testing.assert_allclose(flipped[:, H36M17.index("l_wrist"), 0], -poses[:, H36M17.index("r_wrist"), 0])


def test_field_convention_inputs_are_converted_and_targets_stay_ours(sample_db):
    """With the field's joints, the share of inputs made from them reaches the encoders as the service would
    convert them; every target and detector feature stays unihpr17."""
    from model.pose.joint_conventions import DERIVED_INDEX

    poses, field = sample_db.poses[:400].astype(np.float64), sample_db.field_joints[:400].astype(np.float64)
    config = replace(AugmentConfig(), field_convention_fraction=1.0, neck_shift_mm=(0.0, 0.0), bone_scale=0.0,
                     global_scale=0.0, noise_2d_prob=0.0, missing_2d_prob=0.0)
    mixed = TrainingViews(poses, 3, config, DetectorNoise.load(), field).batch(64)
    plain = TrainingViews(poses, 3, replace(config, field_convention_fraction=0.0), DetectorNoise.load(),
                          field).batch(64)
    np.testing.assert_allclose(mixed.pose3d, plain.pose3d, atol=1e-3)  # same poses and cameras, same targets
    np.testing.assert_allclose(mixed.clean2d, plain.clean2d, atol=1e-5)
    np.testing.assert_allclose(mixed.image, plain.image, atol=1e-5)
    # the 3D input is the field pose converted: our thorax exactly, our nose on the field's head axis
    inputs = mixed.pose3d_features.astype(np.float64)
    shoulders = (inputs[:, H36M17.index("l_shoulder")] + inputs[:, H36M17.index("r_shoulder")]) / 2
    np.testing.assert_allclose(inputs[:, H36M17.index("thorax")], shoulders, atol=1e-6)
    assert np.abs(inputs - plain.pose3d_features).max() > 0.03  # 30 mm: the nose moved
    limbs = [j for j in range(17) if j not in DERIVED_INDEX]
    np.testing.assert_allclose(inputs[:, limbs], plain.pose3d_features[:, limbs], atol=1e-5)
    assert not np.allclose(mixed.pose2d, plain.pose2d, atol=1e-3)  # the 2D inputs too


def test_scaling_and_mirroring_carry_the_field_joints_along(sample_db):
    from model.pose.joint_conventions import SPINE_FRACTION

    poses = np.concatenate([sample_db.poses[:50], sample_db.field_joints[:50]], axis=1).astype(np.float64)
    scaled = scale_bones(poses, np.random.default_rng(0), 0.1, 0.1)
    thorax, field_spine, field_thorax = H36M17.index("thorax"), 17, 18
    before = np.linalg.norm(poses[:, 19:] - poses[:, thorax, None], axis=-1)
    after = np.linalg.norm(scaled[:, 19:] - scaled[:, thorax, None], axis=-1)
    ratio = after / before
    np.testing.assert_allclose(ratio, ratio[:, :1].repeat(2, axis=1), rtol=1e-9)  # rigid with the thorax
    np.testing.assert_allclose(scaled[:, field_spine],
                               scaled[:, 0] + SPINE_FRACTION * (scaled[:, field_thorax] - scaled[:, 0]))
    flipped = mirror(poses)
    np.testing.assert_allclose(flipped[:, 17:, 0], -poses[:, 17:, 0])


def test_progress_metrics_on_validation_views(tiny_run, sample_db):
    model, _, _ = load_unihpr(tiny_run)
    views = validation_views(sample_db.split("val"), 100)
    metrics = evaluate_progress(model, views, torch.device("cpu"))
    assert 0 <= metrics["val_recall1_2d_3d"] <= 1 and 0 < metrics["val_mpjpe_mm"] < 1000
