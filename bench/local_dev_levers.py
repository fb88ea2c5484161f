"""Generalisation levers, compared on the development set only (never the evaluation's).

    .venv/bin/python -m bench.local_dev_levers      # a few minutes; writes the JSON below

The development utterances of `bench.local_dev_eval` (its phrasings, the two tuning voices and
the three development-only accents) and the in-training phrasings spoken by the tuning voices
are recognised once, with the session's language model (`stt.SESSION_DISCOUNT`), keeping up to
`MAX_NBEST` next-best readings. Then, without recognising again, `Dialogue.hear` picks the
reading to answer under each setting of:

- how many next-best readings it may choose from (`NBESTS`; the engine keeps `stt.NBEST`: the
  first ``k`` of the readings kept here; a recogniser asked for ``k`` also stops looking after
  ``4 k`` lattice paths, so its list can be shorter than the first ``k`` of this one);
- the penalty of a reading whose identifier has another number of digits than the schema's
  examples (`dialogue.MISSHAPEN_PENALTY`, `PENALTIES`): a second look at the slot values
  among the recogniser's readings, with the schema's shape of the value.

And the audio an early guess hands the recogniser: the utterance is cut `TAILS` ms after the
end of speech (the collector cuts 300 ms after it, which the choices above use; the session's
guess comes 100 ms into the silence), optionally lengthened to 300 ms by repeating its last
100 ms (the room's noise) before recognition; scored with the engine's settings (`stt.NBEST`
readings, `dialogue.MISSHAPEN_PENALTY`).

Scored as `bench.local_dev_eval` scores: intent accuracy (`bench.local_eval.understood`) on
the development utterances (in-domain, out-of-domain rejected) and on the in-training ones.
Writes ``bench/results/local_dev_levers.json``.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import local_dev_eval as dev_eval
from bench import local_eval as evaluation
from bench.local_eval_set import COMMANDS
from examples.tools.weather import TOOLS as WEATHER_TOOLS
from sonicwire.server.backends.local import dialogue as dialogue_module
from sonicwire.server.backends.local.dialogue import Dialogue
from sonicwire.server.backends.local.phrases import background_sentences
from sonicwire.server.backends.local.stt import (
    ACCENT_SLOT_KINDS,
    NBEST,
    SESSION_DISCOUNT,
    SpeechRecognizer,
)
from sonicwire.server.core import events as ev
from sonicwire.server.testing.local_harness import MicStream, ToolBox, speak

RESULTS = Path(__file__).parent / "results" / "local_dev_levers.json"
MAX_NBEST = 20
NBESTS = (5, 10, 20)
PENALTIES = (0.0, 0.05, 0.1, 0.2, 0.3)
#: (tail after the end of speech, ms; lengthened to 300 ms by repeating its last 100 ms)
TAILS = ((100, False), (100, True), (200, False), (300, False))


def _score(model: Any, heard: list[tuple[Any, str, tuple[str, ...]]], nbest: int) -> dict[str, Any]:
    today = datetime.now(UTC).date()
    inside = outside = right_in = right_out = 0
    for command, text, alternatives in heard:
        reading = Dialogue(model).hear(text, alternatives[:nbest], today=today)
        ok = evaluation.understood(command, reading, model, today)
        if command.intent == "unknown":
            outside, right_out = outside + 1, right_out + ok
        else:
            inside, right_in = inside + 1, right_in + ok
    return {
        "utterances": inside + outside,
        "intent_accuracy": round((right_in + right_out) / (inside + outside), 3),
        "in_domain_intent_accuracy": round(right_in / inside, 3) if inside else None,
        "out_of_domain_rejected": round(right_out / outside, 3) if outside else None,
    }


def _with_tail(
    commands: tuple[Any, ...], voices: tuple[str, ...], tail_ms: int, padded: bool
) -> list[tuple[str, Any, bytes]]:
    """The development utterances cut ``tail_ms`` after the end of speech (300 ms before it);
    ``padded``: lengthened to 300 ms after it by repeating the last 100 ms."""
    out = []
    for voice in voices:
        for index, command in enumerate(commands):
            mic = MicStream(seed=index).utterance(speak(command.text, voice))
            audio = b"".join(c.pcm for c in mic.commands if isinstance(c, ev.SendAudio))
            lo, hi = (mic.speech_start - 16 * 300) * 2, (mic.speech_end + 16 * tail_ms) * 2
            cut = audio[lo:hi]
            if padded:
                last = cut[-2 * 16 * 100 :]
                cut += last * ((300 - tail_ms) // 100)
            out.append((voice, command, cut))
    return out


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        toolbox = ToolBox(Path(tmp) / "orders.db", extra=WEATHER_TOOLS)
        model = evaluation.session_tools(toolbox)
    dev_eval.check_dev_split(set(model.sentences()))
    voices = (*evaluation.DEV_VOICES, *dev_eval.DEV_ONLY_VOICES)
    dev = dev_eval._samples(dev_eval.DEV_COMMANDS, voices)
    in_training = tuple(c for c in COMMANDS if c.split == "in_training")
    trained = dev_eval._samples(in_training, evaluation.DEV_VOICES)
    load_before = os.getloadavg()
    recognizer = SpeechRecognizer.load("domain")
    try:
        key = recognizer.add_language_model(
            model.sentences(),
            background_sentences(),
            discount_mass=SESSION_DISCOUNT,
            accent_words=model.slot_words(ACCENT_SLOT_KINDS),  # as the engine builds it
        )

        def recognise(samples: list[tuple[str, Any, bytes]]) -> list[tuple[Any, str, Any]]:
            out = []
            for _, command, audio in samples:
                t = recognizer.recognize(audio, model=key, nbest=MAX_NBEST)
                out.append((command, t.text, t.alternatives))
            return out

        heard_dev, heard_trained = recognise(dev), recognise(trained)
        tails: dict[str, Any] = {}
        for tail_ms, padded in TAILS:
            cut = _with_tail(dev_eval.DEV_COMMANDS, voices, tail_ms, padded)
            heard = []
            for _, command, audio in cut:
                t = recognizer.recognize(audio, model=key)
                heard.append((command, t.text, t.alternatives))
            name = f"tail={tail_ms}ms" + (" padded to 300 ms" if padded else "")
            tails[name] = _score(model, heard, NBEST)
    finally:
        recognizer.close()
    settings: dict[str, Any] = {}
    used = dialogue_module.MISSHAPEN_PENALTY
    try:
        for nbest in NBESTS:
            for penalty in PENALTIES:
                dialogue_module.MISSHAPEN_PENALTY = penalty
                settings[f"nbest={nbest} penalty={penalty}"] = {
                    "nbest": nbest,
                    "misshapen_penalty": penalty,
                    "dev": _score(model, heard_dev, nbest),
                    "in_training_x_tuning_voices": _score(model, heard_trained, nbest),
                }
    finally:
        dialogue_module.MISSHAPEN_PENALTY = used
    report = {
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m bench.local_dev_levers",
        "voices": list(voices),
        "commands": len(dev_eval.DEV_COMMANDS),
        "engine_nbest": NBEST,
        "discount": SESSION_DISCOUNT,
        "settings": settings,
        "guess_tails": tails,
        "load_average_1m_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "cores": os.cpu_count(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    for name, result in settings.items():
        print(name, json.dumps(result["dev"]), result["in_training_x_tuning_voices"])
    for name, score in tails.items():
        print(name, json.dumps(score))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
