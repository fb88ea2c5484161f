"""Render ``docs/BENCHMARKS.md`` and its plots from the results of ``bench.run``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.markdown import table
from bench.report_floor import above_floor_cell, paired_floor_section
from bench.report_frame_size import frame_size_section
from bench.report_headline import (
    headline_lines,
    like_for_like_section,
    pipecat_version,
    targets_table,
)
from bench.report_inprocess import inprocess_section
from bench.report_like_for_like import tries_of
from bench.report_profile import profile_section
from bench.targets import KERNELS_X, TEXT

__all__ = ["render", "write_report"]


def _f(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _loadavg(values: Any) -> str:
    """``os.getloadavg()`` as recorded: three figures, two decimals."""
    if not values:
        return "-"
    return ", ".join(f"{v:.2f}" for v in values)


def _stepstable(steps: list[dict[str, Any]], probe: bool = True) -> str:
    header = ["N", "CPU ms/stream-s", "cores", "RSS MB/stream"]
    if probe:
        header += [
            "loop thread %",
            "p50 ms",
            "p99 ms",
            "front end+core mean/p99 ms",
            "loop lag p99 ms",
        ]
    # pipecat runs only the loop-lag probe (bench/pipecat_peer.py): shown when it ran
    lag_only = not probe and any(r.get("loop_lag_p99_ms") is not None for r in steps)
    if lag_only:
        header.append("loop lag p99 ms")
    header += ["late (jb60)", "dropped", "replies", "client cores", "other load", "result"]
    rows = []
    for r in steps:
        if "error" in r:
            rows.append([r["n"], *(["-"] * (len(header) - 2)), "error: " + r["error"][:80]])
            continue
        row = [
            r["n"],
            _f(r.get("cpu_ms_per_stream_s"), 2),
            _f(r.get("cores_used"), 2),
            _f(r.get("rss_per_stream_mb"), 2),
        ]
        if probe:
            share = r.get("main_thread_share")
            row += [
                "-" if share is None else f"{100 * share:.0f}",
                _f(r.get("latency_p50_ms"), 2),
                _f(r.get("latency_p99_ms"), 2),
                f"{_f(r.get('processing_mean_ms'), 3)} / {_f(r.get('processing_p99_ms'), 2)}",
                _f(r.get("loop_lag_p99_ms"), 1),
            ]
        elif lag_only:
            row.append(_f(r.get("loop_lag_p99_ms"), 1))
        dropped = (r.get("gap_frames") or 0) + (r.get("frames_unprocessed") or 0)
        late = f"{r.get('late_frames')} ({r.get('late_frames_jb60')})"
        row += [
            "n/a" if r.get("target") == "bare-echo" else late,
            dropped,
            r.get("replies"),
            _f(r.get("client_cores_used"), 2),
            _f(r.get("foreign_cores_used"), 2),
            _verdict(r),
        ]
        rows.append(row)
    return table(header, rows)


def _verdict(r: dict[str, Any]) -> str:
    """The result cell: pass/FAIL with reasons, and which try it was when a step was retried."""
    verdict = "pass" if r.get("pass") else "FAIL: " + "; ".join(r.get("fail_reasons", []))
    if r.get("superseded_by_retry"):
        return (
            f"{verdict} (try 1 of 2: other load {_f(r.get('foreign_cores_used'), 2)} cores, "
            "measured again)"
        )
    if r.get("attempt") == 2:
        return f"{verdict} (try 2 of 2)"
    return verdict


def _steps_or_tries(results: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """A WebSocket target's steps: its ladder (runs before 2026-12-07), else its paired
    like-for-like tries by N."""
    if key in results:
        return list(results[key].get("steps", []))
    return sorted(tries_of(results, key), key=lambda t: (t["n"], t["round"]))


def _plots(results: dict[str, Any], img: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    img.mkdir(parents=True, exist_ok=True)
    made = []
    series = {
        "Sonicwire (full front end, echo backend)": results.get("search", {}).get("steps", []),
        "bare grpc.aio echo": results.get("bare_echo", {}).get("steps", []),
        "pipecat (Silero VAD + echo)": _steps_or_tries(results, "pipecat"),
        "gateway + Sonicwire": _steps_or_tries(results, "gateway"),
        "sonicwire up (one process)": _steps_or_tries(results, "up"),
    }
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for label, steps in series.items():
        pts = [(r["n"], r["cpu_ms_per_stream_s"]) for r in steps if "cpu_ms_per_stream_s" in r]
        if pts:
            ax.plot(*zip(*pts, strict=True), marker="o", label=label)
    kernel = results.get("kernels", {}).get("cpu_ms_per_stream_s")
    if kernel:
        ax.axhline(kernel, color="grey", linestyle="--", label="DSP kernels alone")
        ax.axhline(
            KERNELS_X * kernel,
            color="red",
            linestyle=":",
            label=f"target: {TEXT['kernels']} kernels",
        )
    ax.set_xlabel("concurrent streams (N), one server process")
    ax.set_ylabel("server CPU ms per stream-second")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(img / "bench_cpu_vs_n.png", dpi=110)
    plt.close(fig)
    made.append("bench_cpu_vs_n.png")

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for label, steps, keys in (
        (
            "Sonicwire",
            series["Sonicwire (full front end, echo backend)"],
            ("latency_p50_ms", "latency_p99_ms"),
        ),
        ("bare echo", series["bare grpc.aio echo"], ("latency_p50_ms", "latency_p99_ms")),
    ):
        for key, style in zip(keys, ("-", "--"), strict=True):
            pts = [(r["n"], r[key]) for r in steps if r.get(key) is not None]
            if pts:
                ax.plot(
                    *zip(*pts, strict=True),
                    marker="o",
                    linestyle=style,
                    label=f"{label} {key.split('_')[1]}",
                )
    ax.axhline(10, color="red", linestyle=":", label="target p99 10 ms")
    ax.set_yscale("log")
    ax.set_xlabel("concurrent streams (N), one server process")
    ax.set_ylabel("added latency (ms): client send -> front-end output")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(img / "bench_latency_vs_n.png", dpi=110)
    plt.close(fig)
    made.append("bench_latency_vs_n.png")
    return made


def _rejudged(results: dict[str, Any]) -> str:
    changed = results.get("rejudged") or []
    if not changed:
        return ""
    return f"; re-judging changed {len(changed)} verdict(s), listed under `rejudged` in the JSON"


def _reference_step(results: dict[str, Any]) -> dict[str, Any] | None:
    n = results.get("summary", {}).get("reference_n")
    steps: list[dict[str, Any]] = results.get("search", {}).get("steps", [])
    for r in steps:
        if r.get("n") == n and not r.get("superseded_by_retry") and "error" not in r:
            return r
    return None


def _out_share(s: dict[str, Any], results: dict[str, Any] | None = None) -> str:
    """How much of the time Sonicwire sends audio, from the reference step's frame counts."""
    r = _reference_step(results) if results is not None else None
    if r is None or not r.get("frames_sent") or r.get("audio_frames_received") is None:
        return "share not measured"
    share = r["audio_frames_received"] / r["frames_sent"]
    return (
        f"{100 * share:.0f}% as many frames out as in at N={r['n']} in this run "
        f"({r['audio_frames_received']} out, {r['frames_sent']} in)"
    )


def _client_cost(results: dict[str, Any]) -> str:
    """What the load generator cost in this run, from the search's steps."""
    steps = [
        r
        for r in results.get("search", {}).get("steps", [])
        if r.get("client_cores_used") and "error" not in r
    ]
    if not steps:
        return "its cost was not measured"
    top = max(steps, key=lambda r: r["n"])
    per_core = top["n"] / top["client_cores_used"]
    return (
        f"at N={top['n']} it used {_f(top['client_cores_used'], 2)} cores, i.e. ~{per_core:.0f} "
        "streams per generator core at that rate (a linear extrapolation, not a measured limit)"
    )


def _scaling_paragraph(results: dict[str, Any]) -> str:
    s = results.get("summary", {})
    one, two = s.get("max_streams_one_process"), s.get("max_streams_two_processes")
    if one is None or two is None or s.get("two_process_cpu_ms_per_stream_s") is None:
        return ""
    cpus = results.get("machine", {}).get("cpus")
    if two > one:
        change = f"grows from {one} streams (one process, one dedicated core) to {two} with two"
    elif two == one:
        change = (
            f"does not grow: {one} streams with one process on one dedicated core, {two} with two"
        )
    else:
        change = f"drops from {one} streams (one process, one dedicated core) to {two} with two"
    projection = s.get("two_cores_cpu_bound_streams_projection")
    text = (
        f"Measured: capacity {change} processes sharing the {cpus} CPUs with the generator "
        f"(which used {_f(s.get('two_process_client_cores'), 2)} cores at "
        f"N={s.get('two_process_n')})."
    )
    if projection is not None:
        text += (
            f" *Projection, not measured:* at the two processes' measured "
            f"{_f(s.get('two_process_cpu_ms_per_stream_s'), 2)} ms per stream-second, two whole "
            f"cores would carry ~{projection:.0f} streams before CPU saturation, if the load came "
            "from other machines; this run did not test that."
        )
    return text + "\n"


def _criteria_section(results: dict[str, Any]) -> str:
    """The pass criteria of each target, as recorded with the run (or today's, if absent)."""
    from bench.steps import CRITERIA

    criteria = results.get("criteria") or {k: list(v) for k, v in CRITERIA.items()}
    rows = [[f"`{target}`", "; ".join(rules)] for target, rules in criteria.items()]
    return (
        "### What a step must meet, per target\n\n"
        "A step passes only when every criterion of its target was measured and met; an "
        "unmeasured one (say, p99 with no probe data) fails it.\n\n"
        + table(["target", "criteria"], rows)
        + "\n"
    )


def render(results: dict[str, Any], images: list[str]) -> str:
    s = results.get("summary", {})
    m = results.get("machine", {})
    v = results.get("versions", {})
    cfg = results.get("step_config", {})
    out: list[str] = []
    add = out.append
    add("# Benchmarks\n")
    add(
        f"Generated by `python -m bench.run{' --quick' if results.get('mode') == 'quick' else ''}`"
        f" ({results.get('mode')} mode) on {results.get('started_at')}, "
        f"{_f(results.get('elapsed_s'), 0)} s. Raw figures: `bench/results/latest.json`. "
        "Regenerate with `make bench` (full) or `make bench-quick` (under 3 minutes). The text "
        "is rendered from that file by `bench/report.py`; `python -m bench.run --render-only` "
        "re-renders it (and re-judges the recorded steps by today's criteria) without measuring"
        f"{_rejudged(results)}.\n"
    )
    code = results.get("code") or {}
    if code.get("commit"):
        add(
            f"Code measured: commit `{code['commit']}`"
            + (" with uncommitted changes under server/" if code.get("dirty") else "")
            + (f"; per-frame code {code['native']}" if code.get("native") else "")
            + ".\n"
        )
    add(
        f"Machine: {m.get('cpus')} CPUs ({m.get('cpu_model')}), {m.get('memory_gb')} GiB, "
        f"Linux {m.get('kernel')}; load average (1, 5, 15 min) at start "
        f"{_loadavg(m.get('loadavg_at_start'))}"
        + (f", at the end {_loadavg(m['loadavg_at_end'])}" if m.get("loadavg_at_end") else "")
        + ". "
        f"Python {v.get('python')}, grpcio {v.get('grpcio')}, protobuf {v.get('protobuf')}, "
        f"numpy {v.get('numpy')}, webrtcvad-wheels {v.get('webrtcvad-wheels')}.\n"
    )
    add("## Like for like: Sonicwire's gateway vs pipecat, same protocol\n")
    add(like_for_like_section(results))
    add("## Against the targets\n")
    add(targets_table(s, above_floor_cell(results)) + "\n")
    add("## Headline\n")
    add("\n".join(headline_lines(results)) + "\n")
    add(_criteria_section(results))
    foreign = s.get("max_foreign_cores_during_search")
    cpus = m.get("cpus") or 0
    load = m.get("loadavg_at_start") or []
    if load and cpus and load[0] > cpus:
        add(
            f"> **A contended run:** the 1-minute load average was {load[0]:.2f} at the start "
            f"on {cpus} CPUs ({load[0] / cpus:.1f} runnable processes per CPU)"
            + (f" and {m['loadavg_at_end'][0]:.2f} at the end" if m.get("loadavg_at_end") else "")
            + ". This is not a quiet run: compare its figures with each other, not with a "
            "quiet run's.\n"
        )
    if foreign and foreign > 0.2 and str(results.get("priority", "")).startswith("SCHED_RR"):
        add(
            f"> **The machine was shared:** other processes used up to {_f(foreign, 2)} cores "
            "during the search (column *other load*). The servers and the load generator ran in "
            "the real-time scheduling class (`--priority realtime`), so that work waited for them "
            "rather than the reverse. CPU per stream-second is the measured processes' own CPU "
            "time, but they shared caches and cores with that work: compare figures within this "
            "run (the kernels and the floor are measured in it too), not with another run's.\n"
        )
    elif foreign and foreign > 0.2:
        add(
            f"> **Caveat: the machine was shared.** Other processes used up to {_f(foreign, 2)} "
            "cores during the search (column *other load*). CPU per stream-second is the "
            "measured processes' own CPU time, but they shared caches and cores with that work; "
            "latency, late frames and therefore the capacity figures are pessimistic for the "
            "steps where other load was high. Compare figures within this run (the floor is "
            "measured in it too) and re-run on a quiet machine before drawing conclusions from "
            "the capacity numbers.\n"
        )
    checked = s.get("steps_checked_for_other_realtime")
    shared = s.get("steps_with_other_realtime")
    if checked:
        add(
            f"> **Other real-time work:** {shared} of the {checked} measured steps had another "
            "process in a real-time scheduling class (another benchmark on this machine) running "
            "at their start or end"
            + (
                ": those shared the cores on equal terms, so their latency and capacity figures "
                "are not those of a quiet machine.\n"
                if shared
                else ".\n"
            )
        )
    for image in images:
        add(f"![{image}](img/{image})\n")

    def section(title: str, key: str, probe: bool, intro: str) -> None:
        data = results.get(key)
        add(f"## {title}\n")
        add(intro + "\n")
        if data is None and key in ("pipecat", "gateway", "up") and tries_of(results, key):
            # since 2026-12-07 these targets run only in the paired like-for-like rounds
            add(
                "Every try of the paired like-for-like phase (section at the top), by N and "
                "round:\n"
            )
            tries = sorted(tries_of(results, key), key=lambda t: (t["n"], t["round"]))
            rows = [{**t, "n": f"{t['n']} (round {t['round']})"} for t in tries]
            add(_stepstable(rows, probe=probe) + "\n")
            return
        if (
            data is None
            and key in ("pipecat", "gateway", "up")
            and ("like_for_like" in results or "like_for_like" in results.get("skipped", {}))
        ):
            add(
                "Measured only in the paired like-for-like phase (section at the top), which "
                "has no try of it in this run.\n"
            )
            return
        if data is None:
            add(f"Not run: {results.get('skipped', {}).get(key, 'not reached')}.\n")
            return
        if data.get("error") and not data.get("steps"):
            add(f"**Not measured:** {data['error']}\n")
            return
        add(_stepstable(data.get("steps", []), probe=probe) + "\n")

    section(
        "Sonicwire, one process on one core",
        "search",
        True,
        "The server (`bench/probe_server.py`: the real server, echo backend, default front end "
        "— speex echo cancellation 200 ms tail, preprocessor at -30 dB linked for residual echo "
        "suppression, webrtcvad) is pinned to CPU 1, the load generator to CPU 0. N rises until a "
        "step fails. *late*: assistant frames arriving after their playback time for a client "
        "that starts playing on the first frame (in brackets: with a 60 ms jitter buffer); "
        "*dropped*: gaps in the output offsets plus input frames the server never processed.",
    )
    section(
        "The transport limit: bare grpc.aio echo",
        "bare_echo",
        True,
        "A minimal servicer (`bench/bare_echo.py`) that answers every `AudioInput` with an "
        "`AudioOutput` of the same bytes, at the same N: 50 messages in and 50 out per "
        f"stream-second (Sonicwire sends audio out only while replying: {_out_share(s, results)}). "
        "Its late-frame column is meaningless (no pacing) and is not judged.",
    )
    section(
        "The peer: pipecat",
        "pipecat",
        False,
        f"pipecat-ai {pipecat_version()} (`bench/pipecat_peer.py`): FastAPI WebSocket "
        "transport per connection (uvicorn), `VADProcessor(SileroVADAnalyzer)` on "
        "onnxruntime (no torch), an echo "
        "processor that plays each utterance back, output paced in 20 ms chunks; RTVI, turn "
        "tracking and the idle watchdog off, logging at WARNING. Same load generator over the "
        "seed's JSON WebSocket protocol. pipecat sends audio at real time with no lead, so its "
        "late frames are judged with a 60 ms client jitter buffer. It runs from its own venv "
        "because pipecat-ai requires protobuf < 7 (see Gaps).",
    )
    add(profile_section(results))
    section(
        "Scaling on one machine: two processes, one port",
        "scaling",
        True,
        "Two server processes bind the same port with `grpc.so_reuseport=1` (set by the bench "
        "wrapper; the server's own default is 0), the kernel spreads connections (one per stream) "
        "between them. Nothing is pinned: the two servers and the load generator share the "
        f"machine's {m.get('cpus')} CPUs, so the load generator's own CPU (column *client "
        "cores*) comes out of the servers' capacity.",
    )
    add(_scaling_paragraph(results))
    section(
        "WebSocket gateway in front of Sonicwire",
        "gateway",
        True,
        "`python -m sonicwire.gateway` bridging the seed's JSON protocol to the gRPC server; both "
        "pinned to CPU 1. CPU and RSS columns are gateway + server together; latency is still "
        "measured at the gRPC server's front end (the gateway's own hop is not in it).",
    )
    if "up" in results or "up" in results.get("skipped", {}) or tries_of(results, "up"):
        section(
            "Server and gateway in one process: `sonicwire up`",
            "up",
            True,
            "What `make run` starts (`sonicwire.gateway.up.run_up`): the gRPC server and the "
            "gateway in one process and one asyncio event loop, the gateway reaching the server "
            "through the in-process channel (`--gateway-transport inproc`, no loopback gRPC); "
            "pinned to CPU 1. CPU and RSS are that process's; latency "
            "is measured at the server's front end, as for the two processes above.",
        )
    add(paired_floor_section(results))
    add(frame_size_section(results))
    add(inprocess_section(results))
    nova = results.get("nova_idle", {})
    add("## Idle memory\n")
    rows = []
    for backend, r in nova.items():
        if isinstance(r, dict):
            rows.append(
                [
                    backend,
                    _f(r.get("rss_mb"), 1),
                    _f(r.get("aws_crt_loaded")),
                    r.get("error", "")[:120],
                ]
            )
    add(table(["backend", "idle RSS MB", "AWS CRT loaded", "error"], rows) + "\n")
    add(
        "Measured with `python -m sonicwire.server --backend B --port 0` and fake AWS "
        "credentials (`AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=y`), 1.5 s "
        "after it reported ready, before any stream.\n"
    )
    add("## How to run\n")
    add(
        "```\n"
        "make bench-quick              # python -m bench.run --quick   (time budget < 3 minutes)\n"
        "make bench                    # python -m bench.run           (time budget 40 minutes)\n"
        ".venv/bin/python -m bench.run --priority realtime|nice|auto   # see Method\n"
        ".venv/bin/python -m bench.peer_env    # build the pipecat venv ahead of a run\n"
        ".venv/bin/python -m bench.kernels     # the DSP kernels alone\n"
        "```\n"
        "Pieces run on their own too: `python -m bench.probe_server --kind sonicwire|bare-echo` "
        "(a server with the probes) and `python -m bench.loadgen --target HOST:PORT --n N "
        "--out load.json` (the load generator). Results of each step, including the errors of "
        "a failed one, are in `bench/results/latest.json`.\n"
    )
    add("## Method\n")
    add(
        "- Load: N concurrent `Converse` streams (`bench/loadgen.py`, its own process), each its "
        "own "
        "TCP connection, sending real speech — the alsa-utils voice samples resampled to 16 kHz — "
        "in 20 ms frames on an absolute real-time schedule, each clip followed by a pause long "
        "enough for the VAD to end the utterance and for the echo reply to play out, so every "
        "utterance is answered. Streams start staggered over the ramp; figures cover a window of "
        f"{cfg.get('duration_s')} s after {cfg.get('ramp_s')} s ramp + "
        f"{cfg.get('warmup_s')} s warm-up. "
        "A fresh server process is started for every step.\n"
        "- CPU per stream-second: the server processes' user+system CPU time (psutil) over the "
        "window, divided by N x window. RSS per stream: (RSS at the end of the window - RSS idle "
        "before the load) / N.\n"
        "- Added latency: a bench-only wrapper (`bench/probe_server.py`) times "
        "`Session.receive_client` for every audio frame in the server process; the client records "
        "when it wrote each frame; both use the same monotonic clock, so *p50/p99* is the time "
        "from the client's write to the cleaned frame coming out of the front end (transport, "
        "event-loop "
        "queueing and processing; the preprocessor's fixed one-frame algorithmic delay is not in "
        "it). *front end+core* is the processing alone. No server code is modified.\n"
        "- Late frames: per assistant turn the client starts playback when the first frame arrives "
        "and a frame is late if it arrives after its offset in the turn (Sonicwire paces at real "
        "time + 120 ms lead, so the lead is the margin).\n"
        "- Each step reports how much CPU the rest of the machine used (*other load*); before a "
        "step the runner waits briefly for the machine to be quiet, and servers and load "
        f"generator run at priority `{results.get('priority', 'nice -10')}` (`--priority "
        "realtime` selects SCHED_RR, for a machine shared with other work; the default picks it "
        "when running as root on a busy machine). A step is also marked failed "
        "when the load generator itself was saturated (its send slip p99 > 5 ms or > 0.9 core), "
        "since it then bounds the result.\n"
    )
    add("## Gaps and caveats\n")
    gaps = [
        f"- pipecat cannot be a plain extra of this project: pipecat-ai {pipecat_version()} "
        "requires "
        "`protobuf<7` (and `soxr~=1.0`), while Sonicwire's generated stubs need protobuf >= 7.35. "
        "The bench builds a separate venv from the pinned `bench/pipecat-requirements.txt` "
        "(`python -m bench.peer_env`; `~/.cache/sonicwire/bench-pipecat-venv`). It pulls no torch "
        "or CUDA (Silero runs on onnxruntime).",
        f"- The load generator runs on the same {m.get('cpus')}-CPU machine: "
        f"{_client_cost(results)}; a step where it saturates (send slip p99 > 5 ms or > 0.9 "
        "core) is marked client-bound and fails.",
        "- Per-core capacity is measured with one server process pinned to one core; the "
        "two-process scaling test cannot isolate cores from the load generator on a "
        f"{m.get('cpus')}-CPU machine.",
    ]
    for key, why in results.get("skipped", {}).items():
        gaps.append(f"- Skipped `{key}`: {why}.")
    for key in (
        "like_for_like",
        "pipecat",
        "gateway",
        "up",
        "profile",
        "scaling",
        "bare_echo",
        "search",
    ):
        data = results.get(key)
        if isinstance(data, dict) and data.get("error"):
            gaps.append(f"- `{key}` failed: {data['error'][:300]}")
    add("\n".join(gaps) + "\n")
    return "\n".join(out)


def write_report(results: dict[str, Any], doc: Path, img: Path) -> None:
    images = _plots(results, img)
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(render(results, images))
