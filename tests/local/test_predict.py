"""Predicting a get_date_time result for the answer prepared before the stop marker (pure)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sonicwire.server.backends.local.dialogue import Dialogue, ToolCall
from sonicwire.server.backends.local.predict import learn, predict
from sonicwire.server.backends.local.toolmodel import ToolModel, describe_spec
from sonicwire.server.tools.builtin import GET_DATE_TIME

NOW = datetime(2026, 5, 5, 15, 47, 12, tzinfo=UTC)
MODEL = ToolModel([describe_spec(GET_DATE_TIME)])


def test_a_named_zone_is_predicted_from_the_clock() -> None:
    call = ToolCall("get_date_time", {"timezone": "Asia/Tokyo"})
    result = predict(call, NOW, {})
    assert result is not None
    assert Dialogue(MODEL).answer(call, result).lines[0].spoken == "It's twelve forty-seven AM."


def test_the_default_zone_is_learned_from_a_result() -> None:
    call = ToolCall("get_date_time")
    zones: dict[str, str] = {}
    assert predict(call, NOW, zones) is None  # the server's default zone is not known yet
    learn(call, json.dumps({"timezone": "America/New_York", "date": "2026-05-05"}), zones)
    assert zones == {"{}": "America/New_York"}
    result = predict(call, NOW, zones)
    assert result is not None
    assert Dialogue(MODEL).answer(call, result).text == "It's 11:47 AM. Today is Tuesday, May 5."


def test_other_tools_and_bad_results_are_not_predicted() -> None:
    order = ToolCall("track_order", {"order_id": "1001"})
    zones: dict[str, str] = {}
    assert predict(order, NOW, zones) is None
    learn(order, '{"timezone": "UTC"}', zones)
    clock = ToolCall("get_date_time", {"timezone": "Nowhere/Atlantis"})
    learn(clock, "not json", zones)
    learn(clock, '{"error": {"type": "invalid_timezone"}}', zones)
    assert zones == {}
    assert predict(clock, NOW, zones) is None
