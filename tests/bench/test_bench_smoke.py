"""Smoke test of the benchmark: the load generator against a loopback echo server, ~3 s, N=2.

It checks the shape of what the benchmark reports (keys present, values positive and finite),
never how fast anything is: timings depend on the machine.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bench.procs import PYTHON, Children
from bench.report import render
from bench.run import summarise
from bench.steps import StepConfig, _start_servers, run_step

pytestmark = pytest.mark.skipif(
    not Path("/usr/share/sounds/alsa/Front_Center.wav").exists(),
    reason="needs the alsa-utils voice samples (installed by scripts/setup.sh)",
)

STEP_KEYS = {
    "cpu_ms_per_stream_s",
    "cores_used",
    "idle_rss_mb",
    "rss_mb",
    "rss_per_stream_mb",
    "latency_p50_ms",
    "latency_p99_ms",
    "processing_p50_ms",
    "processing_p99_ms",
    "loop_lag_p99_ms",
    "late_frames",
    "late_frames_jb60",
    "gap_frames",
    "frames_unprocessed",
    "frames_sent",
    "streams_failed",
    "client_cores_used",
    "foreign_cores_used",
    "pass",
    "fail_reasons",
}
POSITIVE = (
    "cpu_ms_per_stream_s",
    "cores_used",
    "idle_rss_mb",
    "rss_mb",
    "latency_p50_ms",
    "latency_p99_ms",
    "processing_p50_ms",
    "frames_sent",
    "window_s",
)


def _finite(value: object) -> bool:
    return not isinstance(value, float) or math.isfinite(value)


def test_load_step_against_loopback_echo_server(tmp_path: Path) -> None:
    children = Children(tmp_path)
    config = StepConfig(duration_s=3.0, warmup_s=0.5, ramp_s=0.2, drain_s=0.5, quiet_wait_s=0.0)
    try:
        result = run_step(children, tmp_path, "sonicwire", 2, config, pin=False)
    finally:
        children.stop_all()
    assert "error" not in result, result.get("error")
    assert result.keys() >= STEP_KEYS
    for key in POSITIVE:
        assert result[key] > 0, (key, result[key])
    for key, value in result.items():
        assert _finite(value), (key, value)
    for key in ("late_frames", "gap_frames", "frames_unprocessed", "streams_failed"):
        assert result[key] >= 0
    assert result["streams_probed"] == 2
    # the results document round-trips through JSON and renders
    results = json.loads(json.dumps({"mode": "quick", "search": {"steps": [result]}}))
    results["summary"] = summarise(results)
    assert results["summary"]["reference_n"] == 2
    assert "Sonicwire, one process on one core" in render(results, [])


def test_larger_client_messages_carry_the_same_audio(tmp_path: Path) -> None:
    # 100 ms messages: a fifth as many messages for the same stream time, all processed.
    children = Children(tmp_path)
    config = StepConfig(
        duration_s=3.0, warmup_s=0.5, ramp_s=0.2, drain_s=0.5, quiet_wait_s=0.0, frame_ms=100
    )
    try:
        result = run_step(children, tmp_path, "sonicwire", 2, config, pin=False)
    finally:
        children.stop_all()
    assert "error" not in result, result.get("error")
    assert result["frame_ms"] == 100
    # ~3 s window x 2 streams / 0.1 s per message (ramp and timer slack allowed)
    assert 40 <= result["frames_sent"] <= 70, result["frames_sent"]
    assert result["frames_unprocessed"] == 0
    assert result["latency_p99_ms"] is not None


def test_workers_step_probes_every_worker(tmp_path: Path) -> None:
    # `sonicwire serve --workers 2` under the probe: both workers' probe files are read, and
    # the supervisor's and both workers' CPU is counted.
    children = Children(tmp_path)
    config = StepConfig(duration_s=3.0, warmup_s=0.5, ramp_s=0.2, drain_s=0.5, quiet_wait_s=0.0)
    try:
        result = run_step(children, tmp_path, "workers", 6, config, processes=2, pin=False)
    finally:
        children.stop_all()
    assert "error" not in result, result.get("error")
    assert len(result["server_pids"]) == 3  # the supervisor, then two workers
    assert all(cpu is not None and cpu >= 0 for cpu in result["server_cpu_s_by_pid"])
    assert result["streams_probed"] == 6  # every stream's frames found in some worker's probe
    assert result["latency_p99_ms"] > 0 and result["frames_unprocessed"] == 0


def test_inprocess_loop_splits_one_streams_cpu() -> None:
    # bench.inprocess: the server path without the network, CPU split into front end and rest.
    from bench.inprocess import measure

    result = measure(seconds=10.0, streams=2)
    assert result["messages_in"] == 2 * 500  # one message per 20 ms of audio
    assert result["messages_out"] > 0  # the echo replies went through the outputs
    front_end, rest = result["front_end_ms_per_stream_s"], result["rest_ms_per_stream_s"]
    assert front_end > 0 and rest > 0
    assert math.isclose(result["total_ms_per_stream_s"], front_end + rest, rel_tol=1e-9)


@pytest.mark.parametrize(
    ("first", "accepted"),
    [
        ('{"action": "config", "vad": {"engine": "webrtc"}, "echo_cancellation": false}', True),
        ('{"action": "config", "sample_rate": 12345}', False),
    ],
)
def test_ws_load_sends_its_first_message_to_the_gateway(
    tmp_path: Path, first: str, accepted: bool
) -> None:
    """``--ws-first-message`` reaches the gateway before the audio: a valid config is taken
    (replies come back), an invalid one is refused with an error event on every stream."""
    children = Children(tmp_path)
    try:
        _, _, _, url = _start_servers(children, "gateway", 1, False, tmp_path)
        out = tmp_path / "load.json"
        argv = [PYTHON, "-m", "bench.loadgen", "--mode", "ws", "--target", url, "--n", "2"]
        argv += ["--duration", "3", "--warmup", "0.5", "--ramp", "0.2", "--drain", "0.5"]
        argv += ["--out", str(out), "--ws-first-message", first]
        load = children.run_json("loadgen-ws-first", argv, out, 60)
    finally:
        children.stop_all()
    if accepted:
        assert load["errors"] == {} and load["streams_failed"] == 0, load["errors"]
        assert load["turns"] > 0
    else:
        assert sum(load["errors"].values()) == 2, load["errors"]
        assert all("AUDIO_FORMAT_UNSUPPORTED" in error for error in load["errors"]), load["errors"]
