"""Ending a turn not understood before the VAD's marker: what it saves and what it may cut off,
measured on the development set only (never the evaluation's phrasings or voices).

    .venv/bin/python -m bench.local_dev_unknown            # a few minutes; writes the JSON below
    .venv/bin/python -m bench.local_dev_unknown --rescore  # counts again from its readings
    .venv/bin/python -m bench.local_dev_unknown --accent-slot-kinds '' --out X.json
                                    # the session model without the engine's accent variants

A reading not understood used to wait for the VAD's marker (500 ms of silence): it may be the
start of a request. `endpoint.early_end_after` now ends such a turn after
`endpoint.UNKNOWN_END_SILENCE_MS` of silence when the reading is like no tool (similarity
under `endpoint.UNKNOWN_END_SCORE`), has at least `endpoint.UNKNOWN_END_WORDS` words, and no
dangling last word or last number word. Two questions, for every setting of the threshold and
the word count (`SCORES` x `WORDS`):

- **What it may cut off** (``prefixes``): a user who pauses inside a request. Every word
  prefix of every in-domain development phrasing ("could you look up" of "could you look up
  order ten oh three") is spoken on its own by the voices (`VOICES`), cut as the engine's early
  guess is (100 ms after the end of speech, lengthened to 300 ms: `early.Guess.padded`) and
  read as the engine reads it (the session's model, `stt.NBEST` readings, `Dialogue.hear`).
  Counted: the prefixes whose reading ends the turn early already (a complete request after
  200 ms, a question back after 400 ms) and those the new rule ends (a reading not
  understood). A user who goes on after such an early end is answered whole
  at the marker (the core cancels the early answer), but hears the start of "Sorry, I didn't
  catch that" first; only pauses between the rule's silence and the marker's are affected
  (a longer pause reaches the marker anyway).
- **What it saves** (``whole``): the whole development utterances, read the same way; the
  readings not understood, and how many of them the rule ends early. At the
  marker the session answers the guess's reading when the marker confirms the guess (the same
  audio), so ending earlier changes when "Sorry, I didn't catch that" comes, not whether.

Writes ``bench/results/local_dev_unknown.json``.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import local_dev_eval as dev_eval
from bench import local_eval as evaluation
from bench.local_dev_readings import dev_model
from bench.local_timing import engine_cpu_s, percentiles
from sonicwire.server.backends.local import endpoint
from sonicwire.server.backends.local.dialogue import Dialogue
from sonicwire.server.backends.local.phrases import background_sentences
from sonicwire.server.backends.local.stt import (
    ACCENT_SLOT_KINDS,
    SESSION_DISCOUNT,
    SpeechRecognizer,
)
from sonicwire.server.backends.local.toolmodel import ToolModel
from sonicwire.server.core import events as ev
from sonicwire.server.testing.local_harness import MicStream, speak

RESULTS = Path(__file__).parent / "results" / "local_dev_unknown.json"
#: The voices the prefixes are spoken by: the two tuning voices and one development-only
#: accent (bounded: every voice reads about 190 utterances).
VOICES = (*evaluation.DEV_VOICES, dev_eval.DEV_ONLY_VOICES[1])
#: Thresholds of similarity under which a reading not understood may end early (the
#: dialogue's own threshold, `toolmodel.MIN_SCORE` 0.34, means every reading not understood),
#: and least numbers of words: every combination is counted (`endpoint.UNKNOWN_END_SCORE` and
#: `endpoint.UNKNOWN_END_WORDS` are used).
SCORES = (0.34, 0.3, 0.25, 0.2, 0.1)
WORDS = (1, 2, 3, 4)
SETTINGS = tuple(f"score<{s} words>={w}" for s in SCORES for w in WORDS)


def _guess_audio(text: str, voice: str, seed: int) -> bytes:
    """``text`` spoken and cut as the engine's early guess: 300 ms before the speech, 100 ms
    after it, lengthened to 300 ms after it by repeating its last 100 ms."""
    mic = MicStream(seed=seed).utterance(speak(text, voice))
    audio = b"".join(c.pcm for c in mic.commands if isinstance(c, ev.SendAudio))
    lo, hi = (mic.speech_start - 16 * 300) * 2, (mic.speech_end + 16 * 100) * 2
    cut = audio[lo:hi]
    return cut + cut[-2 * 1600 :] * 2


def _decide(model: ToolModel, reading: str) -> dict[str, Any]:
    """What the engine does with ``reading`` as a guess: its intent, and after how much silence
    the turn ends without the rule ("off") and under each setting of it (None: at the marker)."""
    today = datetime.now(UTC).date()
    dialogue = Dialogue(model)
    action = dialogue.respond(reading, today=today)
    asks = dialogue.asking
    used = endpoint.UNKNOWN_END_SCORE, endpoint.UNKNOWN_END_WORDS
    after: dict[str, int | None] = {}
    try:
        endpoint.UNKNOWN_END_SCORE = 0.0  # the rule off, as before it
        after["off"] = endpoint.early_end_after(model, reading, action, asks=asks, today=today)
        for score in SCORES:
            for words in WORDS:
                endpoint.UNKNOWN_END_SCORE, endpoint.UNKNOWN_END_WORDS = score, words
                after[f"score<{score} words>={words}"] = endpoint.early_end_after(
                    model, reading, action, asks=asks, today=today
                )
    finally:
        endpoint.UNKNOWN_END_SCORE, endpoint.UNKNOWN_END_WORDS = used
    return {"intent": action.intent, "after": after}


def _count(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per setting: the turns that end early (before the marker), and those only the rule ends."""
    out: dict[str, Any] = {
        "utterances": len(rows),
        "not_understood": sum(r["intent"] == "unknown" for r in rows),
        "ended_early_before": sum(r["after"]["off"] is not None for r in rows),
    }
    for name in SETTINGS:
        ended = [r["after"][name] is not None for r in rows]
        new = sum(e and r["after"]["off"] is None for e, r in zip(ended, rows, strict=True))
        out[name] = {"ended_early": sum(ended), "newly_ended": new}
    return out


def _report(prefix_rows: list[dict[str, Any]], whole_rows: list[dict[str, Any]]) -> dict[str, Any]:
    used = f"score<{endpoint.UNKNOWN_END_SCORE} words>={endpoint.UNKNOWN_END_WORDS}"
    return {
        "setting_used": used,
        "prefixes": _count(prefix_rows),
        "whole": _count(whole_rows),
        "whole_out_of_domain": _count([r for r in whole_rows if r["command_intent"] == "unknown"]),
        "newly_ended_with_the_setting_used": [
            [r["voice"], r["said"], r["reading"]]
            for r in (*prefix_rows, *whole_rows)
            if r["after"].get(used) is not None and r["after"]["off"] is None
        ],
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rescore", action="store_true", help="count again from the readings kept in the JSON"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--accent-slot-kinds",
        default=",".join(ACCENT_SLOT_KINDS),
        help="slot classes whose values get non-rhotic variants (default: the engine's, "
        "stt.ACCENT_SLOT_KINDS; '' for none)",
    )
    args = parser.parse_args(argv)
    if args.rescore:
        rescore(args.out)
        return
    kinds = tuple(k for k in args.accent_slot_kinds.split(",") if k)
    model = dev_model()
    dev_eval.check_dev_split(set(model.sentences()))
    phrasings = [
        c for c in (*dev_eval.DEV_COMMANDS, *dev_eval.MORE_DEV_COMMANDS) if c.intent != "unknown"
    ]
    prefixes = [
        " ".join(c.text.split()[:k]) for c in phrasings for k in range(1, len(c.text.split()))
    ]
    prefixes = list(dict.fromkeys(prefixes))
    today = datetime.now(UTC).date()
    load_before = os.getloadavg()
    recognizer = SpeechRecognizer.load("domain")
    prefix_rows: list[dict[str, Any]] = []
    whole_rows: list[dict[str, Any]] = []
    cpu_ms: list[float] = []
    try:
        key = recognizer.add_language_model(
            model.sentences(),
            background_sentences(),
            discount_mass=SESSION_DISCOUNT,
            accent_words=model.slot_words(kinds),
        )

        def read(text: str, voice: str, seed: int) -> str:
            cpu = engine_cpu_s()
            heard = recognizer.recognize(_guess_audio(text, voice, seed), model=key)
            cpu_ms.append((engine_cpu_s() - cpu) * 1000)
            return Dialogue(model).hear(heard.text, heard.alternatives, today=today)

        for voice in VOICES:
            for index, prefix in enumerate(prefixes):
                reading = read(prefix, voice, index)
                prefix_rows.append(
                    {"voice": voice, "said": prefix, "reading": reading} | _decide(model, reading)
                )
            for index, command in enumerate((*dev_eval.DEV_COMMANDS, *dev_eval.MORE_DEV_COMMANDS)):
                reading = read(command.text, voice, index)
                whole_rows.append(
                    {"voice": voice, "said": command.text, "command_intent": command.intent,
                     "reading": reading} | _decide(model, reading)
                )  # fmt: skip
    finally:
        recognizer.close()
    report = {
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m bench.local_dev_unknown"
        + (f" --out {args.out}" if args.out != RESULTS else "")
        + f" --accent-slot-kinds '{','.join(kinds)}'",
        "accent_slot_kinds": list(kinds),
        "voices": list(VOICES),
        "unknown_end_silence_ms": endpoint.UNKNOWN_END_SILENCE_MS,
        **_report(prefix_rows, whole_rows),
        "recognition_cpu_ms": percentiles(cpu_ms),
        "load_average_1m_5m_before": [round(x, 2) for x in load_before[:2]],
        "load_average_1m_5m_after": [round(x, 2) for x in os.getloadavg()[:2]],
        "cores": os.cpu_count(),
        "readings": _readings(prefix_rows, whole_rows),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    _print(report)
    print(f"wrote {args.out}")


def _readings(
    prefix_rows: list[dict[str, Any]], whole_rows: list[dict[str, Any]]
) -> dict[str, list[list[str]]]:
    """The readings, kept compactly (the decisions are counted again from them: `rescore`)."""
    return {
        "prefixes": [[r["voice"], r["said"], r["reading"]] for r in prefix_rows],
        "whole": [[r["voice"], r["said"], r["command_intent"], r["reading"]] for r in whole_rows],
    }


def _print(report: dict[str, Any]) -> None:
    used = report["setting_used"]
    for name in ("prefixes", "whole", "whole_out_of_domain"):
        counts = report[name]
        print(f"{name}: {counts['utterances']} utterances, {counts['not_understood']} not "
              f"understood, {counts['ended_early_before']} ended early before; {used}: "
              f"{counts[used]}")  # fmt: skip


def rescore(path: Path = RESULTS) -> None:
    """Count again from the readings kept in ``path`` (no recognition): the decisions depend
    on the rule's settings and the tools only, the readings on the audio and the model."""
    report = json.loads(path.read_text())
    model = dev_model()
    kept = report["readings"]
    prefix_rows = [
        {"voice": v, "said": said, "reading": r} | _decide(model, r)
        for v, said, r in kept["prefixes"]
    ]
    whole_rows = [
        {"voice": v, "said": said, "command_intent": i, "reading": r} | _decide(model, r)
        for v, said, i, r in kept["whole"]
    ]
    report |= _report(prefix_rows, whole_rows)
    report["rescored"] = datetime.now(UTC).isoformat(timespec="seconds")
    path.write_text(json.dumps(report, indent=2) + "\n")
    _print(report)


if __name__ == "__main__":
    main()
