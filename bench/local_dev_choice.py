"""The second look at a missing choice value (`choice_look.py`), measured on the development set
only (never the evaluation's phrasings or voices: `bench.local_dev_eval.check_dev_split`).

    .venv/bin/python -m bench.local_dev_readings --out bench/results/local_dev_choice_readings.json
    .venv/bin/python -m bench.local_dev_choice     # a minute or two; writes the JSON below

The kept readings (`bench.local_dev_readings`: the development utterances as today's engine
reads them, best reading and `stt.NBEST` next-best ones; ``--readings`` names the file) are
answered as the session answers an utterance, with the engine's settings: `Dialogue.hear`
picks the reading, then the second look. ``before``: the identifier's look alone
(`reread.plan`, the engine before this lever); ``after``: `choice_look.second_look` (the
identifier's look, else the one at a missing choice value). Each second look decodes the
development audio again with its grammar (`SpeechRecognizer.recognize_grammar`, the session's
language model: `bench.local_dev_vote`'s re-reader). Scored as the other development scripts
score (`bench.local_eval.understood`), per set, in-domain, out-of-domain rejected; the
utterances whose answer differs are listed with the grammar's CPU time. ``--only`` keeps the
phrasings containing a text (a quick look at one question: "weather", ...). Writes
``bench/results/local_dev_choice.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import local_eval as evaluation
from bench.local_dev_readings import Reading, dev_model, load
from bench.local_dev_vote import _Rereader, _tally
from bench.local_timing import percentiles
from sonicwire.server.backends.local.choice_look import ChoiceLook, second_look
from sonicwire.server.backends.local.dialogue import Dialogue
from sonicwire.server.backends.local.reread import plan
from sonicwire.server.backends.local.toolmodel import ToolModel

RESULTS = Path(__file__).parent / "results" / "local_dev_choice.json"
READINGS = Path(__file__).parent / "results" / "local_dev_choice_readings.json"


def _answer(
    model: ToolModel, reading: Reading, index: int, rereader: _Rereader, *, choice: bool
) -> tuple[str, float | None]:
    """The reading a new session answers, and the CPU ms of a choice look (None: none ran)."""
    _, _, _, text, alternatives = reading
    dialogue = Dialogue(model)
    today = datetime.now(UTC).date()
    chosen = dialogue.hear(text, alternatives, today=today)
    planner = second_look if choice else plan
    second = planner(model, chosen, rereader.known, asked=dialogue.asked, today=today)
    if second is None:
        return chosen, None
    count = len(rereader.cpu_ms)
    merged = second.merge(rereader.decode(index, second.grammar)) or chosen
    cpu = rereader.cpu_ms[count] if len(rereader.cpu_ms) > count else None
    return merged, (cpu if isinstance(second, ChoiceLook) else None)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--readings", type=Path, default=READINGS)
    parser.add_argument("--only", default="", help="keep the phrasings containing this text")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    model = dev_model()
    readings = [r for r in load(args.readings) if args.only in r[2].text]
    today = datetime.now(UTC).date()
    load_before = os.getloadavg()
    rereader = _Rereader(model, readings)
    try:
        before = [_answer(model, r, i, rereader, choice=False)[0] for i, r in enumerate(readings)]
        after = [_answer(model, r, i, rereader, choice=True) for i, r in enumerate(readings)]
    finally:
        rereader.close()
    looks = [cpu for _, cpu in after if cpu is not None]
    scored = {
        rule: [
            (s, c, evaluation.understood(c, answered, model, today))
            for (s, _, c, _, _), answered in zip(readings, answers, strict=True)
        ]
        for rule, answers in (("before", before), ("after", [a for a, _ in after]))
    }
    changed = [
        {"set": s, "voice": v, "said": c.text, "heard": text, "before": before[i],
         "after": after[i][0], "right_before": scored["before"][i][2],
         "right_after": scored["after"][i][2]}
        for i, (s, v, c, text, _) in enumerate(readings)
        if before[i] != after[i][0]
    ]  # fmt: skip
    report: dict[str, Any] = {
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m bench.local_dev_choice"
        + (f" --only {args.only!r}" if args.only else ""),
        "readings": json.loads(args.readings.read_text())["generated"],
        "before": _tally(scored["before"]),
        "after": _tally(scored["after"]),
        "choice_looks": len(looks),
        "choice_looks_out_of_domain": sum(
            cpu is not None and c.intent == "unknown"
            for (_, _, c, _, _), (_, cpu) in zip(readings, after, strict=True)
        ),
        "gained": sum(
            a[2] and not b[2] for a, b in zip(scored["after"], scored["before"], strict=True)
        ),
        "lost": sum(
            b[2] and not a[2] for a, b in zip(scored["after"], scored["before"], strict=True)
        ),
        "changed_readings": changed,
        "choice_look_cpu_ms": percentiles(looks) if looks else None,
        "load_average_1m_5m_before": [round(x, 2) for x in load_before[:2]],
        "load_average_1m_5m_after": [round(x, 2) for x in os.getloadavg()[:2]],
        "cores": os.cpu_count(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for rule in ("before", "after"):
        print(f"{rule}: {json.dumps(report[rule])}")
    for change in changed:
        print(json.dumps(change))
    print(f"choice looks {report['choice_looks']} (out of domain "
          f"{report['choice_looks_out_of_domain']}), cpu {report['choice_look_cpu_ms']}; "
          f"gained {report['gained']}, lost {report['lost']}; wrote {args.out}")  # fmt: skip


if __name__ == "__main__":
    main()
