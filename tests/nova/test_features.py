"""Issue 15 item 7, pure parts: toolChoice encoding and validation."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import pytest

from sonicwire.server import validate
from sonicwire.server.backends.base import ToolDescription
from sonicwire.server.backends.nova_sonic import codec
from sonicwire.server.core.errors import ProtocolError
from sonicwire.server.core.settings import InferenceSettings
from sonicwire.v1 import voice_service_pb2 as pb

TOOL = ToolDescription("lookup", "Look up.", {"type": "object", "properties": {}})


def prompt(inference: InferenceSettings, tools: tuple[ToolDescription, ...] = (TOOL,)) -> dict:  # type: ignore[type-arg]
    setup = codec.StreamSetup("matthew", 24_000, inference=inference, tools=tools)
    return codec.prompt_start("p", setup)["event"]["promptStart"]


def test_tool_choice_is_encoded_in_bedrocks_shape() -> None:
    assert "toolChoice" not in prompt(InferenceSettings())["toolConfiguration"]
    named = InferenceSettings(tool_choice="tool", tool_choice_name="lookup")
    assert prompt(named)["toolConfiguration"]["toolChoice"] == {"tool": {"name": "lookup"}}
    assert prompt(InferenceSettings(tool_choice="any"))["toolConfiguration"]["toolChoice"] == {
        "any": {}
    }
    # Without tools there is no toolConfiguration at all (validation refuses ANY/TOOL then).
    assert "toolConfiguration" not in prompt(InferenceSettings(tool_choice="auto"), ())


def test_tool_choice_validation() -> None:
    validate.check_tool_choice_shape(pb.ToolChoice())
    validate.check_tool_choice(pb.ToolChoice(mode=pb.TOOL_CHOICE_MODE_AUTO), [])
    validate.check_tool_choice(
        pb.ToolChoice(mode=pb.TOOL_CHOICE_MODE_TOOL, tool_name="lookup"), ["lookup"]
    )
    bad_shapes = [
        pb.ToolChoice(mode=pb.TOOL_CHOICE_MODE_TOOL),
        pb.ToolChoice(mode=pb.TOOL_CHOICE_MODE_ANY, tool_name="lookup"),
        pb.ToolChoice(mode=99),  # type: ignore[arg-type]
        pb.ToolChoice(mode=pb.TOOL_CHOICE_MODE_TOOL, tool_name="x" * 65),
    ]
    for choice in bad_shapes:
        with pytest.raises(ProtocolError) as caught:
            validate.check_tool_choice_shape(choice)
        assert caught.value.reason == "TOOL_CHOICE_INVALID"
    for choice, offered in [
        (pb.ToolChoice(mode=pb.TOOL_CHOICE_MODE_ANY), []),
        (pb.ToolChoice(mode=pb.TOOL_CHOICE_MODE_TOOL, tool_name="other"), ["lookup"]),
    ]:
        with pytest.raises(ProtocolError, match="tool_choice"):
            validate.check_tool_choice(choice, offered)


async def test_speak_first_prompt_is_answered_but_not_kept_in_history() -> None:
    from sonicwire.server.backends.base import BackendOptions
    from sonicwire.server.core import events as ev
    from sonicwire.server.testing.fake_bedrock import FakeBedrock
    from sonicwire.server.testing.fake_stream import FakeStream
    from tests.nova.conftest import assert_no_leaked_tasks, open_session

    async def greet(stream: FakeStream) -> None:
        await stream.wait_event("textInput", timeout=3600)
        await stream.speak(["Welcome."], audio_ms=100)

    async with FakeBedrock(greet) as fake:
        options = BackendOptions(session_id="s", speak_first="Greet the user.")
        backend, session, got = await open_session(fake, options)
        await got.wait_for(ev.AssistantTurnEnded)
        assert ev.AssistantText("Welcome.", True) in got.events
        # The greeting is the conversation's first message; the prompt is not a user turn.
        assert [(m.role, m.text) for m in session.history] == [(ev.Role.ASSISTANT, "Welcome.")]
        await session.aclose()
        await backend.aclose()
    await assert_no_leaked_tasks()


async def test_nova1_speak_first_cue_is_answered_and_kept_out_of_the_history() -> None:
    from sonicwire.server.backends.base import BackendOptions
    from sonicwire.server.backends.nova_sonic.speak_first import load_cue
    from sonicwire.server.core import events as ev
    from sonicwire.server.testing.fake_bedrock import FakeBedrock
    from sonicwire.server.testing.fake_stream import FakeStream
    from tests.nova.conftest import assert_no_leaked_tasks, open_session

    async def greet_on_cue(stream: FakeStream) -> None:
        await stream.wait_for(lambda: load_cue(16_000) in bytes(stream.audio), timeout=3600)
        await stream.user_transcript("Ready.")
        await stream.speak(["Welcome."], audio_ms=100)
        await stream.wait_audio(100, timeout=3600)
        await stream.user_transcript("What's new?")  # the user's own turn is not hidden

    async with FakeBedrock(greet_on_cue) as fake:
        options = BackendOptions(session_id="s", speak_first="Greet the user.")
        backend, session, got = await open_session(fake, options, model_id="amazon.nova-sonic-v1:0")
        await got.wait_for(ev.AssistantTurnEnded)
        for _ in range(10):
            await session.send(ev.SendAudio(bytes(640)))
        await got.wait(lambda events: ev.UserTranscript("What's new?", True) in events)
        assert [e for e in got.events if isinstance(e, ev.UserTranscript)] == [
            ev.UserTranscript("What's new?", True)
        ]
        assert [(m.role, m.text) for m in session.history] == [
            (ev.Role.ASSISTANT, "Welcome."),
            (ev.Role.USER, "What's new?"),
        ]
        await session.aclose()
        await backend.aclose()
    await assert_no_leaked_tasks()


def test_cue_parts() -> None:

    from sonicwire.server.backends.nova_sonic.config import NovaSonicSettings
    from sonicwire.server.backends.nova_sonic.speak_first import (
        FRAME_MS,
        LEAD_MS,
        CuePlayer,
        CueTranscripts,
        cue_instruction,
        load_cue,
    )
    from sonicwire.server.core import events as ev
    from sonicwire.server.core.errors import BackendError

    cue16, cue8 = load_cue(16_000), load_cue(8_000)
    assert 300 <= len(cue16) // 32 <= 800  # "ready": a few hundred ms
    assert len(cue8) * 2 == len(cue16)
    player = CuePlayer(cue16, 16_000)
    frames = [f for f in iter(player.next_frame, None)]
    assert {len(f) for f in frames} == {16_000 * FRAME_MS // 1000 * 2}
    assert b"".join(frames).startswith(bytes(LEAD_MS * 32) + cue16)
    assert player.frames == len(frames)
    hide = CueTranscripts(active=True)
    assert not hide.passes(ev.UserTranscript("Ready", False))
    assert not hide.passes(ev.UserTranscript("Ready.", True))
    assert hide.passes(ev.UserTranscript("Hello", True))  # only the cue's own transcript
    early = CueTranscripts(active=True)
    assert early.passes(ev.AssistantText("Hi", False))
    assert early.passes(ev.UserTranscript("Hello", True))  # Nova answered: nothing to hide
    assert "Greet them." in cue_instruction("Greet them.")
    with pytest.raises(BackendError, match="speak_first_cue"):
        NovaSonicSettings.from_options({}, speak_first_cue="/nonexistent.wav")


@pytest.mark.parametrize("size", [0, 4, 20])
def test_a_truncated_speak_first_cue_is_refused_with_a_reason(tmp_path: Path, size: int) -> None:
    """The wave module's EOFError has no message: the refusal read "speak_first_cue X: " with
    nothing after it."""
    from sonicwire.server.backends.nova_sonic.config import NovaSonicSettings
    from sonicwire.server.backends.nova_sonic.speak_first import load_cue
    from sonicwire.server.core.errors import BackendError

    packaged = files("sonicwire.server.backends.nova_sonic").joinpath("data/ready.wav")
    cut = tmp_path / "cue.wav"
    cut.write_bytes(packaged.read_bytes()[:size])
    with pytest.raises(BackendError, match=r"speak_first_cue .*cue\.wav: truncated: the file ends"):
        NovaSonicSettings.from_options({}, speak_first_cue=str(cut))
    # Cut inside its audio: the whole samples it holds.
    cut.write_bytes(packaged.read_bytes()[:1001])
    assert load_cue(16_000, cut) == load_cue(16_000)[: (1001 - 44) // 2 * 2]


def test_a_barge_in_cancels_only_the_tools_that_do_not_continue() -> None:
    from sonicwire.server.core import events as ev
    from sonicwire.server.core.session import Session
    from tests.core.test_session import ONE_SECOND, of_type, quiet_settings

    def interrupted_with(*calls: tuple[str, str]) -> list[ev.CancelTools]:
        settings = quiet_settings(
            client_tools=frozenset({"slow", "quick"}),
            tools_surviving_interruption=frozenset({"slow"}),
        )
        session = Session("s", settings)
        session.receive_backend(ev.AssistantAudio(ONE_SECOND, 16_000), now=0.0)
        for call_id, name in calls:
            session.receive_backend(ev.ToolRequested(call_id, name, "{}"), now=0.1)
        session.tool_actions()
        session.receive_backend(ev.AssistantInterrupted(), now=0.2)
        return of_type(session.tool_actions(), ev.CancelTools)  # type: ignore[arg-type]

    assert interrupted_with(("c1", "slow"), ("c2", "quick")) == [
        ev.CancelTools("interrupted", ("c2",))
    ]
    assert interrupted_with(("c1", "slow")) == []
    assert interrupted_with(("c2", "quick")) == [ev.CancelTools("interrupted")]


def test_greedy_and_a_temperature_conflict() -> None:
    validate.check_inference(pb.InferenceSettings(greedy=True))
    with pytest.raises(ProtocolError, match="greedy"):
        validate.check_inference(pb.InferenceSettings(greedy=True, temperature=0.5))


async def test_nova1_cue_is_played_again_on_a_stream_that_replaces_it_before_the_answer() -> None:
    """A transient failure during the cue (before Nova answered it): the new stream never
    heard "ready", so it gets the cue again; otherwise Nova 1 never speaks first, and the
    user's first words were hidden as if they were the cue's transcription."""
    import asyncio

    from sonicwire.server.backends.base import BackendOptions
    from sonicwire.server.backends.nova_sonic.speak_first import load_cue
    from sonicwire.server.core import events as ev
    from sonicwire.server.testing.fake_bedrock import FakeBedrock, Scenario
    from sonicwire.server.testing.fake_stream import FakeStream
    from tests.nova.conftest import assert_no_leaked_tasks, open_session

    cue = load_cue(16_000)

    async def fail_in_the_lead(stream: FakeStream) -> None:
        await stream.wait_audio(100)  # the cue's leading silence
        await stream.send_exception("ModelStreamErrorException", "boom")

    async def greet_on_cue(stream: FakeStream) -> None:
        await stream.wait_for(lambda: cue in bytes(stream.audio), timeout=10)
        await stream.user_transcript("Ready.")
        await stream.speak(["Welcome."], audio_ms=100)
        heard = stream.audio_ms
        await stream.wait_for(lambda: stream.audio_ms >= heard + 100, timeout=10)
        await stream.user_transcript("What's new?")  # the user's own turn is not hidden

    async with FakeBedrock(Scenario.sequence(fail_in_the_lead, greet_on_cue)) as fake:
        options = BackendOptions(session_id="s", speak_first="Greet the user.")
        backend, session, got = await open_session(fake, options, model_id="amazon.nova-sonic-v1:0")
        await got.wait_for(ev.AssistantTurnEnded)
        for _ in range(20):
            await session.send(ev.SendAudio(bytes(640)))
            await asyncio.sleep(0.02)
        await got.wait(lambda events: ev.UserTranscript("What's new?", True) in events)
        assert len(fake.streams) == 2 and not got.of(ev.BackendFailed)
        assert [e for e in got.events if isinstance(e, ev.UserTranscript)] == [
            ev.UserTranscript("What's new?", True)
        ]
        await session.aclose()
        await backend.aclose()
    await assert_no_leaked_tasks()


async def test_nova2_speak_first_prompt_is_sent_again_on_a_stream_that_replaces_it() -> None:
    """Nova 2 failed before its greeting: the new stream gets the hidden prompt again (the
    history it replays does not keep it), or the assistant would never speak first."""
    from sonicwire.server.backends.base import BackendOptions
    from sonicwire.server.core import events as ev
    from sonicwire.server.testing.fake_bedrock import FakeBedrock, Scenario
    from sonicwire.server.testing.fake_stream import FakeStream
    from tests.nova.conftest import assert_no_leaked_tasks, open_session

    async def fail_before_greeting(stream: FakeStream) -> None:
        await stream.wait_event("textInput", timeout=10)
        await stream.send_exception("ModelStreamErrorException", "boom")

    async def greet(stream: FakeStream) -> None:
        await stream.wait_event("textInput", timeout=10)
        await stream.speak(["Welcome."], audio_ms=100)

    async with FakeBedrock(Scenario.sequence(fail_before_greeting, greet)) as fake:
        options = BackendOptions(session_id="s", speak_first="Greet the user.")
        backend, session, got = await open_session(fake, options)
        await got.wait_for(ev.AssistantTurnEnded)
        assert ev.AssistantText("Welcome.", True) in got.events
        assert len(fake.streams) == 2 and not got.of(ev.BackendFailed)
        assert [(m.role, m.text) for m in session.history] == [(ev.Role.ASSISTANT, "Welcome.")]
        await session.aclose()
        await backend.aclose()
    await assert_no_leaked_tasks()
