"""bench/local_dev_whisper.py and the engine's open reading (open_reading.py): Whisper's text in
the engine's words, the prompt from the session's tools, the repetition guard (pure), and the
bench's decodes (unpadded, padded with silence to 5 s, padded to 30 s by faster-whisper)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest

from bench.local_dev_readings import dev_model
from bench.local_dev_whisper import PROMPT_WORDS, WhisperReader, prompt_from_tools
from sonicwire.server.backends.local.open_reading import cut_repeats, normalise

_TODAY = date(2026, 5, 5)


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        ("Where is my order 1,004?", "where is my order one zero zero four"),
        ("Is order 10-03 on its way?", "is order one zero zero three on its way"),
        ("The order 1 0 0 2, please.", "the order one zero zero two please"),
        ("Order A-2001.", "order a two zero zero one"),
        ("Wake me at 6:30 p.m.", "wake me at six thirty p m"),
        ("What time is it in New York?", "what time is it in new york"),
        ("What's today's date? It's the 3rd.", "what's today's date it's the third"),
        ("Set it to 05 or 25%", "set it to zero five or twenty five percent"),
    ],
)
def test_whispers_text_is_put_in_the_engines_words(written: str, spoken: str) -> None:
    assert normalise(written) == spoken


def test_the_engine_understands_an_order_number_whisper_writes_in_digits() -> None:
    model = dev_model()
    meaning = model.understand(normalise("Could you look up order 1003?"), today=_TODAY)
    assert (meaning.name, dict(meaning.arguments)) == ("track_order", {"order_id": "1003"})


def test_the_prompt_holds_every_tool_of_the_session_with_its_slots_filled() -> None:
    model = dev_model()
    prompt = prompt_from_tools(model)
    assert "{" not in prompt
    assert len(prompt.split()) <= PROMPT_WORDS
    for tool in ("get_date_time", "track_order", "get_weather"):  # one reading of each
        assert any(model.understand(s, today=_TODAY).name == tool for s in prompt.split("?"))
    assert "1001" in prompt  # the identifier's schema example, as Whisper would write it
    assert "London" in prompt  # a city of the weather schema's examples, as a name
    assert "weather, forecast, temperature" in prompt  # the weather tool's keywords
    assert "hello" not in prompt.lower()  # small talk is the engine's, no tool of the session


def test_a_shorter_word_budget_keeps_a_shorter_prompt_with_every_tool() -> None:
    model = dev_model()
    short = prompt_from_tools(model, max_words=40)
    assert len(short.split()) <= 40
    assert "order" in short.lower() and "weather" in short.lower() and "time" in short.lower()


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        (
            "What's the time at the moment? What's time at a moment?",
            "What's the time at the moment?",
        ),
        ("What's the time at the moment? What's", "What's the time at the moment?"),
        ("Where is my order 10? What is the weather in my order 10?", "Where is my order 10?"),
        ("Hi. What time is it?", "Hi. What time is it?"),
        ("where is my order where is my order where is", "where is my order"),
        ("Check the status of order 1005 please.", "Check the status of order 1005 please."),
    ],
)
def test_a_reading_of_the_same_audio_again_is_cut(text: str, kept: str) -> None:
    assert cut_repeats(text) == kept


def test_whisper_reads_a_command(say: Callable[..., bytes]) -> None:
    reader = WhisperReader(threads=1)  # checks the model files' SHA-256 first
    audio = say("what time is it in paris", "espeak:en-us")
    model = dev_model()
    for padded, window_s in ((False, 0.0), (False, 5.0), (True, 0.0)):
        text, cpu_ms, _ = reader.read(audio, padded=padded, prompt="", window_s=window_s)
        meaning = model.understand(normalise(text), today=_TODAY)
        assert (meaning.name, dict(meaning.arguments)) == (
            "get_date_time",
            {"timezone": "Europe/Paris"},
        ), text
        assert cpu_ms > 0
