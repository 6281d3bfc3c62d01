"""The pose database of a bundle: poses, per-pose metadata, result ids, and filters as pose masks.

poses: (N, 17, 3) float32 mm, root-relative, world frame (Y up). Per pose: clip index and frame number; per clip:
name, dataset, content, style, source, fps. A result's id is ``<clip name>#<frame>``: it depends only on the data,
so it is stable across rebuilds of the same data (unlike FAISS row numbers).
"""

from __future__ import annotations

import json
import math

import numpy as np

from model.pose.joint_conventions import FIELD, OURS, convert_joints
from model.runtime.labels import LABEL_FIELDS, normalise_label
from service.errors import MAX_ECHO, UnknownLabelError
from service.schemas.requests import Filters, FilterSet

POSE_DECIMALS = 2  # mm in responses: 0.01 mm
ERROR_DECIMALS = 1  # expected error, mm


class PoseCatalog:
    """Metadata and poses of the N database poses, and the V view rotations.

    rotations: (V, 3, 3) world -> camera of the virtual views; a root-relative world pose p (17, 3) seen by view
    v is ``p @ rotations[v].T``.
    """

    def __init__(self, poses: np.ndarray, rotations: np.ndarray, metadata: dict[str, np.ndarray],
                 view_azimuths: list[float]):
        self.poses = poses
        self.rotations = rotations
        self.clip = metadata["clip"].astype(np.int64)  # (N,)
        self.frame = metadata["frame"].astype(np.int64)  # (N,)
        self.clip_name = [str(x) for x in metadata["clip_name"]]
        self.clip_fps = metadata["clip_fps"].astype(np.float64)
        fps = self.clip_fps[self.clip]
        # (N,) each pose's time in its clip's source, seconds, as results give it (NaN where the rate is unknown):
        # once here rather than a few numpy calls per answer
        self.time = np.round(np.divide(self.frame, fps, out=np.full(len(self.frame), np.nan), where=fps > 0), 6)
        raw = {"content": metadata["clip_content"], "style": metadata["clip_style"],
               "dataset": metadata["clip_dataset"], "source": metadata["clip_source"]}
        self.clip_labels = {f: np.array([normalise_label(str(x)) for x in v]) for f, v in raw.items()}
        self.clip_names = np.array(self.clip_name)
        self.known = {f: sorted(set(v.tolist())) for f, v in self.clip_labels.items()}
        self.view_azimuths = list(view_azimuths) or [0.0] * len(rotations)
        self.clip_label_dicts = [{f: str(self.clip_labels[f][c]) for f in ("content", "style", "dataset")}
                                 for c in range(len(self.clip_name))]
        self.clip_sources = [str(x) for x in self.clip_labels["source"]]
        self.clip_index = {name: c for c, name in enumerate(self.clip_name)}
        # rows of each clip in frame order: clip c is _clip_rows[_clip_bounds[c]:_clip_bounds[c + 1]]
        self._clip_rows = np.lexsort((self.frame, self.clip))
        self._clip_bounds = np.searchsorted(self.clip[self._clip_rows], np.arange(len(self.clip_name) + 1))

    def __len__(self) -> int:
        return len(self.poses)

    def rows_of_clip(self, clip: int) -> np.ndarray:
        """(F,) int64 pose rows of clip ``clip``, in frame order."""
        return self._clip_rows[self._clip_bounds[clip] : self._clip_bounds[clip + 1]]

    def clip_info(self, clip: int) -> dict:
        """What ``GET /clips/{clip}`` tells of a clip (JSON-ready; no licence, which is the bundle's)."""
        frames = self.frame[self.rows_of_clip(clip)]
        fps = float(self.clip_fps[clip])
        return {"clip": self.clip_name[clip], "fps": fps, "frames": len(frames),
                "first_frame": int(frames.min()) if len(frames) else None,
                "last_frame": int(frames.max()) if len(frames) else None,
                "duration": round(float(frames.max() - frames.min()) / fps, 6) if len(frames) and fps > 0 else None,
                "labels": self.clip_label_dicts[clip], "source": self.clip_sources[clip]}

    def _clip_mask(self, which: FilterSet, where: str, matches_all: bool) -> np.ndarray:
        """(C,) bool: clips matching every listed field (include) or any listed value (exclude)."""
        mask = np.full(len(self.clip_name), matches_all)
        for name in ("clip", *LABEL_FIELDS):
            values = getattr(which, name)
            if values is None:
                continue
            if name == "clip":
                hit = np.isin(self.clip_names, values)
            else:
                wanted = [normalise_label(v) for v in values]
                for i, v in enumerate(wanted):
                    if v not in self.known[name]:
                        raise UnknownLabelError(f"unknown {name} {values[i][:MAX_ECHO]!r}; known: "
                                                f"{', '.join(self.known[name])}", f"filters.{where}.{name}[{i}]")
                hit = np.isin(self.clip_labels[name], wanted)
            mask = (mask & hit) if matches_all else (mask | hit)
        return mask

    def pose_mask(self, filters: Filters | None) -> np.ndarray | None:
        """(N,) bool of the poses the filters keep, or None for no filtering.

        include: a pose is kept when, for every listed field, its clip has one of the values.
        exclude: a pose is dropped when its clip has any listed value of any listed field.
        """
        if filters is None or (filters.include is None and filters.exclude is None):
            return None
        keep = np.ones(len(self.clip_name), bool)
        if filters.include is not None:
            keep &= self._clip_mask(filters.include, "include", True)
        if filters.exclude is not None:
            keep &= ~self._clip_mask(filters.exclude, "exclude", False)
        return keep[self.clip]

    def expression(self, filters: Filters | None) -> str | None:
        """The filters as a Milvus boolean expression over the collection's scalar fields
        (``index_builder.bundle.milvus_collection``: clip_name and the normalised labels), or None for no filtering.
        The same selection as ``pose_mask``, which validates the labels: call that first."""
        if filters is None or (filters.include is None and filters.exclude is None):
            return None

        def terms(which: FilterSet) -> list[str]:
            out = []
            for name in ("clip", *LABEL_FIELDS):
                values = getattr(which, name)
                if values is None:
                    continue
                values = values if name == "clip" else [normalise_label(v) for v in values]
                literal = json.dumps(sorted(set(values)), ensure_ascii=False)  # Milvus string literals are JSON's
                out.append(f"{'clip_name' if name == 'clip' else name} in {literal}")
            return out

        parts = terms(filters.include) if filters.include is not None else []
        excluded = terms(filters.exclude) if filters.exclude is not None else []
        if excluded:
            parts.append(f"not ({' or '.join(excluded)})")
        return " and ".join(parts) or None

    def results(self, hits: list, align_to_query: bool, include_pose3d: bool,
                crop: np.ndarray | None = None, layout: str = FIELD) -> list[dict]:
        """Retrieval results (JSON-ready) of one query's hits (``service.pose_search.Hit``), best first; the
        poses of all hits are rotated and rounded in one array operation.

        With ``align_to_query`` each pose is seen by its matched view; ``crop`` (3, 3), the query's perspective-crop
        rotation (real -> virtual camera), then takes it from the virtual camera the query embedding lives in back
        to the query's real camera frame (``crop.T``); None for queries without one (3D poses, embeddings).
        layout: the joint convention of the poses returned (the library's unihpr17 poses converted).
        """
        if not hits:
            return []
        pose = np.array([h.pose for h in hits])
        view = np.array([h.view for h in hits])
        clip, frame = self.clip[pose], self.frame[pose]
        if include_pose3d:
            poses = convert_joints(self.poses[pose].astype(np.float64), OURS, layout)  # (H, 17, 3) world Y-up
            if align_to_query:
                turn = self.rotations[view]  # (H, 3, 3) world -> matched view
                if crop is not None:
                    turn = crop.T @ turn  # then virtual -> real camera
                poses = poses @ np.swapaxes(turn, -1, -2)  # each as its matched view sees it
            poses = np.round(poses, POSE_DECIMALS)  # written as lists by service.responses
        out = []
        times = self.time[pose].tolist()  # Python floats: cheaper to test and write than numpy scalars, one by one
        fps = self.clip_fps[clip].tolist()
        for j, (c, f, h) in enumerate(zip(clip.tolist(), frame.tolist(), hits)):
            result = {"id": f"{self.clip_name[c]}#{f}", "score": round(h.score, 6),
                      "rank_score": round(h.score if h.rank is None else h.rank, 6),
                      "fit_residual": None if h.residual is None else round(h.residual, 6),
                      "confidence": None if h.expected_error is None else {
                          "expected_error_mm": round(h.expected_error, ERROR_DECIMALS),
                          "far_from_library": bool(h.far)}}
            if include_pose3d:
                result["pose3d"] = poses[j]
            result["metadata"] = {
                "clip": self.clip_name[c], "frame": f, "time": None if math.isnan(times[j]) else times[j],
                "fps": fps[j], "labels": self.clip_label_dicts[c], "source": self.clip_sources[c],
                "view": h.view, "view_azimuth_deg": float(self.view_azimuths[h.view]),
            }
            out.append(result)
        return out
