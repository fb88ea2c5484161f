"""The dialogue learnt from tool specs: tool choice, slots, questions, answers (pure)."""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from sonicwire.server.backends.base import ToolDescription
from sonicwire.server.backends.local.dialogue import Dialogue, Reply, ToolCall
from sonicwire.server.backends.local.toolmodel import ToolModel, describe_spec
from sonicwire.server.tools.builtin import GET_DATE_TIME, TRACK_ORDER

sys.path.insert(0, str(Path(__file__).parents[2]))
from examples.tools.weather import TOOLS as WEATHER

BUILTINS = [describe_spec(GET_DATE_TIME), describe_spec(TRACK_ORDER)]
ALL = [*BUILTINS, describe_spec(WEATHER[0].spec)]
TODAY = date(2026, 5, 5)  # a Tuesday

BOOK = ToolDescription(
    "book_table",
    "Book a table at the restaurant.",
    {
        "type": "object",
        "properties": {
            "party_size": {"type": "integer", "minimum": 1, "maximum": 12},
            "day": {"type": "string", "format": "date"},
            "time": {"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$"},
            "name": {"type": "string"},
        },
        "required": ["party_size", "day"],
    },
    examples=(
        "book a table for {party_size} on {day} at {time}",
        "book a table for {party_size} {day}",
        "reserve a table for {party_size} people",
        "a table for {party_size} under the name {name}",
    ),
)


def dialogue(tools: list[ToolDescription] = ALL) -> Dialogue:
    return Dialogue(ToolModel(tools))


def call(text: str, tools: list[ToolDescription] = ALL) -> tuple[str, dict[str, Any]] | Reply:
    action = dialogue(tools).respond(text, today=TODAY)
    return (action.name, dict(action.arguments)) if isinstance(action, ToolCall) else action


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("what time is it", ("get_date_time", {})),
        ("what time is it in tokyo", ("get_date_time", {"timezone": "Asia/Tokyo"})),
        ("what's the time in new york please", ("get_date_time", {"timezone": "America/New_York"})),
        ("which day of the week is it", ("get_date_time", {})),
        ("where is my order one zero zero one", ("track_order", {"order_id": "1001"})),
        ("track order ten oh two", ("track_order", {"order_id": "1002"})),
        ("oh, where's order one thousand and three", ("track_order", {"order_id": "1003"})),
        ("Where is order #1005?", ("track_order", {"order_id": "1005"})),
        ("track order A-17B", ("track_order", {"order_id": "A-17B"})),
        ("what's the weather in lyon", ("get_weather", {"city": "Lyon"})),
        ("will it rain in paris tomorrow", ("get_weather", {"city": "Paris", "day": "tomorrow"})),
    ],
)
def test_the_tool_and_its_arguments_come_from_the_specs(
    text: str, expected: tuple[str, dict[str, Any]]
) -> None:
    assert call(text) == expected


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("hello", "greeting"),
        ("good morning", "greeting"),
        ("what can you do", "help"),
        ("thanks a lot", "thanks"),
        ("goodbye", "goodbye"),
        ("play some music", "unknown"),
        ("turn on the kitchen lights", "unknown"),
        ("set an alarm for seven", "unknown"),
        ("", "unknown"),
    ],
)
def test_small_talk_and_rejection(text: str, intent: str) -> None:
    reply = call(text)
    assert isinstance(reply, Reply) and reply.intent == intent


def test_a_tool_the_session_lacks_is_not_understood() -> None:
    reply = call("what's the weather in lyon", BUILTINS)
    assert isinstance(reply, Reply) and reply.intent == "unknown"
    reply = call("what time is it", [describe_spec(TRACK_ORDER)])
    assert isinstance(reply, Reply) and reply.text.startswith("Sorry, I didn't catch that.")


def test_a_missing_required_argument_is_asked_for_and_filled_next_turn() -> None:
    talk = dialogue()
    reply = talk.respond("where is my order", today=TODAY)
    assert isinstance(reply, Reply) and reply.text == "Sure. What's the order number?"
    action = talk.respond("ten oh one", today=TODAY)
    assert isinstance(action, ToolCall)
    assert (action.name, action.arguments) == ("track_order", {"order_id": "1001"})
    # Another request is answered as itself: the question does not capture it.
    assert isinstance(talk.respond("where is my order", today=TODAY), Reply)
    reply = talk.respond("hello", today=TODAY)
    assert isinstance(reply, Reply) and reply.intent == "greeting"


def test_slot_classes_from_the_schema() -> None:
    assert call("book a table for four on friday at seven thirty p m", [BOOK]) == (
        "book_table",
        {"party_size": 4, "day": "2026-05-08", "time": "19:30"},
    )
    assert call("book a table for two tomorrow", [BOOK]) == (
        "book_table",
        {"party_size": 2, "day": "2026-05-06"},
    )
    assert call("a table for three under the name smith today", [BOOK]) == (
        "book_table",
        {"party_size": 3, "name": "smith today", "day": "2026-05-05"},
    )


def test_an_argument_the_schema_rejects_is_asked_for_again() -> None:
    talk = dialogue([BOOK])
    reply = talk.respond("reserve a table for forty people", today=TODAY)
    assert isinstance(reply, Reply)
    assert reply.text == "Sorry, I didn't get the party size. What's the party size?"
    reply = talk.respond("six", today=TODAY)
    assert isinstance(reply, Reply) and reply.text == "Sure. What's the day?"
    action = talk.respond("on monday", today=TODAY)
    assert isinstance(action, ToolCall)
    assert action.arguments == {"party_size": 6, "day": "2026-05-11"}


def test_answers_follow_the_template_and_skip_sentences_without_data() -> None:
    talk = dialogue()
    clock = ToolCall("get_date_time", {"timezone": "Asia/Tokyo"})
    result = {"timezone": "Asia/Tokyo", "date": "2026-05-05", "time": "15:47"}
    reply = talk.answer(clock, json.dumps(result))
    assert reply.text == "It's 3:47 PM. Today is Tuesday, May 5."
    assert reply.lines[0].spoken == "It's three forty-seven PM."
    order = ToolCall("track_order", {"order_id": "1001"})
    shipped = {"found": True, "order_id": "1001", "status": "out_for_delivery",
               "carrier": "UPS", "eta": "2026-01-17"}  # fmt: skip
    reply = talk.answer(order, json.dumps(shipped))
    assert [line.spoken for line in reply.lines] == [
        "Order one zero zero one is out for delivery.",
        "The carrier is UPS.",
        "It should arrive on Saturday, January seventeenth.",
    ]
    delivered = {"found": True, "order_id": "1003", "status": "delivered",
                 "delivered_on": "2026-01-02"}  # fmt: skip
    assert talk.answer(order, json.dumps(delivered)).text == (
        "Order 1003 is delivered. It was delivered on Friday, January 2."
    )


def test_without_a_usable_template_the_message_or_a_generic_sentence_is_spoken() -> None:
    talk = dialogue()
    order = ToolCall("track_order", {"order_id": "9999"})
    missing = {
        "found": False,
        "order_id": "9999",
        "message": "There is no order with the number 9999.",
    }
    reply = talk.answer(order, json.dumps(missing))
    assert reply.text == "There is no order with the number 9999."
    assert reply.lines[0].spoken == "There is no order with the number nine nine nine nine."
    plain = Dialogue(ToolModel([ToolDescription("ping", "Ping.", {"type": "object"})]))
    reply = plain.answer(ToolCall("ping"), json.dumps({"rtt_ms": 12, "hops": [1, 2]}))
    assert reply.text == "Done: ping."  # never raw JSON
    assert "{" not in reply.lines[0].spoken


def test_errors_are_explained_briefly() -> None:
    talk = dialogue()
    weather = ToolCall("get_weather", {"city": "Atlantis"})
    own = {"error": {"type": "unknown_city", "message": "No forecast exists for Atlantis."}}
    assert talk.answer(weather, json.dumps(own)).text == "Sorry. No forecast exists for Atlantis."
    timeout = {"error": {"type": "timeout", "message": "no result within 5 s"}}
    assert talk.answer(weather, json.dumps(timeout)).text == "Sorry, get weather took too long."
    assert talk.answer(weather, "not json").text.startswith("Sorry, get weather")


def test_the_language_model_text_has_every_example_with_slot_values() -> None:
    sentences = set(ToolModel(ALL).sentences())
    assert "what's the weather in lyon" in sentences
    assert "what time is it in new york" in sentences
    assert "where is my order ten oh one" in sentences
    assert all("{" not in s for s in sentences)
    assert "hello" in sentences  # small talk


def test_the_answers_start_is_known_from_the_arguments() -> None:
    talk = dialogue()
    prefix = talk.answer_prefix(ToolCall("track_order", {"order_id": "1001"}))
    assert prefix is not None and (prefix.text, prefix.spoken) == (
        "Order 1001",
        "Order one zero zero one",
    )
    prefix = talk.answer_prefix(ToolCall("get_weather", {"city": "New York", "day": "tomorrow"}))
    assert prefix is not None and prefix.text == "In New York tomorrow"
    # The clock's answer starts with a field of the result: nothing is known before it.
    assert talk.answer_prefix(ToolCall("get_date_time", {})) is None


def test_an_example_without_slots_weighs_like_one_with_many_values() -> None:
    sentences = ToolModel(BUILTINS).sentences()
    assert sentences.count("hello") >= 8
    assert sentences.count("what time is it in tokyo") == 1  # one of 19 zones


# --- which reading of an utterance is answered (Dialogue.hear) -----------------------------------


def test_hear_prefers_the_reading_the_tools_explain_best() -> None:
    talk = dialogue()
    best, better = "the weather in the lot please", "the weather in lyon please"
    assert talk.hear(best, [better], today=TODAY) == better
    assert talk.hear(better, [best], today=TODAY) == better  # the best reading stays if as good
    assert talk.hear("what time is it", [], today=TODAY) == "what time is it"


def test_hear_costs_rank() -> None:
    """Two readings the tools explain equally: the recogniser's order decides."""
    talk = dialogue()
    assert talk.hear("weather in paris", ["weather in rome"], today=TODAY) == "weather in paris"
    assert talk.hear("weather in rome", ["weather in paris"], today=TODAY) == "weather in rome"


def test_hear_prefers_an_identifier_shaped_like_the_schemas_examples() -> None:
    """Order numbers look like "1001" (the schema's examples): a reading with a digit dropped
    ("103") or one heard twice loses to a next-best reading of the right length."""
    talk = dialogue()
    short, right = "please find order one oh three", "please find order one oh oh three"
    assert talk.hear(short, [right], today=TODAY) == right
    assert talk.hear("where is my order ten oh five three eight", ["where is my order ten oh five"],
                     today=TODAY) == "where is my order ten oh five"  # fmt: skip
    # without a reading of the right length, the best reading stays
    assert talk.hear(short, ["please find order one oh four"], today=TODAY) == short
    model = ToolModel(ALL)
    assert model.misshapen(model.understand("track order one oh three"))
    assert not model.misshapen(model.understand("track order a two thousand one"))


def test_hear_needs_a_clear_request_to_revive_a_rejected_utterance() -> None:
    talk = dialogue()
    faint = "weather lot music"  # like the weather tool, but barely
    model = ToolModel(ALL)
    assert model.understand("play some music").name is None
    assert model.understand(faint).name == "get_weather"
    assert talk.hear("play some music", [faint], today=TODAY) == "play some music"
    clear = "the weather in lyon please"
    assert talk.hear("play some music", ["play some", clear], today=TODAY) == clear


def test_hear_with_an_open_question_takes_the_first_reading_that_answers_it() -> None:
    talk = dialogue()
    assert talk.respond("where is my order", today=TODAY).text.startswith("Sure.")  # type: ignore[union-attr]
    heard = talk.hear("hello there", ["ten oh two", "ten oh three"], today=TODAY)
    assert heard == "ten oh two"
    assert call_of(talk.respond(heard, today=TODAY)) == ("track_order", {"order_id": "1002"})


def call_of(action: Reply | ToolCall) -> tuple[str, dict[str, Any]] | Reply:
    return (action.name, dict(action.arguments)) if isinstance(action, ToolCall) else action


def test_hear_does_not_revive_noise_read_as_one_tool_word() -> None:
    """A hum was read "can" (no request), next-best "when" (a word of one order example)."""
    talk = dialogue()
    assert ToolModel(ALL).understand("when").name == "track_order"
    assert talk.hear("can", ["when"], today=TODAY) == "can"


# the recogniser's readings of "how cold is it in toronto" in a development-only accent
_TORONTO = (
    "local easy toronto",
    ["local easier toronto", "local easy t toronto", "local easy toronto oh",
     "local easy the toronto", "local easier toronto oh"],
)  # fmt: skip


def test_hear_asks_all_the_readings_which_tool_is_meant(monkeypatch: pytest.MonkeyPatch) -> None:
    """The best reading is faintly the clock's ("local easy toronto": Toronto is a time
    zone), but the readings together are more like the weather's: the best reading understood
    as the weather is answered (`dialogue.TOOL_VOTE`)."""
    from sonicwire.server.backends.local import dialogue as dialogue_module

    model = ToolModel(ALL)
    text, alternatives = _TORONTO
    assert model.understand(text).name == "get_date_time"
    totals = {name: sum(model.similarities(r)[name] for r in [text, *alternatives])
              for name in ("get_date_time", "get_weather")}  # fmt: skip
    assert totals["get_weather"] > totals["get_date_time"]
    heard = dialogue().hear(text, alternatives, today=TODAY)
    assert heard == "local easy the toronto"
    assert call_of(dialogue().respond(heard, today=TODAY)) == ("get_weather", {"city": "Toronto"})
    monkeypatch.setattr(dialogue_module, "TOOL_VOTE", False)
    assert dialogue().hear(text, alternatives, today=TODAY) == text  # the vote off


def test_the_vote_leaves_small_talk_and_the_tool_most_readings_are_alone() -> None:
    """Small talk is never overruled by tool words in lower readings; a best reading whose
    tool the readings together are most like stays; readings mostly of another tool win."""
    talk = dialogue()
    assert talk.hear("hello there", ["weather in paris", "weather in rome"], today=TODAY) == (
        "hello there"
    )
    assert talk.hear("weather in paris", ["weather in rome", "what time is it in paris"],
                     today=TODAY) == "weather in paris"  # fmt: skip
    assert talk.hear("weather in paris", ["what time is it in paris", "time in paris"],
                     today=TODAY) == "what time is it in paris"  # fmt: skip


# Readings a request for an order may get when its first word is heard as a place ("track"
# as "toronto", a time zone and a city): the best reading asks for the order, the next-best
# ones are place words and digits, together more like the clock or the weather.
_PLACES = ["toronto two two", "toronto to two", "toronto two two two", "toronto the two two"]


@pytest.mark.parametrize(
    ("best", "second_look"),
    [
        ("track order two two", True),  # misheard digits: the second look's to mend
        ("track order ten oh two", False),  # a well-shaped order number
    ],
)
def test_the_vote_leaves_a_reading_that_says_an_identifier(
    best: str, second_look: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reading that asks for a tool with an identifier and says one in number words keeps
    its tool (`dialogue.VOTE_SPARES_IDENTIFIER`): the number is the request's, and a misheard
    one is the second look's (`reread.py`) to read again, which it does only for a reading of
    that tool. Before, the vote took the readings' place words for the clock's or the
    weather's and answered "toronto to two"."""
    from sonicwire.server.backends.local import dialogue as dialogue_module
    from sonicwire.server.backends.local.reread import looks_again, says_identifier

    model = ToolModel(ALL)
    assert model.understand(best).name == "track_order"
    assert says_identifier(model, best) and looks_again(model, best) is second_look
    totals: dict[str, float] = {}
    for reading in [best, *_PLACES]:
        for name, score in model.similarities(reading).items():
            totals[name] = totals.get(name, 0.0) + score
    assert max(totals["get_date_time"], totals["get_weather"]) > totals["track_order"]
    assert dialogue().hear(best, _PLACES, today=TODAY) == best
    monkeypatch.setattr(dialogue_module, "VOTE_SPARES_IDENTIFIER", False)  # the old rule
    assert dialogue().hear(best, _PLACES, today=TODAY) == "toronto to two"


def test_the_vote_still_moves_a_reading_without_an_identifier() -> None:
    """Only a reading that says an identifier is spared: the clock's "local easy toronto" among
    readings of the weather is still answered as the weather; a number said in a reading whose
    tool has no identifier ("toronto two two", the clock's) is no identifier, nor is a request
    for an order without a number."""
    from sonicwire.server.backends.local.reread import says_identifier

    model = ToolModel(ALL)
    assert not says_identifier(model, "toronto two two")
    assert not says_identifier(model, "where is my order")  # no number said
    heard = dialogue().hear(*_TORONTO, today=TODAY)
    assert heard == "local easy the toronto"
