"""The local backend end to end at the backend boundary: mic frames and VAD markers of
synthesised speech in, events out; the reply audio is transcribed by the recogniser's general
model and checked. Test speakers are espeak-ng voices, never the engine's own piper voice."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sonicwire.server.backends.base import BackendOptions
from sonicwire.server.backends.local.engine import LocalBackend
from sonicwire.server.backends.local.session import LocalSession
from sonicwire.server.backends.local.stt import SpeechRecognizer
from sonicwire.server.backends.registry import create_backend
from sonicwire.server.core import events as ev
from sonicwire.server.core.errors import BackendError, ErrorCode
from sonicwire.server.testing.local_harness import MicStream, ToolBox, hears_time, run_turn

from .conftest import FIXED_NOW

Say = Callable[..., bytes]


async def _open(backend: LocalBackend, toolbox: ToolBox | None, **fields: object) -> LocalSession:
    tools = toolbox.descriptions if toolbox is not None else []
    return await backend.open(BackendOptions(session_id="t", tools=tools, **fields))  # type: ignore[arg-type]


async def test_what_time_is_it(
    backend: LocalBackend, toolbox: ToolBox, reply_recognizer: SpeechRecognizer, say: Say
) -> None:
    session = await _open(backend, toolbox)
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
    session = await _open(backend, toolbox)
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
    session = await _open(backend, toolbox)
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
    session = await _open(backend, toolbox)
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
    session = await _open(backend, toolbox)
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
    session = await _open(backend, None)
    turn = await run_turn(
        session, MicStream().utterance(say("what time is it", "espeak:en-us")).commands
    )
    await session.aclose()
    # The session learnt no tool: nothing is requested, and no clock answer is made up.
    assert turn.tool_calls == []
    assert turn.assistant_text and not any("PM" in t or "AM" in t for t in turn.assistant_text)


async def test_noise_gets_an_honest_answer(backend: LocalBackend, toolbox: ToolBox) -> None:
    import numpy as np

    hum = (np.sin(np.arange(16_000) * 2 * np.pi * 120 / 16_000) * 3000).astype(np.int16)
    session = await _open(backend, toolbox)
    turn = await run_turn(session, MicStream().utterance(hum.tobytes()).commands, toolbox=toolbox)
    await session.aclose()
    assert turn.tool_calls == []
    assert turn.assistant_text[0] == "Sorry, I didn't catch that."


async def test_barge_in_cuts_the_answer_at_once(
    backend: LocalBackend, toolbox: ToolBox, say: Say
) -> None:
    session = await _open(backend, toolbox)
    events = session.events()
    await session.send(ev.SendText("what can you do"))  # a two-sentence answer
    seen: list[ev.BackendEvent] = []
    async for event in events:
        seen.append(event)
        if isinstance(event, ev.AssistantAudio):
            break
    await session.send(ev.CancelResponse(heard_text="", played_ms=0))
    async for event in events:
        seen.append(event)
        if isinstance(event, ev.AssistantTurnEnded):
            break
    await session.aclose()
    assert isinstance(seen[-1], ev.AssistantTurnEnded)
    assert seen[-1].stop_reason is ev.StopReason.INTERRUPTED
    texts = [e.text for e in seen if isinstance(e, ev.AssistantText)]
    assert texts == ["I can help with questions like these."]


async def test_cancel_while_waiting_for_a_tool(backend: LocalBackend, toolbox: ToolBox) -> None:
    session = await _open(backend, toolbox)
    events = session.events()
    await session.send(ev.SendText("what time is it"))
    request = await anext(events)
    assert isinstance(request, ev.ToolRequested)
    await session.send(ev.CancelResponse(heard_text="", played_ms=0))
    assert await anext(events) == ev.AssistantTurnEnded(ev.StopReason.INTERRUPTED)
    # The runner's late (cancelled) result is ignored; the next turn works.
    await session.send(
        ev.SendToolResult(request.call_id, request.name, "{}", ev.ToolStatus.CANCELLED)
    )
    turn = await run_turn(session, [ev.SendText("hi")], toolbox=toolbox)
    await session.aclose()
    assert turn.assistant_text == ["Hello! How can I help?"]


async def test_a_result_that_outlived_its_turn_is_answered_as_a_new_turn(
    backend: LocalBackend, toolbox: ToolBox
) -> None:
    """A tool that continues on interruption: the core lets the call run through the
    barge-in and sends its real result later; the engine answers it in a turn of its own,
    as Nova does (a CANCELLED result, as above, is not answered)."""
    session = await _open(backend, toolbox)
    events = session.events()
    await session.send(ev.SendText("what time is it"))
    request = await anext(events)
    assert isinstance(request, ev.ToolRequested)
    await session.send(ev.CancelResponse(heard_text="", played_ms=0))
    assert await anext(events) == ev.AssistantTurnEnded(ev.StopReason.INTERRUPTED)
    await session.send(await toolbox.call(request.call_id, request.name, request.arguments_json))
    answer: list[ev.BackendEvent] = []
    async with asyncio.timeout(30):
        while not isinstance(event := await anext(events), ev.AssistantTurnEnded):
            answer.append(event)
    assert event == ev.AssistantTurnEnded(ev.StopReason.END_TURN)
    texts = [e.text for e in answer if isinstance(e, ev.AssistantText)]
    assert texts == ["It's 3:47 PM.", "Today is Tuesday, May 5."]  # FIXED_NOW, in UTC
    assert any(isinstance(e, ev.AssistantAudio) for e in answer)
    assert not any(isinstance(e, ev.ToolRequested) for e in answer)  # no second call
    await session.aclose()


async def test_cancel_after_the_answer_ended_sends_nothing(
    backend: LocalBackend, toolbox: ToolBox
) -> None:
    session = await _open(backend, toolbox)
    await run_turn(session, [ev.SendText("hi")], toolbox=toolbox)
    # The core still plays the audio and cancels it: the generation had already ended.
    await session.send(ev.CancelResponse(heard_text="Hello!", played_ms=300))
    await session.send(ev.EndSession())
    assert [event async for event in session.events()] == []


async def test_short_speech_over_the_answer_is_not_a_turn(
    backend: LocalBackend, toolbox: ToolBox, say: Say
) -> None:
    """Speech the core did not treat as a barge-in (no CancelResponse) while the assistant
    was talking gets no answer; the same speech after the answer does."""
    session = await _open(backend, toolbox)
    mic = MicStream()
    answer = await run_turn(session, [ev.SendText("what can you do")], toolbox=toolbox)
    blip = mic.utterance(say("hello", "espeak:en-us"), lead_ms=100)
    for command in blip.commands:
        await session.send(command)
    long_enough = len(answer.audio) * 1000 // 2 // answer.sample_rate
    for command in mic.silence(long_enough).commands:
        await session.send(command)
    turn = await run_turn(
        session, mic.utterance(say("hello", "espeak:en-us")).commands, toolbox=toolbox
    )
    await session.aclose()
    transcripts = [e for e in turn.events if isinstance(e, ev.UserTranscript)]
    assert len(transcripts) == 1 and turn.assistant_text == ["Hello! How can I help?"]


async def test_barge_in_speech_is_answered(
    backend: LocalBackend, toolbox: ToolBox, say: Say
) -> None:
    session = await _open(backend, toolbox)
    mic = MicStream()
    await run_turn(session, [ev.SendText("what can you do")], toolbox=toolbox)
    interrupting = mic.utterance(say("what time is it", "espeak:en-us"), lead_ms=100)
    # The core saw enough speech over the answer: it cancels, then the utterance ends.
    commands = list(interrupting.commands)
    started = next(i for i, c in enumerate(commands) if isinstance(c, ev.UserSpeechStarted))
    commands.insert(started + 10, ev.CancelResponse(heard_text="I can tell", played_ms=400))
    turn = await run_turn(session, commands, toolbox=toolbox)
    await session.aclose()
    assert turn.user_text == "what time is it"
    assert turn.assistant_text == ["It's 3:47 PM.", "Today is Tuesday, May 5."]


async def test_end_session_ends_events_and_leaves_no_tasks(
    backend: LocalBackend, toolbox: ToolBox, say: Say
) -> None:
    before = asyncio.all_tasks()
    session = await _open(backend, toolbox)
    await session.send(ev.SendText("what can you do"))
    await session.send(ev.EndSession())
    remaining = [event async for event in session.events()]
    assert all(not isinstance(e, ev.AssistantTurnEnded) for e in remaining)
    await session.send(ev.SendText("ignored after the end"))
    await session.aclose()
    await session.aclose()
    assert asyncio.all_tasks() == before


async def test_speech_work_runs_off_the_event_loop(
    backend: LocalBackend, toolbox: ToolBox, say: Say, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = await _open(backend, toolbox)
    threads: list[str] = []

    def spy(work: Callable[..., Any]) -> Callable[..., Any]:
        def run(arg: Any, **kwargs: Any) -> Any:
            threads.append(threading.current_thread().name)
            return work(arg, **kwargs)

        return run

    monkeypatch.setattr(
        session._reader._recognizer, "recognize", spy(session._reader._recognizer.recognize)
    )
    monkeypatch.setattr(
        session._speaker._synthesizer, "synthesize", spy(session._speaker._synthesizer.synthesize)
    )
    await run_turn(
        session, MicStream().utterance(say("hello", "espeak:en-us")).commands, toolbox=toolbox
    )
    await session.aclose()
    assert len(threads) == 2  # one recognition, one sentence synthesised
    assert all(name.startswith("sonicwire-local") for name in threads)


async def test_models_load_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[str] = []
    real_load = SpeechRecognizer.load

    def counting_load(*args: object, **kwargs: object) -> SpeechRecognizer:
        loads.append("stt")
        return real_load(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(SpeechRecognizer, "load", counting_load)
    local = create_backend("local", tts="espeak", unknown_option=True)
    assert isinstance(local, LocalBackend)
    try:
        sessions = await asyncio.gather(*(local.open(BackendOptions("s")) for _ in range(3)))
        assert loads == ["stt"]
        assert len({id(s._reader._recognizer) for s in sessions}) == 1
    finally:
        await local.aclose()
    assert not [
        t
        for t in threading.enumerate()
        if t.name.startswith("sonicwire-local") and t.is_alive() and _owned_by(t, local)
    ]


def _owned_by(thread: threading.Thread, backend: LocalBackend) -> bool:
    return thread in getattr(backend._executor, "_threads", set())


async def test_voices_and_unknown_voice(backend: LocalBackend) -> None:
    voices = backend.voices()
    assert voices[0].id == "joe" and voices[0].default
    assert {"espeak-en-us", "espeak-en-gb"} <= {v.id for v in voices}
    with pytest.raises(BackendError) as caught:
        await backend.open(BackendOptions("s", voice="nobody"))
    assert caught.value.reason == "VOICE_UNKNOWN"
    assert caught.value.code is ErrorCode.INVALID_ARGUMENT


async def test_espeak_voice_session(backend: LocalBackend, toolbox: ToolBox) -> None:
    session = await _open(backend, toolbox, voice="espeak-en-gb")
    turn = await run_turn(session, [ev.SendText("thanks")], toolbox=toolbox)
    await session.aclose()
    assert turn.assistant_text == ["You're welcome!"] and turn.audio


async def test_closed_backend_refuses_sessions() -> None:
    local = LocalBackend(tts_engine="espeak")
    await local.aclose()
    with pytest.raises(BackendError) as caught:
        await local.open(BackendOptions("s"))
    assert caught.value.reason == "BACKEND_UNAVAILABLE"


def test_bad_tts_option() -> None:
    with pytest.raises(BackendError):
        LocalBackend.from_options(tts="festival")


async def test_recognition_starts_before_the_stop_marker(
    backend: LocalBackend, toolbox: ToolBox, say: Say, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The transcript comes from the early guess: recognised once, its tail lengthened to the
    collector's by repeating its last 100 ms (`Guess.padded`), not the collector's utterance."""
    session = await _open(backend, toolbox)
    heard: list[bytes] = []
    recognize = session._reader._recognizer.recognize

    def spy(pcm: bytes, **kwargs: Any) -> object:
        heard.append(pcm)
        return recognize(pcm, **kwargs)

    monkeypatch.setattr(session._reader._recognizer, "recognize", spy)
    utterance = MicStream().utterance(say("what time is it", "espeak:en-us"))
    turn = await run_turn(session, utterance.commands, toolbox=toolbox)
    await session.aclose()
    assert turn.user_text == "what time is it"
    assert len(heard) == 1
    pcm, block = heard[0], 2 * 16 * 100  # the room's noise is never the same 100 ms twice
    assert any(
        pcm[at - block : at] == pcm[at : at + block]
        for at in range(len(pcm) - 2 * block - 2 * 16 * 200, len(pcm) - block + 1, 2)
    ), "the guess's last 100 ms is not repeated"


# --- answers prepared in the VAD's stop wait ---------------------------------------------------


def _marker_only(session: LocalSession, monkeypatch: pytest.MonkeyPatch) -> None:
    """No early end of turn (test_early_end.py has those): these tests are about the answer
    prepared in the stop wait for the stop marker, the path an utterance takes whenever its
    reading is no complete request."""
    monkeypatch.setattr(session, "_early_end", False)


def _spy_synthesis(session: LocalSession, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    synthesize = session._speaker._synthesizer.synthesize

    def spy(text: str) -> bytes:
        calls.append(text)
        return synthesize(text)

    monkeypatch.setattr(session._speaker._synthesizer, "synthesize", spy)
    return calls


async def _send_until_guess(
    session: LocalSession, commands: list[ev.BackendCommand], start: int = 0
) -> int:
    """Send ``commands[start:]`` until the session makes a new early guess; returns the index
    of the next command to send."""
    before = session._guess
    for index in range(start, len(commands)):
        await session.send(commands[index])
        await asyncio.sleep(0)
        if session._guess is not None and session._guess is not before:
            return index + 1
    raise AssertionError("no early guess")


async def _prepared(session: LocalSession) -> Any:
    assert session._guess is not None
    return await session._guess[1]


async def test_the_first_sentence_is_ready_at_the_stop_marker(
    backend: LocalBackend, toolbox: ToolBox, say: Say, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = await _open(backend, toolbox)
    _marker_only(session, monkeypatch)
    calls = _spy_synthesis(session, monkeypatch)
    utterance = MicStream().utterance(say("hello", "espeak:en-us"))
    sent = await _send_until_guess(session, utterance.commands)
    assert sent < utterance.stop_index
    prepared = await _prepared(session)
    assert prepared.spoken == "Hello! How can I help?"
    assert prepared.audio is not None and await prepared.audio
    assert session._events.empty()  # nothing is said before the stop marker
    turn = await run_turn(session, utterance.commands[sent:], toolbox=toolbox)
    await session.aclose()
    assert turn.user_text == "hello"
    assert turn.assistant_text == ["Hello! How can I help?"]
    assert calls == ["Hello! How can I help?"]  # synthesised once, in the stop wait
    assert bytes(turn.audio).startswith(await prepared.audio)


async def test_an_answers_start_known_from_the_arguments_plays_while_the_tool_runs(
    backend: LocalBackend, toolbox: ToolBox, say: Say, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tool result cannot be foreseen, but "Order 1001" can: it is synthesised in the stop
    wait and played before the tool is even requested; the rest follows the result."""
    session = await _open(backend, toolbox)
    _marker_only(session, monkeypatch)
    calls = _spy_synthesis(session, monkeypatch)
    utterance = MicStream().utterance(say("where is my order one zero zero one", "espeak:en-us"))
    sent = await _send_until_guess(session, utterance.commands)
    prepared = await _prepared(session)
    assert prepared.spoken == "Order one zero zero one"
    assert session._events.empty()
    turn = await run_turn(session, utterance.commands[sent:], toolbox=toolbox)
    await session.aclose()
    kinds = [type(e).__name__ for e in turn.events]
    assert (
        kinds.index("AssistantAudio") < kinds.index("ToolRequested") < kinds.index("AssistantText")
    )
    assert turn.assistant_text[0] == "Order 1001 is shipped."  # the text is the whole sentence
    assert calls[:2] == ["Order one zero zero one", "is shipped."]


async def _clocked_session(
    backend: LocalBackend, toolbox: ToolBox, monkeypatch: pytest.MonkeyPatch, now: datetime
) -> tuple[LocalSession, list[str]]:
    """A session whose clock predictions see ``now`` in UTC (as a first call would learn the
    zone), and the list its synthesis calls are recorded in."""
    session = await _open(backend, toolbox)
    _marker_only(session, monkeypatch)
    monkeypatch.setattr(session, "_clock", lambda: now)
    monkeypatch.setitem(session._clock_zones, "{}", "UTC")
    return session, _spy_synthesis(session, monkeypatch)


async def test_a_clock_answer_is_prepared_from_the_predicted_result(
    backend: LocalBackend,
    toolbox: ToolBox,
    reply_recognizer: SpeechRecognizer,
    say: Say,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    session, calls = await _clocked_session(backend, toolbox, monkeypatch, FIXED_NOW)
    utterance = MicStream().utterance(say("what time is it", "espeak:en-us"))
    sent = await _send_until_guess(session, utterance.commands)
    assert (await _prepared(session)).spoken == "It's three forty-seven PM."
    assert session._events.empty()  # the tool is only requested after the marker
    turn = await run_turn(session, utterance.commands[sent:], toolbox=toolbox)
    await session.aclose()
    assert [(c.name, c.arguments_json) for c in turn.tool_calls] == [("get_date_time", "{}")]
    assert turn.assistant_text == ["It's 3:47 PM.", "Today is Tuesday, May 5."]
    # The first sentence was synthesised in the stop wait; only the second after the marker.
    assert calls == ["It's three forty-seven PM.", "Today is Tuesday, May fifth."]
    heard = reply_recognizer.recognize(bytes(turn.audio), turn.sample_rate).text
    assert "three forty seven" in heard


async def test_a_wrong_prediction_is_not_spoken(
    backend: LocalBackend, toolbox: ToolBox, say: Say, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The minute turned over between the prediction and the tool call: the tool wins."""
    session, calls = await _clocked_session(
        backend, toolbox, monkeypatch, FIXED_NOW + timedelta(minutes=1)
    )
    utterance = MicStream().utterance(say("what time is it", "espeak:en-us"))
    sent = await _send_until_guess(session, utterance.commands)
    assert (await _prepared(session)).spoken == "It's three forty-eight PM."
    turn = await run_turn(session, utterance.commands[sent:], toolbox=toolbox)
    await session.aclose()
    assert turn.assistant_text == ["It's 3:47 PM.", "Today is Tuesday, May 5."]
    assert calls == [
        "It's three forty-eight PM.",
        "It's three forty-seven PM.",
        "Today is Tuesday, May fifth.",
    ]


async def test_an_answer_prepared_for_a_pause_is_discarded_when_speech_resumes(
    backend: LocalBackend,
    toolbox: ToolBox,
    reply_recognizer: SpeechRecognizer,
    say: Say,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    session, calls = await _clocked_session(backend, toolbox, monkeypatch, FIXED_NOW)
    pause = bytes(2 * 16 * 300)
    speech = say("what time is it", "espeak:en-us") + pause + say("in tokyo", "espeak:en-us")
    utterance = MicStream().utterance(speech)
    sent = await _send_until_guess(session, utterance.commands)
    first = await _prepared(session)
    assert first.spoken == "It's three forty-seven PM."  # the pause looked like the end
    sent = await _send_until_guess(session, utterance.commands, sent)  # after "in tokyo"
    assert sent < utterance.stop_index
    await _prepared(session)
    assert session._events.empty()
    turn = await run_turn(session, utterance.commands[sent:], toolbox=toolbox)
    await session.aclose()
    assert [(c.name, c.arguments_json) for c in turn.tool_calls] == [
        ("get_date_time", '{"timezone":"Asia/Tokyo"}')
    ]
    assert turn.assistant_text == ["It's 12:47 AM.", "Today is Wednesday, May 6."]
    assert calls[0] == "It's three forty-seven PM." and calls.count(calls[0]) == 1
    assert "It's twelve forty-seven AM." in calls
    heard = reply_recognizer.recognize(bytes(turn.audio), turn.sample_rate).text
    assert "twelve forty seven" in heard and "three" not in heard


async def test_the_core_takes_an_answer_before_the_stop_marker_for_a_barge_in(
    say: Say,
) -> None:
    """Why the engine waits for the marker: while the VAD waits out stop_secs the core still
    counts the user as speaking, so assistant audio that arrives then is cut at once."""
    from sonicwire.server.core.session import Session
    from sonicwire.server.core.settings import SessionSettings

    core = Session("s", SessionSettings())
    rng = np.random.default_rng(0)
    voice = np.frombuffer(say("what time is it", "espeak:en-us"), dtype=np.int16)
    signal = rng.normal(0, 30, 16 * 400 + voice.size + 16 * 260)
    signal[16 * 400 : 16 * 400 + voice.size] += voice
    pcm = np.clip(signal, -32768, 32767).astype(np.int16).tobytes()
    now = 0.0
    for offset in range(0, len(pcm) - 639, 640):
        core.receive_client(ev.AudioReceived(pcm[offset : offset + 640]), now)
        now += 0.02
    sent = core.commands_to_send()
    assert any(isinstance(c, ev.UserSpeechStarted) for c in sent)
    assert not any(isinstance(c, ev.UserSpeechStopped) for c in sent)  # in the stop wait
    core.outputs_to_send()
    core.receive_backend(ev.AssistantText("Hello! How can I help?", True), now)
    core.receive_backend(ev.AssistantAudio(bytes(6400), 16_000), now)
    core.receive_client(ev.AudioReceived(pcm[-640:]), now + 0.02)
    outputs = core.outputs_to_send()
    assert any(
        isinstance(o, ev.InterruptionOut) and o.source is ev.InterruptionSource.BARGE_IN
        for o in outputs
    )
    assert any(isinstance(c, ev.CancelResponse) for c in core.commands_to_send())


async def _early_answer_started(session: LocalSession, text: str) -> asyncio.Task[None]:
    """Queue an answer to ``text`` as one whose turn was ended before the stop marker (as
    `LocalSession._end_turn_early` does) and return its task once the worker made it."""
    from sonicwire.server.backends.local.jobs import Prepared, Utterance
    from sonicwire.server.backends.local.stt import Transcript

    done: asyncio.Future[Prepared] = asyncio.get_running_loop().create_future()
    done.set_result(Prepared(Transcript(text, 0.9)))
    job = Utterance(b"", asyncio.ensure_future(done), ended_early=True)  # type: ignore[arg-type]
    session._ended_early = job
    session._jobs.put_nowait(job)
    for _ in range(100):  # the worker takes the job: a few loop steps
        if session._turn is not None:
            break
        await asyncio.sleep(0)
    assert session._turn is not None
    return session._turn


async def test_an_early_answer_cancelled_before_its_turn_runs_still_ends(
    backend: LocalBackend, toolbox: ToolBox
) -> None:
    """The core cancels an early answer (`ev.UserTurnEnded`) as soon as it sees it when it
    refuses the early end; the CancelResponse may come after the worker made the answer's
    task and before that task ran once. The core drops everything until the answer's
    ``AssistantTurnEnded(INTERRUPTED)``, so that event must come even then, or the answer to
    the whole utterance would be dropped too."""
    session = await _open(backend, toolbox)
    events = session.events()
    turn = await _early_answer_started(session, "what time is it")
    assert not turn.done()
    await session.send(ev.CancelResponse("", 0))
    async with asyncio.timeout(5):
        assert await anext(events) == ev.AssistantTurnEnded(ev.StopReason.INTERRUPTED)
    await asyncio.wait({turn})
    # nothing more of the cancelled answer, and the next turn works
    answer = await run_turn(session, [ev.SendText("hi")], toolbox=toolbox)
    await session.aclose()
    assert answer.assistant_text == ["Hello! How can I help?"]


async def test_an_early_answer_that_just_ended_is_not_ended_twice(
    backend: LocalBackend, toolbox: ToolBox
) -> None:
    """The user goes on just as the early answer ended (its task done, the worker not yet
    back): its AssistantTurnEnded(END_TURN) is out, so the cancel adds no INTERRUPTED one
    (the core would take it for the next answer's end)."""
    session = await _open(backend, toolbox)
    events = session.events()
    turn = await _early_answer_started(session, "hello")
    # runs when the answer's task is done, before the worker resumes
    turn.add_done_callback(lambda _: session._cancel_response())
    seen: list[ev.BackendEvent] = []
    async with asyncio.timeout(30):
        while not any(isinstance(e, ev.AssistantTurnEnded) for e in seen):
            seen.append(await anext(events))
    answer = await run_turn(session, [ev.SendText("hi")], toolbox=toolbox)
    await session.aclose()
    assert [e for e in seen if isinstance(e, ev.AssistantTurnEnded)] == [
        ev.AssistantTurnEnded(ev.StopReason.END_TURN)
    ]
    assert answer.assistant_text == ["Hello! How can I help?"]
    assert answer.stop_reason is ev.StopReason.END_TURN
