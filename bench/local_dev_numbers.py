"""Whisper's numbers in out-of-domain requests, on the development set only: does the open
reading (`open_reading.adopted`) take a number that is no order number for one?

    nice -n 10 .venv/bin/python -m bench.local_dev_numbers      # ~1 min

Whisper writes spoken numbers as digits ("six forty-five" -> "6.45"), and `normalise` reads a
run of three digits or more digit by digit, as an identifier ("six four five"), which the order
tool's identifier slot takes. Two checks, both development-only:

- ``numbers``: out-of-domain requests with times and counts, written for this check
  (`NUMBER_OOD_DEV`: none is an evaluation phrasing or training text; checked), spoken by the
  development voices, read by pocketsphinx with the session's model and `Dialogue.hear`; where
  that reading means nothing (`needs_open_reading`), Whisper's text (`recognize_open`) adopted
  as the engine adopted it before `open_reading.REFUSE_MISSHAPEN` ("engine") and with it
  ("strict": `adopted` refusing a reading whose identifier has a digit count none of the
  schema's examples has, `ToolModel.misshapen`).
- ``stored``: the same two adoptions over the 610 development utterances' stored readings and
  Whisper texts (``bench/results/local_dev_whisper.json``, the engine's setting
  ``short_none``), scored with `bench.local_eval.understood`: what the rule would cost there.

Writes ``bench/results/local_dev_numbers.json``.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import local_eval as evaluation
from bench.local_dev_eval import (
    DEV_COMMANDS,
    MORE_DEV_COMMANDS,
    MORE_DEV_VOICES,
    ORDER_DEV_COMMANDS,
    _samples,
)
from bench.local_dev_readings import DEV_SET_VOICES, IN_TRAINING, dev_model
from bench.local_dev_whisper import _session_recognizer
from bench.local_eval_set import COMMANDS, Command, _c
from sonicwire.server.backends.local.dialogue import Dialogue
from sonicwire.server.backends.local.open_reading import adopted, needs_open_reading
from sonicwire.server.backends.local.stt import NBEST, SpeechRecognizer
from sonicwire.server.backends.local.toolmodel import ToolModel

RESULTS = Path(__file__).parent / "results" / "local_dev_numbers.json"
STORED = Path(__file__).parent / "results" / "local_dev_whisper.json"
#: Out-of-domain requests with numbers, written for this check (development only).
NUMBER_OOD_DEV: tuple[Command, ...] = (
    _c("wake me up at six forty five", "unknown", None, "dev"),
    _c("set a timer for seven thirty", "unknown", None, "dev"),
    _c("remind me at eight fifteen to take my pills", "unknown", None, "dev"),
    _c("book a table for two at nine thirty", "unknown", None, "dev"),
    _c("turn the heating up to twenty one degrees", "unknown", None, "dev"),
    _c("play track number seven", "unknown", None, "dev"),
)

Adopt = Callable[[Dialogue, str], str | None]


def _adopt(model: ToolModel, text: str, today: Any, refuse: bool) -> str | None:
    """`adopted` as before the rule (``refuse`` False) or with it."""
    return adopted(Dialogue(model), text, today=today, refuse_misshapen=refuse)


def _check_split(model: ToolModel) -> None:
    trained = set(model.sentences())
    known = {c.text for c in (*COMMANDS, *DEV_COMMANDS, *MORE_DEV_COMMANDS, *ORDER_DEV_COMMANDS)}
    for command in NUMBER_OOD_DEV:
        if command.text in trained or command.text in known:
            raise SystemExit(f"{command.text!r} is not held apart")


def numbers(model: ToolModel, today: Any) -> list[dict[str, Any]]:
    samples = _samples(NUMBER_OOD_DEV, (*DEV_SET_VOICES, *MORE_DEV_VOICES))
    rows: list[dict[str, Any]] = []
    with _session_recognizer(model) as (recognizer, key):
        heard = [recognizer.recognize(a, model=key, nbest=NBEST) for _, _, a in samples]
    whisper = SpeechRecognizer.load("domain", open_reading=True)
    try:
        for (voice, command, audio), transcript in zip(samples, heard, strict=True):
            reading = Dialogue(model).hear(transcript.text, transcript.alternatives, today=today)
            row: dict[str, Any] = {"voice": voice, "said": command.text, "pocketsphinx": reading}
            row["whisper"] = ""
            answers = {"engine": reading, "strict": reading}
            if needs_open_reading(model, reading, asking=False, today=today):
                row["whisper"] = text = whisper.recognize_open(audio)
                answers["engine"] = _adopt(model, text, today, False) or reading
                answers["strict"] = _adopt(model, text, today, True) or reading
            for name, answer in answers.items():
                row[name] = answer
                row[f"{name}_rejected"] = evaluation.understood(command, answer, model, today)
            rows.append(row)
    finally:
        whisper.close()
    return rows


def stored(model: ToolModel, today: Any) -> dict[str, Any]:
    commands = {
        c.text: c for c in (*DEV_COMMANDS, *MORE_DEV_COMMANDS, *ORDER_DEV_COMMANDS, *IN_TRAINING)
    }
    tally = {"engine": [0, 0], "strict": [0, 0]}  # [in-domain right, out-of-domain rejected]
    changed: list[list[str]] = []
    for row in json.loads(STORED.read_text())["transcripts"]:
        command, answer = commands[row["said"]], row["answered"]
        right = {}
        for name, refuse in (("engine", False), ("strict", True)):
            final = answer
            if needs_open_reading(model, answer, asking=False, today=today):
                final = _adopt(model, row["short_none"], today, refuse) or answer
            right[name] = evaluation.understood(command, final, model, today)
            tally[name][command.intent == "unknown"] += right[name]
        if right["engine"] != right["strict"]:
            changed.append([row["voice"], row["said"], row["short_none"]])
    return {"in_domain_right_ood_rejected": tally, "changed": changed}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    model, today = dev_model(), datetime.now(UTC).date()
    _check_split(model)
    load_before = os.getloadavg()[:2]
    started = datetime.now(UTC).isoformat(timespec="seconds")
    rows = numbers(model, today)
    report = {
        "generated": started,
        "command": "python -m bench.local_dev_numbers",
        "numbers": {
            "rejected": {k: sum(r[f"{k}_rejected"] for r in rows) for k in ("engine", "strict")},
            "utterances": len(rows),
            "whisper_read": sum(bool(r["whisper"]) for r in rows),
        },
        "stored": stored(model, today),
        "load_average_1m_5m_before": [round(x, 2) for x in load_before],
        "load_average_1m_5m_after": [round(x, 2) for x in os.getloadavg()[:2]],
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({k: report[k] for k in ("numbers", "stored")}, indent=1))
    for row in rows:
        if row["engine"] != row["strict"] or row["whisper"]:
            print(f"  {row['voice']}: {row['said']!r} -> ps {row['pocketsphinx']!r}, "
                  f"whisper {row['whisper']!r}, engine {row['engine_rejected']}, "
                  f"strict {row['strict_rejected']}")  # fmt: skip
    print(f"load {report['load_average_1m_5m_before']} -> {report['load_average_1m_5m_after']}")


if __name__ == "__main__":
    main()
