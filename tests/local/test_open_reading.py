"""The open reading (open_reading.py): Whisper tiny.en read when pocketsphinx's reading means
nothing. When the session asks for it (a recogniser double), the real decode of a development
utterance pocketsphinx misreads, the model's digest check, and the option turning it off."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from sonicwire.server.backends.base import BackendOptions
from sonicwire.server.backends.local import open_reading
from sonicwire.server.backends.local.dialogue import Dialogue
from sonicwire.server.backends.local.engine import LocalBackend
from sonicwire.server.backends.local.open_reading import (
    ModelRefused,
    OpenReader,
    adopted,
    check_model,
    model_path,
)
from sonicwire.server.backends.local.stt import RecognizerUnavailable, SpeechRecognizer
from sonicwire.server.backends.local.toolmodel import ToolModel
from sonicwire.server.testing.local_harness import MicStream, ToolBox, TurnResult, run_turn

from .conftest import FIXED_NOW, ScriptedRecognizer, double_session

Say = Callable[..., bytes]


async def _turns(
    recognizer: ScriptedRecognizer,
    toolbox: ToolBox,
    executor: ThreadPoolExecutor,
    *,
    turns: int = 1,
    open_reading: bool = True,
) -> list[TurnResult]:
    session = double_session(recognizer, toolbox, executor, open_reading=open_reading)
    mic, speech = MicStream(), b"\x10\x00" * 16_000
    results = [
        await run_turn(session, mic.utterance(speech).commands, toolbox=toolbox)
        for _ in range(turns)
    ]
    await session.aclose()
    return results


async def test_a_reading_that_means_nothing_is_read_again_and_whispers_adopted(
    toolbox: ToolBox, executor: ThreadPoolExecutor
) -> None:
    recognizer = ScriptedRecognizer(
        ["the older always"], ["Do you know the time in Paris?"], free=False
    )
    (turn,) = await _turns(recognizer, toolbox, executor)
    assert recognizer.open_calls >= 1
    assert turn.user_text == "do you know the time in paris"
    calls = [(c.name, c.arguments_json) for c in turn.tool_calls]
    assert calls == [("get_date_time", '{"timezone":"Europe/Paris"}')]


@pytest.mark.parametrize("heard", ["what time is it", "hello"])  # a tool, small talk
async def test_an_understood_reading_is_not_read_again(
    heard: str, toolbox: ToolBox, executor: ThreadPoolExecutor
) -> None:
    recognizer = ScriptedRecognizer([heard], ["Do you know the time in Paris?"], free=False)
    (turn,) = await _turns(recognizer, toolbox, executor)
    assert recognizer.open_calls == 0
    assert turn.user_text == heard


async def test_whisper_is_not_adopted_when_it_means_nothing_either(
    toolbox: ToolBox, executor: ThreadPoolExecutor
) -> None:
    recognizer = ScriptedRecognizer(["the older always"], ["Open the garage door."], free=False)
    (turn,) = await _turns(recognizer, toolbox, executor)
    assert recognizer.open_calls >= 1
    assert turn.user_text == "the older always"
    assert not turn.tool_calls


async def test_not_while_the_session_waits_for_the_answer_to_its_question(
    toolbox: ToolBox, executor: ThreadPoolExecutor
) -> None:
    recognizer = ScriptedRecognizer(
        ["where is my order", "the older always"], ["1,001."], free=False
    )
    first, second = await _turns(recognizer, toolbox, executor, turns=2)
    assert first.assistant_text == ["Sure. What's the order number?"]
    assert recognizer.open_calls == 0
    assert second.user_text == "the older always"


async def test_off_it_is_todays_engine(toolbox: ToolBox, executor: ThreadPoolExecutor) -> None:
    recognizer = ScriptedRecognizer(
        ["the older always"], ["Do you know the time in Paris?"], free=False
    )
    (turn,) = await _turns(recognizer, toolbox, executor, open_reading=False)
    assert recognizer.open_calls == 0
    assert turn.user_text == "the older always"
    assert not turn.tool_calls


# --- the real parts ----------------------------------------------------------------------------

#: A development utterance (bench/results/local_dev_whisper.json, set "dev") pocketsphinx reads
#: as "the older when will risk" and Whisper as "Do you know the time in Paris?".
_PARIS = ("do you know the time in paris", "espeak:en-gb-scotland")


async def _paris_turn(backend: LocalBackend, orders_db: Path, say: Say) -> TurnResult:
    toolbox = ToolBox(orders_db, now=lambda: FIXED_NOW)
    session = await backend.open(BackendOptions(session_id="t", tools=toolbox.descriptions))
    turn = await run_turn(session, MicStream().utterance(say(*_PARIS)).commands, toolbox=toolbox)
    await session.aclose()
    return turn


async def test_whisper_reads_what_pocketsphinx_misreads(
    backend: LocalBackend, orders_db: Path, say: Say
) -> None:
    turn = await _paris_turn(backend, orders_db, say)
    calls = [(c.name, c.arguments_json) for c in turn.tool_calls]
    assert calls == [("get_date_time", '{"timezone":"Europe/Paris"}')], turn.user_text


async def test_the_option_off_loads_no_whisper_and_misreads_as_before(
    orders_db: Path, say: Say
) -> None:
    backend = LocalBackend.from_options(open_reading="off", workers=1, tts="espeak")
    try:
        await backend.warm_up()
        turn = await _paris_turn(backend, orders_db, say)
        assert not turn.tool_calls, turn.user_text
        assert turn.assistant_text[0] == "Sorry, I didn't catch that."
        recognizer, _ = await backend._models("espeak-en-us")
        with pytest.raises(RecognizerUnavailable):
            await asyncio.to_thread(recognizer.recognize_open, b"\x00\x01" * 1600)
    finally:
        await backend.aclose()


def test_the_recogniser_reads_openly(say: Say) -> None:
    recognizer = SpeechRecognizer.load("domain", open_reading=True)
    try:
        text = recognizer.recognize_open(say("what time is it in paris", "espeak:en-us"))
    finally:
        recognizer.close()
    assert "paris" in text.lower(), text


def test_a_model_whose_files_differ_is_refused(tmp_path: Path) -> None:
    check_model(model_path())  # the installed one is the pinned one
    copy = tmp_path / "model"
    shutil.copytree(model_path(), copy)
    config = bytearray((copy / "config.json").read_bytes())
    config[10] ^= 0x01  # one bit of one byte
    (copy / "config.json").write_bytes(bytes(config))
    with pytest.raises(ModelRefused, match=r"config\.json: sha256"):
        OpenReader(copy)
    (copy / "model.bin").unlink()
    with pytest.raises(ModelRefused, match=r"model\.bin"):
        check_model(copy)


def test_the_recogniser_refuses_to_start_with_a_model_that_differs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "model"
    shutil.copytree(model_path(), copy)
    (copy / "vocabulary.txt").write_text("changed\n")
    monkeypatch.setattr(open_reading, "model_path", lambda: copy)
    with pytest.raises(RecognizerUnavailable, match=r"open reading .*vocabulary\.txt: sha256"):
        SpeechRecognizer.load("domain", open_reading=True)


# --- whose numbers are taken -------------------------------------------------------------------


def test_an_identifier_no_example_is_shaped_like_is_not_adopted(toolbox: ToolBox) -> None:
    """Whisper writes a time as digits ("6 45", "7.30"); read one by one they are an order
    number of three digits, which no order example has: refused (`REFUSE_MISSHAPEN`)."""
    dialogue = Dialogue(ToolModel(toolbox.descriptions))
    today = FIXED_NOW.date()
    assert open_reading.REFUSE_MISSHAPEN
    for said in ("Wake me up at 6 45.", "Set a timer for 7.30."):
        assert adopted(dialogue, said, today=today) is None, said
        assert adopted(dialogue, said, today=today, refuse_misshapen=False), said  # before
    well_shaped = adopted(dialogue, "Where is order 1003?", today=today)
    assert well_shaped == "where is order one zero zero three"
