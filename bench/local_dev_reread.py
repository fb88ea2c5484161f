"""The second look at identifiers (`reread.py`), measured on the development set only.

    .venv/bin/python -m bench.local_dev_reread      # about two minutes; writes the JSON below

The development utterances (never the evaluation's phrasings or voices; `bench.local_dev_eval`
checks): ``dev`` is the set the earlier choices were made on (its 24 phrasings x the two tuning
voices and the three development-only accents), ``more`` adds 18 phrasings (more order numbers
among other words, more of everything else) for those voices and all 42 phrasings for five
more development-only voices (`local_dev_eval.MORE_DEV_VOICES`); the in-training phrasings
spoken by the tuning voices check that the known commands are not lost.

Each utterance is recognised once as the engine does (the session's model, `stt.NBEST` readings,
`Dialogue.hear`'s choice); then the reading is scored as it is (**before**) and after the second
look (**after**: `reread.plan`, `SpeechRecognizer.recognize_grammar` on the same audio,
`Reread.merge`). Intent accuracy is `bench.local_eval.understood`; out-of-domain rejection and
the in-training phrasings must not get worse. The second pass's cost: the utterances it ran on,
and its CPU time (this process and the recogniser's worker, `local_timing.engine_cpu_s`).
Writes ``bench/results/local_dev_reread.json``.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import local_dev_eval as dev_eval
from bench import local_eval as evaluation
from bench.local_dev_readings import DEV_SET_VOICES, dev_model, dev_sets
from bench.local_timing import engine_cpu_s, percentiles
from sonicwire.server.backends.local.dialogue import Dialogue
from sonicwire.server.backends.local.phrases import background_sentences
from sonicwire.server.backends.local.reread import plan
from sonicwire.server.backends.local.stt import (
    ACCENT_SLOT_KINDS,
    SESSION_DISCOUNT,
    SpeechRecognizer,
)

RESULTS = Path(__file__).parent / "results" / "local_dev_reread.json"


def _tally(rows: list[tuple[Any, bool]]) -> dict[str, Any]:
    inside = [ok for c, ok in rows if c.intent != "unknown"]
    outside = [ok for c, ok in rows if c.intent == "unknown"]
    return {
        "utterances": len(rows),
        "right": sum(ok for _, ok in rows),
        "intent_accuracy": round(sum(ok for _, ok in rows) / len(rows), 3),
        "in_domain_intent_accuracy": round(sum(inside) / len(inside), 3) if inside else None,
        "out_of_domain_rejected": round(sum(outside) / len(outside), 3) if outside else None,
    }


def main() -> None:
    model = dev_model()
    dev_eval.check_dev_split(set(model.sentences()))
    sets = dev_sets()
    today = datetime.now(UTC).date()
    load_before = os.getloadavg()
    recognizer = SpeechRecognizer.load("domain")
    results: dict[str, Any] = {}
    changes: list[dict[str, Any]] = []
    second_cpu_ms: list[float] = []
    first_cpu_ms: list[float] = []
    try:
        key = recognizer.add_language_model(
            model.sentences(),
            background_sentences(),
            accent_words=model.slot_words(ACCENT_SLOT_KINDS),  # as the engine builds it
        )
        for name, samples in sets.items():
            before: list[tuple[Any, bool]] = []
            after: list[tuple[Any, bool]] = []
            looked = 0
            for voice, command, audio in samples:
                cpu = engine_cpu_s()
                heard = recognizer.recognize(audio, model=key)
                first_cpu_ms.append((engine_cpu_s() - cpu) * 1000)
                dialogue = Dialogue(model)
                reading = dialogue.hear(heard.text, heard.alternatives, today=today)
                final = reading
                cpu = engine_cpu_s()
                second = plan(model, reading, lambda w: recognizer.knows(w, model=key), today=today)
                if second is not None:
                    looked += 1
                    again = recognizer.recognize_grammar(audio, second.grammar, model=key)
                    final = second.merge(again) or reading
                    second_cpu_ms.append((engine_cpu_s() - cpu) * 1000)
                ok_before = evaluation.understood(command, reading, model, today)
                ok_after = evaluation.understood(command, final, model, today)
                before.append((command, ok_before))
                after.append((command, ok_after))
                if final != reading:
                    changes.append(
                        {"set": name, "voice": voice, "said": command.text, "reading": reading,
                         "after": final, "right_before": ok_before, "right_after": ok_after}
                    )  # fmt: skip
            results[name] = {
                "before": _tally(before),
                "after": _tally(after),
                "second_looks": looked,
            }
    finally:
        recognizer.close()
    report = {
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m bench.local_dev_reread",
        "discount": SESSION_DISCOUNT,
        "voices": list(DEV_SET_VOICES),
        "more_voices": list(dev_eval.MORE_DEV_VOICES),
        "results": results,
        "changed_readings": changes,
        "first_pass_cpu_ms": percentiles(first_cpu_ms),
        "second_look_cpu_ms": percentiles(second_cpu_ms) if second_cpu_ms else None,
        "load_average_1m_5m_before": [round(x, 2) for x in load_before[:2]],
        "load_average_1m_5m_after": [round(x, 2) for x in os.getloadavg()[:2]],
        "cores": os.cpu_count(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    for name, result in results.items():
        print(name, json.dumps(result))
    for change in changes:
        print(json.dumps(change))
    print(
        "second look CPU ms",
        report["second_look_cpu_ms"],
        "first pass",
        report["first_pass_cpu_ms"],
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
