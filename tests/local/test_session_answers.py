"""What the local backend answers, end to end at the backend boundary: mic frames and VAD
markers of synthesised speech (or typed text) in, events out; the reply audio is transcribed by
the recogniser's general model and checked. Test speakers are espeak-ng voices, never the
engine's own piper voice."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from sonicwire.server.backends.local.engine import LocalBackend
from sonicwire.server.backends.local.stt import SpeechRecognizer
from sonicwire.server.core import events as ev
from sonicwire.server.testing.local_harness import MicStream, ToolBox, hears_time, run_turn

from .conftest import Say, open_session


async def test_what_time_is_it(
    backend: LocalBackend, toolbox: ToolBox, reply_recognizer: SpeechRecognizer, say: Say
) -> None:
    session = await open_session(backend, toolbox)
    mic = MicStream()
    utterance = mic.utterance(say("what time is it", "espeak:en-us"))
    turn = await run_turn(session, utterance.commands, toolbox=toolbox)
    await session.aclose()

    assert turn.user_text == "what time is it"
    assert [(c.name, c.arguments_json) for c in turn.tool_calls] == [("get_date_time", "{}")]
    # The tools' clock is FIXED_NOW, in UTC.
    assert turn.assistant_text == ["It's 3:47 PM.", "Today is Tuesday, May 5."]
    assert turn.stop_reason is ev.StopReason.END_TURN
    heard = reply_recognizer.recognize(bytes(turn.audio), turn.sample_rate).text
    assert "three forty seven" in heard


async def test_what_time_is_it_now(
    backend: LocalBackend, orders_db: Path, reply_recognizer: SpeechRecognizer, say: Say
) -> None:
    """As the end-to-end test does it: the real clock; the reply must say the current time."""
    toolbox = ToolBox(orders_db)
    session = await open_session(backend, toolbox)
    before = datetime.now(UTC)
    turn = await run_turn(
        session, MicStream().utterance(say("what time is it", "espeak:en-us")).commands,
        toolbox=toolbox,
    )  # fmt: skip
    after = datetime.now(UTC)
    await session.aclose()
    heard = reply_recognizer.recognize(bytes(turn.audio), turn.sample_rate)
    assert hears_time(heard, before, after), heard


async def test_where_is_my_order(
    backend: LocalBackend, toolbox: ToolBox, reply_recognizer: SpeechRecognizer, say: Say
) -> None:
    session = await open_session(backend, toolbox)
    speech = say("where is my order one zero zero one", "espeak:en-us")
    turn = await run_turn(session, MicStream().utterance(speech).commands, toolbox=toolbox)
    await session.aclose()

    assert [(c.name, c.arguments_json) for c in turn.tool_calls] == [
        ("track_order", '{"order_id":"1001"}')
    ]
    assert turn.assistant_text[0] == "Order 1001 is shipped."  # the demo store's status
    heard = reply_recognizer.recognize(bytes(turn.audio), turn.sample_rate).text
    assert "order one zero zero one is shipped the carrier is u p s" in heard


async def test_order_number_in_a_second_turn(
    backend: LocalBackend, toolbox: ToolBox, say: Say
) -> None:
    session = await open_session(backend, toolbox)
    mic = MicStream()
    first = await run_turn(
        session, mic.utterance(say("where is my order", "espeak:en-us")).commands, toolbox=toolbox
    )
    assert first.assistant_text == ["Sure. What's the order number?"]
    # The user listens to the question, then answers.
    for command in mic.silence(len(first.audio) * 1000 // 2 // first.sample_rate).commands:
        await session.send(command)
    second = await run_turn(
        session, mic.utterance(say("ten oh three", "espeak:en-us")).commands, toolbox=toolbox
    )
    await session.aclose()
    assert [c.arguments_json for c in second.tool_calls] == ['{"order_id":"1003"}']
    assert second.assistant_text[0] == "Order 1003 is delivered."


async def test_typed_turn_is_answered_without_a_user_transcript(
    backend: LocalBackend, toolbox: ToolBox
) -> None:
    session = await open_session(backend, toolbox)
    turn = await run_turn(session, [ev.SendText("Hello")], toolbox=toolbox)
    await session.aclose()
    assert turn.user_text == ""
    assert not any(isinstance(e, ev.UserTranscript) for e in turn.events)
    assert turn.assistant_text == ["Hello! How can I help?"]
    assert turn.audio and turn.sample_rate == 22_050
    # Text comes before the audio it speaks, and audio comes in chunks of at most 200 ms.
    kinds = [type(e) for e in turn.events]
    assert kinds.index(ev.AssistantText) < kinds.index(ev.AssistantAudio)
    chunks = [e.pcm for e in turn.events if isinstance(e, ev.AssistantAudio)]
    assert max(map(len, chunks)) <= 22_050 * 2 // 5


async def test_tools_not_offered_are_not_requested(backend: LocalBackend, say: Say) -> None:
    session = await open_session(backend, None)
    turn = await run_turn(
        session, MicStream().utterance(say("what time is it", "espeak:en-us")).commands
    )
    await session.aclose()
    # The session learnt no tool: nothing is requested, and no clock answer is made up.
    assert turn.tool_calls == []
    assert turn.assistant_text and not any("PM" in t or "AM" in t for t in turn.assistant_text)


async def test_noise_gets_an_honest_answer(backend: LocalBackend, toolbox: ToolBox) -> None:

    hum = (np.sin(np.arange(16_000) * 2 * np.pi * 120 / 16_000) * 3000).astype(np.int16)
    session = await open_session(backend, toolbox)
    turn = await run_turn(session, MicStream().utterance(hum.tobytes()).commands, toolbox=toolbox)
    await session.aclose()
    assert turn.tool_calls == []
    assert turn.assistant_text[0] == "Sorry, I didn't catch that."
