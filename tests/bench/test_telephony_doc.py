"""docs/TELEPHONY_BENCH.md is its committed JSON rendered, and its verdicts follow the data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.telephony_report import DOC, RESULT, render, summarise


@pytest.fixture(scope="module")
def report() -> dict[str, object]:
    data: dict[str, object] = json.loads(Path(RESULT).read_text())
    return data


def test_doc_is_the_json_rendered(report: dict[str, object]) -> None:
    assert Path(DOC).read_text() == render(report), (
        "docs/TELEPHONY_BENCH.md differs from its JSON: re-render with "
        "`.venv/bin/python -m bench.telephony --render-only`"
    )


def test_summary_is_computed_from_the_measurements(report: dict[str, object]) -> None:
    assert summarise(report) == report["summary"]


def test_verdicts_follow_the_numbers(report: dict[str, object]) -> None:
    summary = report["summary"]
    assert isinstance(summary, dict)
    doc = Path(DOC).read_text()
    edge_met = summary["edge_ratio"] <= 1.2
    assert (
        f"**{summary['edge_ratio']:.2f}x** (target <= 1.2x: {'met' if edge_met else 'missed'})"
        in doc
    )
    p50 = summary["latency_p50_ms"]
    met = p50 is not None and p50 <= 550
    assert f"(target p50 <= 550 ms: {'met' if met else 'missed'})" in doc
