"""The in-process channel (`sonicwire.server.local_channel`): grpc.aio semantics, no network.

Real parts: a real server (`running_server`, echo backend) and its own handlers, reached by the
SDK and by raw generated-style calls through ``RunningServer.local_channel()``; a few hand-made
handlers for what the real service cannot be made to do on demand (never read, hang, raise).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest
from grpc import aio

from sonicwire.client import (
    AutoResume,
    Client,
    InvalidArgumentError,
    NotFoundError,
    UnauthenticatedError,
    UnavailableError,
)
from sonicwire.client.events import Transcript
from sonicwire.server.backends.echo import EchoBackend
from sonicwire.server.local_channel import LocalChannel
from sonicwire.server.local_rpc import WINDOW_BYTES, HandlerRegistry, LocalServer, Pipe
from sonicwire.server.testing.server import running_server
from sonicwire.v1 import voice_service_pb2 as pb
from tests.faults.streams import eventually, released
from tests.server.helpers import config_request, error_reason

pytestmark = pytest.mark.timeout(60)

CONVERSE = "/sonicwire.v1.VoiceService/Converse"


async def _settle(turns: int = 50) -> None:
    """Let every task that can run, run (no clock involved)."""
    for _ in range(turns):
        await asyncio.sleep(0)


# -- the real service through the SDK ------------------------------------------------------


async def test_sdk_conversation_unary_calls_and_health_in_process() -> None:
    async with running_server(backend=EchoBackend()) as server:
        channel = server.local_channel()
        client = Client(server.target, channel=channel)
        assert [v.id for v in await client.list_voices()]
        assert str(await client.health("sonicwire.v1.VoiceService")) == "SERVING"
        with pytest.raises(NotFoundError):
            await client.health("no.such.Service")
        async with client.converse() as conversation:
            await conversation.send_text("over the local channel")
            await conversation.end_input()
            texts = [e.text async for e in conversation if isinstance(e, Transcript)]
        assert "You said: over the local channel" in texts
        await _settle()
        assert server.local is not None and server.local.live_calls == 0
        await channel.close()


async def test_abort_trailers_become_the_sdks_typed_error() -> None:
    async with running_server(backend=EchoBackend(), api_keys=("sk_right",)) as server:
        client = Client(server.target, api_key="sk_wrong", channel=server.local_channel())
        with pytest.raises(UnauthenticatedError) as caught:
            async with client.converse():
                pass
        assert caught.value.reason == "API_KEY_INVALID"
        with pytest.raises(UnauthenticatedError):
            await client.list_voices()


async def test_first_message_rule_reaches_a_raw_call_with_its_error_info() -> None:
    async with running_server(backend=EchoBackend()) as server:
        channel = server.local_channel()
        call = channel.stream_stream(
            CONVERSE,
            request_serializer=pb.ConverseRequest.SerializeToString,
            response_deserializer=pb.ConverseResponse.FromString,
        )()
        await call.write(pb.ConverseRequest(text=pb.TextInput(text="no config first")))
        with pytest.raises(aio.AioRpcError) as caught:
            await call.read()
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_reason(caught.value) == "FIRST_MESSAGE_NOT_CONFIG"
        assert await call.code() == grpc.StatusCode.INVALID_ARGUMENT
        # Writes after the call ended fail the way grpc.aio's do.
        with pytest.raises(asyncio.InvalidStateError):
            await call.write(pb.ConverseRequest(text=pb.TextInput(text="late")))


@pytest.mark.parametrize(
    "payload", [b"\x0a\x04\x1a\x02\xff\xfe", b"\xff" * 64], ids=["bad-utf8", "garbage"]
)
async def test_undecodable_bytes_are_invalid_argument_request_undecodable(payload: bytes) -> None:
    async with running_server(backend=EchoBackend()) as server:
        channel = server.local_channel()
        call = channel.stream_stream(CONVERSE)()  # no serializer: raw bytes cross as they are
        await call.write(payload)
        with pytest.raises(aio.AioRpcError) as caught:
            await call.read()
        unary = channel.unary_unary("/sonicwire.v1.VoiceService/ListVoices")
        with pytest.raises(aio.AioRpcError) as unary_caught:
            await unary(b"\x0a\x02\xff\xfe")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(caught.value) == "REQUEST_UNDECODABLE"
    assert unary_caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(unary_caught.value) == "REQUEST_UNDECODABLE"


async def test_oversize_request_is_resource_exhausted_before_the_handler() -> None:
    async with running_server(backend=EchoBackend(), max_message_bytes=4096) as server:
        channel = server.local_channel()
        call = channel.stream_stream(
            CONVERSE,
            request_serializer=pb.ConverseRequest.SerializeToString,
            response_deserializer=pb.ConverseResponse.FromString,
        )()
        await call.write(config_request())
        first = await call.read()
        assert first.WhichOneof("response") == "session_started"
        await call.write(pb.ConverseRequest(audio=pb.AudioInput(audio=b"\0" * 8000)))
        with pytest.raises(aio.AioRpcError) as caught:
            while True:
                await call.read()
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "larger than max" in (caught.value.details() or "")


async def _oversize_errors(channel: aio.Channel) -> list[tuple[grpc.StatusCode, str]]:
    """The errors for a too-large streamed request and a too-large unary one on ``channel``."""
    call = channel.stream_stream(
        CONVERSE, request_serializer=pb.ConverseRequest.SerializeToString
    )()
    await call.write(config_request())
    await call.write(pb.ConverseRequest(audio=pb.AudioInput(audio=b"\0" * 8000)))
    errors = []
    with pytest.raises(aio.AioRpcError) as streamed:
        while True:
            await call.read()
    errors.append((streamed.value.code(), streamed.value.details() or ""))
    list_voices = channel.unary_unary(
        "/sonicwire.v1.VoiceService/ListVoices",
        request_serializer=pb.ListVoicesRequest.SerializeToString,
    )
    with pytest.raises(aio.AioRpcError) as unary:
        await list_voices(pb.ListVoicesRequest(model="m" * 8000))
    errors.append((unary.value.code(), unary.value.details() or ""))
    return errors


async def _over_both[T](probe: Callable[[aio.Channel], Awaitable[T]], **config: Any) -> tuple[T, T]:
    """What ``probe`` sees over loopback gRPC, then in process, on one real server."""
    async with running_server(backend=EchoBackend(), **config) as server:
        async with aio.insecure_channel(server.target) as network:
            over_grpc = await probe(network)
        return over_grpc, await probe(server.local_channel())


async def test_oversize_requests_fail_in_process_exactly_as_over_grpc() -> None:
    # The details become the SDK error's message (and the browser's close reason): same words.
    over_grpc, in_process = await _over_both(_oversize_errors, max_message_bytes=4096)
    assert [code for code, _ in over_grpc] == [grpc.StatusCode.RESOURCE_EXHAUSTED] * 2
    assert in_process == over_grpc


async def _metadata_outcomes(channel: aio.Channel) -> list[object]:
    converse = channel.stream_stream(
        CONVERSE,
        request_serializer=pb.ConverseRequest.SerializeToString,
        response_deserializer=pb.ConverseResponse.FromString,
    )
    outcomes: list[object] = []
    # A bytes value of an ordinary key reaches the handler as str (the request id is echoed).
    call = converse(metadata=(("x-request-id", b"rid-1"),))
    await call.write(config_request())
    await call.read()
    outcomes.append([v for k, v in await call.initial_metadata() if k == "x-request-id"])
    call.cancel()
    # Metadata gRPC cannot send: the call fails before any handler runs.
    for bad in (("X-Request-Id", "rid"), ("x-request-id", "line\nbreak"), ("x-note", "café")):
        with pytest.raises(aio.AioRpcError) as caught:
            await converse(metadata=(bad,)).read()
        outcomes.append((caught.value.code(), caught.value.details()))
    return outcomes


async def test_metadata_reaches_the_handler_in_process_as_over_grpc() -> None:
    # A short idle timeout: a call wrongly served waits for it, then fails with IDLE_TIMEOUT.
    over_grpc, in_process = await _over_both(_metadata_outcomes, idle_timeout_s=2)
    assert over_grpc[0] == ["rid-1"]
    assert over_grpc[1:] == [(grpc.StatusCode.INTERNAL, "Invalid metadata")] * 3
    assert in_process == over_grpc


async def test_streams_ended_every_way_leave_no_task_call_or_stream_slot_behind() -> None:
    async with running_server(backend=EchoBackend()) as server:
        channel = server.local_channel()
        converse = channel.stream_stream(
            CONVERSE,
            request_serializer=pb.ConverseRequest.SerializeToString,
            response_deserializer=pb.ConverseResponse.FromString,
        )
        await _settle()
        before = asyncio.all_tasks()

        async def fed() -> AsyncIterator[pb.ConverseRequest]:
            yield config_request()
            while True:
                yield pb.ConverseRequest(text=pb.TextInput(text="again"))
                await asyncio.sleep(0)

        for round_ in range(40):
            way = round_ % 4
            call = converse(fed()) if way == 3 else converse()
            if way != 3:
                await call.write(config_request())
            assert (await call.read()).WhichOneof("response") == "session_started"
            if way == 1:  # half-close, read to the end
                await call.done_writing()
                while await call.read() is not aio.EOF:
                    pass
            else:  # cancelled mid-stream (way 3: with its request iterator still feeding)
                if way == 2:
                    await call.write(pb.ConverseRequest(text=pb.TextInput(text="hi")))
                call.cancel()
        await eventually(lambda: released(server))
        await _settle()
        assert server.local is not None
        assert (server.local.live_calls, len(channel._calls)) == (0, 0)
        assert asyncio.all_tasks() - before == set()


async def test_drain_ends_in_process_conversations_and_refuses_new_ones() -> None:
    async with running_server(backend=EchoBackend()) as server:
        client = Client(server.target, channel=server.local_channel(), auto_resume=AutoResume.off())
        async with client.converse() as conversation:
            drain = asyncio.create_task(server.drain(grace_s=0.2))
            with pytest.raises(UnavailableError) as caught:
                async for _ in conversation:
                    pass
            await drain
        assert caught.value.reason == "SERVER_DRAINING"
        with pytest.raises(UnavailableError):
            async with Client(
                server.target, channel=server.local_channel(), retry=None, timeout=2
            ).converse():
                pass


# -- hand-made handlers for the channel's own semantics ------------------------------------


class _Handlers:
    """A tiny service whose streaming methods record what happened to them."""

    def __init__(self) -> None:
        self.cancelled = asyncio.Event()
        self.release = asyncio.Event()
        self.received: list[bytes] = []

    async def echo(self, requests: AsyncIterator[bytes], context: Any) -> AsyncIterator[bytes]:
        async for request in requests:
            yield request

    async def never_read(
        self, requests: AsyncIterator[bytes], context: Any
    ) -> AsyncIterator[bytes]:
        await self.release.wait()
        async for request in requests:
            self.received.append(request)
        yield b"done"

    async def flood(self, requests: AsyncIterator[bytes], context: Any) -> AsyncIterator[bytes]:
        while True:
            yield b"x" * 1000

    async def hang(self, requests: AsyncIterator[bytes], context: Any) -> AsyncIterator[bytes]:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        yield b""

    async def reader(self, requests: AsyncIterator[bytes], context: Any) -> None:
        # the reader/writer style: context.read() until EOF, context.write() per message
        while (message := await context.read()) is not aio.EOF:
            await context.write(message.upper())

    async def fail(self, requests: AsyncIterator[bytes], context: Any) -> AsyncIterator[bytes]:
        yield b"before"
        raise RuntimeError("boom")

    async def abort(self, requests: AsyncIterator[bytes], context: Any) -> AsyncIterator[bytes]:
        yield b"first"
        await context.abort(
            grpc.StatusCode.FAILED_PRECONDITION, "nope", trailing_metadata=(("why", "because"),)
        )


def _channel() -> tuple[LocalChannel, LocalServer, _Handlers]:
    handlers = _Handlers()
    methods = {
        name: grpc.stream_stream_rpc_method_handler(getattr(handlers, name))
        for name in ("echo", "never_read", "flood", "hang", "fail", "abort", "reader")
    }
    registry = HandlerRegistry()
    registry.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("t.T", methods),))
    server = LocalServer(registry)
    return LocalChannel(server), server, handlers


async def test_write_read_eof_and_half_close() -> None:
    channel, _, _ = _channel()
    call = channel.stream_stream("/t.T/echo")()
    for chunk in (b"a", b"bb", b""):
        await call.write(chunk)
    await call.done_writing()
    with pytest.raises(asyncio.InvalidStateError):
        await call.write(b"after done_writing")
    assert [await call.read() for _ in range(3)] == [b"a", b"bb", b""]
    assert await call.read() is aio.EOF
    assert await call.code() == grpc.StatusCode.OK
    assert call.done()


async def test_reader_writer_style_handler() -> None:
    channel, _, _ = _channel()
    call = channel.stream_stream("/t.T/reader")()
    await call.write(b"abc")
    await call.done_writing()
    assert [message async for message in call] == [b"ABC"]
    assert await call.code() == grpc.StatusCode.OK


async def test_messages_before_an_abort_then_the_status_with_its_trailers() -> None:
    channel, _, _ = _channel()
    call = channel.stream_stream("/t.T/abort")()
    assert await call.read() == b"first"
    with pytest.raises(aio.AioRpcError) as caught:
        await call.read()
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert caught.value.details() == "nope"
    assert ("why", "because") in list(caught.value.trailing_metadata())


async def test_unexpected_handler_exception_is_unknown(caplog: pytest.LogCaptureFixture) -> None:
    channel, _, _ = _channel()
    call = channel.stream_stream("/t.T/fail")()
    assert await call.read() == b"before"
    with pytest.raises(aio.AioRpcError) as caught:
        await call.read()
    assert caught.value.code() == grpc.StatusCode.UNKNOWN
    assert "boom" in (caught.value.details() or "")


async def test_unknown_method_is_unimplemented() -> None:
    channel, _, _ = _channel()
    with pytest.raises(aio.AioRpcError) as caught:
        await channel.unary_unary("/t.T/missing")(b"")
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_client_cancel_cancels_the_handler() -> None:
    channel, server, handlers = _channel()
    call = channel.stream_stream("/t.T/hang")()
    seen: list[tuple[bool, bool]] = []
    call.add_done_callback(lambda c: seen.append((c.done(), c.cancelled())))
    reader = asyncio.create_task(call.read())
    await _settle()
    assert call.cancel()
    assert seen == [(True, True)]  # done callbacks run at once and already see the cancel
    await asyncio.wait_for(handlers.cancelled.wait(), 10)
    with pytest.raises(asyncio.CancelledError):
        await reader
    assert call.cancelled()
    assert await call.code() == grpc.StatusCode.CANCELLED
    with pytest.raises(asyncio.InvalidStateError):
        await call.write(b"late")
    await _settle()
    assert server.live_calls == 0


async def test_deadline_is_deadline_exceeded_and_cancels_the_handler() -> None:
    channel, _, handlers = _channel()
    call = channel.stream_stream("/t.T/hang")(timeout=0.05)
    with pytest.raises(aio.AioRpcError) as caught:
        await call.read()
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    await asyncio.wait_for(handlers.cancelled.wait(), 10)


async def test_a_handler_that_never_reads_makes_the_writer_wait() -> None:
    channel, server, handlers = _channel()
    call = channel.stream_stream("/t.T/never_read")()
    written = 0

    async def write_forever() -> None:
        nonlocal written
        while True:
            await call.write(b"\0" * 640)
            written += 1

    writer = asyncio.create_task(write_forever())
    await _settle(500)
    assert not writer.done()
    # Bounded by the window (and every message counts its 5-byte frame prefix).
    assert 0 < written * 645 <= WINDOW_BYTES + 645
    stalled = written
    await _settle(200)
    assert written == stalled
    handlers.release.set()  # the handler reads now: the writer moves on
    await _settle(200)
    assert written > stalled
    writer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await writer
    # A task cancelled inside write() cancels the call, as in grpc.aio.
    assert call.cancelled()
    await _settle()
    assert server.live_calls == 0


async def test_a_client_that_never_reads_makes_the_handler_wait() -> None:
    channel, server, _ = _channel()
    call = channel.stream_stream("/t.T/flood")()
    await _settle(500)
    exchange = call._exchange  # type: ignore[attr-defined]
    buffered = exchange.responses.buffered_bytes
    assert 0 < buffered <= WINDOW_BYTES + 1005
    await _settle(200)
    assert exchange.responses.buffered_bytes == buffered  # the handler waits, memory does not grow
    assert await call.read() == b"x" * 1000
    call.cancel()
    await _settle()
    assert server.live_calls == 0


async def test_stop_refuses_new_calls_and_ends_live_ones_with_unavailable() -> None:
    channel, server, handlers = _channel()
    call = channel.stream_stream("/t.T/hang")()
    await _settle()
    await server.stop(0)
    assert handlers.cancelled.is_set()
    with pytest.raises(aio.AioRpcError) as caught:
        await call.read()
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    with pytest.raises(aio.AioRpcError) as refused:
        await channel.stream_stream("/t.T/echo")().read()
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_channel_close_cancels_its_calls() -> None:
    channel, server, handlers = _channel()
    call = channel.stream_stream("/t.T/hang")()
    await _settle()
    await channel.close()
    assert handlers.cancelled.is_set()
    assert await call.code() == grpc.StatusCode.CANCELLED
    assert server.live_calls == 0
    with pytest.raises(aio.UsageError):
        channel.stream_stream("/t.T/echo")()


async def test_invalid_argument_from_the_real_service_keeps_its_reason() -> None:
    async with running_server(backend=EchoBackend()) as server:
        client = Client(server.target, channel=server.local_channel())
        config = pb.SessionConfig()
        config.input_format.sample_rate_hz = 12345
        with pytest.raises(InvalidArgumentError) as caught:
            async with client.converse(config):
                pass
    assert caught.value.reason == "AUDIO_FORMAT_UNSUPPORTED"


async def test_pipe_try_put_queues_only_what_put_would_queue_without_waiting() -> None:
    pipe = Pipe(limit=1000)
    assert pipe.try_put(b"a" * 600)
    assert pipe.try_put(b"b" * 600)  # the window had room when this one came (like `put`)
    assert not pipe.try_put(b"c")  # full: nothing queued, the caller must `put` and wait
    assert pipe.buffered_bytes == 2 * (600 + 5)
    assert await pipe.get() == b"a" * 600
    assert pipe.try_put(b"c")
    pipe.close()
    assert not pipe.try_put(b"d")  # half-closed: refused, as `put` refuses it
    assert not await pipe.put(b"d")
    broken = Pipe()
    broken.break_(keep=True)
    assert not broken.try_put(b"e")
    assert [await pipe.get(), await pipe.get(), await pipe.get()] == [b"b" * 600, b"c", None]
