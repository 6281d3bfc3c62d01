"""Which files are clips, what each is called, and its labels.

Clip ids are the path relative to the input folder, under the folder's name and without the suffix
(``bvh-rigs/mocapbank``, ``subjects/001/001_01``), so equal file names in different folders never collide; a file
given directly is called by its stem. Two inputs that would give the same id are refused.

Labels (dataset, content, style), first found wins:
1. a JSON sidecar beside the clip (``walk_01.bvh`` -> ``walk_01.json``): ``{"content": ..., "style": ...,
   "dataset": ...}``; an integer indexes the lines of ``cfg/content_label.txt`` / ``cfg/style_label.txt`` in a
   folder above (the Bandai layout);
2. a ``labels.csv`` in the clip's folder or one above it (up to the input folder), columns ``clip`` (file name,
   stem, or path relative to the CSV's folder), ``content``, ``style``, optionally ``dataset``;
3. folder names: content is the clip's folder (relative to the input folder), dataset the input folder's name.
Missing values are ``unlabelled``; every value is normalised like the Bandai labels (lower case, spaces to ``_``,
``dataset-N_`` prefixes and style aliases removed: ``canonical_label``).
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from index_builder.errors import ConfigError, DataFileError
from index_builder.ingest.clip_steps import FileTask
from index_builder.ingest.file_formats import motion_format

UNLABELLED = "unlabelled"
LABELS_CSV = "labels.csv"
LABEL_KEYS = ("dataset", "content", "style")
BANDAI_LABEL_FILES = {"content": "content_label.txt", "style": "style_label.txt"}

# Dataset 1 and dataset 2 name the same styles differently; dataset 2's names are kept.
STYLE_ALIASES = {
    "masculinity": "masculine",
    "old": "elderly",
    "tired": "exhausted",
    "childish": "youthful",
}


def canonical_label(raw: str) -> str:
    """The Bandai vocabulary: 'dataset-1_masculinity' -> 'masculine'; 'dataset-2_walk' -> 'walk'."""
    name = raw.strip().split("_", 1)[-1] if raw.strip().startswith("dataset-") else raw.strip()
    return STYLE_ALIASES.get(name, name)


@dataclass(frozen=True)
class ClipLabels:
    dataset: str
    content: str
    style: str


def label_text(raw: object) -> str:
    """'Dataset-1_Walk Left ' -> 'walk_left'; empty -> ``UNLABELLED``."""
    text = re.sub(r"\s+", "_", str(raw).strip().lower())
    return (canonical_label(text) or UNLABELLED) if text else UNLABELLED


def find_clips(inputs: list[Path]) -> list[tuple[FileTask, Path]]:
    """Every motion file under the inputs, sorted, with its input folder (the root its id is relative to)."""
    found: dict[str, tuple[FileTask, Path]] = {}
    for given in inputs:
        if given.is_file():
            root, files = given.parent, [given]
        elif given.is_dir():
            root = given
            files = sorted(p for p in given.rglob("*") if p.is_file() and not p.name.startswith("."))
        else:
            raise DataFileError(str(given), "no such file or folder")
        for path in files:
            fmt = motion_format(path)
            if fmt is None:
                continue
            rel = path.relative_to(root).with_suffix("").as_posix()
            clip_id = rel if given.is_file() else f"{root.resolve().name}/{rel}"
            if clip_id in found:
                raise ConfigError(f"clip id {clip_id!r} from both {found[clip_id][0].path} and {path}; "
                                  "ingest those folders in separate runs or rename one")
            found[clip_id] = (FileTask(path=path, clip_id=clip_id, fmt=fmt), root)
    return [found[k] for k in sorted(found)]


@lru_cache(maxsize=256)
def _label_lines(folder: Path, key: str) -> tuple[str, ...] | None:
    path = folder / "cfg" / BANDAI_LABEL_FILES[key]
    return tuple(path.read_text().split()) if path.is_file() else None


@lru_cache(maxsize=256)
def _csv_rows(path: Path) -> dict[str, dict[str, str]]:
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            return {row["clip"].strip(): row for row in csv.DictReader(fh) if row.get("clip")}
    except (OSError, KeyError, csv.Error) as err:
        raise DataFileError(str(path), f"cannot read labels: {err}") from err


def _sidecar(path: Path, root: Path) -> dict[str, object]:
    sidecar = path.with_suffix(".json")
    if not sidecar.is_file() or sidecar == path:
        return {}
    try:
        data = json.loads(sidecar.read_text())
    except (OSError, ValueError) as err:
        raise DataFileError(str(sidecar), f"cannot read labels: {err}") from err
    out: dict[str, object] = {}
    for key in LABEL_KEYS:
        value = data.get(key) if isinstance(data, dict) else None
        if isinstance(value, int) and key in BANDAI_LABEL_FILES:
            names = next((n for f in path.parents if (n := _label_lines(f, key))), None)
            value = names[value] if names and 0 <= value < len(names) else None
        if value is not None:
            out[key] = value
    return out


def _csv_labels(path: Path, root: Path) -> dict[str, object]:
    folder = path.parent
    while True:
        table = folder / LABELS_CSV
        if table.is_file():
            rows = _csv_rows(table)
            rel = path.relative_to(folder)
            for key in (rel.as_posix(), rel.with_suffix("").as_posix(), path.name, path.stem):
                if key in rows:
                    return {k: v for k, v in rows[key].items() if k in LABEL_KEYS and v}
        if folder == root or folder == folder.parent:
            return {}
        folder = folder.parent


def clip_labels(path: Path, root: Path) -> ClipLabels:
    """The labels of one clip (see the module docstring for where they come from)."""
    found = _sidecar(path, root) or _csv_labels(path, root)
    folder = path.parent.relative_to(root).as_posix() if path.parent != root else ""
    defaults = {"dataset": root.resolve().name, "content": folder.rsplit("/", 1)[-1] or UNLABELLED,
                "style": UNLABELLED}
    return ClipLabels(**{k: label_text(found.get(k, defaults[k])) for k in LABEL_KEYS})
