"""COCO-format keypoint files: tiny files written here, and the real labelled photos when ../shared is present."""

import json
from pathlib import Path

import numpy as np
import pytest

from index_builder.datasets.coco_keypoints import (
    annotation_to_h36m17,
    keypoints_to_h36m17,
    load_coco_keypoints,
)
from index_builder.errors import DataFileError
from model.pose.joint_layouts import LAYOUTS
from model.pose.skeleton import H36M17

J = H36M17.index
REPO_ROOT = Path(__file__).resolve().parents[2]
POSE_IMAGES = REPO_ROOT.parent / "shared" / "data" / "pose-images"


def coco17_keypoints() -> list[float]:
    """Keypoint k at (10 k, 100 + k); the nose (0) unlabelled, the left wrist (9) labelled but hidden."""
    flat = []
    for k in range(17):
        v = 0 if k == 0 else 1 if k == 9 else 2
        flat += [0, 0, 0] if v == 0 else [10.0 * k, 100.0 + k, v]
    return flat


def coco_file(annotations, categories=None, images=None) -> dict:
    return {
        "images": images if images is not None else [{"id": 7, "file_name": "a.jpg", "width": 640, "height": 480}],
        "annotations": annotations,
        "categories": categories if categories is not None else
        [{"id": 1, "name": "person", "keypoints": list(LAYOUTS["coco17"].keypoints), "skeleton": []}],
    }


def write(tmp_path, content, name="labels.json") -> Path:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def person(keypoints, image_id=7, **extra) -> dict:
    return {"id": 3, "image_id": image_id, "bbox": [1.5, 2.0, 300.0, 400.0], "keypoints": keypoints,
            "num_keypoints": 16, "iscrowd": 0, "category_id": 1, **extra}


def test_coco17_annotation_is_read_with_its_image(tmp_path):
    labels = load_coco_keypoints(write(tmp_path, coco_file([person(coco17_keypoints())])))
    assert labels.layout == "coco17" and len(labels) == 1
    ann = labels.annotations[0]
    assert (ann.annotation_id, ann.image_id, ann.file_name, ann.image_size) == (3, 7, "a.jpg", (640, 480))
    assert ann.bbox.dtype == np.float32 and list(ann.bbox) == [1.5, 2.0, 300.0, 400.0]
    assert ann.keypoints.shape == (17, 2) and ann.keypoints.dtype == np.float32
    assert ann.visibility.shape == (17,) and list(ann.visibility[:3]) == [0, 2, 2] and ann.visibility[9] == 1
    np.testing.assert_array_equal(ann.keypoints[5], [50.0, 105.0])
    assert not ann.iscrowd


def test_coco17_maps_to_h36m17_with_the_shared_formulas(tmp_path):
    ann = load_coco_keypoints(write(tmp_path, coco_file([person(coco17_keypoints())]))).annotations[0]
    joints, conf = annotation_to_h36m17(ann)
    assert joints.shape == (17, 2) and conf.shape == (17,)
    # COCO: 3/4 ears, 5/6 shoulders, 9 l_wrist, 11/12 hips; keypoint k at (10 k, 100 + k).
    np.testing.assert_allclose(joints[J("pelvis")], [115.0, 111.5])  # mid-hip
    np.testing.assert_allclose(joints[J("thorax")], [55.0, 105.5])  # mid-shoulder
    np.testing.assert_allclose(joints[J("spine")], [85.0, 108.5])  # halfway
    np.testing.assert_allclose(joints[J("head_top")], [15.0, 101.5])  # 2 * mid-ear (35, 103.5) - thorax
    np.testing.assert_allclose(joints[J("l_wrist")], [90.0, 109.0])
    assert conf[J("l_wrist")] == 1.0  # labelled but hidden still counts: confidence = (v > 0)
    assert np.isnan(joints[J("neck_nose")]).all() and conf[J("neck_nose")] == 0.0  # unlabelled nose
    assert np.isfinite(np.delete(joints, J("neck_nose"), axis=0)).all()


def test_crowdpose14_reads_and_maps_without_a_head(tmp_path):
    flat = []
    for k in range(14):
        flat += [20.0 * k, 200.0 + k, 2]
    categories = [{"id": 1, "name": "person", "keypoints": list(LAYOUTS["crowdpose14"].keypoints)}]
    labels = load_coco_keypoints(write(tmp_path, coco_file([person(flat)], categories)))
    assert labels.layout == "crowdpose14"
    ann = labels.annotations[0]
    assert ann.keypoints.shape == (14, 2) and ann.layout == "crowdpose14"
    joints, conf = annotation_to_h36m17(ann)
    # CrowdPose: 0/1 shoulders, 4 l_wrist, 6/7 hips, 11 r_ankle; 12 head and 13 neck are not mapped.
    np.testing.assert_allclose(joints[J("pelvis")], [130.0, 206.5])
    np.testing.assert_allclose(joints[J("thorax")], [10.0, 200.5])
    np.testing.assert_allclose(joints[J("l_wrist")], [80.0, 204.0])
    np.testing.assert_allclose(joints[J("r_ankle")], [220.0, 211.0])
    for joint in ("neck_nose", "head_top"):
        assert np.isnan(joints[J(joint)]).all() and conf[J(joint)] == 0.0
    assert conf.sum() == 15


def test_human_art_style_category_with_extra_names_is_coco17(tmp_path):
    names = list(LAYOUTS["coco17"].keypoints) + ["left_finger", "right_finger", "left_toe", "right_toe"]
    ann = person(coco17_keypoints(), keypoints_21=[0] * 63)
    labels = load_coco_keypoints(write(tmp_path, coco_file([ann], [{"id": 1, "keypoints": names}])))
    assert labels.layout == "coco17" and labels.annotations[0].keypoints.shape == (17, 2)


def test_layout_can_be_named_when_the_file_has_no_categories(tmp_path):
    content = coco_file([person(coco17_keypoints())], categories=[])
    path = write(tmp_path, content)
    with pytest.raises(DataFileError, match="pass layout="):
        load_coco_keypoints(path)
    assert load_coco_keypoints(path, layout="coco17").layout == "coco17"


def test_batched_mapping_matches_one_by_one():
    rng = np.random.default_rng(0)
    keypoints = rng.uniform(0, 500, size=(4, 17, 2))
    visibility = rng.integers(0, 3, size=(4, 17))
    joints, conf = keypoints_to_h36m17(keypoints, visibility, "coco17")
    for i in range(4):
        one, one_conf = keypoints_to_h36m17(keypoints[i], visibility[i], "coco17")
        np.testing.assert_array_equal(joints[i], one)
        np.testing.assert_array_equal(conf[i], one_conf)


@pytest.mark.parametrize(
    "content, problem",
    [
        ('{"annotations": [', "malformed JSON"),
        ("[]", "expected a COCO JSON object"),
        ({"images": []}, "no 'annotations' list"),
        (coco_file([person(coco17_keypoints()[:-3])]), "48 keypoint values, coco17 needs 3 x 17 = 51"),
        (coco_file([person(coco17_keypoints()[:-1] + [3])]), "visibility flags must be 0, 1 or 2"),
        (coco_file([person(None)]), "no 'keypoints' list"),
        (coco_file([person(coco17_keypoints(), image_id=99)]), "image_id 99 is not in 'images'"),
        (coco_file([person(coco17_keypoints()[:-1] + ["2"])]), "expected a number"),
        (coco_file([person(coco17_keypoints(), bbox=[1, 2, 3])]), "bbox must be [x, y, w, h]"),
        (coco_file([person(coco17_keypoints())], categories=[{"keypoints": ["a", "b"]}]), "unknown keypoint names"),
        (coco_file([person(coco17_keypoints())], images=[{"id": 7}]), "needs id, file_name, width and height"),
    ],
)
def test_bad_files_name_file_and_problem(tmp_path, content, problem):
    path = write(tmp_path, content)
    with pytest.raises(DataFileError) as err:
        load_coco_keypoints(path)
    assert err.value.source == str(path) and problem in err.value.problem


def test_missing_file_and_unknown_layout(tmp_path):
    with pytest.raises(DataFileError, match="cannot read"):
        load_coco_keypoints(tmp_path / "absent.json")
    with pytest.raises(ValueError, match="unknown layout"):
        load_coco_keypoints(tmp_path / "absent.json", layout="mpii16")


REAL_FILES = [
    ("ochuman/test_ochuman.json", "coco17", 5),
    ("crowdpose/test_crowdpose.json", "crowdpose14", 5),
    ("humanart/test_humanart.json", "coco17", 4),
]


@pytest.mark.parametrize("name, layout, count", REAL_FILES)
def test_real_labelled_photos(name, layout, count):
    path = POSE_IMAGES / name
    if not path.exists():
        pytest.skip(f"{path} not present (the shared data folder is optional)")
    labels = load_coco_keypoints(path)
    assert labels.layout == layout and len(labels) == count
    for ann in labels.annotations:
        width, height = ann.image_size
        labelled = ann.visibility > 0
        assert ((ann.keypoints[labelled] >= 0) & (ann.keypoints[labelled] <= [width, height])).all()
        assert (ann.keypoints[~labelled] == 0).all()
        joints, conf = annotation_to_h36m17(ann)
        assert (np.isfinite(joints).all(axis=-1) == (conf > 0)).all()
        ok = conf > 0
        if not labelled.any():  # CrowdPose has a person with no labelled keypoint
            assert not ok.any()
            continue
        # Every joint but the head top is an average of labelled points, so it lies within their range.
        near = ok & (np.arange(17) != J("head_top"))
        low, high = ann.keypoints[labelled].min(axis=0), ann.keypoints[labelled].max(axis=0)
        assert ((joints[near] >= low - 1e-3) & (joints[near] <= high + 1e-3)).all()
