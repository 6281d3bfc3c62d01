"""A library clip over real HTTP: its metadata, its motion as JSON and as a BVH segment cut from the kept source
(which parses and whose frames equal the source's), 404 / 409 / 422 answers, and the matching segment that
grouped retrieval results carry."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest

from index_builder.ingest.bvh import parse_bvh
from model.runtime.bundle_format import SourcesInfo, file_entries, read_manifest, write_manifest
from model.runtime.motion_sources import SOURCES, ClipSources, compress_source, write_sources
from service.bvh_cut import cut_bvh
from service.main import create_app
from service.segments import segment_around
from tests.service.live_server import make_settings, serve

REPO_ROOT = Path(__file__).resolve().parents[2]
RIGS = REPO_ROOT.parent / "shared" / "data" / "bvh-rigs"
CMU_FIXTURE = REPO_ROOT / "tests" / "index_builder" / "data" / "cmu_01_04_head.bvh"


@pytest.fixture(scope="module")
def real_bvh() -> bytes:
    path = RIGS / "mocapbank.bvh"  # 455 frames at 30 fps, tab-separated header, a rig nobody here wrote
    if not path.is_file():
        pytest.skip(f"{path} not found (the shared bvh-rigs folder is absent)")
    return path.read_bytes()


@pytest.fixture(scope="module")
def sourced(tiny_bundle, real_bvh, tmp_path_factory):
    """A copy of the tiny bundle that keeps a BVH source for its first clip, re-hashed like a builder would."""
    target = tmp_path_factory.mktemp("sourced") / "bundle"
    shutil.copytree(tiny_bundle, target)
    manifest = read_manifest(target)
    with np.load(target / "metadata.npz") as meta:
        names = [str(n) for n in meta["clip_name"]]
    sources = ClipSources.from_blobs(["bvh"] * len(names), [compress_source(real_bvh)] + [None] * (len(names) - 1))
    sizes = write_sources(target / SOURCES, names, sources)
    files = {**manifest.files, **file_entries(target, [SOURCES])}
    info = SourcesInfo(file=SOURCES, clips=sizes.clips, formats=sizes.formats, raw_bytes=sizes.raw_bytes,
                       stored_bytes=sizes.stored_bytes)
    write_manifest(target, manifest.model_copy(update={"files": files, "sources": info}))
    with serve(create_app(make_settings(target))) as live, httpx.Client(base_url=live.url, timeout=60) as c:
        yield c, names


def test_a_bvh_cut_parses_and_keeps_the_source_frames(real_bvh):
    source = parse_bvh(real_bvh.decode())
    segment, count = cut_bvh(real_bvh, 1.0, 2.0)
    cut = parse_bvh(segment.decode())
    first = round(1.0 / source.frame_time)
    assert count == len(cut.motion) == round(1.0 / source.frame_time) + 1
    assert cut.frame_time == source.frame_time and cut.skeleton.names == source.skeleton.names
    np.testing.assert_array_equal(cut.motion, source.motion[first : first + count])
    whole, n = cut_bvh(real_bvh, 0.0, 1e7)
    assert n == len(source.motion) and np.array_equal(parse_bvh(whole.decode()).motion, source.motion)


def test_the_cmu_fixture_cuts_too():
    text = CMU_FIXTURE.read_bytes()
    segment, count = cut_bvh(text, 0.0, 0.02)  # 120 fps: frames at 0, 1/120 and 2/120 s
    assert count == 3 and len(parse_bvh(segment.decode()).motion) == 3


def test_segment_around_the_best_frame():
    scores = np.array([0.5, 0.9, 0.95, 0.96, 0.955, 0.97, 0.7, 0.97])
    assert segment_around(scores, 5, margin=0.02) == (2, 5)  # 0.95..0.97 around index 5, stops at 0.7
    assert segment_around(scores, 7, margin=0.02) == (7, 7)
    assert segment_around(scores, 0, margin=1.0) == (0, 7)


def test_clip_info_and_json_motion(client, database):
    poses, _, metadata = database
    name = str(metadata["clip_name"][3])
    info = client.get(f"/clips/{name}").json()
    rows = np.flatnonzero(metadata["clip"] == 3)
    assert info["clip"] == name and info["frames"] == len(rows) and info["motion_formats"] == ["json"]
    assert info["labels"]["content"] and "CC BY-NC 4.0" in info["licence"]
    fps = info["fps"]
    r = client.get(f"/clips/{name}/motion", params={"start": 1.0, "end": 2.0, "layout": "unihpr17"})
    assert r.status_code == 200, r.text
    body = r.json()
    frames = metadata["frame"][rows]
    expected = rows[(frames / fps >= 1.0 - 1e-9) & (frames / fps <= 2.0 + 1e-9)]
    assert body["frames"] == metadata["frame"][expected].tolist()
    np.testing.assert_allclose(body["pose3d"], poses[expected], atol=0.006)
    assert body["layout"] == "unihpr17" and body["units"] == "mm" and body["frame"] == "world_yup"
    assert body["start"] == pytest.approx(1.0, abs=1 / fps) and body["end"] == pytest.approx(2.0, abs=1 / fps)


@pytest.mark.parametrize(("path", "params", "status", "code", "field"), [
    ("/clips/no-such-clip", {}, 404, "not_found", "clip"),
    ("/clips/no-such-clip/motion", {}, 404, "not_found", "clip"),
    ("/clips/{name}/motion", {"format": "bvh"}, 409, "no_source_motion", "format"),
    ("/clips/{name}/motion", {"start": 3, "end": 1}, 422, "out_of_range", "start"),
    ("/clips/{name}/motion", {"start": -1}, 422, "out_of_range", "start"),
    ("/clips/{name}/motion", {"start": 1e6}, 422, "out_of_range", "start"),
    ("/clips/{name}/motion", {"format": "fbx"}, 422, "invalid_request", "format"),
])
def test_clip_errors(client, database, path, params, status, code, field):
    name = str(database[2]["clip_name"][0])
    r = client.get(path.format(name=name), params=params)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code and r.json()["error"]["field"] == field


def test_bvh_motion_of_a_kept_source(sourced, real_bvh):
    client, names = sourced
    assert client.get(f"/clips/{names[0]}").json()["motion_formats"] == ["json", "bvh"]
    r = client.get(f"/clips/{names[0]}/motion", params={"format": "bvh", "start": 0.5, "end": 1.5})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert r.content == cut_bvh(real_bvh, 0.5, 1.5)[0]
    assert client.get(f"/clips/{names[1]}/motion", params={"format": "bvh"}).status_code == 409


def test_grouped_results_carry_their_matching_segment(client, database):
    poses, rotations, metadata = database
    query = {"modality": "pose3d", "keypoints": (poses[10] @ rotations[0].T).tolist(), "layout": "unihpr17"}
    body = client.post("/retrieve", json={"query": query, "k": 5, "group_by_clip": True}).json()
    for result in body["results"]:
        t = result["metadata"]["time"]
        assert result["start"] <= t <= result["end"], result
    first = body["results"][0]
    assert first["id"] == f"{metadata['clip_name'][metadata['clip'][10]]}#{metadata['frame'][10]}"
    ungrouped = client.post("/retrieve", json={"query": query, "k": 5}).json()
    assert all("start" not in r for r in ungrouped["results"])


def test_an_ingested_bvh_folder_serves_its_segments(tiny_run, blazepose_files, real_bvh, tmp_path):
    """A user's folder -> ingest -> index -> serve: the BVH segment of a hit is the source's own frames."""
    from index_builder.cli import main as build_cli

    library = tmp_path / "library" / "takes"
    library.mkdir(parents=True)
    (library / "mocapbank.bvh").write_bytes(real_bvh)
    assert build_cli(["ingest", str(library.parent), "--out", str(tmp_path / "db.npz"), "--licence", "fixtures",
                      "--source", "studio"]) == 0
    assert build_cli(["index", "--poses", str(tmp_path / "db.npz"), "--weights", str(tiny_run), "--out",
                      str(tmp_path / "bundle"), "--views", "2"]) == 0
    with serve(create_app(make_settings(tmp_path / "bundle"))) as live, \
            httpx.Client(base_url=live.url, timeout=60) as c:
        name = "library/takes/mocapbank"  # the clip id: the file's path under the ingested folder's name
        info = c.get(f"/clips/{name}")
        assert info.status_code == 200, info.text
        assert info.json()["motion_formats"] == ["json", "bvh"] and info.json()["licence"] == "fixtures"
        segment = c.get(f"/clips/{name}/motion", params={"format": "bvh", "start": 2.0, "end": 3.0})
        assert segment.status_code == 200 and segment.content == cut_bvh(real_bvh, 2.0, 3.0)[0]
        source = parse_bvh(real_bvh.decode())
        cut = parse_bvh(segment.text)
        first = round(2.0 / source.frame_time)
        np.testing.assert_array_equal(cut.motion, source.motion[first : first + len(cut.motion)])
        poses = c.get(f"/clips/{name}/motion", params={"start": 2.0, "end": 3.0}).json()
        assert poses["start"] == pytest.approx(2.0, abs=0.04) and poses["end"] == pytest.approx(3.0, abs=0.04)
