"""Clip labels as bundles store them and requests filter by them: the label fields and how a label is compared."""

from __future__ import annotations

import re

LABEL_FIELDS = ("content", "style", "dataset", "source")


def normalise_label(value: str) -> str:
    """Case, surrounding space, and spaces / underscores as separators do not matter: "Walk Turn_Left" ->
    "walk-turn-left" (the builder already maps the two Bandai datasets' label spellings onto one vocabulary).
    The service's filters and the Milvus collection's scalar fields both go through this."""
    return re.sub(r"[\s_]+", "-", value.strip().lower())
