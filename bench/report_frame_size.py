"""The section of ``docs/BENCHMARKS.md`` on the gap to the floor by client message size (one
`AudioInput` per 20, 40 or 100 ms), with the gateway path beside it.

As in ``bench.report_headline``, every sentence is derived from the run's results, and
``tests/bench/test_generated_docs.py`` checks them against the data.
"""

from __future__ import annotations

from typing import Any

from bench.markdown import number, table
from bench.report_like_for_like import tries_of
from bench.targets import ABOVE_FLOOR_MS, TEXT

__all__ = ["frame_size_section"]


def _per_message_split(rows: list[dict[str, Any]]) -> str | None:
    """What of the gap above the floor goes with messages and what with audio: a straight line
    through the 20 and 100 ms rows (gap = per-stream-second part + per-message cost x messages
    per second). Two points of one run: stated as such."""
    by_ms = {r["frame_ms"]: r for r in rows if r.get("above_floor_ms_per_stream_s") is not None}
    if 20 not in by_ms or 100 not in by_ms:
        return None
    g20 = by_ms[20]["above_floor_ms_per_stream_s"]
    g100 = by_ms[100]["above_floor_ms_per_stream_s"]
    per_message_ms = (g20 - g100) / (50 - 10)  # ms per stream-second per message per second
    fixed = g100 - 10 * per_message_ms
    if per_message_ms <= 0:
        # fewer messages did not lower the gap: within this run's noise, no per-message cost
        # can be read from two points (a negative one would be nonsense)
        return (
            f"From 20 to 100 ms messages (50 to 10 a second) the gap above the floor went from "
            f"{g20:.2f} to {g100:.2f} ms per stream-second: it did not fall with five times "
            "fewer messages, so this run's two points cannot split the gap into a per-message "
            "and a per-audio part (the difference is within the run's noise or against it); "
            "the profile's layer table above splits the 20 ms case.\n"
        )
    return (
        f"From 20 to 100 ms messages (50 to 10 a second) the gap above the floor went from "
        f"{g20:.2f} to {g100:.2f} ms per stream-second. A straight line through these two points "
        f"of this run puts {per_message_ms * 1000:.0f} µs of Sonicwire's own work on each client "
        f"message and {fixed:.2f} ms per stream-second on the audio itself whatever the message "
        "size (work that goes with the audio, not the messages: per 20 ms frame the front end "
        "outside the DSP kernels, the session core and the backend, and the replies)"
        + (
            # a negative part is no cost: the line through two noisy points over-reads the
            # messages, and the split says only that the gap fell with fewer messages
            ": less than nothing, so the line over-reads the messages and this run's two points "
            "do not split the gap (the difference is within the run's noise)"
            if fixed < 0
            else ""
        )
        + "; the profile's layer table above splits the 20 ms case.\n"
    )


def frame_size_section(results: dict[str, Any]) -> str:
    """The gap to the floor per client message size, and the gateway path beside it."""
    s = results.get("summary", {})
    rows = s.get("by_frame_size") or []
    out = [
        "## The gap to the floor by client message size, and the gateway path\n",
        "The same audio (16 kHz, real time) sent as one `AudioInput` per 20, 40 or 100 ms: "
        "fewer messages per stream-second, the same DSP. Each size is measured against a bare "
        "grpc.aio echo at the same size and N, so the floor (DSP kernels + bare echo) moves "
        f"with it. Target: Sonicwire <= {TEXT['above_floor']} per stream-second above the floor. "
        "Each row is "
        "one step of each kind, minutes apart (single shots: the floor drifts between them); "
        "the target's verdict is the paired one (section above).\n",
    ]
    table_rows = []
    for r in rows:
        above = r.get("above_floor_ms_per_stream_s")
        verdict = (
            "not measured" if above is None else ("met" if above <= ABOVE_FLOOR_MS else "missed")
        )
        table_rows.append(
            [
                f"{r['frame_ms']} ms",
                r["n"],
                number(r.get("sonicwire_cpu_ms_per_stream_s"), 2),
                number(r.get("bare_echo_cpu_ms_per_stream_s"), 2),
                number(r.get("floor_cpu_ms_per_stream_s"), 2),
                number(above, 2),
                verdict,
                number(r.get("latency_p99_ms"), 2),
                "pass" if r.get("pass") else "FAIL",
            ]
        )
    gateway = [
        g
        for g in results.get("gateway", {}).get("steps", []) or tries_of(results, "gateway")
        if g.get("pass") and "error" not in g
    ]
    if gateway:
        g = max(gateway, key=lambda r: r["n"])
        table_rows.append(
            [
                "20 ms, via the gateway (JSON/WebSocket)",
                g["n"],
                number(g.get("cpu_ms_per_stream_s"), 2),
                "-",
                "-",
                "-",
                "not measured: no bare WebSocket echo as its floor",
                number(g.get("latency_p99_ms"), 2),
                "pass",
            ]
        )
    split = _per_message_split(rows)
    if split is not None:
        out.append(split)
    if len(rows) <= 1:
        why = results.get("skipped", {}).get("frame_sizes_40") or (
            "this run predates the frame_sizes phase"
            if "frame_sizes" not in results
            else "see Gaps"
        )
        out.append(f"40 and 100 ms messages: **not measured** ({why}).\n")
    out.append(
        table(
            [
                "client message",
                "N",
                "Sonicwire ms CPU/stream-s",
                "bare echo",
                "floor",
                "above floor",
                f"<= {TEXT['above_floor']} (single shot)",
                "p99 ms",
                "step",
            ],
            table_rows,
        )
        + "\n"
    )
    return "\n".join(out)
