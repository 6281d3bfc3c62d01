"""Markdown pieces the report sections share: a number as a table cell, a table as lines, a section's heading, a
protocol as a sentence, a ratio as a word and the issues' targets as a table."""

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


def table(header: list[str], rows: list[list]) -> str:
    return "\n".join(table_lines(header, rows))


def section_heading(section: dict | None, title: str) -> tuple[list[str], bool]:
    """The opening lines of a report section and whether its numbers follow: none for a section absent from older
    results, the heading and its note for one that was not computed, else the heading."""
    if section is None:
        return [], False
    out = [f"## {title}", ""]
    if section.get("status") != "computed":
        return out + [f"Skipped: {section.get('note')}.", ""], False
    return out, True


def sentence(text: str) -> str:
    """A protocol description as a sentence: capitalised, full stop."""
    return text[:1].upper() + text[1:] + "."


def better(ratio: float) -> str:
    """UniHPR's error over another's as a word for the summary: below 1 is better."""
    return "better" if ratio < 1 else "worse" if ratio > 1 else "level"


def met(target: dict) -> str:
    return "not measurable" if target["met"] is None else "met" if target["met"] else "NOT met"


def targets_table(targets: list[dict], issue: int = 12) -> str:
    """An issue's targets: what, the value measured, the threshold and whether it is met."""
    return table([f"target (issue #{issue})", "value", "threshold", "met"],
                 [[t["target"], "-" if t["value"] is None else f"{t['value']:.3f}", f"{t['threshold']:g}", met(t)]
                  for t in targets])
