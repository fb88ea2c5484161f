"""The recogniser's readings of the development set, kept, so dialogue-side levers can be
compared without recognising again (development set only; never the evaluation's phrasings
or voices: `bench.local_dev_eval.check_dev_split`).

    .venv/bin/python -m bench.local_dev_readings     # a few minutes; writes the JSON below

The utterances are `bench.local_dev_reread`'s: ``dev`` (`local_dev_eval.DEV_COMMANDS` x the
two tuning voices and the three development-only accents), ``more`` (`MORE_DEV_COMMANDS` for
those voices, all development phrasings for `MORE_DEV_VOICES`) and the in-training phrasings
spoken by the tuning voices (``in_training_x_tuning_voices``) and by every development-only
voice (``in_training_x_dev_voices``); ``order_numbers``: `local_dev_eval.ORDER_DEV_COMMANDS`
(order numbers after words that may be heard as a place) for every development voice. Each
is recognised once as the engine does (the session's model, `stt.NBEST` readings); the best
reading and its next-best ones are kept with the command, with the process + recogniser-worker
CPU time of the recognition. ``--only`` keeps a subset of the phrasings (a substring of them),
for a quick look at one question.

`load` reads the file back: rows of (set, voice, command, text, alternatives). The readings
depend on the language model, i.e. on the tools' examples: re-run it after changing them.
Writes ``bench/results/local_dev_readings.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import local_dev_eval as dev_eval
from bench import local_eval as evaluation
from bench.local_eval_set import COMMANDS, Command
from bench.local_timing import engine_cpu_s, percentiles
from examples.tools.weather import TOOLS as WEATHER_TOOLS
from sonicwire.server.backends.local.phrases import background_sentences
from sonicwire.server.backends.local.stt import (
    ACCENT_SLOT_KINDS,
    NBEST,
    SESSION_DISCOUNT,
    SpeechRecognizer,
)
from sonicwire.server.backends.local.toolmodel import ToolModel
from sonicwire.server.testing.local_harness import ToolBox

RESULTS = Path(__file__).parent / "results" / "local_dev_readings.json"

__all__ = [
    "DEV_ONLY",
    "DEV_SET_VOICES",
    "IN_TRAINING",
    "RESULTS",
    "Reading",
    "dev_model",
    "dev_sets",
    "load",
]

#: (set, voice, command, best reading, next-best readings)
Reading = tuple[str, str, Command, str, tuple[str, ...]]


def dev_model() -> ToolModel:
    """The session's tools as the evaluation offers them (built-ins + the weather plugin)."""
    with tempfile.TemporaryDirectory() as tmp:
        toolbox = ToolBox(Path(tmp) / "orders.db", extra=WEATHER_TOOLS)
        return evaluation.session_tools(toolbox)


#: The voices of the ``dev`` set: the two tuning voices and the development-only accents.
DEV_SET_VOICES = (*evaluation.DEV_VOICES, *dev_eval.DEV_ONLY_VOICES)
#: Every development-only voice (none is an evaluation voice: `local_dev_eval.check_dev_split`).
DEV_ONLY = (*dev_eval.DEV_ONLY_VOICES, *dev_eval.MORE_DEV_VOICES)
#: The evaluation's in-training phrasings (training text, so no held-out phrasing): spoken by
#: the tuning voices, they check that the known commands are not lost; spoken by the
#: development-only voices, they are the evaluation's "in-training x held-out voices" kind of
#: utterance without its voices (a known command in an unfamiliar voice).
IN_TRAINING = tuple(c for c in COMMANDS if c.split == "in_training")


def dev_sets() -> dict[str, list[tuple[str, Command, bytes]]]:
    """The development utterances by set (see the module docstring)."""
    voices = DEV_SET_VOICES
    return {
        "dev": dev_eval._samples(dev_eval.DEV_COMMANDS, voices),
        "more": dev_eval._samples(dev_eval.MORE_DEV_COMMANDS, voices)
        + dev_eval._samples(
            (*dev_eval.DEV_COMMANDS, *dev_eval.MORE_DEV_COMMANDS), dev_eval.MORE_DEV_VOICES
        ),
        "in_training_x_tuning_voices": dev_eval._samples(IN_TRAINING, evaluation.DEV_VOICES),
        "in_training_x_dev_voices": dev_eval._samples(IN_TRAINING, DEV_ONLY),
        "order_numbers": dev_eval._samples(
            dev_eval.ORDER_DEV_COMMANDS, (*evaluation.DEV_VOICES, *DEV_ONLY)
        ),
    }


def load(path: Path = RESULTS) -> list[Reading]:
    """The kept readings."""
    rows = json.loads(path.read_text())["readings"]
    return [
        (r["set"], r["voice"], Command(**r["command"]), r["text"], tuple(r["alternatives"]))
        for r in rows
    ]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="keep the phrasings containing this text")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    model = dev_model()
    dev_eval.check_dev_split(set(model.sentences()))
    sets = {
        name: [s for s in samples if args.only in s[1].text] for name, samples in dev_sets().items()
    }
    load_before = os.getloadavg()
    recognizer = SpeechRecognizer.load("domain")
    rows: list[dict[str, Any]] = []
    cpu_ms: list[float] = []
    try:
        key = recognizer.add_language_model(
            model.sentences(),
            background_sentences(),
            discount_mass=SESSION_DISCOUNT,
            accent_words=model.slot_words(ACCENT_SLOT_KINDS),  # as the engine builds it
        )
        for name, samples in sets.items():
            for voice, command, audio in samples:
                cpu = engine_cpu_s()
                heard = recognizer.recognize(audio, model=key, nbest=NBEST)
                cpu_ms.append((engine_cpu_s() - cpu) * 1000)
                rows.append(
                    {"set": name, "voice": voice, "command": asdict(command),
                     "text": heard.text, "alternatives": list(heard.alternatives)}
                )  # fmt: skip
    finally:
        recognizer.close()
    report = {
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m bench.local_dev_readings"
        + (f" --only {args.only!r}" if args.only else ""),
        "discount": SESSION_DISCOUNT,
        "nbest": NBEST,
        "recognition_cpu_ms": percentiles(cpu_ms) if cpu_ms else None,
        "load_average_1m_5m_before": [round(x, 2) for x in load_before[:2]],
        "load_average_1m_5m_after": [round(x, 2) for x in os.getloadavg()[:2]],
        "cores": os.cpu_count(),
        "readings": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{len(rows)} utterances; load before {report['load_average_1m_5m_before']}, "
          f"after {report['load_average_1m_5m_after']}; wrote {args.out}")  # fmt: skip


if __name__ == "__main__":
    main()
