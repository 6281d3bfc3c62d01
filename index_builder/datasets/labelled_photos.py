"""The real labelled photos (``../shared/data/pose-images``) and the people BlazePose finds in them; numpy only.

Shared by the detector calibration (``index_builder.training.detector_calibration``) and the image evaluation
(``index_builder.evaluation.images``). Every labelled person of MPII-16, OCHuman and Human-Art (COCO-17) and
CrowdPose-14 is read with the SAME shared formulas (``model.pose.joint_formulas``) the detection is read with:

- detection: ``layout_to_unihpr17(landmarks, "blazepose33", visibility)``, every joint;
- COCO-17 labels: ``layout_to_unihpr17(..., "coco17")``, every joint (head_top = 2 mid_ears - thorax, ears labelled);
- MPII-16 and CrowdPose-14 labels: limbs directly, pelvis / thorax / spine from the labelled hips and shoulders.
  They have no nose or ears, so neck_nose and head_top are not compared. Their own pelvis / thorax / head top /
  neck points are labelled points, not our formulas: they are kept apart (``LabelledPerson.own``).

A person is found when a detected box has IoU >= ``FOUND_IOU`` with the label box, matched one-to-one, greedy by
IoU (as ``tests/model/test_blazepose.py`` does). Both poses of a match are normalised with the label's box
(``normalize_2d`` on the label's h36m17 joints, plus its labelled head top where the formula head_top is
missing), so 1 = the longer half-side of the label pose's box, the units of ``DetectorNoise``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from index_builder.bundle.blazepose_assets import BlazePoseFiles
from index_builder.datasets.coco_keypoints import keypoints_to_h36m17, load_coco_keypoints
from index_builder.progress import progress_bar
from model.pose.joint_formulas import layout_to_unihpr17
from model.pose.joint_layouts import LAYOUTS
from model.pose.normalization import normalize_2d
from model.pose.skeleton import H36M17
from model.runtime.blazepose import BlazePose
from model.runtime.blazepose_anchors import box_iou

FOUND_IOU = 0.5  # a label is found by the detected box overlapping it this much

MPII16 = LAYOUTS["mpii16"]
# dataset -> (folder, label file, layout, prefix of file_name to drop)
DATASETS = {
    "mpii": ("mpii", "test_mpii.json", "mpii16", ""),
    "ochuman": ("ochuman", "test_ochuman.json", "coco17", ""),
    "crowdpose": ("crowdpose", "test_crowdpose.json", "crowdpose14", ""),
    "humanart": ("humanart", "test_humanart.json", "coco17", "HumanArt/images/"),
}
DATASET_TITLES = {"mpii": "MPII", "ochuman": "OCHuman", "crowdpose": "CrowdPose", "humanart": "Human-Art"}
J = H36M17.index


@dataclass
class LabelledPerson:
    """One labelled person, pixels (x right, y down).

    box: (4,) [x0, y0, x1, y1], the box matched against detections (the file's bbox; MPII: its labelled joints).
    joints: (17, 2) float64, h36m17 made with the shared formulas from the labels; NaN where the layout cannot.
    occluded: (17,) bool, labelled but marked not visible (any landmark the joint uses).
    own: the dataset's own points that are not our formulas (MPII pelvis / thorax / head_top, CrowdPose head /
        neck), name -> (2,) px.
    """

    dataset: str
    image: Path
    box: np.ndarray
    joints: np.ndarray
    occluded: np.ndarray
    own: dict[str, np.ndarray] = field(default_factory=dict)

    def box_points(self) -> np.ndarray:
        """(K, 2) the points whose box normalises this pose: its h36m17 joints, plus the labelled head top
        where the formula head_top is missing."""
        points = [self.joints[np.isfinite(self.joints).all(axis=1)]]
        if not np.isfinite(self.joints[J("head_top")]).all():
            points += [p[None] for name, p in self.own.items() if name in ("head_top", "head")]
        return np.concatenate(points)


def _mpii_people(folder: Path, label_file: str) -> list[LabelledPerson]:
    """MPII-16 labels: (16, 2) px, unlabelled joints at -1; ``joints_vis`` 0 on a labelled joint is taken as
    occluded (every labelled joint of these files has 1)."""
    people = []
    for ann in json.loads((folder / label_file).read_text()):
        points = np.asarray(ann["joints"], np.float64)
        assert points.shape == (MPII16.size, 2), points.shape
        labelled = (points > 0).all(axis=1)
        visible = labelled & (np.asarray(ann["joints_vis"]) > 0)
        by_name = {n: k for k, n in enumerate(MPII16.keypoints)}
        joints, vis = layout_to_unihpr17(np.where(labelled[:, None], points, np.nan), MPII16.name,
                                         visible.astype(np.float64))
        own = {n: points[by_name[n]] for n in ("pelvis", "thorax", "head_top") if labelled[by_name[n]]}
        people.append(LabelledPerson(
            dataset="mpii", image=folder / ann["image"],
            box=np.concatenate([points[labelled].min(0), points[labelled].max(0)]),  # head top included
            joints=joints, occluded=np.isfinite(joints).all(axis=1) & (vis == 0), own=own))
    return people


def _coco_people(dataset: str, folder: Path, label_file: str, layout: str, prefix: str) -> list[LabelledPerson]:
    """COCO-format labels (COCO-17 or CrowdPose-14) of the images present in ``folder``."""
    people = []
    for ann in load_coco_keypoints(folder / label_file, layout=layout).annotations:
        image = folder / ann.file_name.removeprefix(prefix)
        if ann.iscrowd or not (ann.visibility > 0).any() or not image.is_file():
            continue  # crowd regions, people without keypoints, images not shipped in the folder
        joints, _ = keypoints_to_h36m17(ann.keypoints, ann.visibility, layout)
        _, seen = keypoints_to_h36m17(ann.keypoints, np.where(ann.visibility == 2, 2, 0), layout)
        own = {}
        if layout == "crowdpose14":  # head (top) and neck, the last two points
            own = {n: ann.keypoints[k].astype(np.float64) for n, k in (("head", 12), ("neck", 13))
                   if ann.visibility[k] > 0}
        x, y, w, h = ann.bbox
        people.append(LabelledPerson(
            dataset=dataset, image=image, box=np.array([x, y, x + w, y + h], np.float64), joints=joints,
            occluded=np.isfinite(joints).all(axis=1) & (seen == 0), own=own))
    return people


def load_labelled_people(pose_images_dir: Path) -> list[LabelledPerson]:
    """Every usable labelled person of the four datasets, in dataset order, then file order."""
    people = []
    for dataset, (folder, label_file, layout, prefix) in DATASETS.items():
        if layout == "mpii16":
            people += _mpii_people(pose_images_dir / folder, label_file)
        else:
            people += _coco_people(dataset, pose_images_dir / folder, label_file, layout, prefix)
    return people


@dataclass
class Match:
    """A labelled person found by BlazePose, both poses in the label's normalised units (1 = longer half-side).

    label, detection: (17, 2) float64 h36m17 (label NaN where not comparable); visibility: (17,) BlazePose's.
    scale: px per normalised unit; box_size: (2,) px, width and height of the normalising box.
    """

    person: LabelledPerson
    label: np.ndarray
    detection: np.ndarray
    visibility: np.ndarray
    own: dict[str, np.ndarray]
    scale: float
    box_size: np.ndarray
    swapped: bool = False


def _normalised_match(person: LabelledPerson, landmarks: np.ndarray, visibility: np.ndarray) -> Match:
    """landmarks: (33, 2) px, visibility (33,): one detected BlazePose person."""
    detection, det_vis = layout_to_unihpr17(landmarks.astype(np.float64), "blazepose33", visibility.astype(np.float64))
    points = person.box_points()
    _, centre, scale = normalize_2d(points[None])  # centre (1, 2) px, scale (1,) px
    centre, scale = centre[0], float(scale[0])
    own = {name: (p - centre) / scale for name, p in person.own.items()}
    return Match(person=person, label=(person.joints - centre) / scale, detection=(detection - centre) / scale,
                 visibility=det_vis, own=own, scale=scale, box_size=points.max(0) - points.min(0))


def _load_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def match_people(people: list[LabelledPerson], blazepose: BlazePose, progress: bool = True) -> list[Match]:
    """Run BlazePose once per image and pair labels with detections: one-to-one, greedy by IoU >= FOUND_IOU."""
    matches = []
    images = list(dict.fromkeys(p.image for p in people))  # first-seen order
    for image in progress_bar(images, desc="BlazePose on the labelled photos", enabled=progress, unit="image"):
        labels = [p for p in people if p.image == image]
        detected = blazepose.detect(_load_rgb(image))
        if not detected:
            continue
        iou = np.stack([box_iou(lab.box, np.stack([d.box for d in detected]).astype(np.float64))
                        for lab in labels])  # (L, D)
        while iou.size and iou.max() >= FOUND_IOU:
            li, di = np.unravel_index(np.argmax(iou), iou.shape)
            iou[li, :] = iou[:, di] = -1
            matches.append(_normalised_match(labels[li], detected[di].keypoints, detected[di].visibility))
    return matches


def people_per_dataset(people: list[LabelledPerson]) -> dict[str, int]:
    """How many labelled people each dataset contributes."""
    return {d: sum(p.dataset == d for p in people) for d in DATASETS}


def find_labelled_people(pose_images_dir: Path,
                         blazepose_files: BlazePoseFiles) -> tuple[list[LabelledPerson], list[Match]]:
    """Run BlazePose (one thread: deterministic) on the labelled photos: every labelled person, and the found
    ones as matches.

    pose_images_dir: the ``pose-images`` folder (mpii/, ochuman/, crowdpose/, humanart/ with their label files).
    """
    people = load_labelled_people(Path(pose_images_dir))
    blazepose = BlazePose(blazepose_files.detector, blazepose_files.landmarks, num_threads=1)
    return people, match_people(people, blazepose)


def photos_present(pose_images: Path) -> bool:
    """Whether ``pose_images`` holds every dataset's label file."""
    return all((Path(pose_images) / folder / labels).is_file() for folder, labels, _, _ in DATASETS.values())
