"""The echo-engines section of docs/FRONTEND.md says what its data says (issue 13, item 5).

The verdicts and the decision are re-derived here from the committed JSON with the issue's
thresholds written out again (not the generator's helpers), and checked against the prose;
the decision rule is checked on planted results.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from bench.frontend_engines_report import choose_engine, render_engines

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def engines() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "bench" / "results" / "frontend.json").read_text())
    if "engines" not in data:
        pytest.skip("frontend.json has no engines section (python -m bench.frontend_eval)")
    result: dict[str, Any] = data["engines"]
    return result


def _worst(e: dict[str, Any], engine: str, found_only: bool = False) -> dict[str, float]:
    def runs(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        every = [r[engine][m] for r in rows for m in ("no_reports", "reports")]
        return [x for x in every if x["delay_found"] or not found_only]

    drift_rows = [r for r in e["drift"] if abs(r["skew_ppm"]) <= 100]
    barge = e["barge_in"][engine]
    return {
        "erle_3s_db": min(x["mean_db"] for x in runs(e["erle"])),
        "erle_1s_db": min(x["erle_1s_db"] for x in runs(e["erle"])),
        "drift_db": min(x["mean_db"] for x in runs(drift_rows)),
        "dt_corr": min(x["corr"] for x in runs(e["double_talk"]["rows"])),
        "barge_in_p95_ms": barge["p95_ms"],
        "barge_in_bad": barge["missed"] + barge["false_interruptions"],
        "cpu_ratio": e["cpu"][engine]["ratio"],
    }


def _met(worst: dict[str, float]) -> dict[str, bool]:
    return {
        "erle_3s_db": worst["erle_3s_db"] >= 30.0,
        "erle_1s_db": worst["erle_1s_db"] >= 20.0,
        "drift_db": worst["drift_db"] >= 25.0,
        "dt_corr": worst["dt_corr"] >= 0.9,
        "barge_in_p95_ms": worst["barge_in_p95_ms"] <= 300.0 and worst["barge_in_bad"] == 0,
        "cpu_ratio": worst["cpu_ratio"] <= 1.5,
    }


def test_the_sweep_covers_the_issue(engines: dict[str, Any]) -> None:
    assert engines["engines"] == ["speex", "aec3"]
    if not engines["quick"]:
        assert [r["delay_ms"] for r in engines["erle"]] == list(range(0, 1001, 100))
    assert sorted(r["skew_ppm"] for r in engines["drift"]) == [-100, -50, 0, 50, 100]


def test_summary_rows_match_the_data(engines: dict[str, Any]) -> None:
    doc = (ROOT / "docs" / "FRONTEND.md").read_text()
    section = doc[doc.index("## Echo engines side by side") :]
    summary = section[: section.index("### ")]
    rows = re.findall(
        r"^\| ([^|]+) \| [^|]+ \| ([^|]+) \| ([^|]+) \| ([^|]+) \| ([^|]+) \|$", summary, re.M
    )
    cells = {r[0].strip(): [c.strip() for c in r[1:]] for r in rows}
    labels = {
        "erle_3s_db": "ERLE, mean from 3 s, worst delay",
        "erle_1s_db": "ERLE at 1 s",
        "drift_db": "clock drift",
        "dt_corr": "Double talk",
        "barge_in_p95_ms": "Barge-in",
        "cpu_ratio": "whole front end / its C kernels",
    }
    checked = 0
    for i, (engine, found_only) in enumerate(
        (("speex", False), ("aec3", False), ("speex", True), ("aec3", True))
    ):
        worst = _worst(engines, engine, found_only)
        met = _met(worst)
        for key, words in labels.items():
            (cell,) = [c[i] for label, c in cells.items() if words in label]
            number = float(re.match(r"-?[\d.]+", cell).group())  # type: ignore[union-attr]
            assert number == pytest.approx(worst[key], abs=0.051)
            assert ("**missed**" in cell) == (not met[key]), (engine, key, cell)
            checked += 1
    assert checked == 24


def test_decision_follows_the_rule(engines: dict[str, Any]) -> None:
    doc = (ROOT / "docs" / "FRONTEND.md").read_text()
    met = {eng: _met(_worst(engines, eng)) for eng in ("speex", "aec3")}
    cpu = {eng: engines["cpu"][eng]["frontend_us"] for eng in ("speex", "aec3")}
    barge = engines["barge_in"]
    # barge-in first: an engine that loses one is kept only if every engine does
    pool = [
        eng for eng in met if barge[eng]["missed"] == 0 and barge[eng]["false_interruptions"] == 0
    ] or list(met)
    full = [eng for eng in pool if all(met[eng].values())]
    if full:
        expected = min(full, key=lambda x: cpu[x])
    else:
        expected = min(pool, key=lambda x: (-sum(met[x].values()), cpu[x]))
    assert f"**Decision: {expected}**" in doc
    for eng in met:
        missed = [k for k, ok in met[eng].items() if not ok]
        if not missed:
            assert f"{eng} meets every target" in doc or f"**Decision: {eng}**" in doc


def _planted(engines: dict[str, Any], **worse: dict[str, float]) -> dict[str, Any]:
    e = copy.deepcopy(engines)
    for engine, cuts in worse.items():
        for row in e["erle"]:
            for m in ("no_reports", "reports"):
                row[engine][m]["mean_db"] = cuts.get("erle", 50.0)
                row[engine][m]["erle_1s_db"] = 40.0
        for row in e["drift"]:
            for m in ("no_reports", "reports"):
                row[engine][m]["mean_db"] = cuts.get("drift", 50.0)
        for row in e["double_talk"]["rows"]:
            for m in ("no_reports", "reports"):
                row[engine][m]["corr"] = cuts.get("corr", 0.95)
        for row in e["erle"] + e["drift"] + e["double_talk"]["rows"]:
            for m in ("no_reports", "reports"):
                row[engine][m]["delay_found"] = True
        e["barge_in"][engine].update(p95_ms=250.0, missed=0, false_interruptions=0)
        e["cpu"][engine]["ratio"] = 1.2
        e["cpu"][engine]["frontend_us"] = cuts.get("cpu", 100.0)
    return e


def test_rule_on_planted_results(engines: dict[str, Any]) -> None:
    # both meet every target: the cheaper one
    both = _planted(engines, speex={"cpu": 90.0}, aec3={"cpu": 200.0})
    assert choose_engine(both)[0] == "speex"
    both = _planted(engines, speex={"cpu": 300.0}, aec3={"cpu": 200.0})
    assert choose_engine(both)[0] == "aec3"
    # only one meets every target: that one, whatever it costs
    one = _planted(engines, speex={"cpu": 90.0, "drift": 17.0}, aec3={"cpu": 200.0})
    assert choose_engine(one)[0] == "aec3"
    doc = render_engines(one)
    assert "**Decision: aec3** (aec3 meets every target, the only engine that does)" in doc
    assert "speex misses: ERLE, mean from 3 s, clock drift" in doc
    assert "**missed**" in doc
    # an engine that loses barge-ins goes, however many other targets it meets
    lossy = _planted(engines, speex={"cpu": 90.0, "drift": 17.0}, aec3={"cpu": 200.0})
    lossy["barge_in"]["aec3"].update(missed=3, n=21)
    pick, rule = choose_engine(lossy)
    assert pick == "speex"
    assert rule.startswith("aec3 loses barge-ins: 3 missed and 0 false Interruptions in 24")
    # and if every engine loses some, the usual rule decides among them
    lossy["barge_in"]["speex"].update(false_interruptions=1)
    assert choose_engine(lossy)[0] == "aec3"  # 5 of 6 targets against speex's 4


def test_the_decision_explains_a_lost_barge_in(engines: dict[str, Any]) -> None:
    doc = (ROOT / "docs" / "FRONTEND.md").read_text()
    for eng in ("speex", "aec3"):
        b = engines["barge_in"][eng]
        lost = b["missed"] + b["false_interruptions"]
        assert (f"{eng} loses barge-ins: {b['missed']} missed" in doc) == (lost > 0)
