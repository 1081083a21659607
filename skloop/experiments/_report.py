"""Plain-text tables for the command-line reports (markdown, so they paste into notes)."""

from __future__ import annotations

import numpy as np

__all__ = ["markdown_table", "format_number"]


def format_number(value) -> str:
    """Integers as they are; floats to three significant digits (scientific when tiny/huge)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return str(value)
    if value == 0:
        return "0"
    if value != value:  # NaN: not reached / not defined
        return "—"
    if abs(value) < 1e-2 or abs(value) >= 1e7:
        return f"{value:.2e}"
    if abs(value) >= 1000:
        return f"{value:.0f}"
    return f"{value:.3g}"


def markdown_table(headers: list[str], rows: list[list]) -> str:
    """A markdown table with right-aligned numeric columns."""
    cells = [[format_number(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    numeric = [not isinstance(v, str) for v in rows[0]] if rows else [False] * len(headers)
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = [
        "| "
        + " | ".join(
            c.rjust(w) if num else c.ljust(w)
            for c, w, num in zip(row, widths, numeric, strict=True)
        )
        + " |"
        for row in cells
    ]
    return "\n".join([line, rule, *body])
