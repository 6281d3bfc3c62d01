"""Markdown pieces the report sections share: a number as a table cell, and a table as lines."""

from __future__ import annotations


def cell(x) -> str:
    """None as "-", numbers in [-1, 1] to 3 decimals, larger ones to 1, anything else as text."""
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.3f}" if abs(x) <= 1 else f"{x:.1f}"
    return str(x)


def table_lines(header: list[str], rows: list[list]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *["| " + " | ".join(cell(x) for x in row) + " |" for row in rows]]
