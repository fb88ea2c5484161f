"""docs/SCALE.md is bench/results/{workers,resume}.json rendered, and its verdicts are right.

The numbers in its target table are read back out of the prose and recomputed here from the
steps and trials themselves (not with the generator's helpers), so a wrongly worded result
fails, and planted data checks that each verdict can go both ways.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from bench.scale_report import render, render_files

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def data() -> tuple[dict[str, Any], dict[str, Any]]:
    results = ROOT / "bench" / "results"
    return (
        json.loads((results / "workers.json").read_text()),
        json.loads((results / "resume.json").read_text()),
    )


def _row(doc: str, starts: str) -> str:
    (line,) = [line for line in doc.splitlines() if line.startswith(f"| {starts}")]
    return line


def test_the_doc_is_its_json_rendered() -> None:
    committed = (ROOT / "docs" / "SCALE.md").read_text()
    assert committed == render_files(), "re-render: .venv/bin/python -m bench.scale_report"


def test_the_cpu_ratio_row_matches_the_steps(data: tuple[dict[str, Any], dict[str, Any]]) -> None:
    workers, resume = data
    doc = render(workers, resume)
    row = _row(doc, "`--workers 2`: server CPU")
    by = {(s["processes"], s["n"]): s for s in workers["steps"]}
    both = sorted(n for (w, n) in by if w == 1 and (2, n) in by and by[1, n]["pass"]
                  and by[2, n]["pass"])  # fmt: skip
    ratios = [by[2, n]["cpu_ms_per_stream_s"] / by[1, n]["cpu_ms_per_stream_s"] for n in both]
    match = re.search(r"([\d.]+)x to ([\d.]+)x \(N = ([\d, ]+):", row)
    assert match, row
    assert float(match.group(1)) == pytest.approx(min(ratios), abs=0.005)
    assert float(match.group(2)) == pytest.approx(max(ratios), abs=0.005)
    assert [int(n) for n in match.group(3).split(", ")] == both
    assert row.endswith("| met |" if max(ratios) <= 1.1 else "| **missed** |")


def test_the_per_core_row_matches_the_steps(data: tuple[dict[str, Any], dict[str, Any]]) -> None:
    workers, resume = data
    row = _row(render(workers, resume), "`--workers 2`: streams held")
    per_core = {}
    for count in (1, 2):
        passed = [s for s in workers["steps"] if s["processes"] == count and s["pass"]]
        best = max(passed, key=lambda s: s["n"])
        per_core[count] = best["n"] / best["cores_used"]
        assert f"{best['n']} " in row
    ratio = per_core[2] / per_core[1]
    assert f"ratio {ratio:.2f}x" in row
    assert row.endswith("| met |" if ratio >= 0.9 else "| **missed** |")


def test_the_resume_rows_match_the_trials(data: tuple[dict[str, Any], dict[str, Any]]) -> None:
    import numpy as np

    workers, resume = data
    doc = render(workers, resume)
    trials = [t for t in resume["trials"] if not t["error"]]
    resumed = [t for t in trials if t["resumes"] == 1 and t["first_audio_after_resume"]]
    p95 = float(np.percentile([t["going_away_to_first_audio_ms"] for t in resumed], 95))
    row = _row(doc, "resume, `GoingAway`")
    assert f"p95 {p95:.0f} ms over {len(resumed)} resumes" in row
    assert row.endswith("| met |" if p95 <= 500 and len(trials) == len(resume["trials"])
                        else "| **missed** |")  # fmt: skip
    lost = sum(t["frames_lost"] for t in trials)
    sent = sum(t["frames_sent"] for t in trials)
    row = _row(doc, "microphone audio lost")
    assert f"({lost} of {sent} frames reached no replica" in row
    assert row.endswith("| met |" if lost == 0 else "| **missed** |")


def test_verdicts_go_both_ways(data: tuple[dict[str, Any], dict[str, Any]]) -> None:
    workers, resume = data
    cheap = copy.deepcopy(workers)
    for step in cheap["steps"]:
        if step["processes"] == 2:
            one = next(s for s in cheap["steps"] if s["processes"] == 1 and s["n"] == step["n"])
            step["cpu_ms_per_stream_s"] = one["cpu_ms_per_stream_s"] * 1.05
    cheap["summary"]["cpu_per_stream_s_ratio_by_n"] = {
        k: 1.05 for k in cheap["summary"]["cpu_per_stream_s_ratio_by_n"]
    }
    assert _row(render(cheap, resume), "`--workers 2`: server CPU").endswith("| met |")
    lossy = copy.deepcopy(resume)
    lossy["summary"]["mic_frames_lost"] = 1
    assert _row(render(workers, lossy), "microphone audio lost").endswith("| **missed** |")
    slow = copy.deepcopy(resume)
    slow["summary"]["going_away_to_first_audio_ms_p95"] = 501.0
    assert _row(render(workers, slow), "resume, `GoingAway`").endswith("| **missed** |")


def test_the_control_means_match_the_rows() -> None:
    controls = json.loads((ROOT / "bench" / "results" / "workers_controls.json").read_text())
    doc = (ROOT / "docs" / "SCALE.md").read_text()
    means: dict[str, list[float]] = {}
    for row in controls["rows"]:
        means.setdefault(row["label"], []).append(row["cpu_ms_per_stream_s"])
    mean = {label: sum(v) / len(v) for label, v in means.items()}
    ratio = mean["2 workers"] / mean["2 plain processes"]
    assert f"`--workers 2` / 2 plain processes: {ratio:.2f}x." in doc
    assert f"1 worker {mean['1 worker']:.2f}, 2 workers {mean['2 workers']:.2f} " in doc
