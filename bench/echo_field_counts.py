"""What one echo-field run counts, read from its recorded timeline, and the sweep's totals.

Pure (no server, no clock, no I/O): ``bench/echo_field.py`` records a conversation's events
(`EventLog`) and the simulated device's playback, `analyse` turns them into a run's record,
`recount` re-derives the counts from a recorded run (so ``--render`` can apply changed
counting rules to old runs), and `summarise` totals the runs. Kept apart from the driver so
the counting rules read, and are tested on planted timelines, on their own.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from bench.echo_field_sim import Device, Voices, speech_span
from bench.frontend_signals import onset as speech_onset

__all__ = [
    "DISTURBED_MS",
    "Case",
    "EventLog",
    "analyse",
    "disturbed",
    "recount",
    "reply_after",
    "summarise",
]

PAD_MS = 300  # the echo backend's speech pad at each end of an utterance (VadSettings default)
DISTURBED_MS = 100.0  # a client tick this late means the microphone was not real time


@dataclass(frozen=True)
class Case:
    """One conversation's device."""

    delay_ms: int
    reports: bool
    drift_ppm: int = 0
    encoding: str = "pcm16"
    """``pcm16`` (16 kHz) or ``mulaw`` (8 kHz G.711, the telephone band)."""
    echo: bool = True
    """False for the control: the same script with no echo reaching the microphone."""
    seed: int = 1

    @property
    def rate(self) -> int:
        return 8000 if self.encoding == "mulaw" else 16000

    @property
    def name(self) -> str:
        kind = "" if self.echo else "control-"
        reports = "reports" if self.reports else "no-reports"
        return f"{kind}{self.encoding}-{self.delay_ms}ms-{reports}-{self.drift_ppm:+d}ppm"


@dataclass
class EventLog:
    """What the client received, each with the host time it arrived (`time.monotonic`)."""

    audio: list[tuple[float, str, int]]
    interruptions: list[tuple[float, str, int, str]]
    speech: list[tuple[float, bool, int]]
    user_transcripts: list[tuple[float, str]]
    turns: list[tuple[float, str, str, int]]


def reply_after(device: Device, index: int) -> str | None:
    """The first assistant turn whose audio was first handed to the output at/after ``index``."""
    later = [(at, turn) for turn, at in device.first_handed.items() if at >= index]
    return min(later)[1] if later else None


def analyse(
    case: Case,
    v: Voices,
    device: Device,
    log: EventLog,
    spans: list[tuple[int, int]],
    barge_at: int | None,
    t0: float,
    clock: float,
) -> dict[str, Any]:
    rate = case.rate

    def wall(index: int) -> float:
        # Microphone sample ``index`` is captured at this host time (the device's clock).
        return t0 + index / (rate * clock)

    scripted = list(spans)
    onset_at = None
    if barge_at is not None:
        onset_at = speech_onset(np.concatenate([np.zeros(barge_at), v.barge]), barge_at)
        lo, hi = speech_span(v.barge, rate)
        scripted.append((barge_at + lo, barge_at + hi))
    barge: dict[str, Any] = {"placed": barge_at is not None}
    barge_interruption = None
    if onset_at is not None:
        t_onset = wall(onset_at)
        after = [x for x in log.interruptions if t_onset <= x[0] <= t_onset + 2.0]
        barge_interruption = after[0] if after else None
        reply2 = reply_after(device, spans[1][1])
        onset_ms = onset_at * 1000 / rate
        # The VAD's declaration that led to the barge-in: the last STARTED received between
        # the onset and the Interruption (none when the VAD was already in speech).
        vad = None
        if barge_interruption is not None:
            starts = [
                s
                for s in log.speech
                if s[1] and t_onset - 0.05 <= s[0] <= barge_interruption[0] + 0.005
            ]
            vad = starts[-1] if starts else None
        chunk_end = (onset_at // (rate // 50) + 1) * (rate // 50)
        barge.update(
            onset_index=onset_at,
            reply_turn=reply2,
            detected=barge_interruption is not None,
            reaction_ms=None
            if barge_interruption is None
            else round((barge_interruption[0] - t_onset) * 1000, 1),
            onset_to_chunk_sent_ms=round((wall(chunk_end) - t_onset) * 1000, 1),
            onset_to_vad_started_received_ms=None
            if vad is None
            else round((vad[0] - t_onset) * 1000, 1),
            vad_onset_error_ms=None if vad is None else round(vad[2] - onset_ms, 1),
            vad_started_to_interruption_ms=None
            if vad is None or barge_interruption is None
            else round((barge_interruption[0] - vad[0]) * 1000, 1),
        )
    spoken = 2 + (1 if barge_at is not None else 0)
    # The first reply: the first turn played after the utterance began (an utterance the VAD
    # cut short is answered before the script's speech ends).
    reply1 = reply_after(device, spans[0][0])
    expected_s = (spans[0][1] - spans[0][0]) / rate + 2 * PAD_MS / 1000
    played_s = None if reply1 is None else device.handed.get(reply1, 0) / rate
    result = {
        "case": asdict(case),
        "name": case.name,
        "user_turns": len(log.user_transcripts),
        "spoken_utterances": spoken,
        "reply1_turn": reply1,
        "reply1_played_s": None if played_s is None else round(played_s, 3),
        "reply1_expected_s": round(expected_s, 3),
        "reply_ratio": None if played_s is None else round(played_s / expected_s, 3),
        "barge_in": barge,
        "server_delay_belief_p50_ms": None,  # not exposed by the server (see the doc)
        "events": {
            "interruptions": [
                [round(t - t0, 3), turn, played, src] for t, turn, played, src in log.interruptions
            ],
            "speech": [[round(t - t0, 3), s, off] for t, s, off in log.speech],
            "user_transcripts": [[round(t - t0, 3), text] for t, text in log.user_transcripts],
            "turns": [[round(t - t0, 3), turn, r, ms] for t, turn, r, ms in log.turns],
            "handed_s": {t: round(n / rate, 3) for t, n in device.handed.items()},
            "first_handed_s": {t: round(n / rate, 3) for t, n in device.first_handed.items()},
            "scripted_speech_s": [
                [round(lo / rate, 3), round(hi / rate, 3)] for lo, hi in scripted
            ],
        },
    }
    result.update(recount(result))
    return result


_SPEECH_TOLERANCE_S = 0.3


def recount(run: dict[str, Any]) -> dict[str, int]:
    """The counts of one run, from its recorded timeline (``run["events"]``).

    Each ``Interruption`` other than the barge-in's is put down to what the server's VAD
    heard: the last ``SpeechActivity`` STARTED before it. A start on the script's own speech
    (within 0.3 s of an utterance) is the user: the VAD ended an utterance early and its rest
    cut the reply (``utterance_split_interruptions``); any other start is echo
    (``self_interruptions``). Each VAD start off the script's speech is a turn nobody spoke
    (``self_triggered_turns``: the echo backend answers every one). A false barge-in is an echo
    interruption of the second reply before the barge-in's onset.
    """
    ev, barge = run["events"], run["barge_in"]
    scripted = ev["scripted_speech_s"]

    def spoken(offset_ms: int) -> bool:
        at = offset_ms / 1000
        return any(
            lo - _SPEECH_TOLERANCE_S <= at <= hi + _SPEECH_TOLERANCE_S for lo, hi in scripted
        )

    starts = [(t, off) for t, started, off in ev["speech"] if started]
    onset_s = None
    if barge.get("onset_index") is not None:
        case = Case(**run["case"])
        onset_s = barge["onset_index"] / (case.rate * (1.0 + case.drift_ppm * 1e-6))
    barge_cut = None
    if onset_s is not None:
        after = [x for x in ev["interruptions"] if onset_s <= x[0] <= onset_s + 2.0]
        barge_cut = after[0] if after else None
    echo: list[list[Any]] = []
    user = 0
    for cut in ev["interruptions"]:
        if cut is barge_cut:
            continue
        before = [off for t, off in starts if t <= cut[0] + 0.005]
        if before and spoken(before[-1]):
            user += 1
        else:
            echo.append(cut)
    false_barge_ins = [
        cut
        for cut in echo
        if onset_s is not None and cut[1] == barge.get("reply_turn") and cut[0] < onset_s
    ]
    return {
        "self_interruptions": len(echo),
        "utterance_split_interruptions": user,
        "false_barge_ins": len(false_barge_ins),
        "self_triggered_turns": sum(1 for _, off in starts if not spoken(off)),
    }


def disturbed(r: dict[str, Any]) -> bool:
    return "error" in r or r["harness"]["tick_lateness_max_ms"] > DISTURBED_MS


def _pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals over the echo runs (controls apart) and the barge-in breakdown."""
    ok = [r for r in runs if "error" not in r]
    echo = [r for r in ok if r["case"]["echo"]]
    control = [r for r in ok if not r["case"]["echo"]]
    reactions = [r["barge_in"]["reaction_ms"] for r in echo if r["barge_in"].get("reaction_ms")]
    ratios = [r["reply_ratio"] for r in echo if r["reply_ratio"] is not None]

    def parts(key: str) -> dict[str, float | None]:
        xs = [r["barge_in"][key] for r in echo if r["barge_in"].get(key) is not None]
        return {"p50": _pct(xs, 50), "p95": _pct(xs, 95), "n": len(xs)}

    return {
        "runs": len(runs),
        "errors": len(runs) - len(ok),
        "echo_runs": len(echo),
        "self_interruptions": sum(r["self_interruptions"] for r in echo),
        "utterance_split_interruptions": sum(r["utterance_split_interruptions"] for r in echo),
        "runs_with_self_interruptions": sum(1 for r in echo if r["self_interruptions"]),
        "self_triggered_turns": sum(r["self_triggered_turns"] for r in echo),
        "false_barge_ins": sum(r["false_barge_ins"] for r in echo),
        "barge_ins_placed": sum(1 for r in echo if r["barge_in"]["placed"]),
        "barge_ins_detected": sum(1 for r in echo if r["barge_in"].get("detected")),
        "reply_ratio_min": min(ratios) if ratios else None,
        "reply_ratio_max": max(ratios) if ratios else None,
        "replies_within_0_9_1_1": sum(1 for x in ratios if 0.9 <= x <= 1.1),
        "replies_measured": len(ratios),
        "replies_outside_after_split": sum(
            1
            for r in echo
            if r["reply_ratio"] is not None
            and not 0.9 <= r["reply_ratio"] <= 1.1
            and r["utterance_split_interruptions"]
        ),
        "barge_in_p50_ms": _pct(reactions, 50),
        "barge_in_p95_ms": _pct(reactions, 95),
        "barge_in_max_ms": max(reactions) if reactions else None,
        "breakdown": {
            k: parts(k)
            for k in (
                "onset_to_chunk_sent_ms",
                "onset_to_vad_started_received_ms",
                "vad_onset_error_ms",
                "vad_started_to_interruption_ms",
                "reaction_ms",
            )
        },
        "control": [
            {
                "name": r["name"],
                "self_interruptions": r["self_interruptions"],
                "utterance_split_interruptions": r["utterance_split_interruptions"],
                "self_triggered_turns": r["self_triggered_turns"],
                "reply_ratio": r["reply_ratio"],
                "barge_in_ms": r["barge_in"].get("reaction_ms"),
            }
            for r in control
        ],
        "harness_tick_lateness_p99_ms_max": max(
            (r["harness"]["tick_lateness_p99_ms"] for r in ok), default=None
        ),
        "harness_tick_lateness_max_ms_max": max(
            (r["harness"]["tick_lateness_max_ms"] for r in ok), default=None
        ),
        "retried_runs": sum(1 for r in runs if "earlier_tries" in r),
        "disturbed_runs": sum(1 for r in ok if disturbed(r)),
        "disturbed_limit_ms": DISTURBED_MS,
    }
