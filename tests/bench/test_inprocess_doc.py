"""BENCHMARKS.md's in-process section: every number in its prose comes from the results."""

from __future__ import annotations

from typing import Any

from bench.report_inprocess import inprocess_section, inprocess_summary


def _run(front_end: float, rest: float) -> dict[str, Any]:
    return {
        "streams": 20,
        "seconds_per_stream": 30.0,
        "frames_per_message": 1,
        "messages_in": 30000,
        "messages_out": 10500,
        "total_ms_per_stream_s": front_end + rest,
        "front_end_ms_per_stream_s": front_end,
        "rest_ms_per_stream_s": rest,
    }


def _results(front_ends: list[float], rests: list[float], gap: float | None) -> dict[str, Any]:
    return {
        "kernels": {"cpu_ms_per_stream_s": 4.0},
        "inprocess": {
            "loadavg": [2.5, 2.0, 1.5],
            "runs": [_run(f, r) for f, r in zip(front_ends, rests, strict=True)],
        },
        "summary": {"above_floor_ms_per_stream_s": gap},
    }


def test_the_split_and_its_share_of_the_gap_are_computed() -> None:
    results = _results([6.0, 5.0, 7.0], [2.0, 1.5, 2.5], gap=4.0)
    s = inprocess_summary(results)
    assert s is not None
    assert s["front_end_ms_per_stream_s"] == 6.0  # the median of the runs
    assert s["beyond_kernels_ms_per_stream_s"] == 2.0
    doc = inprocess_section(results)
    assert "| front end beyond the kernels | 2.00 |" in doc
    assert "costs 1.50x the DSP kernels: 2.00 ms per stream-second" in doc
    assert "gap of 4.00 ms above the floor" in doc and "that is 50% of it" in doc
    assert "load average 2.50" in doc and "35% as many as inputs" in doc


def test_a_changed_figure_changes_the_prose() -> None:
    doc = inprocess_section(_results([4.4], [2.0], gap=2.0))
    assert "costs 1.10x the DSP kernels: 0.40 ms" in doc and "that is 20% of it" in doc


def test_without_the_phase_it_says_not_measured() -> None:
    results: dict[str, Any] = {"kernels": {"cpu_ms_per_stream_s": 4.0}, "skipped": {}}
    assert "Not measured: not reached." in inprocess_section(results)
    results["inprocess"] = {"error": "RuntimeError: boom"}
    assert "Not measured: RuntimeError: boom." in inprocess_section(results)
    no_gap = inprocess_section(_results([5.0], [2.0], gap=None))
    assert "above the floor" not in no_gap.split("| **total**")[1].split("does not count.")[1]


def test_a_bench_render_re_renders_the_docs_quoting_it(tmp_path: Any, monkeypatch: Any) -> None:
    # docs/soak.md quotes the bench's RSS per stream: a new bench run (or a re-render) must
    # re-render it too, or the soak doc no longer matches its JSON.
    import shutil

    from bench import run, soak_report

    calls: list[int] = []
    monkeypatch.setattr(soak_report, "main", lambda: calls.append(1) or 0)
    results = tmp_path / "latest.json"
    shutil.copy(run.RESULTS, results)
    assert run.render_only(results, tmp_path / "BENCHMARKS.md", tmp_path) == 0
    assert calls == [1]


def test_a_front_end_cheaper_than_the_kernel_benchmark_is_said_so() -> None:
    # The 09:00 run of 2026-12-07 rendered "-0.75 ms per stream-second of its own work" and
    # "that is -146% of it": the kernel benchmark runs the canceller on every frame, the front
    # end only while far-end audio can be heard, so it can cost less than the kernels.
    doc = inprocess_section(_results([3.25], [1.1], gap=0.5))
    prose = doc.split("| **total**")[1]
    assert "costs 0.81x the DSP kernels: 0.75 ms per stream-second less than" in prose
    assert "gap of 0.50 ms above the floor" in prose and "costs 1.10 ms here" in prose
    assert "-0." not in prose and "%" not in prose
