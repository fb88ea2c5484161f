"""The local backend when the core cuts an answer: barge-in and CancelResponse at each point of
a turn (while audio plays, while a tool runs, after the answer ended), a tool result that
outlived its turn, and speech over the answer that the core did not treat as a barge-in. Test
speakers are espeak-ng voices, never the engine's own piper voice."""

from __future__ import annotations

import asyncio

from sonicwire.server.backends.local.engine import LocalBackend
from sonicwire.server.core import events as ev
from sonicwire.server.testing.local_harness import MicStream, ToolBox, run_turn

from .conftest import Say, open_session


async def test_barge_in_cuts_the_answer_at_once(
    backend: LocalBackend, toolbox: ToolBox, say: Say
) -> None:
    session = await open_session(backend, toolbox)
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
    session = await open_session(backend, toolbox)
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
    session = await open_session(backend, toolbox)
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
    session = await open_session(backend, toolbox)
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
    session = await open_session(backend, toolbox)
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
    session = await open_session(backend, toolbox)
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
