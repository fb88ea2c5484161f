"""What kind of errors the development set's misses are: measured, to choose the next lever.

    .venv/bin/python -m bench.local_dev_errors        # reads local_dev_decoder.json's base

Reads the answers of a variant of `bench.local_dev_decoder` (``base``: the engine's settings,
which keeps every answer) and sorts every wrong one, per expected tool: **rejected** (the
answered reading is like no tool), **another tool**, **right tool, wrong or missing
argument** (a slot value misheard), and for out-of-domain requests **taken as a tool**. For
the right-tool-wrong-argument and rejected kinds it also says whether the expected slot
values were words of the best reading at all (the acoustics lost them) or were heard and not
used. The development set only (no evaluation phrasing or voice: `bench.local_dev_eval`).
Writes ``bench/results/local_dev_errors.json``.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import local_dev_eval as dev_eval
from bench.local_dev_readings import IN_TRAINING, dev_model
from bench.local_eval_set import Command
from sonicwire.server.backends.local.numbers import spoken_id_forms

__all__ = ["classify", "main"]

SOURCE = Path(__file__).parent / "results" / "local_dev_decoder.json"
RESULTS = Path(__file__).parent / "results" / "local_dev_errors.json"


def classify(command: Command, answered: str, model: Any) -> str:
    """The kind of a wrong answer (module docstring); "right" when it is not wrong."""
    meaning = model.understand(answered, today=datetime.now(UTC).date())
    if command.intent == "unknown":
        return "right" if meaning.name is None else f"taken as {meaning.name}"
    if meaning.name is None:
        return "rejected"
    expected = "track_order" if command.intent == "ask" else command.intent
    if meaning.name != expected:
        return "another tool"
    if command.arguments is not None and dict(meaning.arguments) != command.arguments:
        return "right tool, wrong or missing argument"
    if command.intent == "ask" and "order_id" in meaning.arguments:
        return "right tool, wrong or missing argument"
    return "right"


def main() -> None:
    report = json.loads(SOURCE.read_text())
    base = report["variants"]["base"]
    commands = {
        c.text: c
        for c in (
            *dev_eval.DEV_COMMANDS,
            *dev_eval.MORE_DEV_COMMANDS,
            *dev_eval.ORDER_DEV_COMMANDS,
            *IN_TRAINING,
        )
    }
    model = dev_model()
    kinds: dict[str, Counter[str]] = defaultdict(Counter)
    heard_words: dict[str, Counter[str]] = defaultdict(Counter)
    examples: dict[str, list[str]] = defaultdict(list)
    totals: Counter[str] = Counter()
    for row in base["answers"]:
        command = commands[row["said"]]
        totals[command.intent] += 1
        kind = classify(command, row["answered"], model)
        if (kind == "right") != row["right"]:
            raise SystemExit(f"classify disagrees with the kept result: {row}")
        if kind == "right":
            continue
        kinds[command.intent][kind] += 1
        if command.arguments:
            found = all(_heard(v, row["heard"]) for v in command.arguments.values())
            lost = "slot value in the best reading" if found else "slot value not heard"
            heard_words[command.intent][f"{kind}: {lost}"] += 1
        if len(examples[command.intent]) < 12:
            examples[command.intent].append(
                f"{row['voice']}: {row['said']!r} heard {row['heard']!r} -> {kind}"
            )
    out = {
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m bench.local_dev_errors",
        "source": f"{SOURCE.name} variant base ({base['generated']})",
        "utterances_by_intent": dict(sorted(totals.items())),
        "wrong_by_intent": {k: dict(v) for k, v in sorted(kinds.items())},
        "slot_value_heard": {k: dict(v) for k, v in sorted(heard_words.items())},
        "examples": dict(sorted(examples.items())),
    }
    RESULTS.write_text(json.dumps(out, indent=1) + "\n")
    shown = ("utterances_by_intent", "wrong_by_intent", "slot_value_heard")
    print(json.dumps({k: out[k] for k in shown}, indent=1))


def _heard(value: Any, heard: str) -> bool:
    """Whether a slot value is in a reading: an identifier in one of its spoken forms
    ("ten oh three"), a name by its last part's words ("Asia/Tokyo": "tokyo")."""
    text = f" {heard} "
    if str(value).isdigit():
        return any(f" {form} " in text for form in spoken_id_forms(int(value)))
    words = str(value).lower().rsplit("/", 1)[-1].replace("_", " ")
    return f" {words} " in text


if __name__ == "__main__":
    main()
