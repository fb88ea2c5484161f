"""The echo-field evaluation's counting rules and its generated section of docs/FRONTEND.md.

No server here: the counting (`bench.echo_field_counts.analyse`) runs on planted timelines, and the
committed section is checked against the committed JSON, figure by figure, with the verdicts
recomputed from the runs themselves (not from the generator's summary).
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench.echo_field_counts import Case, EventLog, analyse, recount, summarise
from bench.echo_field_report import BEGIN, END, compose, render_section, split
from bench.echo_field_sim import Device, Voices

ROOT = Path(__file__).resolve().parents[2]
RATE = 16000


# --- counting, on planted timelines ----------------------------------------------------------


def _burst(seconds: float) -> np.ndarray:
    return np.random.default_rng(3).standard_normal(int(seconds * RATE)) * 0.05


def _planted(
    interruptions: list[tuple[int, str]], starts: list[int]
) -> tuple[dict[str, Any], float]:
    """A timeline: utterances at 1-3 s and 15-17 s, the barge-in placed at 19 s; interruptions
    given as (microphone sample index at which the client received them, turn), VAD starts as
    the sample index of their onset (received 200 ms later)."""
    voices = Voices(RATE, (_burst(2.0), _burst(2.0)), _burst(1.0), "test", "test")
    device = Device(RATE, 0, np.array([0.5]))
    device.first_handed.update({"t1": 3 * RATE + 8000, "t2": 17 * RATE + 8000})
    device.handed.update({"t1": int(2.6 * RATE), "t2": RATE})
    t0 = 1000.0
    log = EventLog([], [], [], [], [])
    for index, turn in interruptions:
        log.interruptions.append((t0 + index / RATE, turn, 0, "BARGE_IN"))
    for index in sorted(starts):
        log.speech.append((t0 + index / RATE + 0.2, True, index * 1000 // RATE))
    spans = [(RATE, 3 * RATE), (15 * RATE, 17 * RATE)]
    result = analyse(Case(300, True), voices, device, log, spans, 19 * RATE, t0, 1.0)
    return result, t0


def test_the_barge_in_interruption_is_not_a_self_interruption() -> None:
    onset = 19 * RATE
    result, _ = _planted([(onset + 4000, "t2")], starts=[RATE, 15 * RATE, onset])
    assert result["self_interruptions"] == 0
    assert result["self_triggered_turns"] == 0
    assert result["barge_in"]["detected"]
    assert result["barge_in"]["reaction_ms"] == pytest.approx(250.0, abs=1.0)
    assert result["reply_ratio"] == pytest.approx(2.6 / 2.6, abs=0.01)


def test_echo_interruptions_and_extra_turns_are_counted() -> None:
    # The VAD starts on echo at 3.8 s and 17.8 s (off the script's speech): one cut of the
    # first reply, one of the second before the barge-in speech started, two turns nobody spoke.
    starts = [RATE, int(3.8 * RATE), 15 * RATE, int(17.8 * RATE)]
    result, _ = _planted([(4 * RATE, "t1"), (18 * RATE, "t2")], starts=starts)
    assert result["self_interruptions"] == 2
    assert result["utterance_split_interruptions"] == 0
    assert result["false_barge_ins"] == 1
    assert result["self_triggered_turns"] == 2
    assert not result["barge_in"]["detected"]
    assert result["barge_in"]["reaction_ms"] is None


def test_an_utterance_cut_short_by_the_vad_is_not_echo() -> None:
    # The VAD ends the first utterance at 2 s, the reply starts, the user's next words
    # (a start at 2.6 s, inside the utterance) cut it: the user's doing, not the echo's.
    result, _ = _planted([(int(2.9 * RATE), "t1")], starts=[RATE, int(2.6 * RATE), 15 * RATE])
    assert result["self_interruptions"] == 0
    assert result["utterance_split_interruptions"] == 1
    assert result["self_triggered_turns"] == 0


# --- the generated section --------------------------------------------------------------------


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "bench/results/echo_field.json").read_text())
    return data


@pytest.fixture(scope="module")
def section() -> str:
    found = split((ROOT / "docs/FRONTEND.md").read_text())[1]
    assert found is not None, "docs/FRONTEND.md has no echo-field section"
    return found


def test_section_is_its_json_rendered(report: dict[str, Any], section: str) -> None:
    assert section == render_section(report), "re-render: python -m bench.echo_field --render"
    assert report["summary"] == summarise(report["runs"])


def _echo(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in report["runs"] if "error" not in r and r["case"]["echo"]]


def _verdict(section: str, label: str) -> str:
    row = next(line for line in section.splitlines() if line.startswith(f"| {label}"))
    return row.rstrip(" |").rsplit("| ", 1)[1]


def test_verdicts_follow_the_runs(report: dict[str, Any], section: str) -> None:
    runs = _echo(report)
    for run in runs:
        # The stored counts are what the counting rules give for the recorded timeline.
        assert {k: run[k] for k in recount(run)} == recount(run), run["name"]
    interruptions = sum(r["self_interruptions"] for r in runs)
    turns = sum(r["self_triggered_turns"] for r in runs)
    ratios = [r["reply_ratio"] for r in runs]
    reactions = [r["barge_in"]["reaction_ms"] for r in runs]
    detected = [x for x in reactions if x is not None]
    p95 = float(np.percentile(detected, 95)) if detected else None
    expected = {
        "0 self-interruptions": interruptions == 0,
        "0 self-triggered user turns": turns == 0,
        "reply audio 0.9-1.1x": all(x is not None and 0.9 <= x <= 1.1 for x in ratios),
        "barge-in p95 <= 300 ms": p95 is not None and p95 <= 300 and None not in reactions,
        "0 false barge-ins": sum(r["false_barge_ins"] for r in runs) == 0,
    }
    for label, met in expected.items():
        assert _verdict(section, label) == ("met" if met else "**missed**"), label
    row = next(line for line in section.splitlines() if line.startswith("| 0 self-interr"))
    assert f"| {interruptions} in " in row
    if p95 is not None:
        assert f"p95 {p95:.0f} ms" in section


def test_a_planted_self_interruption_turns_the_verdict(report: dict[str, Any]) -> None:
    planted = copy.deepcopy(report)
    for run in _echo(planted):
        run["self_interruptions"] = 0
    first = _echo(planted)[0]
    planted["summary"] = summarise(planted["runs"])
    clean = render_section(planted)
    assert _verdict(clean, "0 self-interruptions") == "met"
    first["self_interruptions"] = 1
    planted["summary"] = summarise(planted["runs"])
    assert _verdict(render_section(planted), "0 self-interruptions") == "**missed**"


def test_compose_keeps_the_rest_of_the_doc() -> None:
    doc = "# Title\n\ntext\n"
    section = f"{BEGIN}\nnew\n{END}"
    once = compose(doc, section)
    assert once == doc + "\n" + section + "\n"
    assert compose(once, section) == once
    assert split(once) == (doc, section)
    assert re.search("text", compose(once, None)) and BEGIN not in compose(once, None)
