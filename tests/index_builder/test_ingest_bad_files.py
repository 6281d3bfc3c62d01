"""Every class of bad file is skipped with its reason, listed, and the run completes with the good ones."""

from __future__ import annotations

import numpy as np

from index_builder.ingest import IngestConfig, ingest

CONFIG = IngestConfig(source="test", licence="test fixtures", workers=2)


def _mocapbank_lines(bvh_rigs) -> tuple[list[str], int]:
    lines = (bvh_rigs / "mocapbank.bvh").read_text().splitlines()
    return lines, next(i for i, line in enumerate(lines) if line.strip() == "MOTION")


def _bad_files(bvh_rigs) -> dict[str, str]:
    """file name -> text of one broken copy of the MocapBank clip per class of fault."""
    lines, motion_at = _mocapbank_lines(bvh_rigs)
    text = "\n".join(lines)
    header = lines[: motion_at + 1]
    rows = lines[motion_at + 3 :]
    nan_rows = list(rows)
    nan_rows[5] = " ".join(["nan"] + nan_rows[5].split()[1:])
    mirrored = text
    for word in ("Collar", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle"):
        mirrored = (mirrored.replace(f"Left{word}", "@").replace(f"Right{word}", f"Left{word}")
                    .replace("@", f"Right{word}"))
    return {
        "truncated.bvh": "\n".join(lines[: motion_at + 3 + 100]),
        "channels.bvh": text.replace("CHANNELS 3 Zrotation Xrotation Yrotation",
                                     "CHANNELS 2 Zrotation Xrotation Yrotation", 1),
        "short_rows.bvh": "\n".join(header + lines[motion_at + 1 : motion_at + 3]
                                    + [" ".join(r.split()[:-3]) for r in rows]),
        "nan.bvh": "\n".join(header + lines[motion_at + 1 : motion_at + 3] + nan_rows),
        "zero_frames.bvh": "\n".join(header + ["Frames: 0", "Frame Time: 0.033333"]),
        "unknown_rig.bvh": text.replace("LeftKnee", "Knee_L"),
        "mirrored.bvh": mirrored,
        "wrong_unit.bvh": text,  # read with --units inch below: a 4-metre person
    }


EXPECTED = {
    "truncated": ("BvhParseError", "truncated file"),
    "channels": ("BvhParseError", "wrong channel count"),
    "short_rows": ("BvhParseError", "values but the hierarchy declares"),
    "nan": ("BvhParseError", "NaN"),
    "zero_frames": ("ClipCheckError", "zero frames"),
    "unknown_rig": ("UnknownRigError", "LeftKnee (l_knee)"),
    "mirrored": ("ClipCheckError", "left/right check failed"),
}


def test_each_bad_file_class_is_listed_with_its_reason_and_the_run_completes(bvh_rigs, tmp_path):
    folder = tmp_path / "library"
    folder.mkdir()
    for name, text in _bad_files(bvh_rigs).items():
        if name != "wrong_unit.bvh":
            (folder / name).write_text(text)
    (folder / "good.bvh").write_bytes((bvh_rigs / "mocapbank.bvh").read_bytes())
    run = ingest([folder], CONFIG, progress=False)
    assert [c.clip_id for c in run.clips] == ["library/good"]
    assert run.db is not None and len(run.db) == 455 and run.db.licence == "test fixtures"
    reasons = {s.clip_id.split("/")[-1]: s for s in run.skipped}
    assert set(reasons) == set(EXPECTED)
    for name, (error, words) in EXPECTED.items():
        print(f"{name}: {reasons[name].reason} [{reasons[name].error}]")
        assert reasons[name].error == error and words in reasons[name].reason, reasons[name]


def test_implausible_height_is_a_failed_check(bvh_rigs, tmp_path):
    folder = tmp_path / "inches"
    folder.mkdir()
    (folder / "clip.bvh").write_bytes((bvh_rigs / "mocapbank.bvh").read_bytes())
    run = ingest([folder], IngestConfig(source="t", licence="t", units="inch", workers=1), progress=False)
    assert run.db is None and len(run.skipped) == 1
    skipped = run.skipped[0]
    assert skipped.error == "ClipCheckError" and "standing height 3.98 m is not a person" in skipped.reason


def test_bad_arrays_are_skipped(tmp_path):
    folder = tmp_path / "arrays"
    folder.mkdir()
    np.save(folder / "wrong_shape.npy", np.zeros((10, 16, 3)))
    poses = np.zeros((10, 17, 3))
    poses[3, 4, 1] = np.nan
    np.save(folder / "nan.npy", poses)
    np.save(folder / "empty.npy", np.zeros((0, 17, 3)))
    run = ingest([folder], IngestConfig(source="t", licence="t", units="mm", workers=1), progress=False)
    reasons = {s.clip_id.split("/")[-1]: s.reason for s in run.skipped}
    assert run.db is None
    assert "must be (T, 17, 3)" in reasons["wrong_shape"] and "NaN" in reasons["nan"]
    assert "zero frames" in reasons["empty"]
