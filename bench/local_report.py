"""Render the "Numbers" section of docs/LOCAL_ENGINE.md from bench/results/local.json
(written by `bench.local_eval`), between the section's markers.

Every target is compared with the measured value as it is: a figure over its target (even by
a fraction, 500.9 ms against 500 ms) is "missed".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.markdown import number, table_lines

__all__ = ["BEGIN", "DOC", "END", "PLACEHOLDER", "render_doc", "render_numbers", "verdict"]

DOC = Path(__file__).parent.parent / "docs" / "LOCAL_ENGINE.md"
BEGIN, END, PLACEHOLDER = "<!-- local_eval:begin", "<!-- local_eval:end -->", "RESULTS_PLACEHOLDER"

_HEADLINE = (
    ("held_out_x_held_out_voices", "all tools"),
    ("held_out_x_held_out_voices_builtins", "built-ins (get_date_time, track_order, small talk)"),
    ("held_out_x_held_out_voices_plugin", "plugin (get_weather, examples/tools/weather.py)"),
)
_SUBSETS = (
    ("held_out_x_held_out_voices", "held-out phrasings x held-out voices (headline)"),
    ("held_out_x_held_out_voices_builtins", "... built-ins only"),
    ("held_out_x_held_out_voices_plugin", "... plugin tool only"),
    ("held_out_x_dev_voices", "held-out phrasings x tuning voices"),
    ("in_training_x_held_out_voices", "in-training phrasings x held-out voices (secondary)"),
    ("in_training_x_all_voices", "in-training phrasings x all voices (secondary)"),
    ("out_of_domain", "out-of-domain requests (right = rejected)"),
    ("real_recordings_rejected", "real recordings, out of domain (right = rejected)"),
)


def _num(value: Any, digits: int = 3) -> str:
    return number(value, digits)


def _ms(stats: dict[str, Any], key: str) -> str:
    value = stats.get(key)
    return "-" if value is None else f"{value:.0f}"


def _cache_note(latency: dict[str, Any]) -> str:
    """What the reply cache did, from its recorded size (0 = off)."""
    size = latency.get("reply_cache")
    if size is None:
        return "cache setting not recorded"
    if size == 0:
        return "cache off: every reply synthesised"
    return f"cache of {size}: a repeated reply may come from it, not from synthesis"


def _target_verdict(e2e: dict[str, Any], target: Any, target_p95: Any = None) -> str:
    """met / missed for the end-to-end targets, p50 against ``target`` and p95 against
    ``target_p95`` (results without one: ``target``); never "reached" for a miss."""
    if target is None or e2e.get("p50") is None:
        return "End to end against the target: not measured."
    targets = {"p50": target, "p95": target if target_p95 is None else target_p95}
    parts = []
    for key, limit in targets.items():
        value = e2e.get(key)
        if value is not None:
            verdict = "met" if value <= limit else "**missed**"
            parts.append(f"{key} {value:.1f} ms against <= {limit} ms: {verdict}")
    return "End to end, all turns: " + "; ".join(parts) + "."


def verdict(value: float | None, target: float, *, higher_is_better: bool) -> str:
    """ "met" or "missed" (a missing value is missed)."""
    if value is None:
        return "missed"
    ok = value >= target if higher_is_better else value <= target
    return "met" if ok else "missed"


def _targets(report: dict[str, Any]) -> list[str]:
    targets = report["targets"]
    scores = report["backend"]["scores"]
    rows = []
    for key, label in _HEADLINE:
        s = scores[key]
        for metric, name, higher in (
            ("intent_accuracy", "intent accuracy", True),
            ("wer", "WER", False),
            ("turn_accuracy", "turn accuracy", True),
        ):
            target = targets[metric]
            sign = ">=" if higher else "<="
            rows.append([label, name, str(s["utterances"]), _num(s[metric]),
                         f"{sign} {target:.2f}",
                         verdict(s[metric], target, higher_is_better=higher)])  # fmt: skip
    latency = report["backend"]["latency_ms"]
    p50_target, p95_target = latency["target_end_to_end"], latency["target_end_to_end_p95"]
    for intent, stats in latency["end_to_end_by_intent"].items():
        rows.append([f"intent `{intent}`", "end of speech → first audio p50 / p95, ms",
                     str(stats.get("n")), f"{_ms(stats, 'p50')} / {_ms(stats, 'p95')}",
                     f"<= {p50_target} / <= {p95_target}",
                     "met" if verdict(stats.get("p50"), p50_target, higher_is_better=False)
                     == verdict(stats.get("p95"), p95_target, higher_is_better=False) == "met"
                     else "missed"])  # fmt: skip
    return table_lines(["subset", "metric", "n", "measured", "target", ""], rows)


def render_numbers(report: dict[str, Any]) -> str:
    """The doc's "Numbers" section body, from a results dict (as written to local.json)."""
    machine, backend = report["machine"], report["backend"]
    latency = backend["latency_ms"]
    scores = backend["scores"]
    load = machine.get("load_average_1m_before_after") or [None, None]
    load5 = machine.get("load_average_5m_before_after") or [None, None]
    voices, dev = report["voices"], report.get("dev_voices", [])
    held_out_voices = [v for v in voices if v not in dev]
    stop_ms = round(latency.get("vad_stop_secs", 0) * 1000)
    splits: dict[str, int] = {}
    for command in report["commands"]:
        splits[command["split"]] = splits.get(command["split"], 0) + 1
    out = [
        f"{BEGIN} generated by bench/local_eval.py from bench/results/local.json; "
        "edit the script, not this section -->",
        f"Run `{report['command']}` at {report['generated']} on {machine['cores']} cores "
        f"({machine['cpu']}) shared with other jobs: load average (1 min) {_num(load[0], 2)} "
        f"before and {_num(load[1], 2)} after, (5 min) {_num(load5[0], 2)} and "
        f"{_num(load5[1], 2)}; every wall-clock figure depends on it. "
        f"{report['utterances']} utterances: {len(report['commands'])} commands "
        f"({splits.get('held_out', 0)} held-out phrasings, {splits.get('in_training', 0)} "
        f"in-training, {splits.get('out_of_domain', 0)} out of domain) x {len(voices)} test "
        f"voices, plus real recordings of out-of-domain speech. Held-out voices: "
        f"{', '.join(held_out_voices)}; voices listened to while tuning: "
        f"{', '.join(dev) or 'none'}.",
        "",
        "**Targets** (issue 16; held-out phrasings x held-out voices, the session offering the "
        "two built-ins and the weather plugin):",
        "",
    ]
    out += _targets(report)
    out += [
        "",
        "**Scores by subset.** WER of the transcript; intent = the transcript is understood as "
        "the right tool with the right arguments (or the right small-talk intent, or rejected "
        "when out of domain); turn = the backend made the right tool call with the right "
        "arguments, or gave the right reply.",
        "",
    ]
    rows = []
    for key, label in _SUBSETS:
        s = scores[key]
        rows.append([label, str(s["utterances"]), _num(s["wer"]), _num(s["intent_accuracy"]),
                     _num(s["turn_accuracy"])])  # fmt: skip
    out += table_lines(["subset", "n", "WER", "intent", "turn"], rows)
    out += ["", "By voice (all phrasings):", ""]
    rows = []
    for voice, s in scores["by_voice"].items():
        tag = " (tuning)" if voice in dev else ""
        rows.append([voice + tag, str(s["utterances"]), _num(s["wer"]),
                     _num(s["intent_accuracy"]), _num(s["turn_accuracy"])])  # fmt: skip
    out += table_lines(["voice", "n", "WER", "intent", "turn"], rows)
    e2e, engine, wait = latency["end_to_end"], latency["engine"], latency.get("stop_wait", {})
    out += [
        "",
        f"**Turn latency**, at {'the default' if stop_ms == 500 else 'non-default'} VAD "
        f"settings (stop marker {stop_ms} ms after the end of speech), reply cache "
        f"{latency.get('reply_cache')} ({_cache_note(latency)}):",
        "",
        _target_verdict(
            e2e, latency.get("target_end_to_end"), latency.get("target_end_to_end_p95")
        ),
        "",
    ]
    early = "early_end_turns" in latency  # results before the semantic end of turn lack it
    turn_end, cpu = latency.get("turn_end", {}), latency.get("engine_cpu", {})
    start = "end of the user's turn" if early else "stop marker"

    def row(label: str, stats: dict[str, Any]) -> list[str]:
        return [label, *(_ms(stats, k) for k in ("p50", "p95", "mean", "max"))]

    rows = [row("end of user speech → first assistant audio byte", e2e)]
    if early:
        rows.append(row("end of speech → end of the user's turn (early end or stop marker)",
                        turn_end))  # fmt: skip
    rows += [
        row("the VAD's stop wait (end of speech → stop marker)", wait),
        row(f"engine: {start} → first assistant audio byte", engine),
    ]
    if early:
        rows.append(row("engine CPU time per turn, ms (this process + recogniser workers)", cpu))
    out += table_lines(["turn latency, ms", "p50", "p95", "mean", "max"], rows)
    if early:
        out += [
            "",
            f"Semantic early end of turn: {latency['early_end_turns']} of {e2e.get('n')} timed "
            "turns ended before the stop marker (the engine found a complete request in the "
            "stop wait, or one missing only an argument it then asks for), "
            f"{latency.get('early_end_while_voiced', 0)} of them while the last frame was "
            "voiced (the session core would have refused those).",
        ]
    by_total = latency.get("end_to_end_by_intent", {})
    by_cpu, by_early = latency.get("cpu_by_intent", {}), latency.get("early_end_by_intent", {})
    out += [
        "",
        "By intent (a turn not ended early waits for the stop marker; a tool's answer waits "
        "for its result unless its start or its result was prepared in the stop wait):",
        "",
    ]
    rows = []
    for intent, stats in latency["engine_by_intent"].items():
        total = by_total.get(intent, {})
        extra = [str(by_early.get(intent, 0)), _ms(by_cpu.get(intent, {}), "p50")] if early else []
        rows.append([intent, str(stats.get("n")), *extra, _ms(total, "p50"), _ms(total, "p95"),
                     _ms(stats, "p50"), _ms(stats, "p95")])  # fmt: skip
    head = ["intent", "turns", *(["ended early", "CPU p50"] if early else []), "end to end p50",
            "p95", "engine p50", "p95"]  # fmt: skip
    out += table_lines(head, rows)
    tts = report.get("stages", {}).get("tts_first_sentence_ms", {})
    out += [
        "",
        f"Synthesis of a typical first sentence (piper, uncached): p50 {_ms(tts, 'p50')} ms / "
        f"p95 {_ms(tts, 'p95')} ms.",
        END,
    ]
    return "\n".join(out)


def render_doc(report: dict[str, Any], doc: Path = DOC) -> None:
    """Replace the doc's numbers (between the markers, or the placeholder) with ``report``'s."""
    text = doc.read_text()
    section = render_numbers(report)
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        text = head + section + tail
    elif PLACEHOLDER in text:
        text = text.replace(PLACEHOLDER, section, 1)
    else:
        raise SystemExit(f"{doc} has neither the {BEGIN} ... {END} markers nor {PLACEHOLDER}")
    doc.write_text(text)
