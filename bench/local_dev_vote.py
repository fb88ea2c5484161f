"""Which tool a request is for, by all the recogniser's readings together
(`dialogue.TOOL_VOTE`): measured on the development set only (never the evaluation's
phrasings or voices).

    .venv/bin/python -m bench.local_dev_readings   # the readings, once (a few minutes)
    .venv/bin/python -m bench.local_dev_vote       # seconds; writes the JSON below

The readings kept by `bench.local_dev_readings` (the development utterances as the engine's
recogniser reads them: best reading and `stt.NBEST` next-best ones) are answered by
`Dialogue.hear` with the vote off (before) and on (after); no recognition runs here. Scored as
the other development scripts score (`bench.local_eval.understood`): per set, in-domain,
out-of-domain rejected, and the in-training phrasings spoken by the tuning voices; the
utterances gained and lost are listed. Writes ``bench/results/local_dev_vote.json``.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import local_eval as evaluation
from bench.local_dev_readings import RESULTS as READINGS
from bench.local_dev_readings import dev_model, load
from sonicwire.server.backends.local import dialogue as dialogue_module
from sonicwire.server.backends.local.dialogue import Dialogue

RESULTS = Path(__file__).parent / "results" / "local_dev_vote.json"


def _tally(rows: list[tuple[str, Any, bool]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in dict.fromkeys(s for s, _, _ in rows):
        mine = [(c, ok) for s, c, ok in rows if s == name]
        out[name] = {"utterances": len(mine), "right": sum(ok for _, ok in mine)}
    dev = [(c, ok) for s, c, ok in rows if s != "in_training_x_tuning_voices"]
    inside = [ok for c, ok in dev if c.intent != "unknown"]
    outside = [ok for c, ok in dev if c.intent == "unknown"]
    out["development_in_domain"] = {"utterances": len(inside), "right": sum(inside)}
    out["development_out_of_domain_rejected"] = {"utterances": len(outside), "right": sum(outside)}
    return out


def main() -> None:
    model = dev_model()
    readings = load(READINGS)
    today = datetime.now(UTC).date()
    used = dialogue_module.TOOL_VOTE
    answered: dict[bool, list[str]] = {}
    try:
        for vote in (False, True):
            dialogue_module.TOOL_VOTE = vote
            answered[vote] = [
                Dialogue(model).hear(text, alternatives, today=today)
                for _, _, _, text, alternatives in readings
            ]
    finally:
        dialogue_module.TOOL_VOTE = used
    scored = {
        vote: [
            (s, c, evaluation.understood(c, reading, model, today))
            for (s, _, c, _, _), reading in zip(readings, answered[vote], strict=True)
        ]
        for vote in (False, True)
    }
    changed = [
        {"set": s, "voice": v, "said": c.text, "before": answered[False][i],
         "after": answered[True][i], "right_before": scored[False][i][2],
         "right_after": scored[True][i][2]}
        for i, (s, v, c, _, _) in enumerate(readings)
        if answered[False][i] != answered[True][i]
    ]  # fmt: skip
    report = {
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m bench.local_dev_vote",
        "readings": json.loads(READINGS.read_text())["generated"],
        "before": _tally(scored[False]),
        "after": _tally(scored[True]),
        "gained": sum(c["right_after"] and not c["right_before"] for c in changed),
        "lost": sum(c["right_before"] and not c["right_after"] for c in changed),
        "changed_readings": changed,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print("before", json.dumps(report["before"]))
    print("after ", json.dumps(report["after"]))
    for change in changed:
        print(json.dumps(change))
    print(f"gained {report['gained']}, lost {report['lost']}; wrote {RESULTS}")


if __name__ == "__main__":
    main()
