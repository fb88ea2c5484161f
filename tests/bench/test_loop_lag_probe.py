"""The loop-lag probe both sides of the like-for-like comparison run (bench/pipecat_peer.py
runs the same one as bench/probe_server.py), and what the report shows of it for pipecat."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.report import _stepstable
from bench.steps import latency_from_probe, loop_lag_from_probe


def test_loop_lag_from_a_probe_file_with_only_the_lag(tmp_path: Path) -> None:
    probe = tmp_path / "probe.npz"
    np.savez(probe, loop_lag=np.array([0.001] * 98 + [0.010, 0.020]))
    lag = loop_lag_from_probe(probe)
    assert lag["loop_lag_p50_ms"] == 1.0
    assert lag["loop_lag_p99_ms"] is not None and 10.0 < lag["loop_lag_p99_ms"] < 20.0


def test_no_lag_samples_is_unmeasured_not_zero(tmp_path: Path) -> None:
    probe = tmp_path / "probe.npz"
    np.savez(probe, loop_lag=np.zeros(0))
    assert loop_lag_from_probe(probe) == {"loop_lag_p50_ms": None, "loop_lag_p99_ms": None}


def test_the_per_frame_probe_reports_the_same_lag(tmp_path: Path) -> None:
    probe, times = tmp_path / "probe.npz", tmp_path / "times.npz"
    sent = np.array([1.0, 1.02])
    np.savez(probe, loop_lag=np.array([0.002, 0.004]), **{"start:a": sent, "end:a": sent + 0.003})
    np.savez(times, **{"send:a": sent})
    result = latency_from_probe(probe, times, (0.0, 10.0))
    assert result["loop_lag_p50_ms"] == loop_lag_from_probe(probe)["loop_lag_p50_ms"] == 3.0
    assert result["latency_p50_ms"] is not None and abs(result["latency_p50_ms"] - 3.0) < 1e-6


def _step(n: int, lag: float | None) -> dict[str, object]:
    return {
        "n": n,
        "target": "pipecat",
        "cpu_ms_per_stream_s": 30.0,
        "cores_used": 0.3,
        "rss_per_stream_mb": 2.0,
        "loop_lag_p99_ms": lag,
        "late_frames": 0,
        "late_frames_jb60": 0,
        "replies": 3,
        "pass": True,
    }


def test_a_pipecat_table_shows_the_lag_only_when_it_was_measured() -> None:
    with_lag = _stepstable([_step(10, 2.26)], probe=False)
    assert "loop lag p99 ms" in with_lag and "| 2.3 |" in with_lag
    without = _stepstable([_step(10, None)], probe=False)
    assert "loop lag" not in without
