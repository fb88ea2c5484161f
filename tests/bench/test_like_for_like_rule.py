"""The like-for-like verdict when a step failed (issue 21; the lead's rule).

A pipecat step that failed (its core saturated, late frames) did not serve its N: its CPU per
stream-second is a lower bound on what N costs it, so Sonicwire's ratio there is an upper bound.
The verdict is judged at the N where both steps passed; an N where only pipecat's failed is shown
as ``<= ratio`` and left out; an N where Sonicwire's own step failed counts against it; with no N
where both passed the target is not measured; an N where Sonicwire's own step failed is a miss
whatever its ratio (it did not serve N streams).

Each case plants step results into a copy of the committed run (both deployments) and reads the
table cell, the sentence under the table and the targets row against the planted steps.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from bench.report import render as render_benchmarks
from bench.summary import summarise
from tests.bench.like_for_like_doc import (
    doc_section,
    table_row,
    targets_status,
    verdict_sentence,
)

ROOT = Path(__file__).resolve().parents[2]
LADDER_RUN = "bench/results/latest_2308_d2b97b5.json"
IMAGES = ["bench_cpu_vs_n.png", "bench_latency_vs_n.png"]


@pytest.fixture(scope="module")
def bench() -> dict[str, Any]:
    # a run with the single-step ladders this rule judged (the paired phase replaced them on
    # 2026-12-07: tests/bench/test_like_for_like_paired.py); such runs still render so
    data: dict[str, Any] = json.loads((ROOT / LADDER_RUN).read_text())
    return data


def _planted(bench: dict[str, Any], ratios: dict[int, float], **passes: dict[int, bool]) -> Any:
    """The run with pipecat at N=10, 20, 30 at 40 ms/stream-s, each deployment at ``ratios``
    of it, and the steps' verdicts from ``passes`` (phase -> {N: pass}; pass when unnamed)."""
    run = copy.deepcopy(bench)
    for phase in ("pipecat", "gateway", "up"):
        steps = []
        for n, ratio in sorted(ratios.items()):
            step = copy.deepcopy(run[phase]["steps"][0])
            ok = passes.get(phase, {}).get(n, True)
            reasons = [] if ok else ["3 late frames", "server CPU saturated"]
            cpu = 40.0 if phase == "pipecat" else 40.0 * ratio
            step.update(n=n, cpu_ms_per_stream_s=cpu, fail_reasons=reasons)
            step["pass"] = ok
            steps.append(step)
        run[phase] = {"steps": steps, "max_streams": max(ratios)}
    run["summary"] = summarise(run)
    return run


def test_the_rule_is_stated(bench: dict[str, Any]) -> None:
    section = doc_section(render_benchmarks(bench, IMAGES), "Like for like")
    assert "judged at the N where both steps passed" in section
    assert "Sonicwire's own step failed is a miss whatever its ratio" in section
    assert "With no N where both passed the target is not measured" in section


def test_a_failed_peer_step_is_a_bound_left_out_of_the_verdict(bench: dict[str, Any]) -> None:
    # 0.9x at N=30 where pipecat saturated: the old rule read "missed"; it is only a bound
    run = _planted(bench, {10: 0.40, 20: 0.45, 30: 0.90}, pipecat={30: False})
    s = run["summary"]
    assert s["like_for_like_up_worst_ratio"] == pytest.approx(0.45)
    assert s["targets"]["like_for_like_up_le_half_pipecat"] == "met"
    doc = render_benchmarks(run, IMAGES)
    section = doc_section(doc, "Like for like")
    cells = table_row(section, 30)
    assert cells[3] == cells[5] == "<= 0.90x; pipecat failed: saturated"
    assert table_row(section, 20)[5] == "**0.45x**"
    for phase in ("gateway", "up"):
        sentence = verdict_sentence(doc, phase)
        assert "0.40-0.45x pipecat's" in sentence and "judged at N=10, 20" in sentence
        assert "within the <= 0.5x target at every N judged" in sentence
        assert "At N=30 pipecat's step failed: 3 late frames; server CPU saturated" in sentence
        assert "upper bound, <= 0.90x, not judged" in sentence
        assert targets_status(doc, phase) == "met"
        assert "not judged: N=30 (pipecat failed, <= 0.90x)" in doc
    # the gRPC comparison in the headline leaves the same N out as a bound
    headline = next(x for x in doc.splitlines() if x.startswith("- Not like for like"))
    assert "(N=10, 20); at N=30 pipecat's step failed, so <= " in headline


def test_a_failed_step_of_ours_counts_against_us(bench: dict[str, Any]) -> None:
    # ours failed at N=30 (pipecat passed) and at N=20 where pipecat failed too: both counted
    run = _planted(
        bench,
        {10: 0.40, 20: 0.45, 30: 0.60},
        up={20: False, 30: False},
        pipecat={20: False},
    )
    s = run["summary"]
    assert s["like_for_like_up_worst_ratio"] == pytest.approx(0.60)
    assert s["targets"]["like_for_like_up_le_half_pipecat"] == "missed"
    # the two-process deployment passed at N=20, where pipecat failed: that N is a bound
    assert s["like_for_like_worst_ratio"] == pytest.approx(0.60)
    doc = render_benchmarks(run, IMAGES)
    section = doc_section(doc, "Like for like")
    assert table_row(section, 20)[3] == "<= 0.45x; pipecat failed: saturated"
    assert table_row(section, 20)[5] == "**0.45x**"
    sentence = verdict_sentence(doc, "up")
    assert "judged at N=10, where both steps passed" in sentence
    assert "at N=20 Sonicwire's step failed: 0.45x counted against it" in sentence
    assert "at N=30 Sonicwire's step failed: 0.60x counted against it" in sentence
    assert "**the <= 0.5x target is missed**: Sonicwire's step failed at N=20, 30" in sentence
    assert targets_status(doc, "up") == "missed"
    assert "and where Sonicwire's failed (20, 30)" in doc


def test_no_n_where_both_passed_is_not_measured(bench: dict[str, Any]) -> None:
    run = _planted(bench, {10: 0.40, 20: 0.45}, pipecat={10: False, 20: False})
    s = run["summary"]
    assert s["like_for_like_worst_ratio"] is None
    assert s["targets"]["like_for_like_le_half_pipecat"] == "not measured"
    assert s["targets"]["like_for_like_up_le_half_pipecat"] == "not measured"
    doc = render_benchmarks(run, IMAGES)
    for phase in ("gateway", "up"):
        sentence = verdict_sentence(doc, phase)
        assert "**not measured**: no N where both steps passed" in sentence
        assert "within" not in sentence and "missed" not in sentence
        assert "upper bound, <= 0.40x, not judged" in sentence
        assert targets_status(doc, phase) == "not measured"


def test_a_counted_miss_stands_without_an_n_where_both_passed(bench: dict[str, Any]) -> None:
    # ours failed at 0.8x where pipecat passed: a miss, not "not measured"
    run = _planted(bench, {10: 0.80, 20: 0.45}, up={10: False}, pipecat={20: False})
    assert run["summary"]["targets"]["like_for_like_up_le_half_pipecat"] == "missed"
    doc = render_benchmarks(run, IMAGES)
    assert "**the <= 0.5x target is missed**" in verdict_sentence(doc, "up")
    assert targets_status(doc, "up") == "missed"


def test_a_failed_step_of_ours_is_a_miss_whatever_its_ratio(bench: dict[str, Any]) -> None:
    # every ratio within 0.5x, both passed at N=10, but ours failed at N=20 (pipecat passed):
    # a step that did not serve its N is no evidence of its cost, so the target is missed
    run = _planted(bench, {10: 0.40, 20: 0.30}, up={20: False})
    assert run["summary"]["targets"]["like_for_like_up_le_half_pipecat"] == "missed"
    assert run["summary"]["targets"]["like_for_like_le_half_pipecat"] == "met"
    doc = render_benchmarks(run, IMAGES)
    sentence = verdict_sentence(doc, "up")
    assert "judged at N=10, where both steps passed" in sentence
    assert "at N=20 Sonicwire's step failed: 0.30x counted against it" in sentence
    assert "**the <= 0.5x target is missed**: Sonicwire's step failed at N=20" in sentence
    assert "within" not in sentence
    assert targets_status(doc, "up") == "missed"
    # the same with no N where both passed: still a miss, never "not measured" or "met"
    run = _planted(bench, {10: 0.40, 20: 0.45}, up={10: False}, pipecat={20: False})
    assert run["summary"]["targets"]["like_for_like_up_le_half_pipecat"] == "missed"
    sentence = verdict_sentence(render_benchmarks(run, IMAGES), "up")
    assert "(at N=10 Sonicwire's step failed: 0.40x counted against it)" in sentence


def test_an_errored_step_of_ours_is_a_miss_not_a_missingtable_row(bench: dict[str, Any]) -> None:
    # ours errored at N=20 (no CPU figure: the step did not serve N at all) where pipecat
    # passed, and both passed at N=10 within 0.5x: the errored N must count against us, not
    # vanish from the rows and leave N=10 to read "met"
    run = _planted(bench, {10: 0.40, 20: 0.30})
    for phase in ("gateway", "up"):
        step = run[phase]["steps"][1]
        assert step["n"] == 20
        step.update(cpu_ms_per_stream_s=None, error="RuntimeError: server exited (code 1)")
        step["pass"] = False
    run["summary"] = summarise(run)
    s = run["summary"]
    assert s["targets"]["like_for_like_le_half_pipecat"] == "missed"
    assert s["targets"]["like_for_like_up_le_half_pipecat"] == "missed"
    assert s["like_for_like_up_worst_ratio"] == pytest.approx(0.40)
    doc = render_benchmarks(run, IMAGES)
    section = doc_section(doc, "Like for like")
    cells = table_row(section, 20)
    assert cells[3] == cells[5] == "no figure: step errored"
    assert cells[7] == "FAIL / FAIL / pass"
    for phase in ("gateway", "up"):
        sentence = verdict_sentence(doc, phase)
        assert "judged at N=10, where both steps passed" in sentence
        assert "at N=20 Sonicwire's step errored (RuntimeError: server exited (code 1))" in sentence
        assert "**the <= 0.5x target is missed**: Sonicwire's step failed at N=20" in sentence
        assert "within" not in sentence
        assert targets_status(doc, phase) == "missed"
    # only an errored step of ours where pipecat ran: still a miss, never "not measured"
    run = _planted(bench, {10: 0.40})
    step = run["up"]["steps"][0]
    step.update(cpu_ms_per_stream_s=None, error="TimeoutError: no SessionStarted")
    step["pass"] = False
    run["summary"] = summarise(run)
    assert run["summary"]["targets"]["like_for_like_up_le_half_pipecat"] == "missed"
    sentence = verdict_sentence(render_benchmarks(run, IMAGES), "up")
    assert "at N=10 Sonicwire's step errored (TimeoutError: no SessionStarted)" in sentence
    assert "**the <= 0.5x target is missed**" in sentence


def test_the_grpc_comparison_at_one_n_is_one_figure(bench: dict[str, Any]) -> None:
    # one N measured (pipecat failed above it): "0.42x", not the range "0.42-0.42x"
    run = copy.deepcopy(bench)
    first = dict(run["summary"]["vs_pipecat"][0], n=10, ratio=0.4213, pipecat_pass=True)
    bound = dict(first, n=20, ratio=0.36, pipecat_pass=False)
    run["summary"]["vs_pipecat"] = [first, bound]
    doc = render_benchmarks(run, IMAGES)
    headline = next(x for x in doc.splitlines() if x.startswith("- Not like for like"))
    assert "same N: 0.42x pipecat's CPU (N=10); at N=20 pipecat's step failed" in headline
