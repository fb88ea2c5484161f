"""The development-set scripts of the last two levers count what the engine does: the rule for
readings not understood toggled and restored (bench/local_dev_unknown.py), the vote compared
off and on from kept readings (bench/local_dev_vote.py). No recognition runs here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import local_dev_unknown, local_dev_vote
from bench.local_dev_readings import dev_model
from sonicwire.server.backends.local import dialogue, endpoint, reread
from sonicwire.server.backends.local.toolmodel import ToolModel


@pytest.fixture(scope="module")
def model() -> ToolModel:
    return dev_model()


def test_the_rule_is_counted_off_and_at_every_setting_and_restored(model: ToolModel) -> None:
    used = endpoint.UNKNOWN_END_SCORE, endpoint.UNKNOWN_END_WORDS
    decided = local_dev_unknown._decide(model, "play some music")
    assert used == (endpoint.UNKNOWN_END_SCORE, endpoint.UNKNOWN_END_WORDS)
    assert decided["intent"] == "unknown"
    assert decided["after"]["off"] is None  # before the rule: the marker
    assert decided["after"]["score<0.25 words>=3"] == endpoint.UNKNOWN_END_SILENCE_MS
    assert decided["after"]["score<0.25 words>=4"] is None  # three words only
    short = local_dev_unknown._decide(model, "can you")
    assert all(short["after"][s] is None for s in local_dev_unknown.SETTINGS if "words>=3" in s)
    complete = local_dev_unknown._decide(model, "what time is it")
    assert complete["after"]["off"] == endpoint.COMPLETE_END_SILENCE_MS


def test_rescoring_counts_the_kept_readings(tmp_path: Path) -> None:
    kept = tmp_path / "unknown.json"
    kept.write_text(json.dumps({"readings": {
        "prefixes": [["v", "could you", "could you"], ["v", "play some", "play some music"]],
        "whole": [["v", "open the garage door", "unknown", "open the garage door"],
                  ["v", "what time is it", "get_date_time", "what time is it"]],
    }}))  # fmt: skip
    local_dev_unknown.rescore(kept)
    report = json.loads(kept.read_text())
    used = report["setting_used"]
    assert report["prefixes"]["ended_early_before"] == 0
    assert report["prefixes"][used] == {"ended_early": 1, "newly_ended": 1}
    assert report["whole"]["ended_early_before"] == 1
    assert report["whole_out_of_domain"][used] == {"ended_early": 1, "newly_ended": 1}


def test_the_vote_is_compared_off_and_on_and_restored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    readings = tmp_path / "readings.json"
    command = {"text": "how cold is it in toronto", "intent": "get_weather",
               "arguments": {"city": "Toronto"}, "split": "dev"}  # fmt: skip
    readings.write_text(json.dumps({"generated": "then", "readings": [
        {"set": "dev", "voice": "v", "command": command, "text": "local easy toronto",
         "alternatives": ["local easier toronto", "local easy the toronto"]},
    ]}))  # fmt: skip
    monkeypatch.setattr(local_dev_vote, "READINGS", readings)
    monkeypatch.setattr(local_dev_vote, "RESULTS", tmp_path / "vote.json")
    local_dev_vote.main()
    assert dialogue.TOOL_VOTE is True and dialogue.VOTE_SPARES_IDENTIFIER is True
    assert dialogue.says_identifier is reread.says_identifier
    report = json.loads((tmp_path / "vote.json").read_text())
    rules = report["rules"]
    assert rules["no vote, no second look"]["dev"]["right"] == 0
    assert rules["vote, no second look"]["dev"]["right"] == 1
    assert rules[local_dev_vote.USED]["dev"]["right"] == 1
    assert rules[local_dev_vote.USED]["second_looks"] == 0  # no identifier: no recognition
    assert (report["gained"], report["lost"]) == (0, 0)  # against the vote before the rule


def test_the_vote_and_the_second_look_are_answered_as_the_session_does(model: ToolModel) -> None:
    """A reading whose identifier is misshapen gets the second look (the grammar decoded on
    the utterance's audio; a fake decoder here) and the merged reading is answered; the rule
    that spares it from the vote keeps it the order's."""
    from datetime import date

    from bench.local_eval_set import Command

    class Decoder:
        grammars: list[str] = []

        def known(self, word: str) -> bool:
            return True

        def decode(self, index: int, grammar: str) -> str:
            self.grammars.append(grammar)
            return "track order ten oh two"

    command = Command("track order ten oh two", "track_order", {"order_id": "1002"}, "dev")
    places = ("toronto two two", "toronto to two", "toronto two two two", "toronto the two two")
    reading = ("dev", "v", command, "track order two two", places)
    decoder = Decoder()
    answered, looked = local_dev_vote.answer(model, reading, 0, decoder, date(2026, 5, 5))  # type: ignore[arg-type]
    assert (answered, looked) == ("track order ten oh two", True)
    assert "<id>" in decoder.grammars[0]
    no_look = local_dev_vote.answer(model, reading, 0, None, date(2026, 5, 5))
    assert no_look == ("track order two two", False)
