"""`endpoint.complete_request`: which readings end the user's turn before the VAD does."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from sonicwire.server.backends.local.dialogue import Dialogue
from sonicwire.server.backends.local.endpoint import (
    ASK_END_SILENCE_MS,
    COMPLETE_END_SILENCE_MS,
    UNKNOWN_END_SCORE,
    UNKNOWN_END_SILENCE_MS,
    complete_request,
    early_end_after,
)
from sonicwire.server.backends.local.toolmodel import MIN_SCORE, ToolModel
from sonicwire.server.testing.local_harness import ToolBox

TODAY = date(2026, 5, 5)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> ToolModel:
    from examples.tools.weather import TOOLS

    db: Path = tmp_path_factory.mktemp("orders") / "orders.db"
    return ToolModel(ToolBox(db, extra=TOOLS).descriptions)


@pytest.mark.parametrize(
    ("reading", "complete"),
    [
        ("what time is it", True),
        ("what time is it in tokyo", True),
        ("where is my order ten oh one", True),  # four digits, as the schema's examples
        ("please find order one oh oh three for me", True),
        ("weather in paris please", True),
        ("hello", True),
        ("what can you do", True),
        ("thank you", True),
        ("where is my order", False),  # the dialogue would ask for the number
        ("where is my order ten oh", False),  # "100": the number may go on
        ("what's the weather in", False),  # a required city is missing
        ("what is the", False),  # like the clock tool, but it dangles (and scores 0.58)
        ("could you tell me", False),  # not confident
        ("play some music", False),  # not understood: never early
        ("set an alarm for seven", False),
    ],
)
def test_complete_requests(model: ToolModel, reading: str, complete: bool) -> None:
    dialogue = Dialogue(model)
    action = dialogue.respond(reading, today=TODAY)
    assert complete_request(model, reading, action, today=TODAY) is complete


def test_an_answer_to_the_assistants_question_is_complete(model: ToolModel) -> None:
    dialogue = Dialogue(model)
    dialogue.respond("where is my order", today=TODAY)
    assert dialogue.asking
    action = dialogue.respond("ten oh three", today=TODAY)
    assert complete_request(model, "ten oh three", action, answering=True, today=TODAY)
    again = Dialogue(model)
    again.respond("where is my order", today=TODAY)
    short = again.respond("ten oh", today=TODAY)
    assert not complete_request(model, "ten oh", short, answering=True, today=TODAY)


@pytest.mark.parametrize(
    ("reading", "after"),
    [
        # complete requests and small talk: after COMPLETE_END_SILENCE_MS
        ("what time is it in tokyo", COMPLETE_END_SILENCE_MS),
        ("hello", COMPLETE_END_SILENCE_MS),
        # small talk that opens with its own phrase whole is confident whatever follows
        ("thank you so much", COMPLETE_END_SILENCE_MS),
        ("thanks a million", COMPLETE_END_SILENCE_MS),
        ("hello there how are you", COMPLETE_END_SILENCE_MS),
        ("many thanks", None),  # not opening with it: similarity 0.55, under EARLY_END_SCORE
        # a confident request missing its required argument: a question, after a longer pause
        ("where is my order", ASK_END_SILENCE_MS),
        ("track my order please", ASK_END_SILENCE_MS),
        ("what's the weather", ASK_END_SILENCE_MS),
        ("what's the weather in", None),  # dangles: the city is being said
        ("where is my order ten", None),  # a number: the identifier is being said
        ("where is my order number", ASK_END_SILENCE_MS),  # "number": the question is for it
        ("could you tell me", None),  # not confident
        # not understood, like no tool, three words or more: after a longer pause as well
        ("play some music", UNKNOWN_END_SILENCE_MS),
        ("open the garage door please", UNKNOWN_END_SILENCE_MS),
        # not understood, but maybe the start of a request: waits for the VAD's marker
        ("can you", None),  # two words: a request's start (or noise)
        ("tell me", None),
        ("play some music and", None),  # dangles
        ("remind me at seven", None),  # a number: it may go on
        # the opening of a request that has not come yet (review of the unknown rule)
        ("i was wondering if", None),
        ("do you know whether", None),
        ("so basically i", None),
        ("i need to know because", None),
        ("", None),
    ],
)
def test_when_a_turn_may_end_early(model: ToolModel, reading: str, after: int | None) -> None:
    dialogue = Dialogue(model)
    action = dialogue.respond(reading, today=TODAY)
    asks = dialogue.asking
    assert early_end_after(model, reading, action, asks=asks, today=TODAY) == after


def test_a_question_asked_again_waits_for_the_marker(model: ToolModel) -> None:
    """An answer to the question that did not give the argument is asked for again: the user
    was answering, so the turn waits for the VAD (the number may still be on its way)."""
    dialogue = Dialogue(model)
    dialogue.respond("where is my order", today=TODAY)
    action = dialogue.respond("where is my order", today=TODAY)
    assert dialogue.asking
    after = early_end_after(
        model, "where is my order", action, answering=True, asks=True, today=TODAY
    )
    assert after is None


def test_a_reading_faintly_like_a_tool_waits_for_the_marker(model: ToolModel) -> None:
    """Not understood (under the dialogue's threshold), but like a tool enough to be the start
    of a request: it waits, whatever its length."""
    reading = "the weather was nice yesterday"  # 0.30: under MIN_SCORE, over the rule's 0.25
    score = model.understand(reading, today=TODAY).score
    assert UNKNOWN_END_SCORE <= score < MIN_SCORE
    dialogue = Dialogue(model)
    action = dialogue.respond(reading, today=TODAY)
    assert action.intent == "unknown"
    assert early_end_after(model, reading, action, today=TODAY) is None


def test_an_answer_not_understood_waits_for_the_marker(model: ToolModel) -> None:
    """The assistant asked for the order number and the reading is no answer: the number may
    still be on its way, so the rule for readings not understood does not apply."""
    dialogue = Dialogue(model)
    dialogue.respond("where is my order", today=TODAY)
    action = dialogue.respond("play some music", today=TODAY)
    assert early_end_after(model, "play some music", action, answering=True, today=TODAY) is None
