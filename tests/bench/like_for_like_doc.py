"""Reading the like-for-like parts of a rendered BENCHMARKS.md (shared by the tests of the
ladder rule and of the paired rounds, which read the same table, sentences and targets row)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = [
    "SENTENCE",
    "TARGET",
    "doc_section",
    "paired_base",
    "table_row",
    "targets_status",
    "verdict_sentence",
]

ROOT = Path(__file__).resolve().parents[2]

#: The targets table's row for each deployment of the WebSocket path.
TARGET = {"gateway": "like for like (same protocol)", "up": "like for like, one process"}
#: How the verdict sentence under the like-for-like table starts, per deployment.
SENTENCE = {"gateway": "- Two processes", "up": "- One process"}


def doc_section(doc: str, title: str) -> str:
    """The ``## title`` section, up to the next one."""
    start = doc.index(f"## {title}")
    return doc[start : doc.index("\n## ", start + 1)]


def table_row(text: str, n: int) -> list[str]:
    """The cells of the table row for ``n`` streams."""
    line = next(x for x in text.splitlines() if x.startswith(f"| {n} |"))
    return [c.strip() for c in line.strip("|").split("|")]


def targets_status(doc: str, phase: str) -> str:
    """The status cell of a deployment's row in "Against the targets"."""
    row = next(
        x for x in doc_section(doc, "Against the targets").splitlines() if TARGET[phase] in x
    )
    return row.rstrip(" |").rsplit("|", 1)[1].strip()


def verdict_sentence(doc: str, phase: str) -> str:
    """A deployment's verdict sentence in "Like for like"."""
    lines = doc_section(doc, "Like for like").splitlines()
    return next(x for x in lines if x.startswith(SENTENCE[phase]))


def paired_base() -> dict[str, Any]:
    """The committed run with the pipecat, gateway and up ladders of a run that had them: the
    steps the paired tests plant their tries from (``test_like_for_like_paired.planted``)."""
    data: dict[str, Any] = json.loads((ROOT / "bench/results/latest.json").read_text())
    ladders = json.loads((ROOT / "bench/results/latest_2308_d2b97b5.json").read_text())
    for label in ("pipecat", "up", "gateway"):
        data[label] = ladders[label]
    return data
