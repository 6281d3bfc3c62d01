"""The evaluation (index_builder/evaluation/, commands/evaluate.py).

Metric functions are checked on hand-made cases with known answers; the protocols and the command run end to end
on tiny checkpoints trained on the shipped sample.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from index_builder.cli import app
from index_builder.config import get_paths
from index_builder.errors import ArtifactError
from index_builder.evaluation import EvalSettings, evaluate_run
from index_builder.evaluation.adapters import rig_embeddings
from index_builder.evaluation.commands import evaluation_settings
from index_builder.evaluation.held_out import build_held_out, spaced_rows, subsample_rows
from index_builder.evaluation.pose_errors import nearest_by_mpjpe, top1_errors
from index_builder.evaluation.report.document import PLOTS
from index_builder.evaluation.retrieval.cross_modal import recall_at_1
from index_builder.evaluation.retrieval.paper import retrieval_paper
from index_builder.evaluation.retrieval.prvipe import hit_rates
from index_builder.evaluation.seed_study import study_verdict
from index_builder.training.checkpoint import load_unihpr
from index_builder.training.config import TINY
from index_builder.training.detector_noise import DetectorNoise
from index_builder.training.loop import train_martinez, train_unihpr
from model.pose.metrics import mpjpe, np_mpjpe
from model.retrieval.exact_search import exact_search

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SECTIONS = ("run", "data", "settings", "lifting", "retrieval_paper", "retrieval_prvipe", "alignment", "seed_study",
            "generalisation", "index_fidelity")


def unit_vectors(rng, n: int, d: int) -> np.ndarray:
    v = rng.normal(size=(n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def random_rotation(rng) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


# ---------------------------------------------------------------------------------------------- metrics


def test_recall_at_1_is_one_for_identical_embeddings_and_chance_for_shuffled():
    emb = unit_vectors(np.random.default_rng(0), 500, 32)
    assert recall_at_1(emb, emb, chunk=64) == 1.0
    shuffled = emb[np.random.default_rng(1).permutation(500)]
    assert recall_at_1(emb, shuffled) < 0.05


def test_2d_nearest_neighbour_returns_the_true_pose_when_the_gallery_holds_its_2d(sample_db):
    poses = sample_db.poses[::97].astype(np.float64)
    views = build_held_out(sample_db, np.arange(0, len(sample_db), 97), EvalSettings(), DetectorNoise()).rig
    gallery2d = np.concatenate([v.clean2d for v in views])
    gallery3d = np.concatenate([v.pose3d for v in views])
    truth = np.arange(len(poses)) + 2 * len(poses)  # queries seen by rig camera 2
    D, I = exact_search(views[2].clean2d, gallery2d, 1, "l2")  # noqa: E741 (faiss's names)
    np.testing.assert_array_equal(I[:, 0], truth)
    assert D.max() < 1e-4  # squared distance via |q|^2 - 2 q.g + |g|^2 in float32
    errors = top1_errors(views[2].pose3d, gallery3d, I[:, 0])
    assert errors["mpjpe"].max() < 1e-6


def test_oracle_floor_is_the_exact_nearest_pose_and_never_above_a_retrieved_one(sample_db):
    rng = np.random.default_rng(4)
    rows = rng.choice(len(sample_db), 300, replace=False)
    gallery = sample_db.poses[rows] - sample_db.poses[rows][:, :1]  # root-relative, mm
    groups = sample_db.clip[rows]
    queries, q_groups = gallery[:40], groups[:40]
    err, index = nearest_by_mpjpe(queries, gallery, q_groups, groups, budget_bytes=1 << 16)
    brute = np.array([[mpjpe(g[None].astype(np.float64), q[None].astype(np.float64))[0] for g in gallery]
                      for q in queries])
    brute[q_groups[:, None] == groups[None, :]] = np.inf
    np.testing.assert_allclose(err, brute.min(1), rtol=1e-5)
    assert (groups[index] != q_groups).all()
    # any clip-excluded retrieval (here: random embeddings) is at least as far from the truth as the oracle
    emb = unit_vectors(rng, 300, 8)
    _, top = exact_search(emb[:40], emb, 1, query_groups=q_groups, gallery_groups=groups)
    assert (top1_errors(queries, gallery, top[:, 0])["mpjpe"] >= err - 1e-6).all()


def test_hit_at_k_with_a_planted_match(sample_db):
    rng = np.random.default_rng(5)
    query = sample_db.poses[1000:1001].astype(np.float64)
    others = sample_db.poses[rng.choice(len(sample_db), 19, replace=False)].astype(np.float64)
    others = others[np_mpjpe(others, np.repeat(query, 19, 0)) > 0.1]  # no accidental hit
    planted = 1.7 * (query - query[:, :1]) @ random_rotation(rng).T  # same pose, rotated and scaled
    ranked = np.concatenate([others[:4], planted, others[4:]])  # the match at rank 5
    errors = np_mpjpe(ranked, np.repeat(query, len(ranked), 0))[None]  # (1, K)
    assert errors[0, 4] < 1e-6
    curve = hit_rates(errors, 0.1)
    np.testing.assert_array_equal(curve, (np.arange(1, len(ranked) + 1) >= 5).astype(float))
    # two queries: one hit at rank 1, one never
    both = hit_rates(np.array([[0.05, 0.5, 0.5], [0.5, 0.5, 0.5]]), 0.1)
    np.testing.assert_array_equal(both, [0.5, 0.5, 0.5])


def test_frame_subsampling_and_one_second_spacing(sample_db):
    test = sample_db.split("test")
    rows, steps = subsample_rows(test, 3.0)
    assert steps == {"10": 3} and (test.frame[rows] % 3 == 0).all()
    spaced = spaced_rows(test, 1.0)
    for clip in np.unique(test.clip[spaced]):
        frames = np.sort(test.frame[spaced][test.clip[spaced] == clip])
        assert (np.diff(frames) >= test.clips.fps[clip] * 1.0).all()


def test_study_verdict_names_the_winner_of_each_metric():
    per_loss = {
        "singular_value": {"recall_at_1": {"mean": 0.8, "std": 0.01, "seeds": 3},
                           "lifting_mpjpe_mm": {"mean": 60.0, "std": 5.0, "seeds": 3}},
        "pairwise": {"recall_at_1": {"mean": 0.7, "std": 0.02, "seeds": 3},
                     "lifting_mpjpe_mm": {"mean": 58.0, "std": 4.0, "seeds": 3}},
    }
    recall, lifting = study_verdict(per_loss)
    assert recall.startswith("On mean cross-modal recall@1, singular_value wins") and "larger than" in recall
    assert lifting.startswith("On GT-2D H36M-rig lifting MPJPE, pairwise wins") and "within" in lifting


# ----------------------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def eval_run(sample_db, tmp_path_factory) -> Path:
    """A run directory: a tiny UniHPR, both Martinez baselines and a 2 x 2 seed study, on the sample (seconds)."""
    torch.set_num_threads(1)
    run = tmp_path_factory.mktemp("eval_run")
    train_db, val_db = sample_db.split("train"), sample_db.split("val")
    start = time.perf_counter()
    train_unihpr(TINY, train_db, val_db, run / "unihpr.pt", progress=False)
    train_martinez(TINY, train_db, val_db, run / "martinez_budget.pt", budget_poses=TINY.poses_drawn, progress=False)
    train_martinez(TINY, train_db, val_db, run / "martinez_converged.pt", budget_poses=None, progress=False)
    short = replace(TINY, align_steps=20, decode_steps=10)
    for seed in range(2):
        for loss in ("singular_value", "pairwise"):
            config = replace(short, name=f"{loss}_seed{seed}", loss=loss, seed=seed)
            train_unihpr(config, train_db, val_db, run / "study" / f"{loss}_seed{seed}.pt", progress=False)
    print(f"\nevaluation checkpoints trained in {time.perf_counter() - start:.1f} s")
    return run


def numbers(node, path="") -> list[tuple[str, object]]:
    """Every leaf of a JSON tree with its path."""
    if isinstance(node, dict):
        return [x for k, v in node.items() for x in numbers(v, f"{path}.{k}")]
    if isinstance(node, list):
        return [x for i, v in enumerate(node) for x in numbers(v, f"{path}[{i}]")]
    return [(path, node)]


def test_evaluate_command_writes_every_section(eval_run, tmp_path):
    out = tmp_path / "reports"
    start = time.perf_counter()
    result = CliRunner().invoke(app, ["evaluate", "--run", str(eval_run), "--out", str(out), "--sample",
                                      "--max-queries", "300", "--threads", "1", "--no-progress"])
    print(f"\nevaluate on the sample: {time.perf_counter() - start:.1f} s")
    assert result.exit_code == 0, result.output
    assert "GT-2D rig MPJPE: UniHPR" in result.output
    report = json.loads((out / "eval.json").read_text())
    assert set(SECTIONS) <= set(report)
    leaves = numbers({k: report[k] for k in SECTIONS if k != "index_fidelity"})
    values = [v for _, v in leaves if isinstance(v, (int, float)) and not isinstance(v, bool)]
    assert len(values) > 200 and all(math.isfinite(v) for v in values)
    assert not [p for p, v in leaves if v is None]

    lift = report["lifting"]
    assert set(lift["conditions"]) == {f"{c}/{s}" for c in ("gt_2d", "noisy_2d", "detector")
                                       for s in ("h36m_rig", "random")}
    assert set(lift["conditions"]["gt_2d/h36m_rig"]) == {"unihpr", "martinez_budget", "martinez_converged"}
    record = lift["baseline_of_record"]
    gt = lift["conditions"]["gt_2d/h36m_rig"]
    assert gt[record]["mpjpe_mm"] == min(gt["martinez_budget"]["mpjpe_mm"], gt["martinez_converged"]["mpjpe_mm"])
    assert lift["ratio_unihpr_to_baseline"]["gt_2d/h36m_rig"]["mpjpe_mm"] == pytest.approx(
        gt["unihpr"]["mpjpe_mm"] / gt[record]["mpjpe_mm"])
    assert lift["views"]["h36m_rig"] == 4 * report["data"]["eval_frames"]
    assert all(e["test_clips"] >= 2 for e in lift["per_content"].values()) and lift["per_content"]
    assert all(n < 2 for n in lift["contents_skipped"].values())

    paper = report["retrieval_paper"]
    assert paper["queries"] == 300 and paper["gallery"] == 4 * report["data"]["eval_frames"]
    assert paper["pose2d"]["nn_2d"]["top1_true_view_rate"] == 1.0  # the gallery holds the query's exact 2D
    for modality in ("pose2d", "image"):
        for method in ("unihpr", "nn_2d"):
            excluded = paper[modality][method]["top1_clip_excluded"]["mpjpe_mm"]
            assert excluded >= paper["oracle_floor_clip_excluded"]["mpjpe_mm"]
    hits = report["retrieval_prvipe"]["curve"]["unihpr"]
    assert len(hits) == 20 and all(a <= b for a, b in zip(hits, hits[1:]))
    assert len(report["alignment"]["recall_at_1"]) == 6 and report["alignment"]["gallery"] <= 1000
    study = report["seed_study"]
    assert len(study["runs"]) == 4 and set(study["per_loss"]) == {"singular_value", "pairwise"}
    assert len(study["verdict"]) == 2
    assert "not computed" in report["index_fidelity"]["status"]
    library = report["retrieval_real"]  # retrieval over the whole sample from real cameras, re-ranked
    assert library["status"] == "computed" and library["gallery"]["views"] == 8 and library["candidates"] == 100
    assert library["queries_per_set"]["real_rig"] > 0 and library["queries_per_set"]["random"] > 0
    for cameras in ("real_rig", "random"):
        excluded, included = (library["results"][cameras][v] for v in ("clip_excluded", "clip_included"))
        assert included["oracle_floor_mm"] < 1e-3 < excluded["oracle_floor_mm"]  # the pose itself is in the gallery
        for e in (excluded, included):
            for order in ("cosine", "reranked"):
                assert e[order]["top1_pa_mpjpe_mm"] >= e["oracle_floor_mm"] - 1e-6
                assert e[order]["top10_best_pa_mpjpe_mm"] <= e[order]["top1_pa_mpjpe_mm"] + 1e-6
            assert e["candidate_best_pa_mpjpe_mm"] <= e["reranked"]["top10_best_pa_mpjpe_mm"] + 1e-6
    pooled = library["confidence"]["pooled"]
    assert -1 <= pooled["spearman"] <= 1 and len(pooled["reliability"]) == 5
    assert {t["short"].split(":")[0] for t in library["targets"]} >= {"Spearman >= 0.6"}
    assert library["rerank"]["weight"] in [float(w) for w in library["rerank"]["weights"]]
    assert "CC BY-NC" in report["data"]["licence"] and len(report["run"]["checkpoints"]["unihpr"]["sha256"]) == 64

    general = report["generalisation"]  # other bodies and an unseen capture, next to the baselines
    assert general["baseline_of_record"] == record and set(general["lifters"]) == {"unihpr", record, "nn_2d"}
    assert {"bandai_held_out", "body_cmu", "unseen_capture"} <= set(general["protocols"])
    assert general["protocols"]["unseen_capture"]["clips"] == 26 and general["study"]["status"] == "skipped"

    md = (out / "eval.md").read_text()
    assert "## What this shows" in md and f"{gt['unihpr']['mpjpe_mm']:.1f}" in md
    assert "## Generalisation" in md and "other body: mocapbank" in md
    assert "## Retrieval from real cameras over the whole library" in md and "target (issue #16)" in md
    for name in PLOTS.values():
        assert f"]({name})" in md
        with Image.open(out / name) as image:
            assert image.format == "PNG" and np.asarray(image.convert("L")).std() > 5


def test_oracle_floor_below_the_model_per_query(eval_run, sample_db):
    model, _, _ = load_unihpr(eval_run / "unihpr.pt")
    test = sample_db.split("test")
    settings = EvalSettings()
    rows, _ = subsample_rows(test, settings.eval_fps)
    held = build_held_out(test, rows, settings, DetectorNoise())
    again = build_held_out(test, rows, settings, DetectorNoise())
    np.testing.assert_array_equal(held.rig[1].image, again.rig[1].image)  # seeded: the same views every run
    q = np.arange(0, len(rows), 5)
    cams = np.arange(len(q)) % 4
    _, per_query = retrieval_paper(rig_embeddings(model, held), held, q, cams, settings)
    floor = per_query["oracle_floor_clip_excluded"]
    for key in ("pose2d/unihpr/clip_excluded", "image/unihpr/clip_excluded", "pose2d/nn_2d/clip_excluded"):
        assert (floor <= per_query[key] + 1e-3).all(), key


def test_evaluate_options_override_the_run_config():
    run = replace(EvalSettings(), max_queries=500, eval_fps=2.0, motion_queries=50)
    assert evaluation_settings(run, None, None, None, use_sample=False) == run
    assert evaluation_settings(run, 0, 1.0, None, use_sample=True) == replace(run, max_queries=None, eval_fps=1.0,
                                                                              motion_queries=8)
    assert evaluation_settings(run, 100, None, 0, use_sample=True) == replace(run, max_queries=100, motion_queries=0)


def test_missing_checkpoints(eval_run, sample_db, tmp_path):
    with pytest.raises(ArtifactError, match="unihpr.pt: no UniHPR checkpoint"):
        evaluate_run(tmp_path, sample_db, get_paths().sample, progress=False)
    result = CliRunner().invoke(app, ["evaluate", "--run", str(tmp_path), "--out", str(tmp_path / "r"), "--sample"])
    assert isinstance(result.exception, ArtifactError) and not (tmp_path / "r").exists()
    shutil.copy(eval_run / "unihpr.pt", tmp_path / "unihpr.pt")  # no baselines, no study
    settings = replace(EvalSettings(), max_queries=50, eval_fps=1.0, motion_queries=0, real_retrieval_queries=30)
    result = evaluate_run(tmp_path, sample_db, get_paths().sample, settings, progress=False)
    assert "skipped" in result["seed_study"] and result["lifting"]["baseline_of_record"] is None
    assert any("martinez_converged.pt: missing" in n for n in result["notes"])
    from index_builder.evaluation import write_report

    written = write_report(result, tmp_path / "reports")
    assert all(p.exists() for p in written) and not (tmp_path / "reports" / PLOTS["study"]).exists()
    assert "Skipped: no study checkpoints" in (tmp_path / "reports" / "eval.md").read_text()
