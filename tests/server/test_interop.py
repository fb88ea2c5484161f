"""A checklist modelled on gRPC's interop cases, against a real loopback server."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from sonicwire.server.backends.echo import EchoBackend
from sonicwire.server.testing.server import running_server
from sonicwire.v1 import voice_service_pb2 as pb
from sonicwire.v1 import voice_service_pb2_grpc as pb_grpc

from .helpers import config_request, error_reason, request_stream


def text(value: str) -> pb.ConverseRequest:
    return pb.ConverseRequest(text=pb.TextInput(text=value))


async def _wait_idle(server: object) -> bool:
    runtime = server.runtime  # type: ignore[attr-defined]
    for _ in range(250):
        if not runtime.conversations and runtime.limiter.active == 0:
            return True
        await asyncio.sleep(0.02)
    return False


async def test_empty_stream() -> None:
    async with running_server(backend=EchoBackend()) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            call = pb_grpc.VoiceServiceStub(channel).Converse(request_stream([]))
            assert [r async for r in call] == []
            assert await call.code() == grpc.StatusCode.OK


async def test_ping_pong() -> None:
    async with running_server(backend=EchoBackend()) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            call = pb_grpc.VoiceServiceStub(channel).Converse()
            await call.write(config_request())
            assert (await call.read()).HasField("session_started")
            for word in ("one", "two", "three"):
                await call.write(text(word))
                replies = []
                while not replies or not replies[-1].HasField("turn_complete"):
                    replies.append(await call.read())
                assert any(r.transcript.text == f"You said: {word}" for r in replies)
            await call.done_writing()
            assert await call.code() == grpc.StatusCode.OK


async def test_cancel_after_begin() -> None:
    async with running_server(backend=EchoBackend()) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            call = pb_grpc.VoiceServiceStub(channel).Converse()
            await call.write(config_request())
            call.cancel()
            assert await call.code() == grpc.StatusCode.CANCELLED
        assert await _wait_idle(server)


async def test_cancel_after_first_response() -> None:
    async with running_server(backend=EchoBackend()) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            call = pb_grpc.VoiceServiceStub(channel).Converse()
            await call.write(config_request())
            assert (await call.read()).HasField("session_started")
            call.cancel()
            assert await call.code() == grpc.StatusCode.CANCELLED
        assert await _wait_idle(server)


async def test_one_millisecond_deadline() -> None:
    async with running_server(backend=EchoBackend()) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            call = pb_grpc.VoiceServiceStub(channel).Converse(timeout=0.001)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call.read()
            assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert await _wait_idle(server)


async def test_status_with_unicode_message() -> None:
    bad = pb.ToolDefinition(name="天気", description="weather")
    async with running_server(backend=EchoBackend()) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            call = pb_grpc.VoiceServiceStub(channel).Converse(
                request_stream([config_request(client_tools=[bad])])
            )
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                async for _ in call:
                    pass
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(caught.value) == "CLIENT_TOOL_INVALID"
    assert "天気" in (caught.value.details() or "")


async def test_unimplemented_method() -> None:
    async with running_server(backend=EchoBackend()) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            method = channel.unary_unary("/sonicwire.v1.VoiceService/NoSuchMethod")
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await method(b"")
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_message_one_byte_over_the_limit() -> None:
    limit = 4096
    async with running_server(backend=EchoBackend(), max_message_bytes=limit) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            stub = pb_grpc.VoiceServiceStub(channel)

            def of_size(size: int) -> pb.ConverseRequest:
                request = pb.ConverseRequest(text=pb.TextInput(text="x"))
                overhead = request.ByteSize() - 1
                request.text.text = "x" * (size - overhead)
                # Varint length prefixes grow with the text; settle on the exact size.
                while request.ByteSize() > size:
                    request.text.text = request.text.text[:-1]
                return request

            at_limit, over = of_size(limit), of_size(limit + 1)
            assert (at_limit.ByteSize(), over.ByteSize()) == (limit, limit + 1)

            async def send(request: pb.ConverseRequest) -> grpc.StatusCode:
                call = stub.Converse(request_stream([config_request(), request]))
                try:
                    async for _ in call:
                        pass
                except grpc.aio.AioRpcError as error:
                    return error.code()
                return grpc.StatusCode.OK

            assert await send(at_limit) == grpc.StatusCode.OK
            assert await send(over) == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert await _wait_idle(server)


async def test_concurrent_stream_limit_in_repeated_waves() -> None:
    async with running_server(backend=EchoBackend(), max_streams=3) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            stub = pb_grpc.VoiceServiceStub(channel)
            for _wave in range(3):
                calls = []
                for _ in range(3):
                    call = stub.Converse()
                    await call.write(config_request())
                    assert (await call.read()).HasField("session_started")
                    calls.append(call)
                extra = stub.Converse()
                # The limit is checked before the first message is read, so no write is needed;
                # a write racing the refusal can turn the status into INTERNAL (grpc#36066).
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await extra.read()
                assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                assert error_reason(caught.value) == "SESSION_LIMIT_REACHED"
                for call in calls:
                    await call.done_writing()
                    assert await call.code() == grpc.StatusCode.OK
                assert await _wait_idle(server)


async def test_per_key_limit_does_not_starve_other_keys() -> None:
    keys = ("key-a", "key-b")
    async with running_server(
        backend=EchoBackend(), api_keys=keys, max_streams_per_key=1
    ) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            stub = pb_grpc.VoiceServiceStub(channel)
            a = stub.Converse(metadata=(("x-api-key", "key-a"),))
            await a.write(config_request())
            assert (await a.read()).HasField("session_started")
            a2 = stub.Converse(metadata=(("x-api-key", "key-a"),))
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await a2.read()
            assert error_reason(caught.value) == "KEY_SESSION_LIMIT_REACHED"
            b = stub.Converse(metadata=(("x-api-key", "key-b"),))
            await b.write(config_request())
            assert (await b.read()).HasField("session_started")
            a.cancel()
            b.cancel()


async def test_custom_metadata_is_echoed() -> None:
    async with running_server(backend=EchoBackend()) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            call = pb_grpc.VoiceServiceStub(channel).Converse(
                request_stream([config_request(), text("hi")]),
                metadata=(("x-request-id", "req-42"), ("x-custom", "ignored")),
            )
            responses = [r async for r in call]
            initial = dict(await call.initial_metadata())
            trailing = dict(await call.trailing_metadata())
    assert initial["x-request-id"] == "req-42"
    assert initial["x-sonicwire-session-id"] == responses[0].session_started.session_id
    assert trailing["x-request-id"] == "req-42"
