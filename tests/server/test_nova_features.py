"""Issue 15 item 7 over gRPC (server on loopback, nova-sonic backend, real SDK, local Bedrock
endpoint): toolChoice reaches Nova's promptStart (a choice naming no offered tool is refused
before any stream opens); the assistant speaks first (Nova 2: a hidden typed turn; Nova 1: a
spoken cue)."""

from __future__ import annotations

import asyncio
import json

import grpc
import pytest

from sonicwire.server.backends.nova_sonic.speak_first import LEAD_MS, load_cue
from sonicwire.server.runtime import DEFAULT_SPEAK_FIRST_PROMPT
from sonicwire.server.testing.fake_scenario import Scenario
from sonicwire.server.testing.fake_stream import FakeStream
from sonicwire.v1 import voice_service_pb2 as pb

from .helpers import error_reason
from .test_nova_e2e import RAW_AUDIO, _drain, nova_server, read_until


def with_choice(mode: int, name: str = "") -> pb.SessionConfig:
    config = pb.SessionConfig()
    config.CopyFrom(RAW_AUDIO)
    config.tool_choice.mode = mode  # type: ignore[assignment]
    config.tool_choice.tool_name = name
    return config


@pytest.mark.parametrize(
    ("mode", "name", "expected"),
    [
        (pb.TOOL_CHOICE_MODE_TOOL, "get_date_time", {"tool": {"name": "get_date_time"}}),
        (pb.TOOL_CHOICE_MODE_ANY, "", {"any": {}}),
        (pb.TOOL_CHOICE_MODE_AUTO, "", {"auto": {}}),
        (pb.TOOL_CHOICE_MODE_UNSPECIFIED, "", None),
    ],
    ids=["tool", "any", "auto", "unset"],
)
async def test_tool_choice_reaches_prompt_start(
    mode: int, name: str, expected: dict[str, object] | None
) -> None:
    async with nova_server(Scenario()) as (fake, _server, stub):
        call = stub.Converse()
        await call.write(pb.ConverseRequest(config=with_choice(mode, name)))
        await read_until(call, "session_started", [])
        await fake.wait_for_streams(1)
        prompt = next(e for e in fake.streams[0].events if "promptStart" in e["event"])
        tools = prompt["event"]["promptStart"]["toolConfiguration"]
        assert tools.get("toolChoice") == expected
        call.cancel()


@pytest.mark.parametrize(
    ("mode", "name"),
    [
        (pb.TOOL_CHOICE_MODE_TOOL, "no_such_tool"),
        (pb.TOOL_CHOICE_MODE_TOOL, ""),
        (pb.TOOL_CHOICE_MODE_ANY, "get_date_time"),
    ],
    ids=["unknown-tool", "tool-without-name", "name-without-tool-mode"],
)
async def test_a_bad_tool_choice_is_refused_before_bedrock(mode: int, name: str) -> None:
    async with nova_server(Scenario()) as (fake, _server, stub):
        call = stub.Converse()
        await call.write(pb.ConverseRequest(config=with_choice(mode, name)))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _drain(call, [])
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_reason(caught.value) == "TOOL_CHOICE_INVALID"
        assert fake.streams == []


async def greet_when_prompted(stream: FakeStream) -> None:
    """Nova 2 answering the hidden typed turn: the assistant speaks first."""
    await stream.wait_event("textInput", timeout=3600)
    await stream.speak(["Hello! How can I help?"], audio_ms=200)


async def test_assistant_speaks_first() -> None:
    async with nova_server(Scenario.each_stream(greet_when_prompted)) as (fake, _server, stub):
        config = pb.SessionConfig()
        config.CopyFrom(RAW_AUDIO)
        config.assistant_speaks_first = True
        call = stub.Converse()
        await call.write(pb.ConverseRequest(config=config))
        seen: list[pb.ConverseResponse] = []
        await read_until(call, "turn_complete", seen)  # no audio sent at all
        assert seen[-1].turn_complete.stop_reason == pb.STOP_REASON_END_TURN
        said = [r.transcript for r in seen if r.HasField("transcript")]
        assert [(t.role, t.text) for t in said if t.final] == [
            (pb.ROLE_ASSISTANT, "Hello! How can I help?")
        ]
        assert sum(len(r.audio.audio) for r in seen if r.HasField("audio")) > 0
        events = fake.streams[0].events
        starts = [e["event"]["contentStart"] for e in events if "contentStart" in e["event"]]
        typed = [s for s in starts if s["type"] == "TEXT" and s["interactive"]]
        assert [s["role"] for s in typed] == ["USER"]
        prompt = next(
            e["event"]["textInput"]
            for e in events
            if "textInput" in e["event"]
            and e["event"]["textInput"]["contentName"] == typed[0]["contentName"]
        )
        assert prompt["content"] == DEFAULT_SPEAK_FIRST_PROMPT
        call.cancel()


async def greet_on_the_cue(stream: FakeStream) -> None:
    """Nova 1: it hears the spoken cue (after the lead silence), transcribes it as a user
    would have said it, and speaks first as its system prompt tells it to."""
    await stream.wait_event("contentStart", lambda c: c.get("type") == "AUDIO", timeout=3600)
    cue = load_cue(stream.input_rate)
    await stream.wait_for(lambda: cue in bytes(stream.audio), timeout=3600)
    await stream.text("USER", "SPECULATIVE", "Ready", "PARTIAL_TURN")
    await stream.user_transcript("Ready.")
    await stream.speak(["Hello! How can I help?"], audio_ms=200)


@pytest.mark.parametrize("rate", [16000, 8000], ids=["16k", "mulaw-8k"])
async def test_nova1_speaks_first_on_a_spoken_cue(rate: int) -> None:
    scenario = Scenario.each_stream(greet_on_the_cue)
    async with nova_server(scenario, model_id="amazon.nova-sonic-v1:0") as (fake, _s, stub):
        config = pb.SessionConfig()
        config.CopyFrom(RAW_AUDIO)
        config.assistant_speaks_first = True
        if rate == 8000:
            config.input_format.CopyFrom(
                pb.AudioFormat(encoding=pb.AUDIO_ENCODING_MULAW, sample_rate_hz=8000)
            )
        call = stub.Converse()
        await call.write(pb.ConverseRequest(config=config))
        seen: list[pb.ConverseResponse] = []
        await read_until(call, "session_started", seen)

        async def microphone() -> None:  # the caller's line is live (and loud) meanwhile
            loud = b"\x55" * (rate // 50) if rate == 8000 else b"\x00\x10" * (rate // 50)
            while True:
                await call.write(pb.ConverseRequest(audio=pb.AudioInput(audio=loud)))
                await asyncio.sleep(0.02)

        mic = asyncio.create_task(microphone())
        try:
            await read_until(call, "turn_complete", seen)
        finally:
            mic.cancel()
        assert seen[-1].turn_complete.stop_reason == pb.STOP_REASON_END_TURN
        said = [r.transcript for r in seen if r.HasField("transcript")]
        assert {(t.role, t.text) for t in said} == {(pb.ROLE_ASSISTANT, "Hello! How can I help?")}
        assert not any(t.role == pb.ROLE_USER for t in said)  # the cue is no user's turn
        stream = fake.streams[0]
        system = next(
            e["event"]["textInput"]["content"] for e in stream.events if "textInput" in e["event"]
        )
        assert "the single word 'ready'" in system
        assert DEFAULT_SPEAK_FIRST_PROMPT in system
        # Nova heard the lead silence, then the cue whole, before any microphone audio.
        lead = bytes(rate * LEAD_MS // 1000 * 2)
        assert bytes(stream.audio).startswith(lead + load_cue(rate))
        assert stream.input_rate == rate
        # Then the microphone again: the caller's audio follows the cue.
        after = len(lead) + len(load_cue(rate))
        await stream.wait_for(lambda: any(bytes(stream.audio)[after:]))
        call.cancel()


async def answer_after_the_result(stream: FakeStream) -> None:
    """Nova 2 async tool: the answer is cut by a barge-in, the tool keeps running, and Nova
    speaks its result when it arrives."""
    await stream.wait_audio(100, timeout=3600)
    await stream.user_transcript("where is my order")
    await stream.text("ASSISTANT", "SPECULATIVE", "Let me check.", "PARTIAL_TURN")
    await stream.audio_block(bytes(24_000 * 2 * 3), sample_rate=24_000, stop_reason="PARTIAL_TURN")
    await stream.tool_use("lookup_order", {"order_id": "A1"}, "tool-1")
    result = await stream.wait_tool_result("tool-1", timeout=3600)
    await stream.speak([f"Your order is {json.loads(result)['status']}."], audio_ms=100)


@pytest.mark.parametrize("keep", [True, False], ids=["continue", "cancel"])
async def test_a_tool_can_keep_running_through_a_barge_in(speech_16k: bytes, keep: bool) -> None:
    lookup = pb.ToolDefinition(
        name="lookup_order",
        description="Look up an order.",
        parameters_json_schema=json.dumps(
            {"type": "object", "properties": {"order_id": {"type": "string"}}}
        ),
        timeout_ms=30_000,
        continue_on_interruption=keep,
    )
    async with nova_server(Scenario.each_stream(answer_after_the_result)) as (fake, _s, stub):
        config = pb.SessionConfig()
        config.CopyFrom(RAW_AUDIO)
        config.client_tools.append(lookup)
        call = stub.Converse()
        await call.write(pb.ConverseRequest(config=config))
        seen: list[pb.ConverseResponse] = []
        await read_until(call, "session_started", seen)
        for _ in range(10):
            await call.write(pb.ConverseRequest(audio=pb.AudioInput(audio=bytes(640))))
        await read_until(call, "tool_call", seen)
        for i in range(0, len(speech_16k) - 639, 640):  # the user talks over the answer
            await call.write(pb.ConverseRequest(audio=pb.AudioInput(audio=speech_16k[i : i + 640])))
            await asyncio.sleep(0.002)
        await read_until(call, "interruption", seen)
        assert seen[-1].interruption.source == pb.INTERRUPTION_SOURCE_BARGE_IN
        if keep:
            # The call survived: the client answers it, Nova speaks the result.
            await call.write(
                pb.ConverseRequest(
                    tool_result=pb.ToolResult(
                        tool_call_id="tool-1", content='{"status": "shipped"}'
                    )
                )
            )
            await read_until(call, "turn_complete", seen)
            await read_until(call, "turn_complete", seen)
            said = [r.transcript.text for r in seen if r.HasField("transcript")]
            assert "Your order is shipped." in said
            result = next(r.tool_call_result for r in seen if r.HasField("tool_call_result"))
            assert result.status == pb.TOOL_STATUS_OK
        else:
            await read_until(call, "tool_call_result", seen)
            assert seen[-1].tool_call_result.status == pb.TOOL_STATUS_CANCELLED
            await fake.streams[0].wait_for(lambda: bool(tool_results(fake.streams[0])))
            assert "error" in json.loads(tool_results(fake.streams[0])[0])
        call.cancel()


def tool_results(stream: FakeStream) -> list[str]:
    bodies = (e.get("event", {}).get("toolResult") for e in stream.events)
    return [str(b.get("content")) for b in bodies if isinstance(b, dict)]


async def test_greedy_decoding_sends_temperature_zero() -> None:
    async with nova_server(Scenario()) as (fake, _server, stub):
        config = pb.SessionConfig()
        config.CopyFrom(RAW_AUDIO)
        config.inference.greedy = True
        call = stub.Converse()
        await call.write(pb.ConverseRequest(config=config))
        await read_until(call, "session_started", [])
        await fake.wait_for_streams(1)
        start = next(e for e in fake.streams[0].events if "sessionStart" in e["event"])
        assert start["event"]["sessionStart"]["inferenceConfiguration"]["temperature"] == 0
        call.cancel()
    # Without it, temperature 0 in the config means "the backend's default" (0.7).
    async with nova_server(Scenario()) as (fake, _server, stub):
        call = stub.Converse()
        await call.write(pb.ConverseRequest(config=RAW_AUDIO))
        await read_until(call, "session_started", [])
        await fake.wait_for_streams(1)
        start = next(e for e in fake.streams[0].events if "sessionStart" in e["event"])
        assert start["event"]["sessionStart"]["inferenceConfiguration"]["temperature"] == 0.7
        call.cancel()
