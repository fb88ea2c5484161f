"""Issue 15 end to end: the real Nova Sonic service's failure modes, reproduced by the local
Bedrock endpoint (HTTP/2 + TLS + event-stream, real AWS SDK), driven by a gRPC client through a
real Sonicwire server on loopback — in process, and as the ``sonicwire.server --backend
nova-sonic`` command pointed at the endpoint by the standard AWS variables.

Covered: "System instability" on the first stream (retried), double-encoded tool arguments, a
barge-in decided by the server during a tool call (Nova still gets its toolResult), throttling
mid-call (reconnect with history), a prepared continuation stream that dies, and pre-opened
streams that Bedrock aborts when idle.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

import grpc

from sonicwire.server.testing.fake_bedrock import FakeBedrock
from sonicwire.server.testing.fake_scenario import (
    Scenario,
    StreamPlan,
    answer_each_utterance,
    dies_when_prepared,
    system_instability,
)
from sonicwire.server.testing.fake_stream import FakeStream
from sonicwire.v1 import voice_service_pb2 as pb
from sonicwire.v1 import voice_service_pb2_grpc as pb_grpc

from .helpers import server_process
from .test_nova_e2e import RAW_AUDIO, nova_server

FRAME = 640  # 20 ms at 16 kHz
SILENCE = bytes(FRAME)
LOOKUP = pb.ToolDefinition(
    name="lookup_order",
    description="Look up an order by id.",
    parameters_json_schema=json.dumps(
        {"type": "object", "properties": {"order_id": {"type": "string"}}}
    ),
    timeout_ms=30_000,
)


def tool_results(stream: FakeStream) -> list[str]:
    bodies = (e.get("event", {}).get("toolResult") for e in stream.events)
    return [str(b.get("content")) for b in bodies if isinstance(b, dict)]


async def barge_in_during_tool(stream: FakeStream) -> None:
    """Nova starts answering, then asks for a client tool with double-encoded arguments; the
    user talks over it; Nova needs the (cancelled) tool result before it goes on."""
    await stream.wait_audio(100, timeout=3600)
    await stream.user_transcript("where is my order")
    await stream.text("ASSISTANT", "SPECULATIVE", "Let me look that up.", "PARTIAL_TURN")
    await stream.audio_block(bytes(24_000 * 2 * 3), sample_rate=24_000, stop_reason="PARTIAL_TURN")
    await stream.tool_use("lookup_order", {"order_id": "A1"}, "tool-1", double_encoded=True)
    await stream.wait_tool_result("tool-1", timeout=3600)
    # Then Nova is throttled mid-call: the session reconnects with the history.
    await stream.wait_audio(200, timeout=3600)
    await stream.send_exception("ThrottlingException", "Too many requests (fake)")


def failure_scenario() -> Scenario:
    return Scenario.sequence(
        system_instability(),
        barge_in_during_tool,
        # Answers once the barge-in speech is long over (replay + speech + silence).
        answer_each_utterance(
            after_audio_ms=4000, user_text="hello", assistant_text="Welcome back.", max_turns=1
        ),
    )


def config() -> pb.SessionConfig:
    out = pb.SessionConfig()
    out.CopyFrom(RAW_AUDIO)
    out.client_tools.append(LOOKUP)
    return out


async def converse_through_failures(
    stub: pb_grpc.VoiceServiceStub, fake: FakeBedrock, speech: bytes
) -> list[pb.ConverseResponse]:
    """Drive the failure scenario; returns everything the client received."""
    call = stub.Converse()
    await call.write(pb.ConverseRequest(config=config()))
    seen: list[pb.ConverseResponse] = []
    tool_call = asyncio.Event()
    welcomed = asyncio.Event()

    async def reader() -> None:
        while (response := await call.read()) is not grpc.aio.EOF:
            seen.append(response)
            if response.HasField("tool_call"):
                tool_call.set()
            if (
                response.HasField("turn_complete")
                and response.turn_complete.stop_reason == pb.STOP_REASON_END_TURN
                and any("Welcome back." in r.transcript.text for r in seen)
            ):
                welcomed.set()

    reading = asyncio.create_task(reader())
    try:
        async with asyncio.timeout(60):
            # Silence until Nova asks for the tool (the first stream fails and is retried).
            for _ in range(3000):
                if tool_call.is_set():
                    break
                await call.write(pb.ConverseRequest(audio=pb.AudioInput(audio=SILENCE)))
                await asyncio.sleep(0.01)
            assert tool_call.is_set(), "no tool call"
            # The user talks over the answer while the tool call is pending: barge-in.
            for i in range(0, len(speech) - FRAME + 1, FRAME):
                chunk = speech[i : i + FRAME]
                await call.write(pb.ConverseRequest(audio=pb.AudioInput(audio=chunk)))
                await asyncio.sleep(0.005)
            # Silence again until the reconnected stream answers.
            for _ in range(6000):
                if welcomed.is_set():
                    break
                await call.write(pb.ConverseRequest(audio=pb.AudioInput(audio=SILENCE)))
                await asyncio.sleep(0.01)
            assert welcomed.is_set(), "no answer after the reconnect"
        await call.done_writing()
        try:
            async with asyncio.timeout(20):
                await reading
        except TimeoutError:
            kinds = [str(r).replace("\n", " ")[:150] for r in seen if not r.HasField("audio")]
            raise AssertionError(f"call did not end: {kinds}") from None
        assert await call.code() == grpc.StatusCode.OK
    finally:
        reading.cancel()
        with contextlib.suppress(BaseException):
            await reading
    return seen


def check_failure_run(seen: list[pb.ConverseResponse], fake: FakeBedrock) -> None:
    # 1. "System instability" on the first stream: retried (the call ended OK, checked by
    #    the caller); the conversation went on on the next stream.
    assert fake.streams[0].event_names[:2] == ["sessionStart", "promptStart"]
    assert fake.streams[1].audio
    assert seen[0].HasField("session_started")
    # 2. Double-encoded arguments reached the client as the object.
    call = next(r.tool_call for r in seen if r.HasField("tool_call"))
    assert call.name == "lookup_order" and call.executor == pb.TOOL_EXECUTOR_CLIENT
    assert json.loads(call.arguments_json) == {"order_id": "A1"}
    # 3. Server-side barge-in during the tool call: the client saw it, and Nova still got a
    #    (cancelled) toolResult for its toolUse.
    interruption = next(r.interruption for r in seen if r.HasField("interruption"))
    assert interruption.source == pb.INTERRUPTION_SOURCE_BARGE_IN
    (result,) = tool_results(fake.streams[1])
    assert "error" in json.loads(result)
    # 4. Throttling mid-call: a third stream with the history, and the answer came through.
    assert len(fake.streams) == 3
    bodies = [e["event"] for e in fake.streams[2].events]
    history = [b["textInput"]["content"] for b in bodies if "textInput" in b]
    assert "where is my order" in history


async def test_failure_modes_through_grpc(speech_16k: bytes) -> None:
    async with nova_server(failure_scenario()) as (fake, _server, stub):
        seen = await converse_through_failures(stub, fake, speech_16k)
        check_failure_run(seen, fake)


async def slow_answer(stream: FakeStream) -> None:
    await stream.wait_audio(60, timeout=3600)
    await stream.user_transcript("Tell me more.")
    await stream.speak(["A slow answer."], audio_ms=1200, pace=0.1)


async def answer_after_switch(stream: FakeStream) -> None:
    await stream.wait_audio(300, timeout=3600)
    await stream.reply("still there?", "Yes, still here.", audio_ms=100)


async def test_continuation_survives_a_dead_and_idle_prepared_streams_through_grpc() -> None:
    # Stream 2 dies as soon as it is prepared; later streams are aborted after 0.5 s without
    # input (Bedrock's idle abort); the session refreshes prepared streams after 0.25 s.
    scenario = Scenario.sequence(
        slow_answer,
        dies_when_prepared(),
        StreamPlan(answer_after_switch, idle_timeout_s=0.5),
    )
    options = {
        "continuation_threshold_s": "0.5",
        "continuation_max_defer_s": "30",
        "continuation_prepared_idle_s": "0.25",
    }
    async with nova_server(scenario, **options) as (fake, _server, stub):
        call = stub.Converse()
        await call.write(pb.ConverseRequest(config=RAW_AUDIO))
        seen: list[pb.ConverseResponse] = []
        answered = asyncio.Event()

        async def reader() -> None:
            while (response := await call.read()) is not grpc.aio.EOF:
                seen.append(response)
                if "still here" in response.transcript.text:
                    answered.set()

        reading = asyncio.create_task(reader())
        async with asyncio.timeout(60):
            for _ in range(6000):
                if answered.is_set():
                    break
                await call.write(pb.ConverseRequest(audio=pb.AudioInput(audio=SILENCE)))
                await asyncio.sleep(0.01)
        assert answered.is_set()
        await call.done_writing()
        async with asyncio.timeout(20):
            await reading
        assert await call.code() == grpc.StatusCode.OK
        dead = fake.streams[1]
        assert not dead.audio, "switched to the dead prepared stream"
        assert not any(s.idle_timeout_hit for s in fake.streams)
        assert len(fake.streams) >= 4  # idle prepared streams were replaced


async def test_failure_modes_through_the_serve_command(speech_16k: bytes) -> None:
    async with FakeBedrock(failure_scenario()) as fake:
        env = fake.env()
        for variable in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
            env.pop(variable, None)
        async with server_process(
            "--backend", "nova-sonic", "--backend-option", "retry_backoff_s=0.01", env=env
        ) as (_proc, target):
            async with grpc.aio.insecure_channel(target) as channel:
                stub = pb_grpc.VoiceServiceStub(channel)
                seen = await converse_through_failures(stub, fake, speech_16k)
        check_failure_run(seen, fake)
