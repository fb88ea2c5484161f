"""bench/local_dev_latency.py: the development turns it plays (never an evaluation voice), its
trace of speech work, and its summary (pure)."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

from bench import local_eval as evaluation
from bench.local_dev_eval import DEV_ONLY_VOICES, MORE_DEV_VOICES
from bench.local_dev_latency import Trace, dev_turns, summary
from bench.local_eval_set import COMMANDS


def test_the_turns_are_the_development_out_of_domain_ones_and_some_in_domain() -> None:
    unknown = dev_turns(0)
    assert len(unknown) == 100
    assert {c.intent for _, c in unknown} == {"unknown"}
    mixed = dev_turns(5)
    assert mixed[:100] == unknown
    assert len(mixed) > 100 and all(c.intent != "unknown" for _, c in mixed[100:])
    development = {*evaluation.DEV_VOICES, *DEV_ONLY_VOICES, *MORE_DEV_VOICES}
    assert {voice for voice, _ in mixed} <= development  # no held-out evaluation voice
    assert not {c.text for _, c in mixed} & {c.text for c in COMMANDS}  # nor its phrasings


def test_the_trace_records_calls_and_submitted_work_until_done() -> None:
    class Work:
        def recognize(self, pcm: bytes) -> str:
            return "read"

        def submit_open(self, pcm: bytes) -> Future[str]:
            self.future: Future[str] = Future()
            return self.future

    trace, work = Trace(), Work()
    trace.wrap(work, "recognize")
    trace.wrap(work, "submit_open")
    trace.wrap(work, "absent")  # a method the object lacks is left alone
    assert work.recognize(b"") == "read"
    future = work.submit_open(b"")
    assert [s[0] for s in trace.spans] == ["recognize"]  # not done yet
    future.set_result("x")
    assert [s[0] for s in trace.spans] == ["recognize", "submit_open"]
    assert all(start <= end for _, start, end in trace.spans)
    trace.reset()
    assert trace.spans == [] and trace.guesses == []


def test_the_summary_splits_by_option_and_kind() -> None:
    def row(flag: bool, intent: str, e2e: float, early: bool, right: bool) -> dict[str, Any]:
        spans = [["recognize", 100.0, 250.0], ["submit_open", 101.0, 180.0]] if flag else []
        return {"flag": flag, "intent": intent, "end_to_end_ms": e2e, "turn_end_ms": 400.0,
                "cpu_ms": 500.0, "early_end": early, "right": right, "spans_ms": spans}  # fmt: skip

    rows = [row(True, "unknown", 410.0, True, True), row(True, "unknown", 505.0, False, False),
            row(False, "get_date_time", 390.0, True, True)]  # fmt: skip
    out = summary(rows)
    assert set(out) == {"True", "False"}
    unknown = out["True"]["unknown"]
    assert unknown["turns"] == 2 and unknown["right"] == 1 and unknown["early_end"] == 1
    assert unknown["whisper_decodes"] == 2 and unknown["whisper_last_end"]["max"] == 180.0
    assert unknown["end_to_end"]["max"] == 505.0
    assert "unknown" not in out["False"] and out["False"]["in_domain"]["turns"] == 1
