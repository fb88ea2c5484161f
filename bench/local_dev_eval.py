"""The local engine's development set: where its recogniser-side choices are made.

    .venv/bin/python -m bench.local_dev_eval      # about a minute; writes the JSON below

`bench.local_eval` keeps held-out phrasings and held-out voices for the headline; nothing may be
tuned on them. Choices are made here instead, on phrasings of their own (`DEV_COMMANDS`: in no
training text and not among the evaluation's commands; checked) spoken by the two tuning voices
and three development-only voices (`DEV_ONLY_VOICES`, none of them an evaluation voice).

The recogniser alone (no front end, no dialogue state), with the session's model (command
model + common words), as `bench.local_lm_compare` runs it, once per smoothing of that model
(`DISCOUNTS`; the engine uses `stt.SESSION_DISCOUNT`). Per utterance it compares the
recogniser's best reading with the reading `Dialogue.hear` picks among the best and the
`stt.NBEST` next-best ones (what the engine answers); the in-training phrasings spoken by the
tuning voices check that the known commands are not lost. Intent accuracy is
`bench.local_eval.understood`. Writes ``bench/results/local_dev.json``.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import local_eval as evaluation
from bench.local_eval_set import COMMANDS, Command, _c
from bench.local_timing import percentiles
from examples.tools.weather import TOOLS as WEATHER_TOOLS
from sonicwire.server.backends.local.dialogue import Dialogue
from sonicwire.server.backends.local.phrases import background_sentences
from sonicwire.server.backends.local.stt import (
    ACCENT_SLOT_KINDS,
    NBEST,
    SESSION_DISCOUNT,
    SpeechRecognizer,
)
from sonicwire.server.core import events as ev
from sonicwire.server.testing.local_harness import (
    ESPEAK_TEST_VOICES,
    FLITE_TEST_VOICES,
    MicStream,
    ToolBox,
    speak,
)

RESULTS = Path(__file__).parent / "results" / "local_dev.json"
#: Development-only voices: espeak-ng accents that are none of the evaluation's voices.
DEV_ONLY_VOICES = ("espeak:en-029", "espeak:en-us-nyc", "espeak:en-gb-scotland")

_T, _O, _W = "get_date_time", "track_order", "get_weather"
#: Development phrasings (written for this set; never the evaluation's).
DEV_COMMANDS: tuple[Command, ...] = (
    _c("what's the time at the moment", _T, {}, "dev"),
    _c("do you know the time in paris", _T, {"timezone": "Europe/Paris"}, "dev"),
    _c("can you give me today's date", _T, {}, "dev"),
    _c("what day is today", _T, {}, "dev"),
    _c("i would like to know the time in new york", _T, {"timezone": "America/New_York"}, "dev"),
    _c("is order one zero zero two on its way", _O, {"order_id": "1002"}, "dev"),
    _c("could you look up order ten oh three", _O, {"order_id": "1003"}, "dev"),
    _c("check the status of order one zero zero five please", _O, {"order_id": "1005"}, "dev"),
    _c("where's my order number ten oh one", _O, {"order_id": "1001"}, "dev"),
    _c("did order one zero zero four arrive", _O, {"order_id": "1004"}, "dev"),
    _c("what's the weather like in rome", _W, {"city": "Rome"}, "dev"),
    _c("will it be sunny in vienna tomorrow", _W, {"city": "Vienna", "day": "tomorrow"}, "dev"),
    _c("how cold is it in toronto", _W, {"city": "Toronto"}, "dev"),
    _c("show me the forecast for amsterdam", _W, {"city": "Amsterdam"}, "dev"),
    _c("what's the temperature in chicago today", _W, {"city": "Chicago", "day": "today"}, "dev"),
    _c("thanks so much", "thanks", None, "dev"),
    _c("hi how are you", "greeting", None, "dev"),
    _c("where is my parcel", "ask", None, "dev"),
    _c("what is the capital of france", "unknown", None, "dev"),
    _c("send a message to my brother", "unknown", None, "dev"),
    _c("turn the volume up", "unknown", None, "dev"),
    _c("order a pizza for dinner", "unknown", None, "dev"),
    _c("how tall is the eiffel tower", "unknown", None, "dev"),
    _c("remind me to call my mom at six", "unknown", None, "dev"),
)


#: More development phrasings, added for the second look at identifiers (bench/local_dev_reread.py):
#: order numbers said in more ways, with more words around them, and more of everything else.
MORE_DEV_COMMANDS: tuple[Command, ...] = (
    _c("can you check on order one zero zero three", _O, {"order_id": "1003"}, "dev"),
    _c("what happened to order ten oh four", _O, {"order_id": "1004"}, "dev"),
    _c("any news about order one oh oh five", _O, {"order_id": "1005"}, "dev"),
    _c("i am waiting for order one zero zero one", _O, {"order_id": "1001"}, "dev"),
    _c("status of order ten oh two please", _O, {"order_id": "1002"}, "dev"),
    _c("has my order one zero zero two left yet", _O, {"order_id": "1002"}, "dev"),
    _c("what time do you have in moscow", _T, {"timezone": "Europe/Moscow"}, "dev"),
    _c("could you tell me today's date", _T, {}, "dev"),
    _c("is it going to be windy in lyon tomorrow", _W, {"city": "Lyon", "day": "tomorrow"}, "dev"),
    _c("how hot will it get in madrid", _W, {"city": "Madrid"}, "dev"),
    _c("tell me if it will rain in london", _W, {"city": "London"}, "dev"),
    _c("thanks a million", "thanks", None, "dev"),
    _c("good morning to you", "greeting", None, "dev"),
    _c("i want to know where my order is", "ask", None, "dev"),
    _c("what's the score of the football game", "unknown", None, "dev"),
    _c("open the garage door", "unknown", None, "dev"),
    _c("how do i bake bread", "unknown", None, "dev"),
    _c("call a doctor for me", "unknown", None, "dev"),
)
#: Development phrasings with an order number where a word of the request may be heard as a
#: city or a time zone ("track" / "toronto"), added to see whether the tool vote
#: (`dialogue.TOOL_VOTE`) takes a request for an order whose number was misheard for another
#: tool before the second look at the number (bench/local_dev_vote.py).
ORDER_DEV_COMMANDS: tuple[Command, ...] = (
    _c("track the order ten oh three", _O, {"order_id": "1003"}, "dev"),
    _c("tracking order ten oh four", _O, {"order_id": "1004"}, "dev"),
    _c("could you track order one zero zero five", _O, {"order_id": "1005"}, "dev"),
    _c("track order number ten oh two", _O, {"order_id": "1002"}, "dev"),
    _c("trace my order ten oh one", _O, {"order_id": "1001"}, "dev"),
    _c("follow order ten oh three for me", _O, {"order_id": "1003"}, "dev"),
    _c("where did order ten oh five go", _O, {"order_id": "1005"}, "dev"),
    _c("look for order one oh oh four", _O, {"order_id": "1004"}, "dev"),
    _c("any update on order ten oh two", _O, {"order_id": "1002"}, "dev"),
    _c("track package ten oh one today", _O, {"order_id": "1001"}, "dev"),
)
#: More development-only voices: espeak-ng accents and variants that are none of the
#: evaluation's voices, nearer to them than the three accents above.
MORE_DEV_VOICES = (
    "espeak:en-gb-x-rp", "espeak:en-gb-x-gbclan", "espeak:en-us+m1", "espeak:en-us+f4",
    "espeak:en-us+m5",
)  # fmt: skip


def check_dev_split(trained: set[str]) -> None:
    """Development phrasings are neither training text nor evaluation commands."""
    evaluated = {c.text for c in COMMANDS}
    for command in (*DEV_COMMANDS, *MORE_DEV_COMMANDS, *ORDER_DEV_COMMANDS):
        if command.text in trained or command.text in evaluated:
            raise SystemExit(f"development phrasing {command.text!r} is not held apart")
    overlap = {*DEV_ONLY_VOICES, *MORE_DEV_VOICES} & {*ESPEAK_TEST_VOICES, *FLITE_TEST_VOICES}
    if overlap:
        raise SystemExit(f"development voices {sorted(overlap)} are evaluation voices")


def _score(rows: list[tuple[Command, bool]]) -> dict[str, Any]:
    inside = [ok for c, ok in rows if c.intent != "unknown"]
    outside = [ok for c, ok in rows if c.intent == "unknown"]
    return {
        "utterances": len(rows),
        "intent_accuracy": round(sum(ok for _, ok in rows) / len(rows), 3),
        "in_domain_intent_accuracy": round(sum(inside) / len(inside), 3),
        "out_of_domain_rejected": round(sum(outside) / len(outside), 3),
    }


#: Smoothing of the session language model compared (`stt.SESSION_DISCOUNT` is used).
DISCOUNTS = (0.4, 0.5, 0.6, 0.7, 0.75)


def _samples(
    commands: tuple[Command, ...], voices: tuple[str, ...]
) -> list[tuple[str, Command, bytes]]:
    out = []
    for voice in voices:
        for index, command in enumerate(commands):
            mic = MicStream(seed=index).utterance(speak(command.text, voice))
            audio = b"".join(c.pcm for c in mic.commands if isinstance(c, ev.SendAudio))
            pad = 16 * 300  # the utterance as the collector cuts it: speech + 300 ms pads
            lo, hi = (mic.speech_start - pad) * 2, (mic.speech_end + pad) * 2
            out.append((voice, command, audio[lo:hi]))
    return out


def measure(
    recognizer: SpeechRecognizer,
    model: Any,
    discount: float,
    dev: list[tuple[str, Command, bytes]],
    trained: list[tuple[str, Command, bytes]],
) -> dict[str, Any]:
    """One language model (smoothing ``discount``) on the development utterances and on the
    in-training phrasings spoken by the tuning voices."""
    key = recognizer.add_language_model(
        model.sentences(),
        background_sentences(),
        discount_mass=discount,
        accent_words=model.slot_words(ACCENT_SLOT_KINDS),  # as the engine builds it
    )
    today = datetime.now(UTC).date()
    best: list[tuple[Command, bool]] = []
    chosen: list[tuple[Command, bool]] = []
    per_voice: dict[str, list[int]] = {}
    times: list[float] = []
    for voice, command, audio in dev:
        started = time.perf_counter()
        heard = recognizer.recognize(audio, model=key)
        times.append((time.perf_counter() - started) * 1000)
        reading = Dialogue(model).hear(heard.text, heard.alternatives, today=today)
        ok_best = evaluation.understood(command, heard.text, model, today)
        ok_chosen = evaluation.understood(command, reading, model, today)
        best.append((command, ok_best))
        chosen.append((command, ok_chosen))
        counts = per_voice.setdefault(voice, [0, 0, 0])
        counts[0] += 1
        counts[1] += ok_best
        counts[2] += ok_chosen
    in_training = 0
    for _, command, audio in trained:
        heard = recognizer.recognize(audio, model=key)
        reading = Dialogue(model).hear(heard.text, heard.alternatives, today=today)
        in_training += evaluation.understood(command, reading, model, today)
    return {
        "best_reading": _score(best),
        "chosen_reading": _score(chosen),
        "in_training_x_tuning_voices": {
            "utterances": len(trained),
            "intent_accuracy": round(in_training / len(trained), 3),
        },
        "by_voice": {
            v: {"utterances": n, "best_reading": round(a / n, 3), "chosen_reading": round(b / n, 3)}
            for v, (n, a, b) in per_voice.items()
        },
        "recognition_ms": percentiles(times),
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        toolbox = ToolBox(Path(tmp) / "orders.db", extra=WEATHER_TOOLS)
        model = evaluation.session_tools(toolbox)
    check_dev_split(set(model.sentences()))
    voices = (*evaluation.DEV_VOICES, *DEV_ONLY_VOICES)
    dev = _samples(DEV_COMMANDS, voices)
    in_training = tuple(c for c in COMMANDS if c.split == "in_training")
    trained = _samples(in_training, evaluation.DEV_VOICES)
    load_before = os.getloadavg()
    recognizer = SpeechRecognizer.load("domain")
    try:
        models = {str(d): measure(recognizer, model, d, dev, trained) for d in DISCOUNTS}
    finally:
        recognizer.close()
    report: dict[str, Any] = {
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m bench.local_dev_eval",
        "voices": list(voices),
        "dev_only_voices": list(DEV_ONLY_VOICES),
        "commands": len(DEV_COMMANDS),
        "nbest": NBEST,
        "discount_used": SESSION_DISCOUNT,
        "by_discount": models,
        "load_average_1m_5m_before": [round(x, 2) for x in load_before[:2]],
        "load_average_1m_5m_after": [round(x, 2) for x in os.getloadavg()[:2]],
        "cores": os.cpu_count(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    for discount, scores in models.items():
        print(
            discount,
            json.dumps(
                {
                    k: scores[k]
                    for k in ("best_reading", "chosen_reading", "in_training_x_tuning_voices")
                }
            ),
        )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
