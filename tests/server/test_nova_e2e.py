"""A gRPC client talks to Sonicwire whose nova-sonic backend drives the real AWS SDK against the
local Bedrock endpoint (HTTP/2 + TLS + event-stream framing): turns, tools, barge-in,
continuation with counted frames, error statuses, cancel clean-up."""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
import pytest

from sonicwire.server.app import RunningServer
from sonicwire.server.backends.nova_sonic.backend import NovaSonicBackend
from sonicwire.server.testing.fake_bedrock import FakeBedrock
from sonicwire.server.testing.fake_scenario import (
    Scenario,
    answer_each_utterance,
    fail_after,
    http_error,
)
from sonicwire.server.testing.fake_stream import FakeStream
from sonicwire.server.testing.server import running_server
from sonicwire.v1 import voice_service_pb2 as pb
from sonicwire.v1 import voice_service_pb2_grpc as pb_grpc

from .helpers import error_reason

FRAME = 640
# Processing off: the front end then passes audio through bit-exact, so frames can be counted.
RAW_AUDIO = pb.SessionConfig(
    echo_cancellation=pb.EchoCancellationSettings(disabled=True),
    noise_suppression=pb.NoiseSuppressionSettings(disabled=True),
    output_format=pb.AudioFormat(sample_rate_hz=24000),
)


def counted(counter: int) -> bytes:
    return struct.pack("<h", counter + 1) * (FRAME // 2)


@asynccontextmanager
async def nova_server(
    scenario: Scenario, **options: str
) -> AsyncIterator[tuple[FakeBedrock, RunningServer, pb_grpc.VoiceServiceStub]]:
    async with FakeBedrock(scenario) as fake:
        backend = NovaSonicBackend.from_options(
            **{"retry_backoff_s": "0.01", **fake.backend_options(), **options}
        )
        async with running_server(backend=backend) as server:
            async with grpc.aio.insecure_channel(server.target) as channel:
                yield fake, server, pb_grpc.VoiceServiceStub(channel)
        await fake.wait_for_disconnect()


async def read_until(call: object, kind: str, seen: list[pb.ConverseResponse]) -> None:
    async with asyncio.timeout(20):
        while True:
            response = await call.read()  # type: ignore[attr-defined]
            assert response is not grpc.aio.EOF, f"ended before {kind}"
            seen.append(response)
            if response.WhichOneof("response") == kind:
                return


async def send_frames(call: object, start: int, count: int, pace: float = 0.005) -> int:
    for counter in range(start, start + count):
        await call.write(pb.ConverseRequest(audio=pb.AudioInput(audio=counted(counter))))  # type: ignore[attr-defined]
        await asyncio.sleep(pace)
    return start + count


async def test_full_turn_audio_in_transcripts_and_audio_out() -> None:
    script = answer_each_utterance(
        after_audio_ms=300, user_text="what time is it", assistant_text="It is noon.", audio_ms=400
    )
    async with nova_server(Scenario.each_stream(script)) as (fake, _server, stub):
        call = stub.Converse()
        await call.write(pb.ConverseRequest(config=RAW_AUDIO))
        seen: list[pb.ConverseResponse] = []
        await read_until(call, "session_started", seen)
        assert seen[0].session_started.backend == "nova-sonic"
        await send_frames(call, 0, 20)
        await read_until(call, "turn_complete", seen)
        transcripts = [
            (r.transcript.role, r.transcript.text, r.transcript.final)
            for r in seen
            if r.HasField("transcript")
        ]
        assert (pb.ROLE_USER, "what time is it", True) in transcripts
        assert (pb.ROLE_ASSISTANT, "It is noon.", True) in transcripts
        audio = b"".join(r.audio.audio for r in seen if r.HasField("audio"))
        assert len(audio) == pytest.approx(24000 * 2 * 0.4, rel=0.05)  # 400 ms at 24 kHz
        assert seen[-1].turn_complete.stop_reason == pb.STOP_REASON_END_TURN
        await call.done_writing()
        rest: list[pb.ConverseResponse] = []
        await _drain(call, rest)
        assert await call.code() == grpc.StatusCode.OK
        assert any(r.HasField("usage") for r in seen + rest)
        stream = fake.streams[0]
        assert stream.event_names[:2] == ["sessionStart", "promptStart"]
        assert stream.event_names[-2:] == ["promptEnd", "sessionEnd"]


async def test_tool_round_trip() -> None:
    async def script(stream: FakeStream) -> None:
        await stream.wait_audio(200)
        await stream.user_transcript("what time is it in Tokyo")
        await stream.tool_use("get_date_time", {"timezone": "Asia/Tokyo"}, "tool-1")
        result = await stream.wait_tool_result("tool-1")
        await stream.speak([f"The tool said {json.loads(result)['timezone']}."], audio_ms=200)

    async with nova_server(Scenario.each_stream(script)) as (fake, _server, stub):
        call = stub.Converse()
        await call.write(pb.ConverseRequest(config=RAW_AUDIO))
        seen: list[pb.ConverseResponse] = []
        await read_until(call, "session_started", seen)
        await send_frames(call, 0, 15)
        await read_until(call, "turn_complete", seen)
        tool_call = next(r.tool_call for r in seen if r.HasField("tool_call"))
        assert (tool_call.name, tool_call.executor) == ("get_date_time", pb.TOOL_EXECUTOR_SERVER)
        result = next(r.tool_call_result for r in seen if r.HasField("tool_call_result"))
        assert result.status == pb.TOOL_STATUS_OK
        assert any("Asia/Tokyo" in r.transcript.text for r in seen if r.HasField("transcript"))
        # Tools reached Nova as toolSpec with the schema as a JSON string.
        prompt = next(e for e in fake.streams[0].events if "promptStart" in e["event"])
        tools = prompt["event"]["promptStart"]["toolConfiguration"]["tools"]
        names = {t["toolSpec"]["name"] for t in tools}
        assert {"get_date_time", "track_order"} <= names
        assert all(isinstance(t["toolSpec"]["inputSchema"]["json"], str) for t in tools)
        call.cancel()


async def test_nova_barge_in_reaches_the_client() -> None:
    async def script(stream: FakeStream) -> None:
        await stream.wait_audio(100)
        await stream.user_transcript("tell me a long story")
        await stream.text("ASSISTANT", "SPECULATIVE", "Once upon a time", "PARTIAL_TURN")
        await stream.audio_block(
            bytes(24000 * 2 * 2), sample_rate=24000, stop_reason="PARTIAL_TURN"
        )
        await stream.wait_audio(200)
        await stream.interrupted()

    async with nova_server(Scenario.each_stream(script)) as (_fake, _server, stub):
        call = stub.Converse()
        await call.write(pb.ConverseRequest(config=RAW_AUDIO))
        seen: list[pb.ConverseResponse] = []
        await read_until(call, "session_started", seen)
        sender = asyncio.create_task(send_frames(call, 0, 40, pace=0.02))
        await read_until(call, "interruption", seen)
        assert seen[-1].interruption.source == pb.INTERRUPTION_SOURCE_BACKEND
        await read_until(call, "turn_complete", seen)
        assert seen[-1].turn_complete.stop_reason == pb.STOP_REASON_INTERRUPTED
        # Far less than the 2 s answer went out: pacing kept the rest on the server.
        audio = b"".join(r.audio.audio for r in seen if r.HasField("audio"))
        assert 0 < len(audio) < 24000 * 2 * 2 * 0.75
        await sender
        call.cancel()


async def test_continuation_twice_through_grpc_loses_no_frame() -> None:
    scenario = Scenario.each_stream(
        answer_each_utterance(after_audio_ms=400, user_text="Hi", assistant_text="Hello."),
        time_limit_s=2.0,
    )
    options = {
        "continuation_threshold_s": "0.4",
        "continuation_max_defer_s": "0.3",
        "audio_replay_ms": "200",
    }
    async with nova_server(scenario, **options) as (fake, _server, stub):
        call = stub.Converse()
        await call.write(pb.ConverseRequest(config=RAW_AUDIO))
        seen: list[pb.ConverseResponse] = []
        await read_until(call, "session_started", seen)
        reader = asyncio.create_task(_drain(call, seen))
        sent = 0
        async with asyncio.timeout(30):
            while len(fake.streams) < 3:
                sent = await send_frames(call, sent, 5)
        sent = await send_frames(call, sent, 50)
        await call.done_writing()
        await reader
        assert await call.code() == grpc.StatusCode.OK
        streams = fake.streams
        assert len(streams) >= 3 and not any(s.time_limit_hit for s in streams)
        received: set[int] = set()
        for stream in streams:
            for chunk in stream.audio_chunks:
                (value,) = struct.unpack_from("<h", chunk)
                received.add(value - 1)
        assert received >= set(range(sent)), (
            f"lost frames: {sorted(set(range(sent)) - received)[:10]}"
        )


async def _drain(call: object, seen: list[pb.ConverseResponse]) -> None:
    while (response := await call.read()) is not grpc.aio.EOF:  # type: ignore[attr-defined]
        seen.append(response)


@pytest.mark.parametrize(
    ("plan", "code", "reason"),
    [
        (
            fail_after("ThrottlingException", audio_ms=100),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "BACKEND_THROTTLED",
        ),
        (
            fail_after("ValidationException", audio_ms=100),
            grpc.StatusCode.INVALID_ARGUMENT,
            "BACKEND_VALIDATION_FAILED",
        ),
        (
            http_error(403, "AccessDeniedException"),
            grpc.StatusCode.UNAVAILABLE,
            "BACKEND_AUTH_FAILED",
        ),
        (
            http_error(429, "ThrottlingException"),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "BACKEND_THROTTLED",
        ),
        (
            http_error(503, "ServiceUnavailableException"),
            grpc.StatusCode.UNAVAILABLE,
            "BACKEND_UNAVAILABLE",
        ),
    ],
    ids=["throttled", "validation", "forbidden", "http-429", "http-503"],
)
async def test_backend_errors_become_statuses(
    plan: object, code: grpc.StatusCode, reason: str
) -> None:
    async with nova_server(Scenario.sequence(plan, plan, plan)) as (_fake, server, stub):  # type: ignore[arg-type]
        call = stub.Converse()

        async def microphone() -> None:
            # Enough audio to trigger the scripted failure, then no write is in flight when the
            # server ends the stream (a write racing the end can turn the status into INTERNAL
            # on the client: grpc/grpc#36066).
            with contextlib.suppress(grpc.aio.AioRpcError, asyncio.InvalidStateError):
                await call.write(pb.ConverseRequest(config=RAW_AUDIO))
                await send_frames(call, 0, 8, pace=0)  # 160 ms: past the 100 ms trigger

        writer = asyncio.create_task(microphone())
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            async with asyncio.timeout(30):
                await _drain(call, [])
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
        assert caught.value.code() == code
        assert error_reason(caught.value) == reason
        assert not server.runtime.conversations


async def test_cancel_closes_the_bedrock_stream() -> None:
    script = answer_each_utterance(after_audio_ms=100, audio_ms=3000)
    async with nova_server(Scenario.each_stream(script)) as (fake, server, stub):
        call = stub.Converse()
        await call.write(pb.ConverseRequest(config=RAW_AUDIO))
        seen: list[pb.ConverseResponse] = []
        await read_until(call, "session_started", seen)
        await send_frames(call, 0, 10)
        await read_until(call, "audio", seen)
        call.cancel()
        await fake.wait_for_disconnect(timeout=10)
        assert await server.runtime.wait_idle(10)
