"""The dialogue: intents, slots, tool calls and replies (pure, no speech)."""

from __future__ import annotations

import json

import pytest

from sonicwire.server.backends.local.dialogue import (
    GET_DATE_TIME,
    TRACK_ORDER,
    Dialogue,
    Intent,
    Reply,
    ToolCall,
    understand,
)


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("what time is it", Intent.TIME),
        ("do you have the time", Intent.TIME),
        ("what's the date today", Intent.DATE),
        ("what day is it", Intent.DATE),
        ("where is my order one zero zero one", Intent.ORDER),
        ("track my package", Intent.ORDER),
        ("hello", Intent.GREETING),
        ("good morning", Intent.GREETING),
        ("what can you do", Intent.HELP),
        ("help", Intent.HELP),
        ("thanks a lot", Intent.THANKS),
        ("goodbye", Intent.GOODBYE),
        ("play some music", Intent.UNKNOWN),
        ("turn on the kitchen lights", Intent.UNKNOWN),
    ],
)
def test_intents(text: str, intent: Intent) -> None:
    assert understand(text).intent is intent


def test_place_becomes_an_iana_timezone() -> None:
    meaning = understand("what's the time in New York")
    assert (meaning.intent, meaning.place, meaning.timezone) == (
        Intent.TIME,
        "new york",
        "America/New_York",
    )


@pytest.mark.parametrize(
    ("text", "order_id"),
    [
        ("where is my order one zero zero one", "1001"),
        ("track order ten oh two", "1002"),
        ("what's the status of order one thousand and three", "1003"),
        ("oh, where's order ten oh four", "1004"),
        ("Where is order #1005?", "1005"),
        ("track order A-17B", "A-17B"),
        ("where is my order", None),
        ("track my order one", None),  # too short to be an order number
    ],
)
def test_order_ids(text: str, order_id: str | None) -> None:
    assert understand(text).order_id == order_id


def test_time_request_asks_the_tool_and_answers_from_its_result() -> None:
    dialogue = Dialogue()
    call = dialogue.respond("what time is it in Tokyo")
    assert isinstance(call, ToolCall)
    assert (call.name, json.loads(call.arguments_json)) == (
        GET_DATE_TIME,
        {"timezone": "Asia/Tokyo"},
    )
    result = {"timezone": "Asia/Tokyo", "datetime": "2026-05-05T15:47:12+09:00", "time": "15:47"}
    reply = dialogue.answer(call, json.dumps(result))
    assert reply.text == "It's 3:47 PM in Tokyo."
    assert reply.lines[0].spoken == "It's three forty-seven PM in Tokyo."


@pytest.mark.parametrize(
    ("result", "spoken"),
    [
        ({"time": "09:05", "date": "2026-05-05"}, "It's nine oh five AM."),
        ({"time": "12:00"}, "It's twelve o'clock PM."),
        ({"time": "12:30 am"}, "It's twelve thirty AM."),
        ({"now": "2026-05-05T00:15:00Z"}, "It's twelve fifteen AM."),
        ({"error": {"type": "timeout"}}, "Sorry, I couldn't get the time."),
        ({"unexpected": 1}, "Sorry, I couldn't get the time."),
    ],
)
def test_time_reply_shapes(result: dict[str, object], spoken: str) -> None:
    dialogue = Dialogue()
    call = dialogue.respond("what's the time")
    assert isinstance(call, ToolCall)
    assert dialogue.answer(call, json.dumps(result)).lines[0].spoken == spoken


def test_date_reply() -> None:
    dialogue = Dialogue()
    call = dialogue.respond("what is today's date")
    assert isinstance(call, ToolCall) and call.intent is Intent.DATE
    reply = dialogue.answer(call, json.dumps({"date": "2026-05-05", "weekday": "Tuesday"}))
    assert reply.text == "Today is Tuesday, May 5, 2026."
    assert reply.lines[0].spoken == "Today is Tuesday, May fifth, twenty twenty-six."


def test_order_replies() -> None:
    dialogue = Dialogue()
    call = dialogue.respond("where is my order ten oh one")
    assert isinstance(call, ToolCall)
    assert (call.name, call.arguments) == (TRACK_ORDER, {"order_id": "1001"})
    shipped = {"found": True, "order_id": "1001", "status": "shipped", "carrier": "UPS",
               "eta": "2026-05-07"}  # fmt: skip
    reply = dialogue.answer(call, json.dumps(shipped))
    assert (
        reply.text == "Order 1001 has shipped. It's with UPS and should arrive on Thursday, May 7."
    )
    assert reply.lines[0].spoken == "Order one zero zero one has shipped."
    processing = {"found": True, "order_id": "1002", "status": "processing", "eta": "2026-05-10"}
    assert dialogue.answer(call, json.dumps(processing)).text == (
        "Order 1002 is being prepared. It should arrive on Sunday, May 10."
    )
    out = {"found": True, "order_id": "1005", "status": "out_for_delivery", "carrier": "USPS"}
    assert dialogue.answer(call, json.dumps(out)).text == (
        "Order 1005 is out for delivery. It's with USPS."
    )

    delivered = {"found": True, "order_id": "1003", "status": "delivered",
                 "delivered_on": "2026-05-04"}  # fmt: skip
    assert dialogue.answer(call, json.dumps(delivered)).text == (
        "Order 1003 was delivered. It arrived on Monday, May 4."
    )
    missing = {"found": False, "order_id": "1009", "message": "no such order"}
    assert dialogue.answer(call, json.dumps(missing)).text == (
        "I couldn't find an order with the number 1009."
    )
    failed = {"error": {"type": "timeout", "message": "slow"}}
    assert dialogue.answer(call, json.dumps(failed)).text == "Sorry, I couldn't look up order 1001."
    assert dialogue.answer(call, "not json").text == "Sorry, I couldn't look up order 1001."


def test_order_number_can_come_in_the_next_turn() -> None:
    dialogue = Dialogue()
    ask = dialogue.respond("where is my order")
    assert isinstance(ask, Reply) and ask.text == "Sure. What's your order number?"
    call = dialogue.respond("ten oh three")
    assert isinstance(call, ToolCall) and call.arguments == {"order_id": "1003"}
    # Only right after the question is a bare number an order id.
    assert isinstance(dialogue.respond("ten oh three"), Reply)


def test_unknown_and_empty_are_answered_honestly() -> None:
    dialogue = Dialogue()
    for text in ("", "play some music"):
        reply = dialogue.respond(text)
        assert isinstance(reply, Reply)
        assert reply.intent is Intent.UNKNOWN
        assert reply.lines[0].text == "Sorry, I didn't catch that."


def test_only_offered_tools_are_requested() -> None:
    dialogue = Dialogue(tools=[TRACK_ORDER])
    reply = dialogue.respond("what time is it")
    assert isinstance(reply, Reply) and "can't" in reply.text
    assert isinstance(Dialogue(tools=[]).respond("track order ten oh one"), Reply)


def test_help_and_greeting() -> None:
    dialogue = Dialogue()
    greeting = dialogue.respond("hi there")
    assert isinstance(greeting, Reply) and greeting.text == "Hello! How can I help?"
    help_reply = dialogue.respond("what can you do")
    assert isinstance(help_reply, Reply)
    assert "one zero zero one" in help_reply.lines[-1].spoken
