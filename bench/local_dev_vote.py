"""Which tool a request is for, by all the recogniser's readings together
(`dialogue.TOOL_VOTE`), with the second look at identifiers (`reread.py`) as the session runs
it: measured on the development set only (never the evaluation's phrasings or voices).

    .venv/bin/python -m bench.local_dev_readings   # the readings, once (a few minutes)
    .venv/bin/python -m bench.local_dev_vote       # about a minute; writes the JSON below

The readings kept by `bench.local_dev_readings` (the development utterances as the engine's
recogniser reads them: best reading and `stt.NBEST` next-best ones) are answered the way the
session answers an utterance (`LocalSession._answer` / `_look_again`): `Dialogue.hear` picks
the reading, `reread.plan` decides on a second look at its identifier, the recogniser decodes
the same audio with that grammar (`SpeechRecognizer.recognize_grammar`, the session's language
model) and `Reread.merge` puts the identifier into the reading. The development audio the
readings were made from (`dev_sets`) is synthesised when the first second look needs it, and
only the utterances that get one are decoded again. Each rule (`RULES`) is the engine's own
code with its switches set (`dialogue.TOOL_VOTE`, `dialogue.VOTE_SPARES_IDENTIFIER` and which
readings it spares), restored afterwards; the rules "without the second look" repeat the
earlier measurement (the vote alone).

Scored as the other development scripts score (`bench.local_eval.understood`): per set,
in-domain, out-of-domain rejected (of ``dev`` and ``more``); the in-training phrasings spoken by
the tuning voices and by the development-only voices, and the order numbers after words that
may be heard as a place (``order_numbers``), are counted apart. The utterances whose answered
reading differs between the rules are listed. Writes ``bench/results/local_dev_vote.json``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from bench import local_eval as evaluation
from bench.local_dev_readings import RESULTS as READINGS
from bench.local_dev_readings import Reading, dev_model, dev_sets, load
from bench.local_timing import engine_cpu_s, percentiles
from sonicwire.server.backends.local import dialogue as dialogue_module
from sonicwire.server.backends.local.dialogue import Dialogue
from sonicwire.server.backends.local.phrases import background_sentences
from sonicwire.server.backends.local.reread import looks_again, plan, says_identifier
from sonicwire.server.backends.local.stt import ACCENT_SLOT_KINDS, SpeechRecognizer
from sonicwire.server.backends.local.toolmodel import ToolModel

RESULTS = Path(__file__).parent / "results" / "local_dev_vote.json"

#: rule -> (TOOL_VOTE, VOTE_SPARES_IDENTIFIER, second look). ``USED`` is the engine's setting.
RULES: dict[str, tuple[bool, str, bool]] = {
    "no vote, no second look": (False, "", False),
    "vote, no second look": (True, "", False),
    "no vote, second look": (False, "", True),
    "vote then second look (before)": (True, "", True),
    "vote spares a reading the second look reads again": (True, "misshapen", True),
    "vote spares a reading that says an identifier": (True, "said", True),
}
# Which readings the vote spares (`dialogue.VOTE_SPARES_IDENTIFIER` on): every reading that
# says an identifier (used), or only those the second look reads again (its value missing or
# misshapen: `reread.looks_again`).
_SPARED = {"said": says_identifier, "misshapen": looks_again}
USED = "vote spares a reading that says an identifier"
BEFORE = "vote then second look (before)"
#: The sets of development phrasings counted together (in-domain, out-of-domain rejected).
_DEVELOPMENT = ("dev", "more")

#: A decode of one utterance's audio with a grammar: (reading index, grammar) -> words heard.
Decode = Callable[[int, str], str]


class _Rereader:
    """The second pass of `SpeechRecognizer.recognize_grammar` on the development audio, loaded
    on first use (most rules and utterances need none), each (utterance, grammar) once."""

    def __init__(self, model: ToolModel, readings: list[Reading]) -> None:
        self._model, self._readings = model, readings
        self._recognizer: SpeechRecognizer | None = None
        self._key: str | None = None
        self._audio: dict[tuple[str, str, str], bytes] = {}
        self._heard: dict[tuple[int, str], str] = {}
        self.cpu_ms: list[float] = []

    def known(self, word: str) -> bool:
        return self._load().knows(word, model=self._key)

    def decode(self, index: int, grammar: str) -> str:
        if (index, grammar) not in self._heard:
            recognizer = self._load()
            name, voice, command, _, _ = self._readings[index]
            cpu = engine_cpu_s()
            try:
                heard = recognizer.recognize_grammar(
                    self._audio[name, voice, command.text], grammar, model=self._key
                )
            except ValueError:
                heard = ""  # the session keeps its reading then, as `merge("")` does
            self.cpu_ms.append((engine_cpu_s() - cpu) * 1000)
            self._heard[index, grammar] = heard
        return self._heard[index, grammar]

    def _load(self) -> SpeechRecognizer:
        if self._recognizer is None:
            self._audio = {
                (name, voice, command.text): audio
                for name, samples in dev_sets().items()
                for voice, command, audio in samples
            }
            self._recognizer = SpeechRecognizer.load("domain")
            self._key = self._recognizer.add_language_model(
                self._model.sentences(),
                background_sentences(),
                accent_words=self._model.slot_words(ACCENT_SLOT_KINDS),  # as the engine
            )
        return self._recognizer

    def close(self) -> None:
        if self._recognizer is not None:
            self._recognizer.close()


def answer(
    model: ToolModel,
    reading: Reading,
    index: int,
    rereader: _Rereader | None,
    today: date,
) -> tuple[str, bool]:
    """The reading a new session answers for one utterance, and whether it looked again: the
    session's steps (`Dialogue.hear`, then `reread.plan`, the grammar decode, `Reread.merge`)."""
    _, _, _, text, alternatives = reading
    dialogue = Dialogue(model)
    chosen = dialogue.hear(text, alternatives, today=today)
    if rereader is None:
        return chosen, False
    second = plan(model, chosen, rereader.known, asked=dialogue.asked, today=today)
    if second is None:
        return chosen, False
    return second.merge(rereader.decode(index, second.grammar)) or chosen, True


def _tally(rows: list[tuple[str, Any, bool]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in dict.fromkeys(s for s, _, _ in rows):
        mine = [(c, ok) for s, c, ok in rows if s == name]
        out[name] = {"utterances": len(mine), "right": sum(ok for _, ok in mine)}
    dev = [(c, ok) for s, c, ok in rows if s in _DEVELOPMENT]
    inside = [ok for c, ok in dev if c.intent != "unknown"]
    outside = [ok for c, ok in dev if c.intent == "unknown"]
    out["development_in_domain"] = {"utterances": len(inside), "right": sum(inside)}
    out["development_out_of_domain_rejected"] = {"utterances": len(outside), "right": sum(outside)}
    return out


def main() -> None:
    model = dev_model()
    readings = load(READINGS)
    today = datetime.now(UTC).date()
    load_before = os.getloadavg()
    used = dialogue_module.TOOL_VOTE, dialogue_module.VOTE_SPARES_IDENTIFIER
    # dialogue imports says_identifier without re-exporting it; the rules swap the name its
    # Dialogue looks up at call time, so the private import is what is patched (and restored).
    predicate = dialogue_module.says_identifier  # type: ignore[attr-defined]
    rereader = _Rereader(model, readings)
    answered: dict[str, list[str]] = {}
    looks: dict[str, int] = {}
    try:
        for rule, (vote, spare, second_look) in RULES.items():
            dialogue_module.TOOL_VOTE, dialogue_module.VOTE_SPARES_IDENTIFIER = vote, bool(spare)
            dialogue_module.says_identifier = _SPARED.get(spare, predicate)  # type: ignore[attr-defined]
            done = [
                answer(model, reading, i, rereader if second_look else None, today)
                for i, reading in enumerate(readings)
            ]
            answered[rule] = [reading for reading, _ in done]
            looks[rule] = sum(looked for _, looked in done)
    finally:
        dialogue_module.TOOL_VOTE, dialogue_module.VOTE_SPARES_IDENTIFIER = used
        dialogue_module.says_identifier = predicate  # type: ignore[attr-defined]
        rereader.close()
    scored = {
        rule: [
            (s, c, evaluation.understood(c, reading, model, today))
            for (s, _, c, _, _), reading in zip(readings, answered[rule], strict=True)
        ]
        for rule in RULES
    }
    changed = [
        {"set": s, "voice": v, "said": c.text, "heard": text,
         **{rule: {"answered": answered[rule][i], "right": scored[rule][i][2]} for rule in RULES}}
        for i, (s, v, c, text, _) in enumerate(readings)
        if len({answered[rule][i] for rule in RULES}) > 1
    ]  # fmt: skip
    report = {
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m bench.local_dev_vote",
        "readings": json.loads(READINGS.read_text())["generated"],
        "rule_used": USED,
        "rules": {
            rule: {
                "tool_vote": v,
                "vote_spares_identifier": s,
                "second_look": r,
                "second_looks": looks[rule],
                **_tally(scored[rule]),
            }
            for rule, (v, s, r) in RULES.items()
        },
        "gained": sum(
            scored[USED][i][2] and not scored[BEFORE][i][2] for i in range(len(readings))
        ),
        "lost": sum(scored[BEFORE][i][2] and not scored[USED][i][2] for i in range(len(readings))),
        "changed_readings": changed,
        "second_look_cpu_ms": percentiles(rereader.cpu_ms) if rereader.cpu_ms else None,
        "load_average_1m_5m_before": [round(x, 2) for x in load_before[:2]],
        "load_average_1m_5m_after": [round(x, 2) for x in os.getloadavg()[:2]],
        "cores": os.cpu_count(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    for rule, result in report["rules"].items():
        print(f"{rule}: {json.dumps(result)}")
    for change in changed:
        print(json.dumps(change))
    print(f"{USED!r} against {BEFORE!r}: gained {report['gained']}, lost {report['lost']}; "
          f"wrote {RESULTS}")  # fmt: skip


if __name__ == "__main__":
    main()
