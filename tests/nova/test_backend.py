"""The Nova Sonic backend over the real SDK against the local Bedrock endpoint."""

from __future__ import annotations

import json

from sonicwire.server.backends.base import BackendOptions, ToolDescription
from sonicwire.server.backends.nova_sonic.backend import NovaSonicBackend
from sonicwire.server.core import events as ev
from sonicwire.server.core.history import Message
from sonicwire.server.core.settings import InferenceSettings
from sonicwire.server.testing.fake_bedrock import FakeBedrock
from sonicwire.server.testing.fake_scenario import Scenario, answer_each_utterance
from sonicwire.server.testing.fake_stream import FakeStream, tone
from tests.nova.conftest import (
    assert_no_leaked_tasks,
    check_golden,
    counters,
    normalized,
    open_session,
    send_frames,
)

TOOL = ToolDescription(
    "get_date_time",
    "Current date and time.",
    {"type": "object", "properties": {"timezone": {"type": "string"}}},
)


async def test_full_turn_audio_in_transcripts_and_audio_out() -> None:
    async with FakeBedrock(
        answer_each_utterance(
            after_audio_ms=200, user_text="What time is it?", assistant_text=["It is noon.", "Bye."]
        )
    ) as fake:
        backend, session, got = await open_session(fake)
        await send_frames(session, 0, 10)
        await got.wait_for(ev.AssistantTurnEnded)
        assert got.of(ev.UserTranscript) == [ev.UserTranscript("What time is it?", True)]
        texts = [(e.text, e.final) for e in got.of(ev.AssistantText)]
        assert texts == [("It is noon.", False), ("It is noon.", True)]
        audio = got.of(ev.AssistantAudio)
        assert audio and all(a.sample_rate == 16_000 for a in audio)  # the client's rate
        assert b"".join(a.pcm for a in audio) == tone(300, 16_000)
        assert isinstance(got.events[-1], ev.UsageReported | ev.AssistantTurnEnded)
        assert counters(fake.streams[0].audio_chunks) == list(range(10))
        assert fake.streams[0].model_id == "amazon.nova-2-sonic-v1:0"
        assert session.history == (
            Message(ev.Role.USER, "What time is it?"),
            Message(ev.Role.ASSISTANT, "It is noon."),
        )
        await session.send(ev.EndSession())
        await got.wait_end()
        await session.aclose()
        await backend.aclose()
        await fake.wait_for_disconnect()
    await assert_no_leaked_tasks()


async def test_scripted_conversation_sends_the_golden_sequence() -> None:
    """Setup (voice, prompt, tools, inference, history), audio, a tool round trip, a typed
    turn and the orderly close, exactly as Bedrock receives them."""

    async def script(stream: FakeStream) -> None:
        await stream.wait_audio(200)
        await stream.user_transcript("What time is it?")
        await stream.tool_use("get_date_time", {"timezone": "UTC"}, "tool-1")
        result = json.loads(await stream.wait_tool_result("tool-1"))
        await stream.speak([f"It is {result['time']}."], audio_ms=100)
        typed = await stream.wait_event("textInput", lambda e: e.get("content") == "Thanks!")
        await stream.speak([f"You said {typed['content']}"], audio_ms=100)

    async with FakeBedrock(script) as fake:
        options = BackendOptions(
            session_id="golden",
            voice="Tiffany",
            system_prompt="You are a helpful assistant.",
            inference=InferenceSettings(
                max_tokens=512, temperature=0.5, endpointing_sensitivity="MEDIUM"
            ),
            tools=(TOOL,),
            output_sample_rate=48_000,
            history=(
                Message(ev.Role.USER, "My name is Ada."),
                Message(ev.Role.ASSISTANT, "Hello Ada."),
            ),
        )
        backend, session, got = await open_session(fake, options)
        await send_frames(session, 0, 10)
        (call,) = await got.wait_for(ev.ToolRequested)
        assert call == ev.ToolRequested("tool-1", "get_date_time", '{"timezone": "UTC"}')
        await session.send(
            ev.SendToolResult("tool-1", "get_date_time", '{"time": "12:00"}', ev.ToolStatus.OK)
        )
        await got.wait_for(ev.AssistantTurnEnded)
        assert ev.AssistantText("It is 12:00.", True) in got.events
        assert all(a.sample_rate == 24_000 for a in got.of(ev.AssistantAudio))  # 48k: native
        await session.send(ev.SendText("Thanks!"))
        await got.wait_for(ev.AssistantTurnEnded, 2)
        assert ev.AssistantText("You said Thanks!", True) in got.events
        await session.send(ev.EndSession())
        await got.wait_end()
        await session.aclose()
        await backend.aclose()
        check_golden("session_conversation.jsonl", normalized(fake.received_events))
        stream = fake.streams[0]
        assert stream.end_envelope_received and stream.input_ended
    await assert_no_leaked_tasks()


async def test_nova_barge_in_interrupts_and_drops_the_rest_of_the_answer() -> None:
    async def script(stream: FakeStream) -> None:
        await stream.wait_audio(100)
        await stream.user_transcript("Tell me a story.")
        await stream.text("ASSISTANT", "SPECULATIVE", "Once upon a time", "PARTIAL_TURN")
        await stream.audio_block(tone(200), stop_reason="PARTIAL_TURN")
        await stream.wait_audio(100)  # the user talks over the answer
        await stream.interrupted()
        await stream.audio_block(tone(100))  # leftovers of the cut answer
        await stream.reply("Stop.", "Okay.", audio_ms=100)

    async with FakeBedrock(script) as fake:
        backend, session, got = await open_session(fake)
        await send_frames(session, 0, 5)
        await got.wait_for(ev.AssistantAudio)
        await send_frames(session, 5, 5)
        await got.wait_for(ev.AssistantTurnEnded)
        kinds = [type(e).__name__ for e in got.events if not isinstance(e, ev.UsageReported)]
        cut = kinds.index("AssistantInterrupted")
        assert kinds.count("AssistantInterrupted") == 1
        assert kinds[cut + 1] == "UserTranscript"  # nothing of the cut answer after the signal
        assert ev.AssistantText("Okay.", True) in got.events
        await session.aclose()
        await backend.aclose()
    await assert_no_leaked_tasks()


async def test_server_side_barge_in_keeps_only_what_the_user_heard() -> None:
    async def script(stream: FakeStream) -> None:
        await stream.wait_audio(100)
        await stream.user_transcript("Count to three.")
        await stream.speak(["One.", "Two.", "Three."], audio_ms=100, pace=0.05)
        await stream.wait_audio(100)
        await stream.reply("Thanks.", "You're welcome.", audio_ms=100)

    async with FakeBedrock(script) as fake:
        backend, session, got = await open_session(fake)
        await send_frames(session, 0, 5)
        await got.wait_for(ev.AssistantAudio)
        await session.send(ev.CancelResponse("One", 300))
        assert got.events[-1] == ev.AssistantTurnEnded(ev.StopReason.INTERRUPTED) or (
            await got.wait_for(ev.AssistantTurnEnded)
        )
        cancelled_at = len(got.events)
        await send_frames(session, 5, 5)
        await got.wait_for(ev.AssistantTurnEnded, 2)
        after = got.events[cancelled_at:]
        assert not any(
            isinstance(e, ev.AssistantText) and e.text in ("Two.", "Three.") for e in after
        )
        assert session.history == (
            Message(ev.Role.USER, "Count to three."),
            Message(ev.Role.ASSISTANT, "One"),
            Message(ev.Role.USER, "Thanks."),
            Message(ev.Role.ASSISTANT, "You're welcome."),
        )
        await session.aclose()
        await backend.aclose()
    await assert_no_leaked_tasks()


async def test_end_session_closes_orderly_and_aclose_mid_answer_is_prompt() -> None:
    async def slow(stream: FakeStream) -> None:
        await stream.wait_audio(60)
        await stream.user_transcript("Go on.")
        await stream.speak(["Long answer."], audio_ms=2000, pace=0.2)

    async with FakeBedrock(Scenario.each_stream(slow)) as fake:
        backend = NovaSonicBackend.from_options(**fake.backend_options())
        first = await backend.open(BackendOptions(session_id="a"))
        await first.send(ev.EndSession())
        async for _ in first.events():
            pass
        names = fake.streams[0].event_names
        assert names[-3:] == ["contentEnd", "promptEnd", "sessionEnd"]
        assert fake.streams[0].input_ended
        await first.aclose()

        second = await backend.open(BackendOptions(session_id="b"))
        await send_frames(second, 0, 3)
        await fake.streams[1].wait_event("audioInput")
        await second.aclose()  # mid-answer: promptly, no waiting for the answer to finish
        await second.aclose()  # twice is fine
        await fake.wait_for_disconnect(timeout=3)
        assert fake.streams[1].input_ended or fake.streams[1].closed
        await backend.aclose()
    await assert_no_leaked_tasks()
