"""Edge cases of the paired rules (issue 21; a reviewer's concerns on the like-for-like rule):
an N or a floor phase cut short by the time budget is shown, not judged; an N without a ratio
renders as such (no crash, no "<= -"); the target numbers in the prose come from
``bench.targets``; every count and percent in the prose is the one its figures support.

Each case plants tries into a copy of the committed run (``planted`` of the paired tests) and
reads the summary and the rendered text against the planted tries.
"""

from __future__ import annotations

import ast
import copy
import re
from pathlib import Path
from typing import Any

import pytest

from bench import paired_like_for_like, targets
from bench.report import render as render_benchmarks
from bench.summary import rejudge, summarise
from tests.bench.like_for_like_doc import doc_section, table_row, targets_status, verdict_sentence
from tests.bench.test_generated_docs import check_like_for_like, check_targets
from tests.bench.test_like_for_like_paired import IMAGES, PEER_CPU, both, planted
from tests.bench.test_paired_floor import _planted as planted_floor
from tests.bench.test_paired_floor import _target_row

ROOT = Path(__file__).resolve().parents[2]
UP, TWO = "like_for_like_up_le_half_pipecat", "like_for_like_le_half_pipecat"
BUDGET = "the run's time budget ran out at N=20 after 2 of 3 rounds"


def _doc(run: dict[str, Any]) -> str:
    return render_benchmarks(run, IMAGES)


# --- 1. an N cut short by the time budget ------------------------------------------------------


def test_an_n_cut_short_is_shown_but_not_judged(paired_bench: dict[str, Any]) -> None:
    # N=20 got 2 of its 3 rounds: its 0.61x median (over 0.5x) must not decide the verdict,
    # nor could a median under it have passed one
    run = planted(paired_bench, {10: both(0.40, 0.41, 0.42), 20: both(0.60, 0.62)}, stopped=BUDGET)
    s = run["summary"]
    up = s["paired_like_for_like"]["up"]
    assert [r["judged"] for r in up["rows"]] == [True, False]
    assert up["rows"][1]["counted"] is False
    assert s["targets"][UP] == "met"  # judged at N=10 only
    assert up["worst_ratio"] == pytest.approx(0.41)
    doc = _doc(run)
    section = doc_section(doc, "Like for like")
    cut = "not judged: cut short (2 of 3 rounds)"
    assert table_row(section, 20)[4] == f"0.61x (range 0.60-0.62x over 2 rounds); {cut}"
    assert paired_like_for_like.RULE_CUT_SHORT in section
    sentence = verdict_sentence(doc, "up")
    assert "within the <= 0.5x target at every N judged" in sentence
    assert f"At N=20: 0.61x (range 0.60-0.62x over 2 rounds), {cut}." in sentence
    assert "at N=20" not in sentence.split("At N=20")[0]  # not among the judged N
    cell = "not judged: N=20 (cut short (2 of 3 rounds), 0.61x)"
    assert cell in doc and targets_status(doc, "up") == "met"


def test_every_n_cut_short_is_not_measured_and_says_why(paired_bench: dict[str, Any]) -> None:
    run = planted(paired_bench, {10: both(0.40, 0.41)}, stopped=BUDGET)
    run["like_for_like"]["rounds_planned"] = 3
    run["summary"] = summarise(run)
    assert run["summary"]["targets"][UP] == run["summary"]["targets"][TWO] == "not measured"
    doc = _doc(run)
    for phase in ("up", "gateway"):
        sentence = verdict_sentence(doc, phase)
        assert "**not measured**: no N judged" in sentence
        assert "pipecat's step passed in every round" not in sentence  # it did, every round
        assert "not judged: cut short (2 of 3 rounds)" in sentence
        assert targets_status(doc, phase) == "not measured"


def test_a_failed_step_of_ours_in_an_n_cut_short_still_counts(paired_bench: dict[str, Any]) -> None:
    run = planted(
        paired_bench,
        {10: both(0.40, 0.41, 0.42), 20: both(0.40, 0.41)},
        fails={("up", 20, 2): ["3 late frames"]},
        stopped=BUDGET,
    )
    assert run["summary"]["targets"][UP] == "missed"
    assert run["summary"]["targets"][TWO] == "missed"  # 0.60-0.62x at N=10
    sentence = verdict_sentence(_doc(run), "up")
    assert "**the <= 0.5x target is missed**: Sonicwire's step failed at N=20" in sentence


def test_a_floor_phase_cut_short_is_shown_but_not_judged(bench: dict[str, Any]) -> None:
    # 2 of 4 rounds, both under 1.0 ms: shown, the target not measured (was: met on 2 rounds)
    run = planted_floor(bench, [(4.0, 9.0, 13.5), (4.4, 10.0, 15.2)])
    run["paired_floor"]["rounds_planned"] = 4
    run["summary"] = summarise(run)
    assert run["summary"]["targets"]["above_floor_le_1ms"] == "not measured"
    doc = _doc(run)
    row = _target_row(doc)
    assert "0.65 ms above the floor" in row and "**0.65 ms**" not in row
    assert "over 2 paired rounds (range 0.50 to 0.80), not judged: cut short (2 of 4 rounds)" in row
    assert row.rstrip().endswith("| not measured |")
    section = doc_section(doc, "The gap to the floor, measured in pairs")
    assert "not judged: cut short (2 of 4 rounds); the <= 1.0 ms target is **not measured**" in (
        section
    )
    assert "the median decides" not in section
    assert "above the floor, not judged: cut short (2 of 4 rounds) (section below)" in doc
    check_targets(run, doc)  # the oracle reads the floor's cut-short phase the same way
    # every planned round ran: judged as before
    run["paired_floor"]["rounds_planned"] = 2
    run["summary"] = summarise(run)
    assert run["summary"]["targets"]["above_floor_le_1ms"] == "met"
    assert "**0.65 ms** above the floor" in _target_row(_doc(run))


# --- 2. no ratio, and the threshold from where it is defined -------------------------------------


def _no_cpu(run: dict[str, Any], label: str, n: int, rounds: set[int]) -> dict[str, Any]:
    """The run with ``label``'s CPU figure at ``n`` missing in ``rounds`` (the step passes:
    its CPU is not a pass criterion), summarised again."""
    for t in run["like_for_like"]["tries"]:
        if t["label"] == label and t["n"] == n and t["round"] in rounds:
            t["cpu_ms_per_stream_s"] = None
    run["summary"] = summarise(run)  # the planted verdicts kept (``rejudge`` would redo them)
    return run


def test_an_n_without_a_ratio_renders_and_is_not_judged(paired_bench: dict[str, Any]) -> None:
    # pipecat passed every round at N=10 with no CPU figure: no ratio anywhere (the renderer
    # raised TypeError comparing None)
    run = _no_cpu(planted(paired_bench, {10: both(0.40, 0.41, 0.42)}), "pipecat", 10, {1, 2, 3})
    s = run["summary"]
    assert s["targets"][UP] == s["targets"][TWO] == "not measured"
    doc = _doc(run)
    why = "no ratio in rounds 1, 2, 3 (no CPU figure from pipecat)"
    sentence = verdict_sentence(doc, "up")
    assert "**not measured**: no N judged" in sentence
    assert f"At N=10 not judged: {why}." in sentence
    assert table_row(doc_section(doc, "Like for like"), 10)[4] == f"not judged: {why}"
    assert paired_like_for_like.RULE_NO_RATIO in doc
    assert " -x" not in doc and "<= -" not in doc and "N=.\n" not in doc
    check_like_for_like(run, doc)  # the oracle reads an N without a ratio the same way
    check_targets(run, doc)


def test_a_round_without_a_ratio_leaves_its_n_unjudged(paired_bench: dict[str, Any]) -> None:
    run = planted(paired_bench, {10: both(0.40, 0.41, 0.42), 20: both(0.45, 0.60, 0.46)})
    run = _no_cpu(run, "pipecat", 20, {2})
    assert run["summary"]["targets"][UP] == "met"
    doc = _doc(run)
    check_like_for_like(run, doc)
    cell = table_row(doc_section(doc, "Like for like"), 20)[4]
    assert cell == (
        "0.46x (range 0.45-0.46x over 2 rounds); not judged: no ratio in round 2 (no CPU "
        "figure from pipecat)"
    )


def test_a_failed_pipecat_round_without_a_figure_is_no_bound(paired_bench: dict[str, Any]) -> None:
    run = planted(
        paired_bench,
        {10: both(0.40, 0.41, 0.42), 20: both(0.9)},
        fails={("pipecat", 20, 1): ["server CPU saturated"]},
    )
    run = _no_cpu(run, "pipecat", 20, {1})
    doc = _doc(run)
    assert table_row(doc_section(doc, "Like for like"), 20)[4] == (
        "no ratio; pipecat failed in round 1: server CPU saturated"
    )
    sentence = verdict_sentence(doc, "up")
    assert "At N=20 pipecat's step failed in round 1: server CPU saturated, with no ratio " in (
        sentence
    )
    assert "<= -" not in doc and "Its - ms" not in doc
    assert "N=20 (pipecat failed, no ratio)" in doc


#: The modules whose verdicts and sentences name a target.
TARGET_READERS = [
    "bench/paired_like_for_like.py",
    "bench/paired_floor.py",
    "bench/report_like_for_like.py",
    "bench/report_floor.py",
    "bench/report_headline.py",
    "bench/report.py",
    "bench/summary.py",
]
#: A target's number written as prose ("<= 0.5x", "1.0 ms per", "150 MB", "2x the ...").
WRITTEN = re.compile(r"(<=|<|>=) ?(\d+(\.\d+)?x|1\.0 ms|\d+ MB|150\b)|\b2x[ -]")


def _strings_and_limits(path: Path) -> tuple[list[str], list[float]]:
    """A module's string constants (docstrings left out: they explain, the prose is built
    from the others) and the numbers it compares with."""
    tree = ast.parse(path.read_text())
    docs = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    strings = [
        n.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs
    ]
    compared = [
        c.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Compare)
        for c in [n.left, *n.comparators]
        if isinstance(c, ast.Constant) and isinstance(c.value, int | float)
    ]
    return strings, compared


@pytest.mark.parametrize("module", TARGET_READERS)
def test_no_target_number_is_written_outside_bench_targets(module: str) -> None:
    strings, compared = _strings_and_limits(ROOT / module)
    written = [s for s in strings if WRITTEN.search(s)]
    assert not written, f"{module} writes a target's number: read it from bench.targets"
    # a verdict compared with a literal threshold (1.0 stays: cheaper / dearer is at parity;
    # small ints are counts)
    limits = {(float, 0.5), (float, 2.0), (float, 150.0), (int, 150)}
    assert not {(type(c), c) for c in compared} & limits, module


def test_the_prose_names_the_threshold_its_verdict_used() -> None:
    assert paired_like_for_like.LIMIT == targets.LIKE_FOR_LIKE_X
    assert f"<= {targets.TEXT['like_for_like']} target" in paired_like_for_like.RULE
    assert targets.TEXT == {
        "kernels": "2x",
        "streams": "150",
        "above_floor": "1.0 ms",
        "like_for_like": "0.5x",
        "rss": "1 MB",
        "idle_nova": "150 MB",
    }


# --- 3. every count and percent is the one its figures support -----------------------------------


def test_a_range_is_over_the_rounds_it_is_taken_from(paired_bench: dict[str, Any]) -> None:
    # round 1 of the gateway errored: its N counts against it over the 2 rounds with a ratio
    run = planted(paired_bench, {10: both(0.40, 0.41, 0.42)})
    t = next(t for t in run["like_for_like"]["tries"] if t["label"] == "gateway")
    t.update(cpu_ms_per_stream_s=None, error="RuntimeError: gateway exited (code 1)")
    rejudge(run)
    doc = _doc(run)
    cell = table_row(doc_section(doc, "Like for like"), 10)[6]
    assert cell.startswith("**0.61x (range 0.61-0.62x over 2 rounds)**, counted"), cell
    assert "over 3 rounds" not in cell
    assert "(N=10: 0.61x, 2 rounds)" in doc  # the targets cell counts the same rounds


def test_the_cheaper_percent_is_the_shown_figures(paired_bench: dict[str, Any]) -> None:
    # pipecat cheaper: a median of 1.1836x is shown as 1.18x, which is 15% dearer than
    # pipecat's (1 - 1/1.18 = 15.3%); the unrounded median gave 16%
    ratio = 1.1836
    run = planted(paired_bench, {10: {"up": [ratio], "gateway": [ratio]}})
    sentence = verdict_sentence(_doc(run), "up")
    assert "1.18x (one round) at N=10" in sentence
    assert "pipecat is 15% cheaper at the one N judged" in sentence
    assert PEER_CPU * ratio == pytest.approx(47.344)


def test_all_of_them_only_when_the_walk_measured_every_n(paired_bench: dict[str, Any]) -> None:
    run = planted(paired_bench, {10: both(0.40)})  # N=10 of 10, 20, 30, 40, no reason recorded
    section = doc_section(_doc(run), "Like for like")
    assert "The walk measured N=10 of 10, 20, 30, 40." in section
    assert "(all of them)" not in section
    run["like_for_like"]["ns_planned"] = [10]
    assert "The walk measured N=10 of 10 (all of them)." in _doc(run)


def test_a_floor_range_of_one_value_is_one_figure(bench: dict[str, Any]) -> None:
    run = planted_floor(bench, [(4.0, 9.0, 13.5)])
    row = _target_row(_doc(run))
    assert "(kernels + bare grpc.aio echo, 13.00 ms)" in row, row
    assert "13.00-13.00" not in row


@pytest.fixture(scope="module")
def paired_bench() -> dict[str, Any]:
    from tests.bench.like_for_like_doc import paired_base

    return paired_base()


@pytest.fixture(scope="module")
def bench() -> dict[str, Any]:
    import json

    data: dict[str, Any] = json.loads((ROOT / "bench/results/latest.json").read_text())
    return copy.deepcopy(data)


def test_a_median_that_rounds_onto_the_target_shows_its_third_decimal(
    paired_bench: dict[str, Any],
) -> None:
    # a median of 0.502x is a miss; "0.50x" beside "median above 0.5x" would read as a pass
    run = planted(
        paired_bench,
        {10: {"up": [0.44, 0.45, 0.46], "gateway": [0.5, 0.502, 0.51]}},
    )
    assert run["summary"]["targets"][TWO] == "missed"
    section = doc_section(_doc(run), "Like for like")
    assert table_row(section, 10)[6] == "**0.502x (range 0.50-0.51x over 3 rounds)**"
    assert table_row(section, 10)[4] == "**0.45x (range 0.44-0.46x over 3 rounds)**"
    sentence = verdict_sentence(_doc(run), "gateway")
    assert "0.502x" in sentence
    # and its percent is 49.8, not a "50% cheaper" beside "target missed"
    assert "Sonicwire is 49.8% cheaper at the one N judged" in sentence
