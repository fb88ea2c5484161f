"""The async client against a real grpc.aio server on loopback playing a scripted assistant."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2

from sonicwire.client import (
    AudioOutput,
    Client,
    ConversationClosedError,
    HealthStatus,
    InvalidArgumentError,
    NotFoundError,
    PcmAudio,
    ResourceExhaustedError,
    RetryPolicy,
    Role,
    SessionStarted,
    SpeechActivity,
    ToolCall,
    ToolCallResult,
    ToolStatus,
    Transcript,
    TurnComplete,
    UnauthenticatedError,
    UnavailableError,
    Usage,
    read_wav,
    session_config,
    stream_audio,
    talk,
)
from sonicwire.client.audio import silence
from sonicwire.server.testing.backends import ToolCallingBackend
from sonicwire.server.testing.server import running_server
from sonicwire.v1 import voice_service_pb2 as pb

from .fake_server import (
    REPLY_CHUNKS,
    REPLY_TEXT,
    SERVICE,
    FakeVoiceService,
    LoopbackServer,
    reply_chunk,
)

FAST = RetryPolicy(max_attempts=10, initial_backoff=0.05, max_backoff=0.2, jitter=0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def test_unary_calls_over_the_wire(server: LoopbackServer, fake: FakeVoiceService) -> None:
    async with Client(server.target, api_key="k1") as client:
        voices = await client.list_voices()
        tools = await client.list_tools()
    assert [v.id for v in voices] == ["joe", "amy"] and voices[0].default
    assert [t.name for t in tools] == ["get_date_time"]
    name, metadata = fake.unary_calls[0]
    assert name == "ListVoices" and metadata["x-api-key"] == "k1"
    assert metadata["user-agent"].startswith("sonicwire-python/")


async def test_wrong_api_key_is_unauthenticated(
    server: LoopbackServer, fake: FakeVoiceService
) -> None:
    fake.api_key = "right"
    async with Client(server.target, api_key="wrong") as client:
        with pytest.raises(UnauthenticatedError) as info:
            await client.list_voices()
    assert info.value.reason == "UNAUTHENTICATED"
    async with Client(server.target, api_key="right") as client:
        assert len(await client.list_voices()) == 2


async def test_health(server: LoopbackServer) -> None:
    async with Client(server.target) as client:
        assert await client.health() is HealthStatus.SERVING
        assert await client.health(SERVICE) is HealthStatus.SERVING
        server.set_health(SERVICE, health_pb2.HealthCheckResponse.NOT_SERVING)
        assert await client.health(SERVICE) is HealthStatus.NOT_SERVING
        with pytest.raises(NotFoundError):
            await client.health("no.such.Service")


async def test_scripted_conversation_with_audio_and_a_client_tool(
    server: LoopbackServer, fake: FakeVoiceService, speech_wav: Any
) -> None:
    lookups: list[dict[str, Any]] = []

    async def lookup_order(args: dict[str, Any]) -> dict[str, Any]:
        lookups.append(args)
        return {"order_id": args["order_id"], "status": "shipped"}

    audio = read_wav(speech_wav)
    audio = PcmAudio(audio.pcm + silence(200, 16000), 16000)
    events: list[Any] = []
    async with Client(server.target) as client:
        async with client.converse(
            session_config(), tools={"lookup_order": lookup_order}
        ) as conversation:
            assert conversation.session.tools == ("get_date_time", "lookup_order")
            await stream_audio(conversation, audio, speed=0)
            async for event in conversation:
                events.append(event)
                if isinstance(event, AudioOutput):
                    await conversation.report_playback(event.turn_id, event.offset_ms + 20)
                if isinstance(event, TurnComplete):
                    await conversation.end_input()
    kinds = [type(e) for e in events]
    assert kinds == [
        SessionStarted,
        SpeechActivity,
        SpeechActivity,
        Transcript,
        ToolCall,
        ToolCallResult,
        Transcript,
        *[AudioOutput] * REPLY_CHUNKS,
        TurnComplete,
        Usage,
    ]
    user, assistant = events[3], events[6]
    assert (user.role, user.text) == (Role.USER, "200 ms of speech")
    assert (assistant.role, assistant.text) == (Role.ASSISTANT, REPLY_TEXT)
    assert events[5].status is ToolStatus.OK
    assert lookups == [{"order_id": "42"}]
    assert [e.audio for e in events if isinstance(e, AudioOutput)] == [
        reply_chunk(i) for i in range(REPLY_CHUNKS)
    ]
    rec = fake.recorded[0]
    assert rec.audio_bytes == len(audio.pcm)
    assert [p.played_ms for p in rec.playback] == [20, 40, 60]
    assert rec.half_closed


async def test_invalid_argument_with_reason_from_a_real_status(server: LoopbackServer) -> None:
    config = session_config()
    config.input_format.sample_rate_hz = 44100  # bypass the client-side check
    async with Client(server.target) as client:
        with pytest.raises(InvalidArgumentError) as info:
            async with client.converse(config):
                pytest.fail("must not start")
    error = info.value
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert error.reason == "AUDIO_FORMAT_UNSUPPORTED"
    assert error.domain == "sonicwire.dev"
    assert "44100" in error.message


async def test_error_after_start_ends_the_iteration(
    server: LoopbackServer, fake: FakeVoiceService
) -> None:
    fake.fail_after_start = (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "SESSION_LIMIT_REACHED",
        "session too long",
    )
    async with Client(server.target) as client:
        async with client.converse() as conversation:
            with pytest.raises(ResourceExhaustedError) as info:
                async for _ in conversation:
                    pass
    assert info.value.reason == "SESSION_LIMIT_REACHED"


async def test_connect_retry_reaches_a_server_that_starts_late() -> None:
    port = free_port()
    late = LoopbackServer(FakeVoiceService(), port)
    sleeps: list[float] = []

    async def sleep(delay: float) -> None:
        sleeps.append(delay)
        if len(sleeps) == 1:
            await asyncio.to_thread(late.start)
        await asyncio.sleep(delay)

    try:
        async with Client(f"127.0.0.1:{port}", retry=FAST, sleep=sleep) as client:
            assert await client.health() is HealthStatus.SERVING
            async with client.converse() as conversation:
                assert conversation.session_id == "fake-1"
    finally:
        late.stop()
    assert sleeps  # the first attempt failed with UNAVAILABLE and was retried


async def test_converse_retry_reaches_a_server_that_starts_late() -> None:
    port = free_port()
    late = LoopbackServer(FakeVoiceService(), port)
    sleeps: list[float] = []

    async def sleep(delay: float) -> None:
        sleeps.append(delay)
        if len(sleeps) == 1:
            await asyncio.to_thread(late.start)
        await asyncio.sleep(delay)

    try:
        async with Client(f"127.0.0.1:{port}", retry=FAST, sleep=sleep) as client:
            async with client.converse() as conversation:
                assert conversation.attempts >= 2
    finally:
        late.stop()


async def test_unreachable_server_gives_unavailable_after_the_retries() -> None:
    sleeps: list[float] = []

    async def sleep(delay: float) -> None:
        sleeps.append(delay)
        await asyncio.sleep(delay)

    policy = RetryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.02, jitter=0)
    async with Client(f"127.0.0.1:{free_port()}", retry=policy, sleep=sleep) as client:
        with pytest.raises(UnavailableError):
            await client.list_tools()
    assert sleeps == [0.01, 0.02]


async def test_talk_runs_a_whole_exchange(server: LoopbackServer, fake: FakeVoiceService) -> None:
    seen: list[Any] = []
    async with Client(server.target) as client:
        result = await talk(
            client,
            PcmAudio(b"\x00\x10" * 3200, 16000),  # 200 ms of "speech" (4096: above talk's -36 dBFS)
            text="where is my order?",
            config=session_config(output_sample_rate_hz=24000),
            tools={"lookup_order": lambda args: {"status": "shipped"}},
            speed=0,
            trailing_silence_ms=200,
            on_event=seen.append,
        )
    assert result.session.session_id == "fake-1"
    assert result.text(Role.USER) == "where is my order? 200 ms of speech"
    assert result.text() == f"{REPLY_TEXT} {REPLY_TEXT}"
    assert result.reply.sample_rate_hz == 24000
    assert result.reply.pcm == b"".join(reply_chunk(i, 24000) for i in range(REPLY_CHUNKS)) * 2
    assert result.sent_ms == 400
    assert list(result.events) == seen
    rec = fake.recorded[0]
    assert rec.texts == ["where is my order?"]
    assert len(rec.tool_results) == 2 and rec.half_closed
    assert rec.config is not None and rec.config.input_format.sample_rate_hz == 16000


async def test_talk_needs_some_input(server: LoopbackServer) -> None:
    async with Client(server.target) as client:
        with pytest.raises(ValueError, match="needs audio, text or both"):
            await talk(client)


async def test_early_rejection_keeps_its_status_every_time(
    server: LoopbackServer, fake: FakeVoiceService
) -> None:
    # The server rejects the stream before reading the config while the client is writing
    # it: grpc.aio alone reports INTERNAL for a good share of these (grpc/grpc#36066).
    fake.fail_converse = (grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED", "bad key")
    async with Client(server.target, retry=RetryPolicy.none()) as client:
        for _ in range(30):
            with pytest.raises(UnauthenticatedError):
                async with client.converse():
                    pass


async def test_a_tool_result_after_end_input_is_refused_at_once() -> None:
    # Found by the red-team session (s36): after end_input() the call is half-closed; the
    # write failed inside grpc.aio and the SDK then waited for the call's status, which comes
    # only once the responses are read: a caller reading in the same task waited for good.
    tool = pb.ToolDefinition(name="lookup", description="Looks up.", timeout_ms=30_000)
    async with running_server(backend=ToolCallingBackend()) as real:
        async with Client(real.target) as client:
            config = pb.SessionConfig(client_tools=[tool])
            async with client.converse(config) as conversation:
                await conversation.send_text("call lookup {}")
                call = None
                async for event in conversation:
                    if isinstance(event, ToolCall):
                        call = event
                        break
                assert call is not None
                await conversation.end_input()
                send = conversation.send_tool_result(call.id, '{"found": 1}')
                with pytest.raises(ConversationClosedError, match="before end_input"):
                    await asyncio.wait_for(send, 10)
                outcomes = [e async for e in conversation if isinstance(e, ToolCallResult)]
    assert [o.status for o in outcomes] == [ToolStatus.CANCELLED]
