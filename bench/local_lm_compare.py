"""Which language model for the local engine's recogniser: measured on the tuning voices.

    .venv/bin/python -m bench.local_lm_compare      # about a minute; writes the JSON below

The recogniser alone (no front end, no dialogue state) on `bench.local_eval_set.COMMANDS`, spoken
by the two voices the engine was tuned with (`DEV_VOICES`; the held-out voices stay unheard),
with three models: the session's command model, the same with the common-word background
mixed in (what the engine uses), and pocketsphinx's general en-US model. Intent accuracy is
`bench.local_eval.understood` on the transcript. Writes ``bench/results/local_lm_compare.json``.
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
from bench.local_eval_set import COMMANDS
from bench.local_timing import percentiles
from examples.tools.weather import TOOLS as WEATHER_TOOLS
from sonicwire.server.backends.local.phrases import background_sentences
from sonicwire.server.backends.local.stt import SpeechRecognizer
from sonicwire.server.core import events as ev
from sonicwire.server.testing.local_harness import MicStream, ToolBox, speak

RESULTS = Path(__file__).parent / "results" / "local_lm_compare.json"
MODELS = ("domain", "domain+background", "general")


def measure(name: str, model: Any, voices: tuple[str, ...]) -> dict[str, Any]:
    recognizer = SpeechRecognizer.load("general" if name == "general" else "domain")
    try:
        key = None
        if name != "general":
            background = background_sentences() if "background" in name else []
            key = recognizer.add_language_model(model.sentences(), background)
        rows, times = [], []
        today = datetime.now(UTC).date()
        for voice in voices:
            for index, command in enumerate(COMMANDS):
                mic = MicStream(seed=index).utterance(speak(command.text, voice))
                audio = b"".join(c.pcm for c in mic.commands if isinstance(c, ev.SendAudio))
                pad = 16 * 300  # the utterance as the collector cuts it: speech + 300 ms pads
                lo, hi = (mic.speech_start - pad) * 2, (mic.speech_end + pad) * 2
                started = time.perf_counter()
                heard = recognizer.recognize(audio[lo:hi], model=key)
                times.append((time.perf_counter() - started) * 1000)
                errors, words = evaluation.word_errors(command.text, heard.text)
                ok = evaluation.understood(command, heard.text, model, today)
                rows.append((command.split, ok, errors, words))
    finally:
        recognizer.close()
    out: dict[str, Any] = {"recognition_ms": percentiles(times)}
    for split in ("held_out", "in_training", "out_of_domain"):
        subset = [r for r in rows if r[0] == split]
        words = sum(r[3] for r in subset)
        out[split] = {
            "utterances": len(subset),
            "intent_accuracy": round(sum(r[1] for r in subset) / len(subset), 3),
            "wer": round(sum(r[2] for r in subset) / words, 3) if words else None,
        }
    return out


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        toolbox = ToolBox(Path(tmp) / "orders.db", extra=WEATHER_TOOLS)
        model = evaluation.session_tools(toolbox)
    load_before = os.getloadavg()[0]
    report: dict[str, Any] = {
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m bench.local_lm_compare",
        "voices": list(evaluation.DEV_VOICES),
        "models": {name: measure(name, model, evaluation.DEV_VOICES) for name in MODELS},
        "load_average_1m_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "cores": os.cpu_count(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    for name, scores in report["models"].items():
        print(name, json.dumps(scores))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
