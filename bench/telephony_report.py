"""The telephony benchmark's report: a run's summary, its history and docs/TELEPHONY_BENCH.md.

Pure functions of the recorded JSON (``bench/results/telephony.json``), apart from the
driver (``bench/telephony.py``), which measures and then calls `summarise`, `with_history`
and `render`; ``python -m bench.telephony --render-only`` re-renders from the JSON alone.
"""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np

from bench.markdown import number, table_lines
from bench.procs import ROOT

__all__ = ["DOC", "RESULT", "headline", "render", "summarise", "with_history"]

RESULT = ROOT / "bench" / "results" / "telephony.json"
DOC = ROOT / "docs" / "TELEPHONY_BENCH.md"


def _mean(phases: list[dict[str, Any]], kind: str, key: str) -> float:
    return statistics.fmean(p[key] for p in phases if p["kind"] == kind)


def _ms_pct(values: list[float], q: float = 50) -> float | None:
    """The ``q``th percentile of ``values`` (seconds) in milliseconds; None for no values."""
    return None if not values else float(np.percentile(values, q)) * 1000


def summarise(report: dict[str, Any]) -> dict[str, Any]:
    phases = report["cpu_phases"]
    total = {
        kind: _mean(phases, kind, "server_ms_per_stream_s")
        + _mean(phases, kind, "gateway_ms_per_stream_s")
        for kind in ("ws_pcm16", "twilio_mulaw")
    }
    server = {
        kind: _mean(phases, kind, "server_ms_per_stream_s") for kind in ("grpc_pcm16", "grpc_mulaw")
    }
    latencies = [x for x in report["speech_end_to_first_media_s"] if x is not None]
    clears = [x for x in report["barge_in_to_clear_s"] if x is not None]
    no_aec = [x for x in report.get("barge_in_to_clear_no_aec_s", []) if x is not None]
    control = [x for x in report.get("grpc_pcm16_speech_end_to_first_audio_s", []) if x is not None]
    control8 = [
        x for x in report.get("grpc_mulaw_speech_end_to_first_audio_s", []) if x is not None
    ]
    gaps: dict[str, list[float]] = {}
    early: dict[str, list[float]] = {}
    marker_ms: dict[str, float | None] = {}
    for kind in ("pcm16", "mulaw"):
        firsts = report.get(f"grpc_{kind}_speech_end_to_first_audio_s", [])
        marks = report.get(f"grpc_{kind}_speech_end_to_stop_marker_s", [])
        pairs = [(f, m) for f, m in zip(firsts, marks, strict=False) if f]
        # the caller stops listening at the first audio: a marker not seen by then, or seen
        # after it, means the answer came before the VAD's end of speech (the local engine's
        # early end of turn)
        waited = [(f, m) for f, m in pairs if m is not None and m <= f]
        gaps[kind] = [f - m for f, m in waited]
        early[kind] = [f for f, m in pairs if m is None or m > f]
        marker_ms[kind] = _ms_pct([m for _, m in waited])
    return {
        "marker_p50_ms": marker_ms,
        "after_marker_p50_ms": {kind: _ms_pct(v) for kind, v in gaps.items()},
        "after_marker_n": {kind: len(v) for kind, v in gaps.items()},
        "before_marker_n": {kind: len(v) for kind, v in early.items()},
        "before_marker_p50_ms": {kind: _ms_pct(v) for kind, v in early.items()},
        "control_mulaw_p50_ms": _ms_pct(control8),
        "control_p50_ms": _ms_pct(control),
        "edge_cpu_ms_per_stream_s": total,
        "edge_ratio": total["twilio_mulaw"] / total["ws_pcm16"],
        "server_cpu_ms_per_stream_s": server,
        "server_ratio": server["grpc_mulaw"] / server["grpc_pcm16"],
        "latency_p50_ms": _ms_pct(latencies),
        "latency_p90_ms": _ms_pct(latencies, 90),
        "latency_answered": f"{len(latencies)}/{len(report['speech_end_to_first_media_s'])}",
        "clear_p50_ms": _ms_pct(clears),
        "clear_max_ms": None if not clears else max(clears) * 1000,
        "clears_seen": f"{len(clears)}/{len(report['barge_in_to_clear_s'])}",
        "clear_no_aec_p50_ms": _ms_pct(no_aec),
        "clear_no_aec_max_ms": None if not no_aec else max(no_aec) * 1000,
        "clears_no_aec_seen": f"{len(no_aec)}/{len(report.get('barge_in_to_clear_no_aec_s', []))}",
    }


_HISTORY = 12  # earlier runs kept in the results (their headline numbers)


def headline(report: dict[str, Any]) -> dict[str, Any]:
    """One run's headline numbers, kept in later runs' results as their history."""
    s, m = report["summary"], report["machine"]
    return {
        "started": report["started"],
        "commit": report.get("commit"),
        "loadavg_at_start": m["loadavg_at_start"][0],
        "loadavg_at_end": (m.get("loadavg_at_end") or [None])[0],
        "latency_p50_ms": s["latency_p50_ms"],
        "control_p50_ms": s.get("control_p50_ms"),
        "control_mulaw_p50_ms": s.get("control_mulaw_p50_ms"),
        "clear_p50_ms": s["clear_p50_ms"],
        "clear_no_aec_p50_ms": s.get("clear_no_aec_p50_ms"),
        "edge_ratio": s["edge_ratio"],
        "server_ratio": s["server_ratio"],
    }


def with_history(report: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, Any]:
    """``report`` with the earlier runs' headlines: ``previous``'s history and ``previous``."""
    history = [] if previous is None else [*previous.get("history", []), headline(previous)]
    report["history"] = history[-_HISTORY:]
    return report


def _history_lines(report: dict[str, Any]) -> list[str]:
    rows = []
    for h in [*report.get("history", []), headline(report)]:
        rows.append([
            h["started"].replace("+00:00", "Z"), h.get("commit") or "-",
            f"{number(h['loadavg_at_start'], 1)} -> {number(h['loadavg_at_end'], 1)}",
            number(h["latency_p50_ms"], 0), number(h.get("control_p50_ms"), 0),
            number(h.get("control_mulaw_p50_ms"), 0), number(h["clear_p50_ms"], 0),
            number(h.get("clear_no_aec_p50_ms"), 0), number(h["edge_ratio"], 2),
            number(h["server_ratio"], 2),
        ])  # fmt: skip
    header = ["run (UTC)", "commit", "load (1 min)", "answer p50 ms", "gRPC PCM16",
              "gRPC mu-law", "clear p50 ms", "clear, no AEC", "CPU e2e", "CPU server"]  # fmt: skip
    return [
        "",
        "## This run and the earlier ones",
        "",
        "The headline numbers of every run kept in `bench/results/telephony.json` (the last row "
        "is this run; each row's code is the commit it ran on, when recorded). The machine is "
        "shared: compare the load column before comparing numbers.",
        "",
        *table_lines(header, rows),
    ]


def _verdict(ok: bool) -> str:
    return "met" if ok else "missed"


def _where_the_time_goes(report: dict[str, Any], s: dict[str, Any]) -> str:
    marker, after = s["marker_p50_ms"], s["after_marker_p50_ms"]
    text = (
        "- Where that time goes, from the server's own events on the gRPC controls (PCM 16 kHz "
        "/ mu-law 8 kHz): "
    )
    before_n = s.get("before_marker_n")
    if before_n is not None:
        before, after_n = s["before_marker_p50_ms"], s["after_marker_n"]
        text += (
            f"{before_n['pcm16']} / {before_n['mulaw']} answers came before the VAD's "
            "end-of-speech marker (the local engine's early end of turn on a complete request), "
            f"p50 {number(before['pcm16'], 0)} / {number(before['mulaw'], 0)} ms after the end "
            f"of speech; {after_n['pcm16']} / {after_n['mulaw']} waited for the marker "
            "(`SpeechActivity` stopped; the VAD waits for "
            f"{report['vad_stop_secs']:g} s of silence), which came p50 "
            f"{number(marker['pcm16'], 0)} / {number(marker['mulaw'], 0)} ms after the end of "
            f"speech, and the first audio followed it by p50 {number(after['pcm16'], 0)} / "
            f"{number(after['mulaw'], 0)} ms."
        )
        return text
    return text + (
        "the end-of-speech marker (`SpeechActivity` stopped; the VAD waits for "
        f"{report['vad_stop_secs']:g} s of silence) came p50 {number(marker['pcm16'], 0)} / "
        f"{number(marker['mulaw'], 0)} ms after the end of speech; the first audio followed "
        f"the marker by p50 {number(after['pcm16'], 0)} / {number(after['mulaw'], 0)} ms."
    )


def render(report: dict[str, Any]) -> str:
    s = report["summary"]
    m = report["machine"]
    lines = [
        "# Telephony benchmark (generated by `python -m bench.telephony`)",
        "",
        f"Run {report['started']}; {m['cpus']} CPUs shared with other work: load average "
        f"{m['loadavg_at_start']} at start, {m.get('loadavg_at_end')} at the end; "
        f"{m['busy_cores_at_start']} cores busy before the run. Settings: "
        f"{report['settings']['streams']} concurrent callers per phase, "
        f"{report['settings']['window']} s windows, {report['settings']['rounds']} rounds "
        "(phases alternate, so every kind sees the same machine).",
        "",
        "## CPU per stream (milliseconds of CPU per second of call)",
        "",
    ]
    rows = []
    for p in report["cpu_phases"]:
        rows.append([p["kind"], number(p["server_ms_per_stream_s"], 2),
                     number(p["gateway_ms_per_stream_s"], 2), len(p["errors"])])  # fmt: skip
    lines += table_lines(["phase", "server", "gateway", "caller errors"], rows)
    edge, server = s["edge_cpu_ms_per_stream_s"], s["server_cpu_ms_per_stream_s"]
    lines += [
        "",
        f"- End to end (gateway + server): Twilio call (mu-law 8 kHz) "
        f"{edge['twilio_mulaw']:.2f} ms/s vs browser stream (PCM 16 kHz) "
        f"{edge['ws_pcm16']:.2f} ms/s: **{s['edge_ratio']:.2f}x** (target <= 1.2x: "
        f"{_verdict(s['edge_ratio'] <= 1.2)}).",
        f"- Server only (gRPC): mu-law 8 kHz {server['grpc_mulaw']:.2f} ms/s vs PCM 16 kHz "
        f"{server['grpc_pcm16']:.2f} ms/s: **{s['server_ratio']:.2f}x** (target <= 1.2x: "
        f"{_verdict(s['server_ratio'] <= 1.2)}).",
        "",
        "## Latency",
        "",
    ]
    p50 = s["latency_p50_ms"]
    lines.append(
        "Each question is asked three ways in a rotating order (the engine caches replies and "
        "syntheses, so the first asker of a question pays for it cold).\n"
    )
    lines.append(
        f"- End of caller speech -> first `media` frame at the carrier, local engine, "
        f"{s['latency_answered']} calls answered: p50 **{number(p50, 0)} ms**, p90 "
        f"{number(s['latency_p90_ms'], 0)} ms (target p50 <= 550 ms: "
        f"{_verdict(p50 is not None and p50 <= 550)}). Per call (s): "
        + ", ".join(number(x, 3) for x in report["speech_end_to_first_media_s"]),
    )
    lines.append(
        f"- The same questions over gRPC with PCM 16 kHz (no telephony edge, same server, "
        f"interleaved with the calls): p50 {number(s.get('control_p50_ms'), 0)} ms. Per "
        "question (s): "
        + ", ".join(number(x, 3) for x in report.get("grpc_pcm16_speech_end_to_first_audio_s", []))
    )
    lines.append(
        f"- And over gRPC with mu-law 8 kHz (the telephone band, no gateway): p50 "
        f"{number(s.get('control_mulaw_p50_ms'), 0)} ms. Per question (s): "
        + ", ".join(number(x, 3) for x in report.get("grpc_mulaw_speech_end_to_first_audio_s", []))
    )
    if s.get("marker_p50_ms"):
        lines.append(_where_the_time_goes(report, s))
    c50 = s["clear_p50_ms"]
    lines.append(
        f"- Speech onset over the assistant -> `clear` at the carrier (echo backend), "
        f"{s['clears_seen']} barge-ins: p50 **{number(c50, 0)} ms**, max "
        f"{number(s['clear_max_ms'], 0)} ms (issue 18 asks <= 300 ms: "
        f"{_verdict(c50 is not None and s['clear_max_ms'] <= 300)}). Per barge-in (s): "
        + ", ".join(number(x, 3) for x in report["barge_in_to_clear_s"])
    )
    if "barge_in_to_clear_no_aec_s" in report:
        n50, nmax = s["clear_no_aec_p50_ms"], s["clear_no_aec_max_ms"]
        lines.append(
            f"- The same with the call's parameter `echoCancellation=false` (the server's echo "
            f"canceller off, as when the phone or carrier removes echo), "
            f"{s['clears_no_aec_seen']} barge-ins: p50 **{number(n50, 0)} ms**, max "
            f"{number(nmax, 0)} ms (<= 300 ms: "
            f"{_verdict(nmax is not None and nmax <= 300)}). Per barge-in (s): "
            + ", ".join(number(x, 3) for x in report["barge_in_to_clear_no_aec_s"])
        )
    lines += _history_lines(report)
    return "\n".join(lines) + "\n"
