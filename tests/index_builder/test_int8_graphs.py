"""int8 graphs (`unihpr-build index --int8`): the bundle, its manifest and a live server over it."""

import hashlib

import httpx
import numpy as np
import onnx
import pytest
import torch

import model.runtime.bundle_format as fmt
from index_builder.bundle.int8_graphs import ENCODERS, QUANTIZED, cosine_rows
from index_builder.bundle.writer import held_out_views
from model.runtime.onnx_sessions import cpu_session
from service.main import create_app
from tests.service.live_server import make_settings, serve
from tests.tiny_bundles import build_tiny_bundle, new_clips

torch.set_num_threads(2)
INT8_OPS = {"DynamicQuantizeLinear", "MatMulInteger", "ConvInteger", "DynamicQuantizeMatMul", "MatMulIntegerToFloat"}
LINEAR = ("Gemm", "MatMul", "MatMulInteger")


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def int8_bundle(tiny_run, sample_db, blazepose_files, tmp_path_factory):
    """A 2-view bundle of 20 sample clips with int8 graphs."""
    return build_tiny_bundle(tiny_run, sample_db, slice(None, 20), tmp_path_factory.mktemp("int8") / "int8",
                             blazepose_files, views=2, int8=True)


def test_int8_graphs_keep_their_coordinate_layer_and_the_pose3d_encoder_float32(int8_bundle, tiny_bundle):
    manifest = fmt.verify_bundle(int8_bundle).manifest  # hashes, shapes and every graph loaded
    for name, graph in manifest.graphs.items():
        path = int8_bundle / f"{name}.onnx"
        ops = [n.op_type for n in onnx.load(str(path)).graph.node]
        if name in QUANTIZED:
            assert graph.precision == "int8" and graph.int8_max_abs_diff > 0, name
            assert (graph.int8_min_cosine is not None) == (name in ENCODERS), name
            assert set(ops) & INT8_OPS, name
            linear = [op for op in ops if op in LINEAR]
            kept = linear[0] if QUANTIZED[name] == "input" else linear[-1]
            assert kept != "MatMulInteger", name  # the layer that touches coordinates stays float32
        else:
            assert graph.precision == "float32" and graph.int8_max_abs_diff is None, name
            assert not set(ops) & INT8_OPS, name
            assert sha256(path) == sha256(tiny_bundle / f"{name}.onnx"), name  # the same float32 export
    assert not list(int8_bundle.glob("*.int8.onnx"))  # staged files renamed into place


def test_int8_outputs_agree_with_float32_on_held_out_inputs(int8_bundle, tiny_bundle, sample_db):
    views = held_out_views(sample_db, 500, seed=99)
    for modality, features in (("pose2d", views.pose2d), ("image", views.image)):
        graph = fmt.ENCODERS[modality]
        float32 = cpu_session(tiny_bundle / graph).run(None, {"features": features})[0]
        int8 = cpu_session(int8_bundle / graph).run(None, {"features": features})[0]
        assert not np.array_equal(float32, int8), modality  # really another graph
        assert np.median(cosine_rows(float32, int8)) > 0.99, modality
    embeddings = cpu_session(tiny_bundle / fmt.ENCODERS["pose2d"]).run(None, {"features": views.pose2d})[0]
    lifted = {name: cpu_session(bundle / fmt.DECODER3D).run(None, {"features": embeddings})[0]
              for name, bundle in (("float32", tiny_bundle), ("int8", int8_bundle))}
    moved_mm = np.linalg.norm(lifted["int8"] - lifted["float32"], axis=-1).mean() * 1000  # decoder3d: metres
    assert 0 < moved_mm < 5


def test_a_server_answers_with_int8_graphs(int8_bundle, sample_db):
    views = held_out_views(sample_db, 1, seed=5)
    body = {"inputs": [{"modality": "pose2d", "keypoints": views.clean2d[0].tolist(), "layout": "unihpr17"}]}
    with serve(create_app(make_settings(int8_bundle))) as live, httpx.Client(base_url=live.url, timeout=60) as c:
        embedded = c.post("/embed", json=body)
        lifted = c.post("/lift3d", json=body)
        found = c.post("/retrieve", json={"query": body["inputs"][0], "k": 3})
        info = c.get("/info").json()
    assert embedded.status_code == lifted.status_code == found.status_code == 200
    assert len(found.json()["results"]) == 3
    assert np.isfinite(lifted.json()["outputs"][0]["pose3d"]).all()
    assert info["graphs"]["encoder_pose2d"]["precision"] == info["graphs"]["decoder3d"]["precision"] == "int8"
    assert info["graphs"]["encoder_pose3d"]["precision"] == "float32"


def test_added_clips_keep_the_int8_graphs_and_float32_vectors(int8_bundle, sample_db, tmp_path):
    from index_builder.bundle.library_update import add_clips

    db = new_clips(sample_db, int8_bundle, 3)
    bigger = add_clips(int8_bundle, db, tmp_path / "bigger", progress=False)
    verified = fmt.verify_bundle(bigger.out)
    assert {n: g.precision for n, g in verified.manifest.graphs.items()} == \
        {n: g.precision for n, g in fmt.read_manifest(int8_bundle).graphs.items()}
    for name in QUANTIZED:
        assert sha256(bigger.out / f"{name}.onnx") == sha256(int8_bundle / f"{name}.onnx"), name
    assert verified.index.ntotal == fmt.read_manifest(int8_bundle).index.ntotal + 2 * len(db)
