"""`endpoint.complete_request`: which readings end the user's turn before the VAD does."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from sonicwire.server.backends.local.dialogue import Dialogue
from sonicwire.server.backends.local.endpoint import complete_request
from sonicwire.server.backends.local.toolmodel import ToolModel
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
