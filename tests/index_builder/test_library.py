"""`unihpr-build add | remove`: a library changed without retraining keeps every id and vector, finds new clips,
drops exactly the removed ones, gives identical results after remove + re-add, and keeps the BVH sources."""

from __future__ import annotations

import shutil

import faiss
import numpy as np
import pytest

import model.runtime.bundle_format as fmt
from index_builder.bundle.indexing import IndexPlan, set_search_effort
from index_builder.bundle.library_index import compact, read_vectors
from index_builder.bundle.library_update import add_clips, remove_clips
from index_builder.bundle.writer import random_views, run_encoder
from index_builder.cli import main
from index_builder.ingest import IngestConfig, ingest
from model.pose.features import pose3d_features
from model.runtime.motion_sources import SOURCES, SourceStore
from model.runtime.onnx_sessions import cpu_session
from tests.index_builder.ingest_fixtures import CMU_BVH
from tests.tiny_bundles import build_tiny_bundle, new_clips

K = 10


def results(bundle, queries: np.ndarray) -> tuple[list[list[tuple[str, int, int]]], np.ndarray]:
    """Top-K of ``queries`` as (clip name, frame, view) per hit, and their scores, at the stored operating point."""
    verified = fmt.verify_bundle(bundle, load_models=False)
    set_search_effort(verified.index, verified.manifest.index.operating_point.nprobe)
    scores, ids = verified.index.search(queries, K)
    views, meta = verified.manifest.database.views, verified.metadata
    pose, view = ids // views, ids % views
    named = [[(str(meta["clip_name"][meta["clip"][p]]), int(meta["frame"][p]), int(v)) for p, v in zip(ps, vs)]
             for ps, vs in zip(pose, view)]
    return named, scores


def queries_of(bundle, poses: np.ndarray, count: int = 60) -> np.ndarray:
    """(Q, D) pose2d embeddings of random views of ``poses`` (N, 17, 3) mm."""
    views = random_views(poses, count, seed=5)
    return run_encoder(cpu_session(bundle / fmt.ENCODERS["pose2d"]), views.pose2d)


@pytest.fixture(scope="module")
def added(tiny_bundle, sample_db, tmp_path_factory):
    """The tiny bundle plus 5 clips of the sample it lacks, through the CLI; the database file of those clips."""
    root = tmp_path_factory.mktemp("library")
    db = new_clips(sample_db, tiny_bundle, 5)
    db_path = root / "new.npz"
    db.save(db_path)
    base = root / "tiny"
    shutil.copytree(tiny_bundle, base)
    assert main(["add", str(base), str(db_path)]) == 0
    return base, root / "tiny-lib1", db, db_path


def test_add_keeps_every_existing_vector_and_finds_the_new_clips(added, capsys):
    base, out, db, _ = added
    old, new = fmt.verify_bundle(base, load_models=False), fmt.verify_bundle(out)
    n_old, views = old.manifest.database.poses, old.manifest.database.views
    assert new.manifest.database.poses == n_old + len(db) and new.index.ntotal == (n_old + len(db)) * views
    # every existing id keeps its vector, pose and metadata
    np.testing.assert_array_equal(read_vectors(new.index, np.arange(old.index.ntotal)),
                                  old.index.reconstruct_n(0, old.index.ntotal))
    np.testing.assert_array_equal(new.poses[:n_old], old.poses)
    for key in ("clip", "frame"):
        np.testing.assert_array_equal(new.metadata[key][:n_old], old.metadata[key])
    assert new.metadata["clip_name"].tolist() == old.metadata["clip_name"].tolist() + db.clips.name.tolist()
    # a pose of an added clip, embedded on its own under view 0, retrieves itself first
    rows = n_old + np.arange(0, len(db), 7)
    features = pose3d_features(np.einsum("ij,nkj->nki", new.rotations[0], new.poses[rows].astype(np.float64)))
    scores, ids = new.index.search(run_encoder(new.sessions["encoder_pose3d"], features), 1)
    np.testing.assert_array_equal(ids[:, 0], rows * views)
    assert scores.min() > 0.999
    history = new.manifest.index.history
    assert (history.trained_vectors, history.added_vectors, history.removed_vectors) == (
        old.index.ntotal, len(db) * views, 0)
    assert history.recall_at_10 == 1.0  # exact index
    assert new.manifest.model_version == old.manifest.model_version + "+lib1"
    assert new.manifest.database.clips == old.manifest.database.clips + 5
    assert main(["verify", str(out)]) == 0


def test_remove_drops_exactly_the_named_clips(added, tmp_path):
    bundle = added[1]
    before = fmt.verify_bundle(bundle, load_models=False)
    names = before.metadata["clip_name"].tolist()
    gone = [names[3], names[-1]]
    change = remove_clips(bundle, gone, tmp_path / "fewer")
    after = fmt.verify_bundle(change.out)
    assert after.metadata["clip_name"].tolist() == [n for n in names if n not in gone]
    keep = ~np.isin(before.metadata["clip_name"][before.metadata["clip"]], gone)
    views = before.manifest.database.views
    np.testing.assert_array_equal(after.poses, before.poses[keep])
    np.testing.assert_array_equal(after.metadata["frame"], before.metadata["frame"][keep])
    kept_names = before.metadata["clip_name"][before.metadata["clip"][keep]]
    np.testing.assert_array_equal(after.metadata["clip_name"][after.metadata["clip"]], kept_names)
    np.testing.assert_array_equal(after.index.reconstruct_n(0, after.index.ntotal),
                                  before.index.reconstruct_n(0, before.index.ntotal)[np.repeat(keep, views)])
    assert after.manifest.index.history.removed_vectors == int((~keep).sum()) * views
    assert change.vectors == int((~keep).sum()) * views and change.retrain == []


def test_remove_and_readd_gives_identical_ids_and_results(added, sample_db, tmp_path, capsys):
    _, bundle, db, db_path = added
    before = fmt.verify_bundle(bundle, load_models=False)
    middle = str(before.metadata["clip_name"][10])  # an original clip in the middle: its rows move to the end
    (tmp_path / "clips.txt").write_text("\n".join([middle, *db.clips.name.tolist()]) + "\n")
    assert main(["remove", str(bundle), "--clips-file", str(tmp_path / "clips.txt"),
                 "--out", str(tmp_path / "removed")]) == 0
    assert "removed 6 clip(s)" in capsys.readouterr().out
    assert main(["add", str(tmp_path / "removed"), str(db_path), "--out", str(tmp_path / "readded")]) == 0
    middle_db = sample_db.select_clips(sample_db.clips.name == middle)
    restored = add_clips(tmp_path / "readded", middle_db, tmp_path / "restored", progress=False).out

    queries = queries_of(bundle, before.poses)
    want_ids, want_scores = results(bundle, queries)
    got_ids, got_scores = results(restored, queries)
    assert got_ids == want_ids
    np.testing.assert_allclose(got_scores, want_scores, atol=1e-6)
    # the clips added last were removed and added back at the same positions: bit for bit the same vectors
    again = fmt.verify_bundle(tmp_path / "readded", load_models=False)
    n = before.index.ntotal - len(middle_db) * before.manifest.database.views
    tail = len(db) * before.manifest.database.views
    np.testing.assert_array_equal(again.index.reconstruct_n(n - tail, tail),
                                  before.index.reconstruct_n(before.index.ntotal - tail, tail))
    history = fmt.verify_bundle(restored, load_models=False).manifest.index.history
    assert history.added_vectors == history.removed_vectors + tail


def test_unknown_and_duplicate_clips_and_overwriting_are_refused(added, tmp_path, capsys):
    base, bundle, _, db_path = added
    assert main(["add", str(bundle), str(db_path), "--out", str(tmp_path / "dup")]) == 1
    err = capsys.readouterr().err
    assert "already has clip(s)" in err and "remove them first" in err
    assert main(["remove", str(bundle), "--clip", "no-such-clip", "--out", str(tmp_path / "x")]) == 1
    assert "has no clip(s) no-such-clip" in capsys.readouterr().err
    assert main(["remove", str(bundle), "--clip", "x", "--out", str(bundle)]) == 1
    assert "must not replace" in capsys.readouterr().err
    assert main(["remove", str(bundle)]) == 1
    assert "--clip or --clips-file" in capsys.readouterr().err
    assert not (tmp_path / "dup").exists() and not (tmp_path / "x").exists()
    assert main(["add", str(base), str(db_path)]) == 1  # the default output (tiny-lib1) already exists
    assert "exists" in capsys.readouterr().err


def test_compaction_of_an_ivf_index_keeps_lists_and_vectors():
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((4000, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = faiss.index_factory(16, "IVF16,Flat", faiss.METRIC_INNER_PRODUCT)
    index.train(vectors)
    faiss.extract_index_ivf(index).make_direct_map()
    index.add(vectors)
    queries = vectors[rng.choice(4000, 50, replace=False)] + 0.1 * rng.standard_normal((50, 16)).astype(np.float32)
    keep = rng.random(4000) > 0.3
    kept = np.flatnonzero(keep)
    set_search_effort(index, 2)
    want_scores, want = index.search(queries, K, params=faiss.SearchParametersIVF(
        nprobe=2, sel=faiss.IDSelectorBatch(kept.astype(np.int64))))
    centroids = faiss.extract_index_ivf(index).quantizer.reconstruct_n(0, 16)

    compact(index, keep)
    assert index.ntotal == len(kept) and index.is_trained
    np.testing.assert_array_equal(faiss.extract_index_ivf(index).quantizer.reconstruct_n(0, 16), centroids)
    np.testing.assert_array_equal(read_vectors(index, np.arange(len(kept))), vectors[kept])
    scores, got = index.search(queries, K)  # same lists probed, renumbered ids
    np.testing.assert_array_equal(kept[got], want)
    np.testing.assert_array_equal(scores, want_scores)
    index.add(vectors[:10])  # the direct map follows later additions
    np.testing.assert_array_equal(read_vectors(index, np.arange(len(kept), len(kept) + 10)), vectors[:10])


@pytest.fixture(scope="module")
def ivf_bundle(tiny_run, sample_db, blazepose_files, tmp_path_factory):
    """A 2-view bundle of 60 sample clips with a forced 16-list IVF index."""
    import index_builder.bundle.writer as bundle_module

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bundle_module, "plan_index", lambda n, dim, kind="auto": IndexPlan("ivf", dim, 16))
        return build_tiny_bundle(tiny_run, sample_db, slice(None, 60), tmp_path_factory.mktemp("ivf") / "ivf",
                                 blazepose_files, views=2)


def test_ivf_bundle_add_remove_readd(ivf_bundle, sample_db, tmp_path):
    manifest = fmt.read_manifest(ivf_bundle)
    assert manifest.index.type == "ivf" and manifest.index.history.trained_vectors == manifest.index.ntotal
    db = new_clips(sample_db, ivf_bundle, 8)
    bigger = add_clips(ivf_bundle, db, tmp_path / "bigger", progress=False)
    history = bigger.manifest.index.history
    assert history.added_vectors == 2 * len(db) and 0.5 < history.recall_at_10 <= 1.0
    assert bigger.manifest.index.operating_point == manifest.index.operating_point  # unchanged nprobe
    assert bigger.recall_at_10 == history.recall_at_10
    fewer = remove_clips(bigger.out, db.clips.name.tolist(), tmp_path / "fewer")
    readded = add_clips(fewer.out, db, tmp_path / "readded", progress=False)
    poses = fmt.verify_bundle(bigger.out, load_models=False).poses
    queries = queries_of(ivf_bundle, poses)
    want_ids, want_scores = results(bigger.out, queries)
    got_ids, got_scores = results(readded.out, queries)
    assert got_ids == want_ids
    np.testing.assert_array_equal(got_scores, want_scores)
    assert (tmp_path / "readded" / fmt.INDEX).read_bytes() == (tmp_path / "bigger" / fmt.INDEX).read_bytes()


def test_bvh_sources_survive_add_and_remove(tiny_run, sample_db, tmp_path, capsys):
    library = tmp_path / "library"
    library.mkdir()
    for name in ("walk_a", "walk_b"):
        shutil.copy(CMU_BVH, library / f"{name}.bvh")
    (library / "walk_b.bvh").write_bytes(CMU_BVH.read_bytes() + b"\n")  # another file, another source
    run = ingest([library], IngestConfig(source="studio", licence="test only", workers=1), progress=False)
    db = run.db
    assert db.sources is not None and db.sources.format.tolist() == ["bvh", "bvh"]
    db_path = tmp_path / "library.npz"
    db.save(db_path)
    bundle = tmp_path / "bundles" / "studio"
    assert main(["index", "--poses", str(db_path), "--weights", str(tiny_run), "--out", str(bundle),
                 "--views", "2"]) == 0
    manifest = fmt.verify_bundle(bundle, load_models=False).manifest
    raw = CMU_BVH.read_bytes()
    assert manifest.sources.clips == 2 and manifest.sources.formats == ["bvh"]
    assert manifest.sources.raw_bytes == 2 * len(raw) + 1 and 0 < manifest.sources.stored_bytes < len(raw)
    assert SOURCES in manifest.files
    names = db.clips.name.tolist()
    assert SourceStore(bundle / SOURCES).source(names[0]) == ("bvh", raw)

    fewer = remove_clips(bundle, [names[0]])
    assert fewer.out == tmp_path / "bundles" / "studio-lib1"
    store = SourceStore(fewer.out / SOURCES)
    assert store.source(names[0]) is None and store.source(names[1]) == ("bvh", raw + b"\n")
    back = add_clips(fewer.out, db.select_clips(db.clips.name == names[0]), progress=False)
    assert back.out.name == "studio-lib2" and back.manifest.sources.clips == 2
    assert SourceStore(back.out / SOURCES).source(names[0]) == ("bvh", raw)
    # clips without a source (the Bandai sample keeps none) are listed with format "" and answer None
    other = add_clips(back.out, sample_db.select_clips(np.arange(len(sample_db.clips)) < 2), progress=False)
    store = SourceStore(other.out / SOURCES)
    assert other.manifest.sources.clips == 2
    assert store.source(str(sample_db.clips.name[0])) is None
    assert main(["verify", str(other.out)]) == 0
