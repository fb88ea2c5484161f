"""The like-for-like section with both deployments of the WebSocket path: two processes
(gateway + server) and one process (``sonicwire up``, phase ``up``).

The committed run's doc is checked by test_generated_docs.py. Here the run is taken without
its ``up`` phase (as runs before the phase existed were), ``up`` steps are planted into a copy
and the prose is read against the planted data: each deployment's figures, ratio and verdict,
never only the better one's.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from bench.report import render as render_benchmarks
from bench.summary import summarise

ROOT = Path(__file__).resolve().parents[2]
LADDER_RUN = "bench/results/latest_2308_d2b97b5.json"
IMAGES = ["bench_cpu_vs_n.png", "bench_latency_vs_n.png"]
TWO = "Two processes (the scale-out deployment"
ONE = "One process (`sonicwire up`, what `make run` starts)"


@pytest.fixture(scope="module")
def bench() -> dict[str, Any]:
    # a run with the single-step ladders this rule judged (the paired phase replaced them on
    # 2026-12-07: tests/bench/test_like_for_like_paired.py); such runs still render so
    data: dict[str, Any] = json.loads((ROOT / LADDER_RUN).read_text())
    # The planted cases below start from a run without the phase, whatever the committed run has.
    data.pop("up", None)
    data.get("skipped", {}).pop("up", None)
    data["summary"] = summarise(data)
    return data


def _with_up(bench: dict[str, Any], factor: float) -> dict[str, Any]:
    """The run with an ``up`` phase whose CPU is the gateway steps' times ``factor``."""
    planted = copy.deepcopy(bench)
    steps = copy.deepcopy(planted["gateway"]["steps"])
    for r in steps:
        r["target"] = "up"
        r["cpu_ms_per_stream_s"] *= factor
        r["rss_per_stream_mb"] = 0.5
    planted["up"] = {"steps": steps, "max_streams": max(r["n"] for r in steps)}
    planted["summary"] = summarise(planted)
    return planted


def _section(doc: str) -> str:
    start = doc.index("## Like for like")
    return doc[start : doc.index("\n## ", start + 1)]


def _ratios(
    results: dict[str, Any], phase: str, judged: bool = False
) -> dict[int, tuple[float, float]]:
    """{N: (Sonicwire CPU, ratio to pipecat)} at every N both ran, from the steps themselves;
    ``judged``: only the N the verdict counts (pipecat's step passed, or ours failed)."""
    peer = {r["n"]: r for r in results["pipecat"]["steps"]}
    return {
        r["n"]: (r["cpu_ms_per_stream_s"], r["cpu_ms_per_stream_s"] / p["cpu_ms_per_stream_s"])
        for r in results.get(phase, {}).get("steps", [])
        if (p := peer.get(r["n"])) is not None and (not judged or p["pass"] or not r["pass"])
    }


def _sentence(section: str, start: str) -> str:
    return next(line for line in section.splitlines() if line.startswith(f"- {start}"))


def _check_sentence(sentence: str, ratios: list[float]) -> None:
    said = re.search(r"is ([\d.]+)(?:-([\d.]+))?x pipecat's", sentence)
    assert said, sentence
    lo, hi = float(said.group(1)), float(said.group(2) or said.group(1))
    assert lo == pytest.approx(min(ratios), abs=0.005), sentence
    assert hi == pytest.approx(max(ratios), abs=0.005), sentence
    if max(ratios) <= 0.5:
        assert "within the <= 0.5x target" in sentence and "missed" not in sentence
    else:
        assert "**the <= 0.5x target is missed**" in sentence
    if max(ratios) < 1.0:
        assert "Sonicwire is" in sentence and "cheaper" in sentence


def _target_status(doc: str, label: str) -> str:
    start = doc.index("## Against the targets")
    rows = doc[start : doc.index("\n## ", start + 1)].splitlines()
    row = next(line for line in rows if label in line)
    return row.rstrip(" |").rsplit("|", 1)[1].strip()


@pytest.mark.parametrize("factor", [0.7, 1.1])
def test_both_deployments_are_tabled_and_judged(bench: dict[str, Any], factor: float) -> None:
    planted = _with_up(bench, factor)
    doc = render_benchmarks(planted, IMAGES)
    section = _section(doc)
    assert "sonicwire up" in section and "make run" in section and "scale-out" in section
    # what `sonicwire up` ships since 2026-12-06: the gateway's calls stay in the process
    assert "in-process channel" in section and "still reaching" not in section
    two, one = _ratios(planted, "gateway"), _ratios(planted, "up")
    cell = r"(\*\*[\d.]+x\*\*|<= [\d.]+x; pipecat failed: [^|]+|[\d.]+|-)"
    row = rf"^\| (\d+) \| {cell} \| {cell} \| {cell} \| {cell} \| {cell} \|"
    rows = re.findall(row, section, re.M)
    assert sorted(int(r[0]) for r in rows) == sorted(set(two) | set(one))
    for n, two_cpu, _peer, two_ratio, one_cpu, one_ratio in rows:
        for ours, cpu, ratio in ((two, two_cpu, two_ratio), (one, one_cpu, one_ratio)):
            if int(n) not in ours:
                assert cpu == "-" and ratio == "-"
                continue
            assert float(cpu) == pytest.approx(ours[int(n)][0], abs=0.005)
            ratio = ratio.removeprefix("<= ").split(";")[0]
            assert float(ratio.strip("*x")) == pytest.approx(ours[int(n)][1], abs=0.005)
    two, one = _ratios(planted, "gateway", True), _ratios(planted, "up", True)
    _check_sentence(_sentence(section, TWO), [r for _, r in two.values()])
    _check_sentence(_sentence(section, ONE), [r for _, r in one.values()])
    # the targets table judges each deployment by its own worst judged ratio
    for label, ratios in (("like for like (same protocol)", two), ("like for like, one", one)):
        met = max(r for _, r in ratios.values()) <= 0.5
        assert _target_status(doc, label) == ("met" if met else "missed")
    assert "## Server and gateway in one process: `sonicwire up`" in doc


def test_a_better_one_process_never_hides_the_missed_two(bench: dict[str, Any]) -> None:
    planted = _with_up(bench, 0.5)
    assert planted["summary"]["like_for_like_up_worst_ratio"] <= 0.5
    assert planted["summary"]["like_for_like_worst_ratio"] > 0.5  # the committed run
    section = _section(render_benchmarks(planted, IMAGES))
    assert "**the <= 0.5x target is missed**" in _sentence(section, TWO)
    assert "within the <= 0.5x target" in _sentence(section, ONE)


def test_a_skipped_one_process_phase_is_said(bench: dict[str, Any]) -> None:
    planted = copy.deepcopy(bench)
    planted["skipped"]["up"] = "time budget of the mode used up"
    planted["summary"] = summarise(planted)
    assert planted["summary"]["like_for_like_up"] == []
    doc = render_benchmarks(planted, IMAGES)
    sentence = _sentence(_section(doc), ONE)
    assert "**not measured** (time budget of the mode used up)" in sentence
    two = [r for _, r in _ratios(bench, "gateway", True).values()]
    _check_sentence(_sentence(_section(doc), TWO), two)
    assert _target_status(doc, "like for like, one") == "not measured"


def test_a_run_without_the_phase_keeps_one_deployment(bench: dict[str, Any]) -> None:
    # runs before the phase existed: no one-process key, row or sentence
    assert "up" not in bench and "like_for_like_up" not in bench["summary"]
    doc = render_benchmarks(bench, IMAGES)
    assert "like for like, one process" not in doc
    assert "sonicwire up" not in _section(doc)
