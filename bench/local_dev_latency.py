"""Where a local turn's time goes, on the development set only: the evaluation's paced turns
(`bench.local_eval.paced_turn`, the real front end, the same backend settings) over the
development phrasings and voices (never the evaluation's), with every piece of speech work
traced: when the early guess came, when pocketsphinx, its second look and Whisper ran, when
the first sentence was synthesised, whether the turn ended early or at the VAD's marker, and
the first audio. All marks are milliseconds after the end of speech.

    nice -n 10 .venv/bin/python -m bench.local_dev_latency                 # unknown turns only
    nice -n 10 .venv/bin/python -m bench.local_dev_latency --ab open_speculation --rounds 3
    nice -n 10 .venv/bin/python -m bench.local_dev_latency --in-domain-every 4 --ab open_reading
    nice -n 10 .venv/bin/python -m bench.local_dev_latency --ab open_speculation --no-guess

With ``--ab OPTION``, every turn runs on two backends, the option true and false, interleaved
(the order alternates per turn, so each sees the same load); CPU time per turn (this process
and its worker processes, `bench.local_timing.engine_cpu_s`) is reported beside wall-clock,
which the shared machine's load moves. Accuracy is `bench.local_eval.understood` of the
reading answered (in-domain understood, out-of-domain rejected). Writes
``bench/results/local_dev_latency.json``.

What the session sends is traced too (`Speaker.send_text`, `Speaker.play`): when each sentence's
text and each piece of audio went out and how long that audio plays, so a run shows whether
audio would have played without a gap (`playback`: a client that starts playing at the first
audio and plays in real time; a gap mid-sentence is a piece of a sentence's audio, the rest
after its first clause, sent after the piece before it has played). The summary has the first
audio per intent as well.

With ``--no-guess`` the sessions make no early guess (its guesses are recorded, not read), so
every utterance is read at the VAD's marker, as in a room whose noise keeps `EarlyCut` from
guessing (the evaluation's real recordings are such turns): the path that reads the whole
utterance on the turn's clock.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import local_eval as evaluation
from bench.local_dev_eval import DEV_COMMANDS, MORE_DEV_COMMANDS, MORE_DEV_VOICES
from bench.local_dev_readings import DEV_SET_VOICES, dev_model
from bench.local_eval_set import Command
from bench.local_timing import percentiles
from examples.tools.weather import TOOLS as WEATHER_TOOLS
from sonicwire.server.backends.local.early import EarlyCut, Guess
from sonicwire.server.backends.local.engine import LocalBackend
from sonicwire.server.backends.local.session import LocalSession
from sonicwire.server.backends.local.speaking import Speaker
from sonicwire.server.testing.local_harness import ToolBox, speak

RESULTS = Path(__file__).parent / "results" / "local_dev_latency.json"
#: The speech work traced, by the recogniser's or synthesiser's method name.
_TRACED = ("recognize", "recognize_grammar", "recognize_open", "submit_open", "synthesize")


class Trace:
    """Spans of speech work and guess marks (perf_counter seconds), for the turn running."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, float, float]] = []
        self.guesses: list[float] = []
        self.confirmed = False  # the stop marker confirmed a guess
        # what the session sent: (when, seconds of audio), or (when, None) for a sentence's text
        self.sent: list[tuple[float, float | None]] = []

    def reset(self) -> None:
        self.spans, self.guesses, self.confirmed, self.sent = [], [], False, []

    def wrap(self, owner: Any, name: str) -> None:
        """Trace ``owner.name`` (an instance attribute shadows the method; threads append)."""
        method = getattr(owner, name, None)
        if method is None:
            return

        @functools.wraps(method)
        def traced(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            result = method(*args, **kwargs)
            if isinstance(result, Future):  # submitted: the span ends when it is done
                result.add_done_callback(
                    lambda _f: self.spans.append((name, start, time.perf_counter()))
                )
            else:
                self.spans.append((name, start, time.perf_counter()))
            return result

        setattr(owner, name, traced)


def dev_turns(in_domain_every: int) -> list[tuple[str, Command]]:
    """(voice, command): every out-of-domain development utterance (the ``unknown`` row's kind)
    and every ``in_domain_every``-th in-domain one (0: none), in the development sets' voices."""
    both = (*DEV_COMMANDS, *MORE_DEV_COMMANDS)
    rows = [(v, c) for v in DEV_SET_VOICES for c in both]
    rows += [(v, c) for v in MORE_DEV_VOICES for c in both]
    unknown = [r for r in rows if r[1].intent == "unknown"]
    known = [r for r in rows if r[1].intent != "unknown"]
    return unknown + (known[::in_domain_every] if in_domain_every else [])


def _ms(start: float | None, at: float | None) -> float | None:
    return None if start is None or at is None else round((at - start) * 1000, 1)


async def measure(
    option: str | None, rounds: int, in_domain_every: int, limit: int, no_guess: bool = False,
    turns: Sequence[tuple[str, Command]] | None = None,
    rooms: Sequence[tuple[str, Callable[[int], Any]]] = (),
    switch: Callable[[bool], None] | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """The rows of every turn (``turns``, else `dev_turns`), in every room (a label and the
    front end's background for a seed, `bench.local_dev_noise`; none: the evaluation's).
    ``switch``: ``option`` is no backend option; ``switch(flag)`` sets it before each turn."""
    model, today = dev_model(), datetime.now(UTC).date()
    flags: tuple[bool | None, ...] = (True, False) if option else (None,)
    backends: dict[bool | None, LocalBackend] = {}
    traces: dict[bool | None, Trace] = {}
    for flag in flags:
        extra = {} if option is None or switch is not None else {option: flag}
        backends[flag] = LocalBackend.from_options(reply_cache=0, **extra)
    original = LocalSession._recognize_early
    current: list[Trace] = []

    def guessed(self: LocalSession, guess: Any) -> None:
        current[0].guesses.append(time.perf_counter())
        if not no_guess:
            original(self, guess)

    stopped = EarlyCut.speech_stopped

    def confirming(self: EarlyCut, offset: int) -> Guess | None:
        guess = stopped(self, offset)
        if current:
            current[0].confirmed = current[0].confirmed or guess is not None
        return guess

    LocalSession._recognize_early = guessed  # type: ignore[method-assign]
    EarlyCut.speech_stopped = confirming  # type: ignore[method-assign]
    played, texted = Speaker.play, Speaker.send_text

    def play(self: Speaker, pcm: bytes) -> None:
        seconds = len(pcm) / 2 / self._synthesizer.sample_rate
        current[0].sent.append((time.perf_counter(), seconds))
        played(self, pcm)

    def shown(self: Speaker, text: str) -> None:
        current[0].sent.append((time.perf_counter(), None))
        texted(self, text)

    Speaker.play = play  # type: ignore[method-assign]
    Speaker.send_text = shown  # type: ignore[method-assign]
    rows: list[dict[str, Any]] = []
    turns = list(turns if turns is not None else dev_turns(in_domain_every))[: limit or None]
    try:
        for flag, backend in backends.items():
            await backend.warm_up()
            trace = traces[flag] = Trace()
            recognizer, synthesizer = await backend._models(backend._default_voice)
            for name in _TRACED:
                trace.wrap(recognizer if name != "synthesize" else synthesizer, name)
        with tempfile.TemporaryDirectory() as tmp:
            toolbox = ToolBox(Path(tmp) / "orders.db", extra=WEATHER_TOOLS)
            for round_ in range(rounds):
                for index, (voice, command) in enumerate(turns):
                    speech = speak(command.text, voice)
                    for room, background in rooms or [("", lambda _seed: None)]:
                        commands, end_index, stop_index, voiced = evaluation.front_end_commands(
                            speech, seed=index, room=background(index)
                        )
                        if stop_index < 0:
                            continue
                        order = flags if (index + round_) % 2 else flags[::-1]
                        for flag in order:
                            trace = traces[flag]
                            trace.reset()
                            if switch is not None and flag is not None:
                                switch(flag)
                            current[:] = [trace]
                            turn, marks = await evaluation.paced_turn(
                                backends[flag], toolbox, commands, end_index, stop_index, voiced
                            )
                            row = _row(round_, voice, command, flag, turn, marks, trace)
                            row["right"] = evaluation.understood(
                                command, turn.user_text, model, today
                            )
                            rows.append({**row, "room": room, "confirmed": trace.confirmed})
                if rounds > 1:
                    print(f"  round {round_ + 1}/{rounds} done", flush=True)
    finally:
        LocalSession._recognize_early = original  # type: ignore[method-assign]
        EarlyCut.speech_stopped = stopped  # type: ignore[method-assign]
        Speaker.play, Speaker.send_text = played, texted  # type: ignore[method-assign]
        for backend in backends.values():
            await backend.aclose()
    return rows


def _row(
    round_: int, voice: str, command: Command, flag: bool | None, turn: Any, marks: Any,
    trace: Trace,
) -> dict[str, Any]:  # fmt: skip
    end = marks.end
    spans = sorted(trace.spans, key=lambda s: s[1])
    return {
        "round": round_,
        "flag": flag,
        "voice": voice,
        "said": command.text,
        "intent": command.intent,
        "heard": turn.user_text,
        "early_end": marks.early,
        "end_to_end_ms": _ms(end, marks.audio),
        "turn_end_ms": _ms(end, marks.ended),
        "stop_ms": _ms(end, marks.stop),
        "cpu_ms": round(marks.cpu_ms, 1),
        "guesses_ms": [_ms(end, g) for g in trace.guesses],
        "spans_ms": [[name, _ms(end, a), _ms(end, b)] for name, a, b in spans],
        "playback": playback(trace.sent, end),
    }


def playback(sent: Sequence[tuple[float, float | None]], end: float) -> dict[str, Any]:
    """How the audio sent would play on a client that starts at the first audio and plays in
    real time. ``stalls_ms``: each piece of audio sent after the piece before it had played,
    by how late, split by whether it continues a sentence (audio right after audio: the rest
    after a first clause) or starts one; ``joins_ms``: for each continuation, how long before
    the piece before it had played it was sent (negative: a gap)."""
    plays_until: float | None = None
    after_text = True
    pieces: list[list[Any]] = []
    mid: list[float] = []
    between: list[float] = []
    joins: list[float] = []
    for at, seconds in sent:
        if seconds is None:
            after_text = True
            continue
        if plays_until is not None:
            late = (at - plays_until) * 1000
            (between if after_text else mid).append(round(max(0.0, late), 1))
            if not after_text:
                joins.append(round(-late, 1))
        start = at if plays_until is None else max(at, plays_until)
        plays_until = start + seconds
        pieces.append([_ms(end, at), round(seconds * 1000, 1), after_text])
        after_text = False
    return {
        "pieces": pieces,  # [sent ms after the end of speech, ms of audio, starts a sentence]
        "stalls_ms": {"mid_sentence": mid, "between_sentences": between},
        "joins_ms": joins,
    }


def summary(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per flag: end-to-end and CPU percentiles of the unknown and in-domain turns, early ends,
    accuracy, and when Whisper's decodes ended."""

    def pick(flag: bool | None, test: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        return [r for r in rows if r["flag"] == flag and test(r)]

    out: dict[str, Any] = {}
    for flag in dict.fromkeys(r["flag"] for r in rows):
        entry: dict[str, Any] = {}
        for kind, test in (
            ("unknown", lambda r: r["intent"] == "unknown"),
            ("in_domain", lambda r: r["intent"] != "unknown"),
        ):
            chosen = pick(flag, test)
            if not chosen:
                continue
            whisper_end = [
                max(s[2] for s in r["spans_ms"] if s[0] in ("recognize_open", "submit_open"))
                for r in chosen
                if any(s[0] in ("recognize_open", "submit_open") for s in r["spans_ms"])
            ]
            stalls = [r["playback"]["stalls_ms"] for r in chosen]
            joins = [j for r in chosen for j in r["playback"]["joins_ms"]]
            entry[kind] = {
                "end_to_end": percentiles(
                    [r["end_to_end_ms"] for r in chosen if r["end_to_end_ms"]]
                ),
                "turn_end": percentiles([r["turn_end_ms"] for r in chosen if r["turn_end_ms"]]),
                "cpu": percentiles([r["cpu_ms"] for r in chosen]),
                "early_end": sum(r["early_end"] for r in chosen),
                "whisper_decodes": sum(
                    s[0] in ("recognize_open", "submit_open") for r in chosen for s in r["spans_ms"]
                ),
                "whisper_last_end": percentiles([w for w in whisper_end if w is not None]),
                "right": sum(r["right"] for r in chosen),
                "turns": len(chosen),
                "split_sentences": len(joins),
                "join_slack": percentiles(joins),
                "mid_sentence_gaps": sum(1 for s in stalls for g in s["mid_sentence"] if g > 1),
                "gaps_between_sentences": sum(
                    1 for s in stalls for g in s["between_sentences"] if g > 1
                ),
            }
        by_intent: dict[str, list[float]] = {}
        for r in pick(flag, lambda r: bool(r["end_to_end_ms"])):
            by_intent.setdefault(r["intent"], []).append(r["end_to_end_ms"])
        entry["by_intent"] = {i: percentiles(v) for i, v in sorted(by_intent.items())}
        out[str(flag)] = entry
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ab", default=None, help="a true/false backend option to compare")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--in-domain-every", type=int, default=0)
    parser.add_argument("--limit", type=int, default=0, help="the first N utterances (a smoke run)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--no-guess", action="store_true", help="no early guesses: every turn read at the marker"
    )
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[:2]
    started = datetime.now(UTC).isoformat(timespec="seconds")
    rows = asyncio.run(
        measure(args.ab, args.rounds, args.in_domain_every, args.limit, args.no_guess)
    )
    report = {
        "generated": started,
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m bench.local_dev_latency "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "load_average_1m_5m_before": [round(x, 2) for x in load_before],
        "load_average_1m_5m_after": [round(x, 2) for x in os.getloadavg()[:2]],
        "cores": os.cpu_count(),
        "summary": summary(rows),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report["summary"], indent=1))
    print(f"load before {report['load_average_1m_5m_before']}, after "
          f"{report['load_average_1m_5m_after']}; wrote {args.out}")  # fmt: skip


if __name__ == "__main__":
    main()
