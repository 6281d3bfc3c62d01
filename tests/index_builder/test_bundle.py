"""The artifact bundle: ONNX parity with torch, verification, tamper detection and crash safety."""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import model.runtime.bundle_format as fmt
from index_builder.bundle.writer import held_out_views
from index_builder.cli import main
from index_builder.training.checkpoint import load_unihpr
from model.runtime.onnx_sessions import cpu_session

torch.set_num_threads(2)


def test_onnx_matches_torch_on_1000_held_out_inputs(tiny_run, tiny_bundle, sample_db):
    model, _, _ = load_unihpr(tiny_run)
    views = held_out_views(sample_db, 1000, seed=99)  # other poses and cameras than the export's own check
    assert len(views.pose2d) == 1000
    features = {"image": views.image, "pose2d": views.pose2d, "pose3d": views.pose3d_features}
    with torch.no_grad():
        for modality, inputs in features.items():
            expected = model.encode(torch.from_numpy(inputs), modality).numpy()
            got = cpu_session(tiny_bundle / fmt.ENCODERS[modality]).run(None, {"features": inputs})[0]
            assert np.abs(got - expected).max() < 1e-4, modality
        embeddings = model.encode(torch.from_numpy(views.pose2d), "pose2d")
        expected3d = model.decoder3d.metres(embeddings).numpy()
        expected2d = model.decoder2d(embeddings).numpy()
    got3d = cpu_session(tiny_bundle / fmt.DECODER3D).run(None, {"features": embeddings.numpy()})[0]
    got2d = cpu_session(tiny_bundle / fmt.DECODER2D).run(None, {"features": embeddings.numpy()})[0]
    assert np.abs(got3d - expected3d).max() < 1e-4
    assert np.abs(got2d - expected2d).max() < 1e-4
    manifest = json.loads((tiny_bundle / fmt.MANIFEST).read_text())
    assert all(g["parity_max_abs_diff"] < 1e-4 for g in manifest["graphs"].values())


def test_manifest_describes_the_bundle(tiny_bundle):
    verified = fmt.verify_bundle(tiny_bundle)
    manifest = verified.manifest
    assert manifest.joints.layout == "h36m17" and len(manifest.joints.names) == 17
    assert manifest.database.views == 8
    assert manifest.index.ntotal == manifest.database.poses * 8
    assert manifest.index.type == "flat"  # 40 clips: well under the IVF threshold
    assert "CC BY-NC 4.0" in manifest.licence
    assert set(manifest.files) == set(fmt.REQUIRED_FILES)
    # verification returns what it loaded, so a service serves exactly what was checked
    assert verified.poses.shape == (manifest.database.poses, 17, 3)
    assert verified.index.ntotal == manifest.index.ntotal and verified.index.d == manifest.embedding.dim
    assert set(verified.sessions) == set(fmt.GRAPHS)


def test_manifest_round_trip(tiny_bundle, tmp_path):
    text = (tiny_bundle / fmt.MANIFEST).read_text()
    manifest = fmt.parse_manifest(json.loads(text))
    assert manifest.to_json() == text  # nothing dropped, nothing added, same order
    copy = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, copy)
    fmt.write_manifest(copy, manifest.model_copy(update={"model_version": "renamed"}))
    assert fmt.verify_bundle(copy, load_models=False).manifest.model_version == "renamed"


@pytest.mark.parametrize(("edit", "field"), [
    (lambda m: m["index"]["operating_point"].pop("nprobe"), "index.operating_point.nprobe"),
    (lambda m: m["embedding"].update(dim="wide"), "embedding.dim"),
    (lambda m: m.update(schema_version=2), "schema_version"),
    (lambda m: m["database"].update(views=0), "database.views"),
])
def test_a_malformed_manifest_names_its_field(tiny_bundle, tmp_path, edit, field):
    copy = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, copy)
    data = json.loads((copy / fmt.MANIFEST).read_text())
    edit(data)
    text = json.dumps(data)  # re-hashed: the hash is valid, the content is not
    (copy / fmt.MANIFEST).write_text(text)
    (copy / fmt.MANIFEST_HASH).write_text(hashlib.sha256(text.encode()).hexdigest())
    with pytest.raises(fmt.BundleError) as caught:
        fmt.verify_bundle(copy)
    assert caught.value.field == field and field in str(caught.value)
    assert "unihpr-build index" in str(caught.value)  # says how to rebuild


def test_verify_command(tiny_bundle, capsys):
    assert main(["verify", str(tiny_bundle)]) == 0
    assert "ok" in capsys.readouterr().out
    assert main(["verify", str(tiny_bundle.parent / "nope")]) == 1


@pytest.mark.parametrize("name", [*fmt.REQUIRED_FILES, fmt.MANIFEST, fmt.MANIFEST_HASH])
def test_one_changed_byte_anywhere_is_rejected(tiny_bundle, tmp_path, name):
    copy = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, copy)
    path = copy / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(fmt.BundleError):
        fmt.verify_bundle(copy)


def test_a_killed_build_leaves_the_previous_bundle_intact(tiny_run, tiny_bundle, tmp_path):
    final = tmp_path / "bundles" / "default"
    shutil.copytree(tiny_bundle, final)
    before = fmt.verify_bundle(final, load_models=False).manifest.model_version
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "index_builder.cli", "index", "--weights", str(tiny_run), "--sample",
         "--out", str(final), "--threads", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )
    try:
        deadline = time.monotonic() + 120
        # Kill once the new bundle is being written: its temporary directory exists and holds files.
        while time.monotonic() < deadline:
            partial = [p for p in final.parent.glob(".default.*.tmp") if any(p.iterdir())]
            if partial or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the build finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert fmt.verify_bundle(final, load_models=False).manifest.model_version == before
    assert sorted(p.name for p in final.parent.iterdir() if not p.name.startswith(".")) == ["default"]
