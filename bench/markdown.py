"""Markdown for the generated benchmark docs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["number", "table", "table_lines"]


def table_lines(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> list[str]:
    """A Markdown table as lines: the header, its rule, then one line per row."""
    head = list(header)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def table(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    """The same table as one string."""
    return "\n".join(table_lines(header, rows))


def number(value: Any, digits: int, missing: str = "-") -> str:
    """A figure for a table: floats to ``digits`` places, None as ``missing``."""
    if value is None:
        return missing
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)
