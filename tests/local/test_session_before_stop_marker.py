"""The local session's work before the VAD's stop marker: recognition from the early guess, the
answer prepared in the stop wait (and why it waits for the marker to speak), and answers to
turns ended early that the core cancels. Test speakers are espeak-ng voices, never the engine's
own piper voice."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pytest

from sonicwire.server.backends.local.engine import LocalBackend
from sonicwire.server.backends.local.session import LocalSession
from sonicwire.server.backends.local.stt import SpeechRecognizer
from sonicwire.server.core import events as ev
from sonicwire.server.testing.local_harness import MicStream, ToolBox, run_turn

from .conftest import FIXED_NOW, Say, open_session


async def test_recognition_starts_before_the_stop_marker(
    backend: LocalBackend, toolbox: ToolBox, say: Say, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The transcript comes from the early guess: recognised once, its tail lengthened to the
    collector's by repeating its last 100 ms (`Guess.padded`), not the collector's utterance."""
    session = await open_session(backend, toolbox)
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
    session = await open_session(backend, toolbox)
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
    session = await open_session(backend, toolbox)
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
    session = await open_session(backend, toolbox)
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
    session = await open_session(backend, toolbox)
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
    session = await open_session(backend, toolbox)
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
