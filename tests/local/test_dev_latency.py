"""bench/local_dev_latency.py: the development turns it plays (never an evaluation voice), its
trace of speech work, and its summary (pure)."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

from bench import local_eval as evaluation
from bench.local_dev_eval import DEV_ONLY_VOICES, MORE_DEV_VOICES
from bench.local_dev_latency import Trace, dev_turns, playback, summary
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
        sent = (
            [(0.4, None), (0.41, 0.6), (0.5, 1.2)]
            if intent == "unknown"
            else [(0.4, None), (0.4, 1.0)]
        )
        return {"flag": flag, "intent": intent, "end_to_end_ms": e2e, "turn_end_ms": 400.0,
                "cpu_ms": 500.0, "early_end": early, "right": right, "spans_ms": spans,
                "playback": playback(sent, 0.0)}  # fmt: skip

    rows = [row(True, "unknown", 410.0, True, True), row(True, "unknown", 505.0, False, False),
            row(False, "get_date_time", 390.0, True, True)]  # fmt: skip
    out = summary(rows)
    assert set(out) == {"True", "False"}
    unknown = out["True"]["unknown"]
    assert unknown["turns"] == 2 and unknown["right"] == 1 and unknown["early_end"] == 1
    assert unknown["whisper_decodes"] == 2 and unknown["whisper_last_end"]["max"] == 180.0
    assert unknown["end_to_end"]["max"] == 505.0
    assert unknown["split_sentences"] == 2 and unknown["mid_sentence_gaps"] == 0
    assert unknown["join_slack"]["p50"] == 510.0  # the rest sent 510 ms before it was needed
    assert out["True"]["by_intent"]["unknown"]["p50"] in (410.0, 505.0)
    assert out["False"]["by_intent"] == {"get_date_time": out["False"]["in_domain"]["end_to_end"]}
    assert "unknown" not in out["False"] and out["False"]["in_domain"]["turns"] == 1


def test_playback_finds_gaps_mid_sentence_and_between_sentences() -> None:
    """A client that starts at the first audio and plays in real time: the rest of a split
    sentence sent after its first clause has played is a gap mid-sentence; a sentence sent
    after the one before it has played, a gap between sentences."""
    sent = [
        (1.0, None), (1.0, 0.5),  # "Sorry," plays 1.0-1.5
        (1.6, 1.0),  # "I didn't catch that." sent 100 ms late: plays 1.6-2.6
        (2.0, None), (2.7, 1.0),  # the next sentence, 100 ms late
    ]  # fmt: skip
    out = playback(sent, end=0.6)
    assert out["stalls_ms"]["mid_sentence"] == [100.0]
    assert out["stalls_ms"]["between_sentences"] == [100.0]
    assert out["joins_ms"] == [-100.0]
    assert [p[2] for p in out["pieces"]] == [True, False, True]
    assert out["pieces"][0][:2] == [400.0, 500.0]
    in_time = playback([(1.0, None), (1.0, 0.5), (1.2, 1.0)], end=0.6)
    assert in_time["stalls_ms"]["mid_sentence"] == [0.0] and in_time["joins_ms"] == [300.0]
