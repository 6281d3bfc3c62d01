"""The generalisation protocols (issue 15): re-targeting to other bodies, the extra mocap through the ingestion
path, the training-data selection, the 2D nearest-neighbour lifter and the protocol tables, on real data."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from typer.testing import CliRunner

from index_builder.cli import app
from index_builder.config import BuildPaths
from index_builder.datasets.extra_mocap import extra_database, training_databases
from index_builder.datasets.motion_database import combine_databases
from index_builder.evaluation.generalisation import (
    bone_lengths,
    evaluate_protocols,
    generalisation_study,
    nearest_2d_lifter,
    other_bodies,
    protocol_sets,
    retarget,
)
from index_builder.evaluation.report.generalisation import generalisation_markdown, mean_pa
from index_builder.training.batches import TrainingViews
from index_builder.training.config import (
    TINY,
    AugmentConfig,
    EvalSettings,
    generalisation_arms,
    resolve_config,
    unseen_motion_contents,
)
from index_builder.training.detector_noise import DetectorNoise
from model.pose.joint_conventions import DERIVED_INDEX, FIELD, OURS, convert_joints
from model.pose.skeleton import H36M17


@pytest.fixture(scope="module")
def paths(build_paths, tmp_path_factory) -> BuildPaths:
    """The shared data, with a cache of this module's own (the extra mocap is ingested into it)."""
    if not (build_paths.shared_data / "extra-mocap" / "deepmimic.tar.xz").is_file():
        pytest.skip("extra-mocap not found (set UNIHPR_SHARED_DATA)")
    return BuildPaths(shared_data=build_paths.shared_data, cache_dir=tmp_path_factory.mktemp("cache"))


def test_retarget_gives_the_target_bones_and_keeps_the_angles(sample_db):
    poses = sample_db.poses[::50].astype(np.float64)
    target = bone_lengths(poses) * np.linspace(0.7, 1.6, H36M17.num_joints)
    target[list(H36M17.left)] = target[list(H36M17.right)]
    out = retarget(poses, target)
    np.testing.assert_array_equal(out[:, 0], poses[:, 0])
    for parent, child in H36M17.bones:
        new, old = out[:, child] - out[:, parent], poses[:, child] - poses[:, parent]
        np.testing.assert_allclose(np.linalg.norm(new, axis=-1), target[child], rtol=1e-9)
        cosine = (new * old).sum(-1) / np.linalg.norm(new, axis=-1) / np.linalg.norm(old, axis=-1)
        np.testing.assert_allclose(cosine, 1.0, atol=1e-9)


def test_other_bodies_are_real_rigs_of_other_proportions(paths, sample_db):
    bodies = {b.name: b for b in other_bodies(paths)}
    assert set(bodies) == {"mixamo_freebvh", "mocapbank", "cmu"}
    ours = bone_lengths(sample_db.poses)
    hip = H36M17.index("r_hip")
    for body in bodies.values():
        assert body.lengths.shape == (17,) and body.lengths[0] == 0 and (body.lengths[1:] > 30).all()
        assert body.lengths[hip] > 1.2 * ours[hip]  # every one of them has wider hips than the Bandai actors
    assert len({tuple(np.round(b.lengths)) for b in bodies.values()}) == 3


def test_extra_mocap_is_ingested_once_and_drops_the_mirrored_copies(paths):
    db = extra_database(paths, "deepmimic", progress=False)
    assert len(db.clips) == 26 and not any("mirror" in n for n in db.clips.name)
    assert (paths.cache_dir / "extra_deepmimic.npz").is_file() and "MIT" in db.licence
    again = extra_database(paths, "deepmimic", progress=False)
    np.testing.assert_array_equal(again.poses, db.poses)
    with pytest.raises(Exception, match="unknown extra-mocap source"):
        extra_database(paths, "nonsense")


def test_combined_databases_keep_clips_apart_and_convert_missing_field_joints(sample_db, paths):
    extra = extra_database(paths, "deepmimic", progress=False)
    both = combine_databases([sample_db, extra])
    assert len(both) == len(sample_db) + len(extra) and len(both.clips) == len(sample_db.clips) + len(extra.clips)
    last = both.select_clips(np.arange(len(both.clips)) == len(both.clips) - 1)
    np.testing.assert_array_equal(last.poses, extra.poses[extra.clip == len(extra.clips) - 1])
    np.testing.assert_array_equal(both.field_joints[: len(sample_db)], sample_db.field_joints)
    converted = convert_joints(extra.poses, OURS, FIELD)[:, list(DERIVED_INDEX)]
    np.testing.assert_allclose(both.field_joints[len(sample_db):], converted, atol=1e-3)


def test_training_data_selection(sample_db, paths):
    contents = unseen_motion_contents(sample_db.clips.dataset, sample_db.clips.content)
    assert contents and all(c not in sample_db.clips.content[sample_db.clips.dataset != "dataset-1"] for c in contents)
    train, val = training_databases(resolve_config("tiny", [f"exclude_contents={','.join(contents)}"]), sample_db,
                                    paths)
    assert not np.isin(train.clips.content, contents).any() and not np.isin(val.clips.content, contents).any()
    assert len(train) < len(sample_db.split("train"))
    mixed, _ = training_databases(replace(TINY, extra_data=("deepmimic",), extra_share=0.5), sample_db, paths)
    extra = len(mixed) - len(sample_db.split("train"))
    assert 0.35 < extra / len(mixed) < 0.65  # repeated to about half the poses
    arms = generalisation_arms(contents)
    assert {"baseline", "proportions", "angles", "mixing", "tilt", "all", "proportions_half", "all_half",
            "extra_mocap", "combined", "unseen_motion"} == set(arms)
    for overrides in arms.values():
        resolve_config("study", overrides)


def test_nearest_2d_lifter_returns_the_3d_of_the_nearest_training_view(sample_db):
    world = sample_db.poses[::20].astype(np.float64)
    lift = nearest_2d_lifter(world, DetectorNoise(), seed=3, size=500, chunk=250)
    views = TrainingViews(world, 3, AugmentConfig(), DetectorNoise()).batch(250)  # the gallery's first chunk
    features = np.concatenate([views.clean2d, np.ones_like(views.clean2d[..., :1])], -1)
    np.testing.assert_array_equal(lift(features, "pose2d"), views.pose3d)


def test_protocols_and_their_report(paths, sample_db, tmp_path):
    settings = replace(EvalSettings(), generalisation_poses=40)
    noise = DetectorNoise()
    sets = protocol_sets(sample_db.split("test"), paths, settings, noise)
    assert set(sets) == {"bandai_held_out", "body_mixamo_freebvh", "body_mocapbank", "body_cmu", "unseen_capture"}
    assert all(len(s.held.clip) <= 40 for s in sets.values())
    world = sample_db.split("train").poses
    lifters = {"unihpr": nearest_2d_lifter(world, noise, size=2000), "nn_2d": nearest_2d_lifter(world, noise, 1, 500),
               "zeros": lambda features, modality: np.zeros((len(features), 17, 3), np.float32)}
    result = evaluate_protocols(lifters, "zeros", sets)
    for name, protocol in result["protocols"].items():
        for key, row in protocol["errors"].items():
            assert row["unihpr"]["pa_mpjpe_mm"] < row["zeros"]["pa_mpjpe_mm"]
            assert protocol["ratio_unihpr_to_baseline"][key] == pytest.approx(
                row["unihpr"]["pa_mpjpe_mm"] / row["zeros"]["pa_mpjpe_mm"])
    # a lifter trained on Bandai bodies is further off on other bodies than on its own
    own = mean_pa(result["protocols"]["bandai_held_out"]["errors"], "unihpr")
    assert all(mean_pa(result["protocols"][f"body_{b}"]["errors"], "unihpr") > own for b in ("mixamo_freebvh", "cmu"))
    result["study"] = generalisation_study(tmp_path / "none", sample_db, sets, settings, noise)
    assert result["study"]["status"] == "skipped"
    md = "\n".join(generalisation_markdown({"generalisation": result, "protocols": {"generalisation": "protocol"}},
                                           "plot.png"))
    assert "other body: mixamo_freebvh" in md and "unseen capture" in md and "![generalisation study](plot.png)" in md


def test_generalise_refuses_an_unknown_arm(tmp_path):
    result = CliRunner().invoke(app, ["generalise", "--run", str(tmp_path), "--arm", "nonsense", "--sample"])
    assert result.exit_code != 0 and "unknown arm" in result.output
