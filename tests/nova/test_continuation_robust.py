"""Issue 15, continuation against the real service's habits (real SDK, local HTTP/2 endpoint):
a pre-opened stream that Bedrock aborts for idleness, a prepared stream that dies before the
switch, and replayed audio that must not repeat what the replayed history already says."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import pytest

from sonicwire.server.backends.nova_sonic.connection import _Prepared
from sonicwire.server.backends.nova_sonic.continuation import ReplayMarks
from sonicwire.server.core import events as ev
from sonicwire.server.core.history import Message
from sonicwire.server.testing.fake_bedrock import FakeBedrock
from sonicwire.server.testing.fake_scenario import (
    Scenario,
    StreamPlan,
    answer_each_utterance,
    dies_when_prepared,
)
from sonicwire.server.testing.fake_stream import FakeStream
from tests.nova.conftest import (
    assert_no_leaked_tasks,
    counters,
    open_session,
    send_frames,
)
from tests.nova.test_continuation import history_texts

ANSWER = "A slow answer."


async def slow_answer(stream: FakeStream) -> None:
    """Answers once, slowly (about 1.2 s of audio, paced), so the switch must wait."""
    await stream.wait_audio(40)
    await stream.user_transcript("Tell me more.")
    await stream.speak([ANSWER], audio_ms=1200, pace=0.1)


async def microphone(session: object, start: int = 0) -> None:
    """Silence keeps flowing, as from a real client (bounded: cancelled by the test)."""
    counter = start
    for _ in range(3000):
        counter = await send_frames(session, counter, 1, pace=0.02)  # type: ignore[arg-type]


async def eventually(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``predicate`` (state spread over several streams has no single event to await)."""
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached in time")


def switched_to(stream: FakeStream) -> bool:
    return ("ASSISTANT", ANSWER) in history_texts(stream)


async def test_an_idle_pre_opened_stream_is_reopened_before_bedrock_aborts_it() -> None:
    # Every later stream is aborted after 0.5 s without input ("Timed out waiting for input
    # events"); the session replaces its prepared stream after 0.25 s idle.
    scenario = Scenario.sequence(slow_answer, StreamPlan(idle_timeout_s=0.5))
    async with FakeBedrock(scenario) as fake:
        backend, session, got = await open_session(
            fake,
            continuation_threshold_s=0.5,
            continuation_max_defer_s=30,
            continuation_prepared_idle_s=0.25,
        )
        mic = asyncio.create_task(microphone(session))
        await got.wait_for(ev.AssistantTurnEnded)
        await eventually(lambda: any(switched_to(s) for s in fake.streams[1:]))
        mic.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await mic
        # The answer took ~1.2 s: several prepared streams were replaced before going idle
        # too long, none was aborted, and the conversation went on without a failure.
        assert len(fake.streams) >= 3, len(fake.streams)
        assert not any(s.idle_timeout_hit for s in fake.streams)
        assert not got.of(ev.BackendFailed)
        await session.aclose()
        await backend.aclose()
    await assert_no_leaked_tasks()


async def test_a_pre_opened_stream_aborted_for_idleness_is_replaced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Without the idle refresh (60 s), the fake aborts the prepared stream after 0.3 s: the
    # session notices the failure and opens another one instead of switching to a dead one.
    scenario = Scenario.sequence(slow_answer, StreamPlan(idle_timeout_s=0.3))
    async with FakeBedrock(scenario) as fake:
        backend, session, got = await open_session(
            fake, continuation_threshold_s=0.5, continuation_max_defer_s=30
        )
        # What the session knew of each stream it was asked to switch to: the abort can
        # cross the switch on the wire (the switch lands at the 0.3 s idle edge, more often
        # on a loaded machine), and then the session cannot have seen it.
        switches: list[tuple[bool, bool]] = []  # (its failure already seen, switched)
        switch = session._switch

        def recording_switch(prepared: _Prepared) -> bool:
            seen_dead = prepared.stream.failure is not None
            switched = switch(prepared)
            switches.append((seen_dead, switched))
            return switched

        monkeypatch.setattr(session, "_switch", recording_switch)
        mic = asyncio.create_task(microphone(session))
        await got.wait_for(ev.AssistantTurnEnded)
        # The conversation goes on on a live stream (after a reconnect if an abort crossed
        # the switch): the microphone keeps it from idling.
        await eventually(
            lambda: any(switched_to(s) and not s.idle_timeout_hit for s in fake.streams[1:])
        )
        mic.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await mic
        aborted = [s for s in fake.streams if s.idle_timeout_hit]
        # Prepared streams died while they waited, and were replaced, never switched to ...
        assert any(not switched_to(s) and not s.audio for s in aborted), "none aborted idle"
        # ... and no switch went to a stream whose failure the session had already seen.
        assert switches and not any(seen and switched for seen, switched in switches)
        assert not got.of(ev.BackendFailed)
        await session.aclose()
        await backend.aclose()
    await assert_no_leaked_tasks()


async def test_a_prepared_stream_that_died_is_not_switched_to() -> None:
    scenario = Scenario.sequence(slow_answer, dies_when_prepared(), StreamPlan())
    async with FakeBedrock(scenario) as fake:
        backend, session, got = await open_session(
            fake, continuation_threshold_s=0.5, continuation_max_defer_s=30
        )
        mic = asyncio.create_task(microphone(session))
        await got.wait_for(ev.AssistantTurnEnded)
        await fake.wait_for_streams(3)
        async with asyncio.timeout(10):
            await fake.streams[2].wait_for(lambda: switched_to(fake.streams[2]))
            await fake.streams[2].wait_for(lambda: bool(fake.streams[2].audio))
        mic.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await mic
        dead = fake.streams[1]
        assert not switched_to(dead) and not dead.audio
        assert not got.of(ev.BackendFailed)
        await session.aclose()
        await backend.aclose()
    await assert_no_leaked_tasks()


async def test_switch_refuses_a_failed_prepared_stream() -> None:
    scenario = Scenario.sequence(answer_each_utterance(), dies_when_prepared())
    async with FakeBedrock(scenario) as fake:
        backend, session, got = await open_session(fake)
        current = session._link
        prepared = await session._prepare(" (test)")
        assert isinstance(prepared, _Prepared)
        await eventually(lambda: prepared.stream.failure is not None)
        assert session._switch(prepared) is False
        assert session._link is current
        await prepared.stream.close(timeout=0)
        assert not got.of(ev.BackendFailed)
        await session.aclose()
        await backend.aclose()
    await assert_no_leaked_tasks()


def user(text: str) -> Message:
    return Message(ev.Role.USER, text)


def assistant(text: str) -> Message:
    return Message(ev.Role.ASSISTANT, text)


def test_replay_marks_keep_each_utterance_once() -> None:
    window = 48_000  # 3 s
    marks = ReplayMarks(preroll=4_800)
    # The user spoke at 100 000, Nova transcribed it at 140 000 and began answering at 150 000.
    marks.speech_started(100_000)
    marks.transcript(140_000)
    marks.answer_started(150_000)
    marks.answer_started(170_000)  # later output of the same answer moves nothing
    history = (user("What number?"), assistant("Seven"))
    # Only audio captured after the assistant began speaking is replayed.
    assert marks.plan(history, 160_000, window) == (history, 150_000)
    assert marks.plan(history, 250_000, window) == (history, 202_000)  # capped by the window
    # An unanswered question whose whole audio is in the window: Nova hears it again and the
    # trailing USER turn is dropped from the history.
    marks.speech_started(200_000)
    marks.transcript(230_000)
    history += (user("And the next one?"),)
    assert marks.plan(history, 236_000, window) == (history[:-1], 195_200)
    # ... but too old to replay whole: it stays text, and no transcribed audio repeats.
    assert marks.plan(history, 260_000, window) == (history, 230_000)
    # A typed turn has no audio: it always stays text.
    marks.typed()
    typed = (*history[:-1], user("typed question"))
    assert marks.plan(typed, 236_000, window) == (typed, 230_000)


async def test_reconnect_replays_the_unanswered_question_as_audio_not_twice() -> None:
    async def transcribe_then_fail(stream: FakeStream) -> None:
        await stream.wait_audio(200)
        await stream.user_transcript("What number?")
        await stream.send_exception("ModelStreamErrorException", "boom")

    async with FakeBedrock(Scenario.sequence(transcribe_then_fail, StreamPlan())) as fake:
        backend, session, got = await open_session(fake, audio_replay_ms=3000)
        await send_frames(session, 0, 5)  # 100 ms before the user speaks
        await session.send(ev.UserSpeechStarted(0))
        sent = await send_frames(session, 5, 10)
        await session.send(ev.UserSpeechStopped(0))
        while len(fake.streams) < 2:
            sent = await send_frames(session, sent, 1, pace=0.005)
        await fake.streams[1].wait_for(lambda: bool(fake.streams[1].audio_chunks))
        replayed = counters(fake.streams[1].audio_chunks)
        # The question's audio (from speech start minus the 300 ms pre-roll, i.e. frame 0)
        # is replayed; its transcript is not in the history as well.
        assert replayed[0] == 0
        assert ("USER", "What number?") not in history_texts(fake.streams[1])
        assert not got.of(ev.BackendFailed)
        await session.aclose()
        await backend.aclose()
    await assert_no_leaked_tasks()


async def test_reconnect_during_an_answer_replays_only_audio_after_it_began() -> None:
    async def answer_then_fail(stream: FakeStream) -> None:
        await stream.wait_audio(200)
        await stream.user_transcript("What number?")
        await stream.text("ASSISTANT", "SPECULATIVE", "Seven.", "PARTIAL_TURN")
        await stream.wait_audio(100)
        await stream.send_exception("ModelStreamErrorException", "boom")

    async with FakeBedrock(Scenario.sequence(answer_then_fail, StreamPlan())) as fake:
        backend, session, got = await open_session(fake, audio_replay_ms=3000)
        await session.send(ev.UserSpeechStarted(0))
        sent = await send_frames(session, 0, 10)
        await session.send(ev.UserSpeechStopped(0))
        await got.wait_for(ev.AssistantText)
        answer_began = sent
        while len(fake.streams) < 2:
            sent = await send_frames(session, sent, 1, pace=0.005)
        await fake.streams[1].wait_for(lambda: bool(fake.streams[1].audio_chunks))
        replayed = counters(fake.streams[1].audio_chunks)
        # The question is history now; only what came after the answer began is replayed.
        assert ("USER", "What number?") in history_texts(fake.streams[1])
        assert replayed[0] == answer_began, (replayed[0], answer_began)
        await session.aclose()
        await backend.aclose()
    await assert_no_leaked_tasks()
