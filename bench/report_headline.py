"""The top of ``docs/BENCHMARKS.md``: the like-for-like comparison, the targets, the headline.

Every sentence here is derived from the run's results (``bench/results/latest.json``): a
comparison word ("grows", "below", "met") is chosen by the numbers it describes, and a figure
that is not a measurement is labelled a projection. ``tests/bench/test_generated_docs.py``
re-renders the committed doc from the committed JSON and checks its sentences against the data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.markdown import number, table
from bench.report_floor import single_shot_sentence
from bench.report_like_for_like import paired_section, pipecat_max_line, targets_cell
from bench.steps import LATENCY_P99_LIMIT_MS
from bench.summary import like_for_like_verdict
from bench.targets import (
    KERNELS_X,
    LIKE_FOR_LIKE_X,
    STREAMS_PER_CORE,
    TEXT,
)

__all__ = [
    "floor_lines",
    "headline_lines",
    "like_for_like_section",
    "pipecat_version",
    "targets_table",
]


def _f(value: Any, digits: int = 1) -> str:
    return number(value, digits)


def pipecat_version() -> str:
    """The pinned pipecat-ai version of the peer's environment (bench/pipecat-requirements.txt)."""
    reqs = Path(__file__).with_name("pipecat-requirements.txt")
    for line in reqs.read_text().splitlines():
        if line.startswith("pipecat-ai=="):
            return line.split("==", 1)[1].strip()
    return "(unpinned)"


def like_for_like_section(results: dict[str, Any]) -> str:
    """Sonicwire's WebSocket gateway vs pipecat over the same JSON protocol, with what differs.

    With the one-process deployment measured (phase ``up``, ``sonicwire up``) the table has its
    columns beside the two-process ones and the verdict is stated for each deployment."""
    s = results.get("summary", {})
    if "paired_like_for_like" in s:  # runs since 2026-12-07: the paired rounds
        return paired_section(results, _deployments_intro(), _NOT_GRPC)
    rows = s.get("like_for_like") or []
    up_rows = s.get("like_for_like_up")
    if up_rows is not None:
        return _two_deployments(results, rows, up_rows)
    intro = (
        "Both sides are driven by the same load generator (`bench/loadgen.py`) over the same "
        "JSON/base64 audio protocol on a WebSocket, one connection per stream, at the same N. "
        "**Sonicwire**: `python -m sonicwire.gateway` in front of the gRPC server (CPU = gateway "
        "+ server processes); per stream it runs speex echo cancellation, the speex noise "
        "suppressor and **webrtcvad** (the default front end). **pipecat** "
        f"{pipecat_version()}: FastAPI/uvicorn WebSocket transport and **Silero VAD** "
        "(onnxruntime); no echo cancellation, no noise suppression. Both play every utterance "
        "back (echo backend / echo processor). The VAD engines differ (Silero is the heavier "
        "one) and Sonicwire does more DSP per frame, so this compares the two stacks as each "
        "ships, not the same work. Both servers are pinned to the same single core.\n"
    )
    if not rows:
        why = results.get("gateway", {}).get("error") or results.get("pipecat", {}).get("error")
        return intro + f"\n**Not measured** in this run{': ' + why if why else ''}.\n"
    intro += _RULE
    body = table(
        [
            "N",
            "Sonicwire gateway ms CPU/stream-s",
            "pipecat ms CPU/stream-s",
            "ratio",
            "RSS MB/stream (gateway / pipecat)",
            "step result (gateway / pipecat)",
        ],
        [
            [
                c["n"],
                _f(c["gateway_cpu_ms_per_stream_s"], 2),
                _f(c["pipecat_cpu_ms_per_stream_s"], 2),
                _ratio_cell(c),
                f"{_f(c.get('gateway_rss_per_stream_mb'), 2)} / "
                f"{_f(c.get('pipecat_rss_per_stream_mb'), 2)}",
                f"{'pass' if c['gateway_pass'] else 'FAIL'} / "
                f"{'pass' if c['pipecat_pass'] else 'FAIL'}",
            ]
            for c in rows
        ],
    )
    summary = f"\n{_judged(rows, 'gateway')} {_NOT_GRPC}\n"
    return intro + "\n" + body + "\n" + summary


_NOT_GRPC = (
    "The gRPC path's lower figures (Headline) are not a like-for-like comparison: binary "
    "protobuf over gRPC against JSON/base64 over WebSocket."
)


#: How the like-for-like verdict is reached (a rule, no result: the sentences under the table
#: say which N it judged and which it left out, from the steps).
_RULE = (
    f"\nThe <= {TEXT['like_for_like']} verdict is judged at the N where both steps passed, "
    "and an N where Sonicwire's own step failed is a miss whatever its ratio; where only "
    "pipecat's step failed (its core saturated, late frames), its CPU per stream-second is a "
    "lower bound on what N streams cost it, so the ratio there is an upper bound: shown as "
    "`<=`, left out of the verdict. With no N where both passed the target is not measured.\n"
)


def _peer_failed(c: dict[str, Any]) -> str:
    """Why pipecat's step failed, shortly: "saturated" when its core was."""
    reasons = c.get("pipecat_fail_reasons") or []
    if "server CPU saturated" in reasons:
        return "saturated"
    return "; ".join(reasons) or "failed"


def _ratio_cell(c: dict[str, Any]) -> str:
    """A judged ratio in bold; a bound (pipecat's step failed, ours passed) as ``<=``."""
    if c["counted"]:
        return "no figure: step errored" if c["ratio"] is None else f"**{_f(c['ratio'], 2)}x**"
    return f"<= {_f(c['ratio'], 2)}x; pipecat failed: {_peer_failed(c)}"


def _judged(rows: list[dict[str, Any]], phase: str) -> str:
    """The sentence under the like-for-like table for one deployment: the ratios the verdict
    counts, the verdict, and every N left out as a bound, each from the rows."""
    counted = [c for c in rows if c["counted"]]
    ours_failed = [c for c in counted if not c[f"{phase}_pass"]]
    status = like_for_like_verdict(rows)
    against = "; ".join(
        f"at N={c['n']} Sonicwire's step errored ({c[f'{phase}_error']}), counted against it"
        if c["ratio"] is None
        else f"at N={c['n']} Sonicwire's step failed: {_f(c['ratio'], 2)}x counted against it"
        for c in ours_failed
    )
    ratios = [c["ratio"] for c in counted if c["ratio"] is not None]
    if status == "not measured":
        text = "**not measured**: no N where both steps passed"
    elif not ratios:  # only errored steps of ours: no figure to compare, a miss
        failed = ", ".join(str(c["n"]) for c in ours_failed)
        text = (
            f"no CPU figure to compare ({against}): **the <= {TEXT['like_for_like']} target is "
            "missed**: "
            f"Sonicwire's step failed at N={failed}"
        )
    else:
        ratio_text, reading, verdict = _ratio_reading(ratios)
        both = ", ".join(str(c["n"]) for c in counted if c["both_passed"])
        judged = "; ".join(
            ([f"judged at N={both}, where both steps passed"] if both else [])
            + [against] * bool(against)
        )
        if ours_failed:  # a failed step of ours misses the target whatever its ratio
            failed = ", ".join(str(c["n"]) for c in ours_failed)
            verdict = (
                f"**the <= {TEXT['like_for_like']} target is missed**: Sonicwire's step failed "
                f"at N={failed}"
            )
        text = (
            f"Sonicwire's CPU per stream-second is {ratio_text} pipecat's on the same protocol "
            f"({judged}): {reading}; {verdict}"
        )
    for c in rows:
        if not c["counted"]:
            text += (
                f". At N={c['n']} pipecat's step failed: {'; '.join(c['pipecat_fail_reasons'])}."
                f" Its {_f(c['pipecat_cpu_ms_per_stream_s'], 2)} ms there is a lower bound on its"
                f" cost, so the ratio is an upper bound, <= {_f(c['ratio'], 2)}x, not judged"
            )
    return text + "."


def _ratio_reading(ratios: list[float]) -> tuple[str, str, str]:
    """(the ratios as text, which side is cheaper by how much, the target's verdict), over the
    ratios the verdict counts (``_judged``)."""
    lo, hi = min(ratios), max(ratios)
    one = len(ratios) == 1
    where = "at the one N judged" if one else "at every N judged"
    limit = TEXT["like_for_like"]
    if hi <= LIKE_FOR_LIKE_X:
        verdict = f"within the <= {limit} target {where}"
    elif lo > LIKE_FOR_LIKE_X:
        verdict = f"**the <= {limit} target is missed** {where}"
    else:
        verdict = f"**the <= {limit} target is missed** at some N"

    def span(a: float, b: float) -> str:  # one figure when the range is one value
        x, y = f"{a:.0f}", f"{b:.0f}"
        return x if x == y else f"{x}-{y}"

    if hi < 1.0:
        reading = f"Sonicwire is {span(100 * (1 - hi), 100 * (1 - lo))}% cheaper {where}"
    elif lo > 1.0:
        reading = f"pipecat is {span(100 * (1 - 1 / lo), 100 * (1 - 1 / hi))}% cheaper {where}"
    else:
        reading = "neither is cheaper at every N judged"
    if lo >= 0.9 and hi <= 1.1:
        reading += " (within 10%: near parity)"
    return _x_span(lo, hi), reading, verdict


def _x_span(lo: float, hi: float) -> str:
    """Ratios from ``lo`` to ``hi`` ("0.37-0.44x"), one figure when both show alike."""
    lo_text, hi_text = f"{_f(lo, 2)}x", f"{_f(hi, 2)}x"
    return lo_text if lo_text == hi_text else f"{_f(lo, 2)}-{hi_text}"


#: The two deployments of the WebSocket path, as the like-for-like section names them.
DEPLOYMENTS = {
    "gateway": "two processes (the scale-out deployment: gateway and server apart)",
    "up": "one process (`sonicwire up`, what `make run` starts)",
}


def _deployments_intro() -> str:
    """What is compared: both deployments of Sonicwire's WebSocket path and pipecat."""
    return (
        "Both sides are driven by the same load generator (`bench/loadgen.py`) over the same "
        "JSON/base64 audio protocol on a WebSocket, one connection per stream, at the same N. "
        "**Sonicwire** is measured in its two deployments: **two processes**, "
        "`python -m sonicwire.gateway` in front of the gRPC server, as a scale-out deployment "
        "runs them (CPU = gateway + server processes); and **one process**, `sonicwire up` "
        "(what `make run` starts): the server and the gateway in one process and one asyncio "
        "event loop, the gateway reaching the server through an in-process channel instead "
        "of loopback gRPC (CPU = that "
        "process). Per stream Sonicwire runs speex echo cancellation, the speex noise "
        "suppressor and **webrtcvad** (the default front end). **pipecat** "
        f"{pipecat_version()}: FastAPI/uvicorn WebSocket transport and **Silero VAD** "
        "(onnxruntime); no echo cancellation, no noise suppression. Both play every utterance "
        "back (echo backend / echo processor). The VAD engines differ (Silero is the heavier "
        "one) and Sonicwire does more DSP per frame, so this compares the stacks as each "
        "ships, not the same work. Every server is pinned to the same single core.\n"
    )


def _two_deployments(
    results: dict[str, Any], rows: list[dict[str, Any]], up_rows: list[dict[str, Any]]
) -> str:
    """The like-for-like table with both deployments of Sonicwire's WebSocket path."""
    intro = _deployments_intro() + _RULE
    by_n: dict[int, dict[str, dict[str, Any]]] = {}
    for phase, phase_rows in (("gateway", rows), ("up", up_rows)):
        for c in phase_rows:
            by_n.setdefault(c["n"], {})[phase] = c
    if not by_n:
        why = results.get("pipecat", {}).get("error") or results.get("gateway", {}).get("error")
        return intro + f"\n**Not measured** in this run{': ' + why if why else ''}.\n"

    def cells(c: dict[str, Any] | None, phase: str) -> list[str]:
        if c is None:
            return ["-", "-"]
        return [_f(c[f"{phase}_cpu_ms_per_stream_s"], 2), _ratio_cell(c)]

    def result(c: dict[str, Any] | None, phase: str) -> str:
        return "-" if c is None else ("pass" if c[f"{phase}_pass"] else "FAIL")

    body_rows = []
    for n in sorted(by_n):
        two, one = by_n[n].get("gateway"), by_n[n].get("up")
        peer = two or one
        assert peer is not None  # every N in by_n has a row of one deployment at least
        two_cpu, two_ratio = cells(two, "gateway")
        body_rows.append(
            [
                n,
                two_cpu,
                _f(peer["pipecat_cpu_ms_per_stream_s"], 2),
                two_ratio,
                *cells(one, "up"),
                f"{_f(two and two.get('gateway_rss_per_stream_mb'), 2)} / "
                f"{_f(one and one.get('up_rss_per_stream_mb'), 2)} / "
                f"{_f(peer.get('pipecat_rss_per_stream_mb'), 2)}",
                f"{result(two, 'gateway')} / {result(one, 'up')} / "
                f"{'pass' if peer['pipecat_pass'] else 'FAIL'}",
            ]
        )
    body = table(
        [
            "N",
            "Sonicwire, two processes: ms CPU/stream-s",
            "pipecat ms CPU/stream-s",
            "ratio (two processes)",
            "Sonicwire, one process (`sonicwire up`): ms CPU/stream-s",
            "ratio (one process)",
            "RSS MB/stream (two / one / pipecat)",
            "step result (two / one / pipecat)",
        ],
        body_rows,
    )
    sentences = []
    for phase, phase_rows in (("gateway", rows), ("up", up_rows)):
        name = DEPLOYMENTS[phase]
        if not phase_rows:
            why = (
                results.get(phase, {}).get("error")
                or results.get("skipped", {}).get(phase)
                or "no step at an N pipecat also ran"
            )
            sentences.append(f"- {name[0].upper() + name[1:]}: **not measured** ({why}).")
            continue
        sentences.append(f"- {name[0].upper() + name[1:]}: {_judged(phase_rows, phase)}")
    return intro + "\n" + body + "\n\n" + "\n".join(sentences) + f"\n\n{_NOT_GRPC}\n"


_TARGET_ROWS = (
    ("cpu_le_2x_kernels", f"server CPU per stream <= {TEXT['kernels']} the DSP kernels alone"),
    (
        "streams_per_core_ge_150",
        f">= {TEXT['streams']} real-time streams per core, p99 added latency <= "
        f"{LATENCY_P99_LIMIT_MS:g} ms",
    ),
    (
        "above_floor_le_1ms",
        f"driver + core <= {TEXT['above_floor']} per stream-second above the floor",
    ),
    (
        "like_for_like_le_half_pipecat",
        f"like for like (same protocol) <= {TEXT['like_for_like']} pipecat's CPU",
    ),
    (
        "like_for_like_up_le_half_pipecat",
        "like for like, one process (`sonicwire up`, `make run`) <= "
        f"{TEXT['like_for_like']} pipecat's CPU",
    ),
    ("rss_per_stream_lt_1mb", f"memory < {TEXT['rss']} per stream beyond idle"),
    ("idle_nova_lt_150mb", f"idle server < {TEXT['idle_nova']} RSS with nova-sonic configured"),
)


def targets_table(s: dict[str, Any], above_floor: str) -> str:
    """One row per target: what was measured and met / missed / not measured.
    ``above_floor``: the floor target's cell (``bench.report_floor.above_floor_cell``)."""
    measured = {
        "cpu_le_2x_kernels": f"{_f(s.get('sonicwire_cpu_ms_per_stream_s'), 2)} ms vs "
        f"{_f(s.get('kernel_cpu_ms_per_stream_s'), 2)} ms per stream-second = "
        f"**{_f(s.get('ratio_to_kernels'), 2)}x**",
        "streams_per_core_ge_150": f"**{_f(s.get('max_streams_one_process'))}** streams in one "
        "process pinned to one core",
        "above_floor_le_1ms": above_floor,
        "like_for_like_le_half_pipecat": ("two processes: " if "like_for_like_up" in s else "")
        + _worst_text(s.get("like_for_like"), s.get("like_for_like_worst_ratio"), "gateway"),
        "like_for_like_up_le_half_pipecat": "one process: "
        + _worst_text(s.get("like_for_like_up"), s.get("like_for_like_up_worst_ratio"), "up"),
        "rss_per_stream_lt_1mb": f"{_f(s.get('rss_per_stream_mb_at_reference'), 2)} MB per stream "
        f"at N={s.get('reference_n')} (RSS - idle RSS) / N; marginal "
        f"{_f(s.get('rss_marginal_mb_per_stream'), 2)} MB (slope over N); at most "
        f"{_f(s.get('rss_per_stream_mb_max'), 2)} MB at any N",
        "idle_nova_lt_150mb": f"{_f(s.get('idle_rss_nova_mb'), 1)} MB",
    }
    paired = s.get("paired_like_for_like")
    if "paired_like_for_like" in s:  # judged on the paired rounds (runs since 2026-12-07)
        why = "skipped or failed: see Gaps"
        measured["like_for_like_le_half_pipecat"] = targets_cell(paired, "gateway", why)
        measured["like_for_like_up_le_half_pipecat"] = targets_cell(paired, "up", why)
    t = s.get("targets", {})
    return table(
        ["target", "measured", "status"],
        [
            [label, measured[key], t.get(key, "not measured")]
            for key, label in _TARGET_ROWS
            # the one-process row exists since runs measure that deployment (phase "up")
            if key != "like_for_like_up_le_half_pipecat" or key in t
        ],
    )


def _worst_text(rows: list[dict[str, Any]] | None, worst: float | None, phase: str) -> str:
    """The targets table's like-for-like cell: the worst counted ratio and the N behind it."""
    rows = rows or []
    both = [str(c["n"]) for c in rows if c["both_passed"]]
    ours = [str(c["n"]) for c in rows if not c[f"{phase}_pass"]]
    bounds = [c for c in rows if not c["counted"]]
    text = f"worst ratio **{_f(worst, 2)}x** over the N where both steps passed"
    text += f" ({', '.join(both) or 'none'})"
    if ours:
        text += f" and where Sonicwire's failed ({', '.join(ours)})"
    if bounds:
        text += "; not judged: " + ", ".join(
            f"N={c['n']} (pipecat failed, <= {_f(c['ratio'], 2)}x)" for c in bounds
        )
    return text


def floor_lines(results: dict[str, Any]) -> list[str]:
    """The floor of this stack: the kernels plus a bare grpc.aio stream, both measured in this
    run, against what the two CPU targets allow per stream-second."""
    s = results.get("summary", {})
    kernels = s.get("kernel_cpu_ms_per_stream_s")
    bare = s.get("bare_echo_cpu_ms_per_stream_s")
    ours = s.get("sonicwire_cpu_ms_per_stream_s")
    if not (kernels and bare and ours):
        return []
    floor = kernels + bare

    def against(allowed: float) -> str:
        if allowed < floor:
            return f"allows {_f(allowed, 2)} ms, below the floor"
        return (
            f"allows {_f(allowed, 2)} ms, leaving {_f(allowed - floor, 2)} ms above the "
            "floor for everything else the service does"
        )

    return [
        f"- The floor, from this run: the DSP kernels ({_f(kernels, 2)} ms) plus a bare grpc.aio "
        f"stream ({_f(bare, 2)} ms; it answers every input frame, so it writes more than "
        f"Sonicwire does) = **{_f(floor, 2)} ms per stream-second**, already "
        f"{_f(floor / kernels, 2)}x the kernels and ~{_f(1000 / floor, 0)} streams per core. "
        f"The {TEXT['kernels']}-kernels target {against(KERNELS_X * kernels)}; the "
        f"{TEXT['streams']}-streams target {against(1000 / STREAMS_PER_CORE)}. "
        f"{single_shot_sentence(results, ours - floor)}",
    ]


def _scaling_line(results: dict[str, Any]) -> str:
    s = results.get("summary", {})
    one, two = s.get("max_streams_one_process"), s.get("max_streams_two_processes")
    cpus = results.get("machine", {}).get("cpus")
    if one is None or two is None:
        return "- Two processes sharing one port: not measured."
    if two > one:
        change = f"grows from {one} to {two}"
    elif two == one:
        change = f"does not grow: {one} with one process, {two} with two"
    else:
        change = f"drops from {one} to {two}"
    return (
        f"- Largest N with two processes sharing one port, unpinned on this {cpus}-CPU machine "
        f"with the load generator on the same CPUs: capacity {change} (one process pinned to "
        "one core vs two processes)."
    )


def headline_lines(results: dict[str, Any]) -> list[str]:
    """The headline bullets, each from the summary."""
    s = results.get("summary", {})
    k = results.get("kernels", {})
    ref_note = ""
    which = "the largest passing step" if s.get("reference_passed") else "no step passed; the first"
    if s.get("reference_attempt") == 2:
        ref_note = " (passed on a second try after the first failed under other load)"
    lines = [
        f"- DSP kernels alone (webrtcvad {_f(k.get('webrtcvad_us_per_frame'), 1)} µs + speex echo "
        f"cancel {_f(k.get('speex_echo_us_per_frame'), 1)} µs + speex preprocess "
        f"{_f(k.get('speex_preprocess_us_per_frame'), 1)} µs per 20 ms frame): "
        f"**{_f(s.get('kernel_cpu_ms_per_stream_s'), 2)} ms CPU per stream-second**, a limit of "
        f"{_f(k.get('streams_per_core'), 0)} streams per core.",
        f"- Sonicwire over gRPC at N={s.get('reference_n')} "
        f"({which}{ref_note}): "
        f"**{_f(s.get('sonicwire_cpu_ms_per_stream_s'), 2)} ms per stream-second** = "
        f"{_f(s.get('ratio_to_kernels'), 2)}x the kernels, {_f(s.get('ratio_to_bare_echo'), 2)}x "
        f"a bare grpc.aio echo ({_f(s.get('bare_echo_cpu_ms_per_stream_s'), 2)} ms at "
        f"N={s.get('bare_echo_n')}); its CPU alone would allow "
        f"~{_f(s.get('cpu_bound_streams_per_core'), 0)} streams per core.",
        f"- Largest N one process (one core) sustains with p99 <= 10 ms and no late or dropped "
        f"frames: **{s.get('max_streams_one_process')}**.",
        _scaling_line(results),
    ]
    lines.extend(floor_lines(results))
    for retry in s.get("retries", []):
        lines.append(
            f"- N={retry['n']} was measured twice: the first try failed "
            f"({'; '.join(retry['first_try_fail_reasons'])}) with "
            f"{_f(retry['first_try_foreign_cores_used'], 2)} cores of other load; the second "
            f"{'passed' if retry['second_try_pass'] else 'failed too'}. Both rows are below."
        )
    comparisons = s.get("vs_pipecat", [])
    # a run from before pipecat_pass was recorded counts every N, as it was rendered then
    measured = [c for c in comparisons if c.get("pipecat_pass", True)]
    bounds = "".join(
        f"; at N={c['n']} pipecat's step failed, so <= {_f(c['ratio'], 2)}x (an upper bound)"
        for c in comparisons
        if c not in measured
    )
    if measured:
        ratios = [c["ratio"] for c in measured]
        lines.append(
            f"- Not like for like: Sonicwire over binary gRPC vs pipecat over JSON/WebSocket, "
            f"same N: {_x_span(min(ratios), max(ratios))} pipecat's CPU "
            f"(N={', '.join(str(c['n']) for c in measured)}){bounds}; the transport accounts "
            "for much of it (see the like-for-like table above)."
        )
    if s.get("paired_like_for_like"):
        lines.append(pipecat_max_line(s["paired_like_for_like"]))
    elif s.get("pipecat_max_streams") is not None:
        lines.append(
            f"- pipecat's largest passing N in one process: {s.get('pipecat_max_streams')} "
            "(judged without a latency criterion: no per-frame probe inside pipecat)."
        )
    return lines
