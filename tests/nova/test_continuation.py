"""Session continuation and reconnects, with compressed time and counted audio frames."""

from __future__ import annotations

import itertools

from sonicwire.server.core import events as ev
from sonicwire.server.testing.fake_bedrock import FakeBedrock
from sonicwire.server.testing.fake_scenario import (
    Scenario,
    StreamPlan,
    answer_each_utterance,
    fail_after,
)
from sonicwire.server.testing.fake_stream import FakeStream
from tests.nova.conftest import assert_no_leaked_tasks, counters, open_session, send_frames

REPLAY_MS = 200
REPLAY_FRAMES = REPLAY_MS // 20


def history_texts(stream: FakeStream) -> list[tuple[str, str]]:
    """(role, text) of the non-interactive USER/ASSISTANT text blocks a stream received."""
    roles: dict[str, str] = {}
    out: list[tuple[str, str]] = []
    for event in stream.events:
        body = event["event"]
        if "contentStart" in body and body["contentStart"]["type"] == "TEXT":
            start = body["contentStart"]
            if not start["interactive"] and start["role"] in ("USER", "ASSISTANT"):
                roles[start["contentName"]] = start["role"]
        elif "textInput" in body and body["textInput"]["contentName"] in roles:
            out.append((roles[body["textInput"]["contentName"]], body["textInput"]["content"]))
    return out


def check_no_lost_frames(streams: list[FakeStream], total: int, replay_frames: int) -> None:
    """Each stream got a contiguous run of frames; each run starts inside the replay window
    before the previous one ended; together they hold every frame, in order."""
    runs = [counters(s.audio_chunks) for s in streams]
    runs = [r for r in runs if r]
    expected_next = 0
    for run in runs:
        assert run == list(range(run[0], run[0] + len(run))), "frames out of order or missing"
        assert run[0] <= expected_next, f"gap: frames {expected_next}..{run[0] - 1} lost"
        assert run[0] >= expected_next - replay_frames - 1, "replayed more than the window"
        expected_next = run[-1] + 1
    assert expected_next == total


async def test_continuation_switches_twice_and_loses_no_frame() -> None:
    # A stream that outlives 2 s is cut with ModelTimeoutException (Nova's 8 min, compressed):
    # continuation at 0.4 s must always get there first.
    scenario = Scenario.each_stream(
        answer_each_utterance(after_audio_ms=400, user_text="Hi", assistant_text="Hello."),
        time_limit_s=2.0,
    )
    async with FakeBedrock(scenario) as fake:
        backend, session, got = await open_session(
            fake,
            continuation_threshold_s=0.4,
            continuation_max_defer_s=0.3,
            audio_replay_ms=REPLAY_MS,
        )
        sent = 0
        while len(fake.streams) < 3:
            sent = await send_frames(session, sent, 1, pace=0.004)
        sent = await send_frames(session, sent, 50, pace=0.004)
        await session.send(ev.EndSession())
        await got.wait_end()
        await session.aclose()
        await backend.aclose()
        streams = fake.streams
        assert len(streams) >= 3
        assert not any(s.time_limit_hit for s in streams)
        check_no_lost_frames(streams, sent, REPLAY_FRAMES)
        for earlier, later in itertools.pairwise(streams):
            assert earlier.event_names[-3:] == ["contentEnd", "promptEnd", "sessionEnd"]
            assert later.event_names[:2] == ["sessionStart", "promptStart"]
        # The conversation so far is replayed into later streams.
        assert got.of(ev.UserTranscript)
        assert ("USER", "Hi") in history_texts(streams[-1])
        assert not got.of(ev.BackendFailed)
        await fake.wait_for_disconnect()
    await assert_no_leaked_tasks()


async def test_continuation_fires_while_the_user_is_silent() -> None:
    async with FakeBedrock(Scenario((StreamPlan(time_limit_s=1.5),))) as fake:
        backend, session, got = await open_session(fake, continuation_threshold_s=0.3)
        await fake.wait_for_streams(3, timeout=5)  # no audio sent at all
        assert not any(s.time_limit_hit for s in fake.streams)
        assert not got.events
        await session.aclose()
        await backend.aclose()
    await assert_no_leaked_tasks()


async def test_continuation_waits_for_the_answer_to_finish() -> None:
    async def first(stream: FakeStream) -> None:
        await stream.wait_audio(40)
        await stream.user_transcript("Tell me more.")
        await stream.speak(["A slow answer."], audio_ms=800, pace=0.1)

    async with FakeBedrock(Scenario.sequence(first, StreamPlan())) as fake:
        backend, session, got = await open_session(
            fake, continuation_threshold_s=0.2, continuation_max_defer_s=30
        )
        await send_frames(session, 0, 2)
        await got.wait_for(ev.AssistantTurnEnded)
        await fake.wait_for_streams(2)
        # Stream 2 was prepared early, but only switched to once the answer was complete.
        await fake.streams[1].wait_for(
            lambda: ("ASSISTANT", "A slow answer.") in history_texts(fake.streams[1])
        )
        assert history_texts(fake.streams[1]) == [
            ("USER", "Tell me more."),
            ("ASSISTANT", "A slow answer."),
        ]
        await session.aclose()
        await backend.aclose()
    await assert_no_leaked_tasks()


async def test_transient_failure_reconnects_once_with_history_and_audio() -> None:
    async def then_fail(stream: FakeStream) -> None:
        await stream.wait_audio(100)
        await stream.reply("Remember the number seven.", "I will.", audio_ms=100)
        await stream.wait_audio(100)
        await stream.send_exception("ModelStreamErrorException", "boom")

    scenario = Scenario.sequence(
        then_fail,
        answer_each_utterance(
            after_audio_ms=300, user_text="What number?", assistant_text="Seven."
        ),
    )
    async with FakeBedrock(scenario) as fake:
        backend, session, got = await open_session(fake, audio_replay_ms=REPLAY_MS)
        sent = await send_frames(session, 0, 5)
        await got.wait_for(ev.AssistantTurnEnded)
        while len(fake.streams) < 2:
            sent = await send_frames(session, sent, 1, pace=0.005)
        sent = await send_frames(session, sent, 20)
        await got.wait_for(ev.AssistantTurnEnded, 2)
        assert not got.of(ev.BackendFailed)
        assert ev.AssistantText("Seven.", True) in got.events
        assert history_texts(fake.streams[1]) == [
            ("USER", "Remember the number seven."),
            ("ASSISTANT", "I will."),
        ]
        await session.send(ev.EndSession())
        await got.wait_end()
        check_no_lost_frames(fake.streams, sent, REPLAY_FRAMES + 5)
        await session.aclose()
        await backend.aclose()
    await assert_no_leaked_tasks()


async def test_connection_loss_reconnects() -> None:
    async def drop(stream: FakeStream) -> None:
        await stream.wait_audio(60)
        stream.drop_connection()

    async with FakeBedrock(
        Scenario.sequence(drop, answer_each_utterance(after_audio_ms=60))
    ) as fake:
        backend, session, got = await open_session(fake)
        sent = 0
        while len(fake.streams) < 2:
            sent = await send_frames(session, sent, 1, pace=0.005)
        await send_frames(session, sent, 5)
        await got.wait_for(ev.AssistantTurnEnded)
        assert not got.of(ev.BackendFailed)
        await session.aclose()
        await backend.aclose()
    await assert_no_leaked_tasks()


async def test_a_second_failure_in_a_row_gives_up() -> None:
    scenario = Scenario.sequence(
        fail_after("ModelStreamErrorException", audio_ms=40),
        fail_after("InternalServerException"),
    )
    async with FakeBedrock(scenario) as fake:
        backend, session, got = await open_session(fake, reconnects=1, retry_backoff_s=0.01)
        sent = 0
        while not got.ended:
            sent = await send_frames(session, sent, 1, pace=0.005)
            assert sent < 2000
        (failed,) = got.of(ev.BackendFailed)
        assert failed.reason == "BACKEND_UNAVAILABLE" and failed.retryable
        assert "InternalServerException" in failed.message
        assert len(fake.streams) == 2
        await session.aclose()
        await backend.aclose()
    await assert_no_leaked_tasks()
