"""Render ``docs/soak.md`` from the soak runs' JSON (``bench/results/soak.json`` and the run
before the cycle fix, ``soak-before-cycle-fix.json``); every figure in it comes from them.

    .venv/bin/python -m bench.soak_report     # re-render docs/soak.md (``bench.soak`` does it
                                              # after a run that writes the default JSON)

``tests/bench/test_generated_docs.py`` re-renders the doc from the committed JSON and fails
when the committed doc differs.
"""

from __future__ import annotations

import itertools
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from bench.markdown import number, table

__all__ = ["BEFORE", "DOC", "RESULTS", "main", "render"]

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "soak.json"
BEFORE = ROOT / "bench" / "results" / "soak-before-cycle-fix.json"
BENCH = ROOT / "bench" / "results" / "latest.json"
DOC = ROOT / "docs" / "soak.md"

_PHASES = {
    "idle-before": "idle before the load",
    "load-start": "load start (all streams up)",
    "load-end": "load end",
    "idle-after": "idle after (all streams ended)",
}

_METHOD = """# Soak runs

`bench/soak.py` keeps N real-time conversations open against a server *process* for a while,
with client cancels mixed in, and watches the process from outside. The question is whether
anything accumulates: memory, file descriptors, threads, live conversations.

This file is generated from the runs' JSON by `python -m bench.soak_report` (a soak run that
writes the default `bench/results/soak.json` re-renders it); edit `bench/soak_report.py`, not
this file.

```sh
.venv/bin/python -m bench.soak                              # 100 streams, 10 minutes
.venv/bin/python -m bench.soak --streams 50 --minutes 2     # the short version
.venv/bin/python -m bench.soak --resummarize bench/results/soak.json   # recompute a summary
.venv/bin/python -m bench.soak_report                       # re-render this file
```

## What a run does

* Starts `python -m sonicwire.server --backend echo --port 0 --metrics-port P` (the echo
  backend answers every utterance with the utterance itself, so every stream has real turns:
  VAD, paced assistant audio, echo cancellation against it, barge-ins).
* Keeps `--streams` conversations open. Each sends recorded speech (alsa-utils'
  "Front Center") between silences, in `--chunk-ms` chunks paced at real time, for 10-60 s,
  then half-closes and waits for the server to finish the turn (status OK), or, for
  `--cancel-ratio` of them, cancels at a random moment. The slot then opens a new conversation
  at once.
* Samples the server process every `--sample-seconds`: RSS, open fds (`/proc/PID/fd`), OS
  threads, CPU, the server's own `sonicwire_active_streams` and `sonicwire_event_loop_tasks`
  (asyncio tasks alive in its loop), Python GC counts, and the round trip of a
  `grpc.health.v1` check on a separate connection. Also at idle before the load and idle after
  it (all streams ended).
* Sends SIGTERM at the end and records the exit code and the time to exit.

The in-process tests check the inside directly too: every fuzz case and fault test asserts that
`runtime.conversations` is empty and no stream slot is held after the stream ends (see
[robustness.md](robustness.md)), and `tests/server/test_lifecycle.py` asserts that an ended
conversation is freed with the cyclic garbage collector switched off.
"""


def _f(value: Any, digits: int = 1) -> str:
    return number(value, digits)


def _int(value: Any) -> str:
    """Counts as integers with thousands separators (the JSON stores gauges as floats)."""
    return "-" if value is None else f"{round(value):,}"


def _loaded(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in result["samples"] if s["phase"] in ("load-start", "load", "load-end")]


def _machine_line(result: dict[str, Any]) -> str:
    m, c = result["machine"], result["config"]
    loads = [s["load_avg_1m"] for s in result["samples"] if s.get("load_avg_1m") is not None]
    load = (
        f"1-minute load average {_f(min(loads), 2)}-{_f(max(loads), 2)} during the run"
        if loads
        else "load average not recorded"
    )
    when = result.get("started_at") or "date not recorded in the JSON"
    return (
        f"Machine: {m['cpus']} CPUs (the client, all {c['streams']} streams in one Python "
        f"process, shares them with the server), Python {m['python']}, grpcio {m['grpcio']}; "
        f"{load}. Run: {when}, `.venv/bin/python -m bench.soak --streams {c['streams']} "
        f"--minutes {c['minutes']:g} --cancel-ratio {c['cancel_ratio']:g}` (seed {c['seed']})."
    )


def _per_conversation_tasks(result: dict[str, Any]) -> float | None:
    phases = result["summary"]["phases"]
    idle, start = phases["idle-before"].get("tasks"), phases["load-start"].get("tasks")
    streams = phases["load-start"].get("active_streams")
    if idle is None or start is None or not streams:
        return None
    return float((start - idle) / streams)


def _results_section(result: dict[str, Any]) -> list[str]:
    s, c, cfg = result["summary"], result["conversations"], result["config"]
    steady = s["steady_state"]
    phases = s["phases"]
    out = [
        f"### {cfg['streams']} streams, {cfg['minutes']:g} minutes (`bench/results/soak.json`)\n",
        table(
            ["phase", "t (s)", "RSS MB", "fds", "threads", "asyncio tasks", "active streams"],
            [
                [
                    _PHASES.get(name, name),
                    _f(row["t_s"]),
                    _f(row["rss_mb"]),
                    row["fds"],
                    row["threads"],
                    _int(row.get("tasks")),
                    _int(row.get("active_streams")),
                ]
                for name, row in phases.items()
            ],
        )
        + "\n",
    ]
    errors = sum(c["errors"].values()) if c["errors"] else 0
    out.append(
        f"* Conversations: **{c['started']:,}** started, {c['ended_ok']:,} ended OK by "
        f"half-close, {c['cancelled_by_client']:,} cancelled by the client, **{errors:,} "
        f"errors**{' (' + json.dumps(c['errors']) + ')' if errors else ''}; "
        f"{c['assistant_turns']:,} assistant turns, {c['interruptions']:,} interruptions "
        f"(barge-ins); {_f(c['audio_in_minutes'], 0)} min of audio in, "
        f"{_f(c['audio_out_minutes'], 0)} min out. Time to first audio p50 "
        f"{c['first_audio_ms_p50']} ms, p99 {c['first_audio_ms_p99']} ms (server-measured, "
        "`TurnComplete`)."
    )
    per_conv = _per_conversation_tasks(result)
    idle_tasks = phases["idle-before"].get("tasks")
    after_tasks = phases["idle-after"].get("tasks")
    back = "back to" if after_tasks == idle_tasks else "**not** back to"
    out.append(
        f"* Steady state (t >= {_f(steady['from_t_s'], 0)} s, {steady['samples']} samples): "
        f"**RSS {_f(steady['rss_mb_min'])}-{_f(steady['rss_mb_max'])} MB, slope "
        f"{_f(steady['rss_slope_mb_per_min'], 2)} MB/min**; fds "
        f"{_range(steady['fds_min_max'])}; threads {_range(steady['threads_min_max'])}; "
        f"asyncio tasks {_f(per_conv, 1)} per live conversation at load start "
        f"((load start - idle) / streams), {back} **{_int(after_tasks)}** at idle after "
        f"({_int(idle_tasks)} before the load)."
    )
    out.append(
        f"* Server CPU: median {_f(s['cpu_percent_under_load_median'], 0)} % of one core for "
        f"{cfg['streams']} streams; health check median {_f(s['health_ms_median'])} ms, max "
        f"{_f(s['health_ms_max'])} ms, {s['health_failures']} failures. SIGTERM: exit code "
        f"{result['drain']['exit_code']} after {result['drain']['seconds']} s."
    )
    return out


def _range(pair: list[int] | None) -> str:
    if not pair:
        return "-"
    lo, hi = pair
    return f"{lo} throughout" if lo == hi else f"{lo}-{hi}"


def _sawtooth(before: dict[str, Any]) -> dict[str, Any]:
    """The drops of RSS between samples in the run before the fix and the GC work at each."""
    loaded = _loaded(before)
    drops, rises, freed, freed_otherwise = [], [], [], []
    for prev, cur in itertools.pairwise(loaded):
        delta = cur["rss_mb"] - prev["rss_mb"]
        dt = cur["t_s"] - prev["t_s"]
        collected = None
        if cur.get("gc_collected") is not None and prev.get("gc_collected") is not None:
            collected = cur["gc_collected"] - prev["gc_collected"]
        if delta < -50:  # a fall of more than 50 MB between two samples
            drops.append(cur["t_s"])
            if collected is not None:
                freed.append(collected)
        else:
            if collected is not None:
                freed_otherwise.append(collected)
            if delta > 0 and dt > 0:
                rises.append(delta / dt)
    gaps = [b - a for a, b in itertools.pairwise(drops)]
    return {
        "drops": len(drops),
        "interval_s": statistics.median(gaps) if gaps else None,
        "rise_mb_per_s": statistics.median(rises) if rises else None,
        "freed_objects": statistics.median(freed) if freed else None,
        "freed_objects_otherwise": statistics.median(freed_otherwise) if freed_otherwise else None,
    }


def _before_section(before: dict[str, Any] | None, after: dict[str, Any]) -> list[str]:
    out = ["### What the first run of the day found: a reference cycle per conversation\n"]
    if before is None:
        return [*out, "The run before the fix is not in `bench/results/`.\n"]
    steady = before["summary"]["steady_state"]
    saw = _sawtooth(before)
    idle_after = before["summary"]["phases"]["idle-after"]["rss_mb"]
    out.append(
        "The same soak before the fix (`bench/results/soak-before-cycle-fix.json`) showed a "
        f"sawtooth: in steady state RSS ranged {_f(steady['rss_mb_min'])}-"
        f"{_f(steady['rss_mb_max'])} MB, rising at a median {_f(saw['rise_mb_per_s'], 1)} "
        f"MB/s between samples, with {saw['drops']} falls of more than 50 MB (median "
        f"{_f(saw['interval_s'], 0)} s apart); across a fall the GC's collected-object count "
        f"rose by a median {_int(saw['freed_objects'])}, against "
        f"{_int(saw['freed_objects_otherwise'])} between other samples; {_f(idle_after)} MB stayed "
        f"resident after the load (after the fix: "
        f"{_f(after['summary']['phases']['idle-after']['rss_mb'])} MB). With the collector "
        "disabled, every ended conversation (`Conversation`, `Session`, `FrontEnd` with its "
        "speex states and sample logs) turned up in cyclic garbage: conversation -> "
        "`SessionTools` -> the tool callbacks' closure -> the `holder` list -> conversation "
        "(`runtime.py`). The runtime now empties `holder` when the stream ends, so reference "
        "counting frees a conversation at once; "
        "`test_an_ended_conversation_is_freed_without_the_cyclic_gc` fails if any cycle comes "
        "back.\n"
    )
    return out


def _reading_section(result: dict[str, Any], bench: dict[str, Any] | None) -> list[str]:
    s, cfg = result["summary"], result["config"]
    steady, phases = s["steady_state"], s["phases"]
    span_min = (phases["load-end"]["t_s"] - (steady["from_t_s"] or 0)) / 60
    rss_range = (steady["rss_mb_max"] or 0) - (steady["rss_mb_min"] or 0)
    per_stream = (phases["load-end"]["rss_mb"] - phases["idle-before"]["rss_mb"]) / cfg["streams"]
    bench_mb = (bench or {}).get("summary", {}).get("rss_per_stream_mb_at_reference")
    bench_note = (
        f"; the benchmark measured {_f(bench_mb, 2)} MB per stream ([BENCHMARKS.md]"
        "(BENCHMARKS.md), a different load and RSS unit: MB there, MiB here)"
        if bench_mb is not None
        else ""
    )
    return [
        "## Reading the numbers\n",
        f"* **Steady state**: fds {_range(steady['fds_min_max'])}, threads "
        f"{_range(steady['threads_min_max'])}, RSS within {_f(rss_range)} MB over "
        f"{_f(span_min, 1)} minutes and {result['conversations']['started']:,} conversations "
        f"(slope {_f(steady['rss_slope_mb_per_min'], 2)} MB/min).",
        f"* **Per-stream footprint**: (RSS at load end - idle RSS) / streams = "
        f"({_f(phases['load-end']['rss_mb'])} - {_f(phases['idle-before']['rss_mb'])}) / "
        f"{cfg['streams']} = {_f(per_stream, 2)} MB per live stream{bench_note}.",
        f"* **After the load** RSS is {_f(phases['idle-after']['rss_mb'])} MB against "
        f"{_f(phases['idle-before']['rss_mb'])} MB idle before it: CPython keeps freed arenas "
        "and gRPC keeps buffers sized for the peak concurrency.",
    ]


def render(
    result: dict[str, Any],
    before: dict[str, Any] | None = None,
    bench: dict[str, Any] | None = None,
) -> str:
    """docs/soak.md from the soak run's JSON (and, for context, the run before the cycle fix
    and the benchmark's results)."""
    out = [_METHOD, "## Results\n", _machine_line(result) + "\n"]
    out += _results_section(result)
    out.append("")
    out += _before_section(before, result)
    out += _reading_section(result, bench)
    return "\n".join(out) + "\n"


def _load(path: Path) -> dict[str, Any] | None:
    data: dict[str, Any] | None = json.loads(path.read_text()) if path.exists() else None
    return data


def render_files() -> str:
    """The doc from the committed JSON files."""
    result = _load(RESULTS)
    if result is None:
        raise SystemExit(f"no soak results at {RESULTS}: run python -m bench.soak first")
    return render(result, _load(BEFORE), _load(BENCH))


def main() -> int:
    DOC.write_text(render_files())
    print(f"wrote {DOC.relative_to(ROOT)} from {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
