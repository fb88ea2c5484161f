"""Predicting a get_date_time result for the answer prepared before the stop marker (pure)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sonicwire.server.backends.local.dialogue import Dialogue, Intent, ToolCall
from sonicwire.server.backends.local.predict import learn, predict

NOW = datetime(2026, 5, 5, 15, 47, 12, tzinfo=UTC)


def test_a_named_zone_is_predicted_from_the_clock() -> None:
    call = ToolCall(Intent.TIME, "get_date_time", {"timezone": "Asia/Tokyo"}, "tokyo")
    result = predict(call, NOW, {})
    assert result is not None
    assert Dialogue().answer(call, result).lines[0].spoken == "It's twelve forty-seven AM in Tokyo."


def test_the_default_zone_is_learned_from_a_result() -> None:
    call = ToolCall(Intent.DATE, "get_date_time")
    zones: dict[str, str] = {}
    assert predict(call, NOW, zones) is None  # the server's default zone is not known yet
    learn(call, json.dumps({"timezone": "America/New_York", "date": "2026-05-05"}), zones)
    assert zones == {"{}": "America/New_York"}
    result = predict(call, NOW, zones)
    assert result is not None
    assert Dialogue().answer(call, result).text == "Today is Tuesday, May 5, 2026."


def test_other_tools_and_bad_results_are_not_predicted() -> None:
    order = ToolCall(Intent.ORDER, "track_order", {"order_id": "1001"})
    zones: dict[str, str] = {}
    assert predict(order, NOW, zones) is None
    learn(order, '{"timezone": "UTC"}', zones)
    clock = ToolCall(Intent.TIME, "get_date_time", {"timezone": "Nowhere/Atlantis"})
    learn(clock, "not json", zones)
    learn(clock, '{"error": {"type": "invalid_timezone"}}', zones)
    assert zones == {}
    assert predict(clock, NOW, zones) is None
