"""What the load generator measures besides its streams, and its summary of a run.

The server processes' CPU (all threads, and the main thread alone: the asyncio loop, the rest
being gRPC's C core), the whole machine's busy CPU (how contended the run was) and RSS, sampled
at the measurement window's edges by `bench.loadgen.run_load`; then `summarise` folds the
per-stream records (`bench.loadgen_streams.StreamStats`) into the run's JSON. Apart from the
streams so that nothing here runs per frame.
"""

from __future__ import annotations

import contextlib
from array import array
from collections.abc import Sequence
from typing import Any

import numpy as np
import psutil

from bench.loadgen_streams import LoadSettings, StreamStats

__all__ = [
    "cpu_seconds",
    "machine_busy_seconds",
    "main_thread_cpu_seconds",
    "rss_bytes",
    "save_times",
    "summarise",
]


def cpu_seconds(pids: Sequence[int]) -> dict[int, float]:
    out = {}
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            t = psutil.Process(pid).cpu_times()
            out[pid] = t.user + t.system
    return out


def main_thread_cpu_seconds(pids: Sequence[int]) -> dict[int, float]:
    """CPU seconds of each process's main thread (the asyncio loop); the rest is C-core's."""
    out = {}
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            for thread in psutil.Process(pid).threads():
                if thread.id == pid:
                    out[pid] = thread.user_time + thread.system_time
    return out


def machine_busy_seconds() -> float:
    """CPU seconds all processes on the machine have used (every core), for contention."""
    t = psutil.cpu_times()
    return float(t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0))


def rss_bytes(pids: Sequence[int]) -> dict[int, int]:
    out = {}
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            out[pid] = psutil.Process(pid).memory_info().rss
    return out


def _pct(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else 0.0


def summarise(
    settings: LoadSettings,
    stats: list[StreamStats],
    window_start: float,
    window_end: float,
    window: float,
) -> dict[str, Any]:
    def in_window(values: array[float]) -> np.ndarray:
        arr = np.frombuffer(values, dtype=np.float64) if len(values) else np.zeros(0)
        return arr[(arr >= window_start) & (arr < window_end)]

    sent = 0
    slips: list[np.ndarray] = []
    lags: list[np.ndarray] = []
    late = 0
    late_jb = 0
    audio_frames = 0
    for s in stats:
        send = np.frombuffer(s.send_times, dtype=np.float64) if len(s.send_times) else np.zeros(0)
        mask = (send >= window_start) & (send < window_end)
        sent += int(mask.sum())
        slip = np.frombuffer(s.send_slip, dtype=np.float64) if len(s.send_slip) else np.zeros(0)
        slips.append(slip[mask])
        arrivals = in_window(s.audio_arrivals)
        audio_frames += len(arrivals)
        late += len(in_window(s.late_arrivals))
        late_jb += len(in_window(s.late_jb_arrivals))
        lag = np.frombuffer(s.delivery_lag, dtype=np.float64) if len(s.delivery_lag) else None
        if lag is not None:
            arr = np.frombuffer(s.audio_arrivals, dtype=np.float64)
            lags.append(lag[(arr >= window_start) & (arr < window_end)])
    slip_all = np.concatenate(slips) if slips else np.zeros(0)
    lag_all = np.concatenate(lags) if lags else np.zeros(0)
    errors: dict[str, int] = {}
    for s in stats:
        if s.error:
            errors[s.error[:160]] = errors.get(s.error[:160], 0) + 1
    return {
        "mode": settings.mode,
        "n": settings.n,
        "window_s": window,
        "streams_failed": sum(1 for s in stats if s.error),
        "errors": errors,
        "frames_sent": sent,
        "send_slip_p50_ms": _pct(slip_all, 50) * 1000,
        "send_slip_p99_ms": _pct(slip_all, 99) * 1000,
        "send_slip_max_ms": float(slip_all.max() * 1000) if len(slip_all) else 0.0,
        "frames_sent_late": int((slip_all > settings.message_s).sum()),
        "frames_per_message": settings.frames_per_message,
        "audio_frames_received": audio_frames,
        "late_frames": late,
        "late_frames_jb60": late_jb,
        "delivery_lag_p50_ms": _pct(lag_all, 50) * 1000,
        "delivery_lag_p99_ms": _pct(lag_all, 99) * 1000,
        "delivery_lag_max_ms": float(lag_all.max() * 1000) if len(lag_all) else 0.0,
        "gap_frames": sum(s.gap_frames for s in stats),
        "turns": sum(s.turns for s in stats),
        "turn_completes": sum(s.turn_completes for s in stats),
        "interruptions": sum(s.interruptions for s in stats),
        "speech_started": sum(s.speech_started for s in stats),
        "speech_stopped": sum(s.speech_stopped for s in stats),
        "clips": sum(s.clips for s in stats),
        "audio_out_s": sum(s.audio_bytes for s in stats) / 32000,
        "window_start": window_start,
        "window_end": window_end,
    }


def save_times(path: str, stats: list[StreamStats]) -> None:
    """Per-stream send times keyed by session id (for the server-side latency probe)."""
    data = {
        f"send:{s.session_id}": np.frombuffer(s.send_times, dtype=np.float64)
        for s in stats
        if s.session_id and len(s.send_times)
    }
    np.savez(path, **data)  # type: ignore[arg-type]
