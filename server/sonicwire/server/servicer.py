"""The gRPC VoiceService: thin translation between protos and the conversation driver.

Authentication runs first (health and reflection are separate services and need no key), then
the stream limits, then the first-message rule; everything after that is the `Conversation`'s.
Every `SonicwireError` becomes a status with an ErrorInfo via ``status.py``, logged in one line.

Requests are decoded by `add_voice_service`'s lenient deserializers: bytes that are not a valid
message (a corrupt protobuf, invalid UTF-8 in a string field) become a sentinel that the handler
turns into INVALID_ARGUMENT ``REQUEST_UNDECODABLE``, where grpcio itself would answer
INTERNAL/UNKNOWN and log a traceback for every such stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, NoReturn

import grpc
from google.protobuf.message import DecodeError, Message

from sonicwire.server import convert, metrics
from sonicwire.server.core import events as ev
from sonicwire.server.core.errors import (
    BackendError,
    IdleTimeout,
    ProtocolError,
    SonicwireError,
)
from sonicwire.server.local_rpc import HandlerSink
from sonicwire.server.runtime import ServerRuntime
from sonicwire.server.status import bounded_message, grpc_code, status_trailers
from sonicwire.server.transcode import StreamAudio
from sonicwire.v1 import voice_service_pb2 as pb
from sonicwire.v1 import voice_service_pb2_grpc as pb_grpc

__all__ = ["VoiceServicer", "add_voice_service"]

log = logging.getLogger(__name__)

# Sentinels the lenient deserializers return for undecodable bytes (compared by identity).
_UNDECODABLE_CONVERSE = pb.ConverseRequest()
_UNDECODABLE_VOICES = pb.ListVoicesRequest()
_UNDECODABLE_TOOLS = pb.ListToolsRequest()
_UNDECODABLE = ProtocolError(
    "REQUEST_UNDECODABLE",
    "the request is not a valid protobuf message of its type (corrupt bytes, or a string field "
    "that is not valid UTF-8)",
)

_EMPTY_AUDIO = ProtocolError("AUDIO_CHUNK_INVALID", "empty audio chunk")


def _lenient(cls: type[Message], sentinel: Message) -> Callable[[bytes], Any]:
    def parse(data: bytes) -> Message:
        try:
            return cls.FromString(data)
        except (DecodeError, RecursionError):
            return sentinel

    return parse


def add_voice_service(servicer: VoiceServicer, server: HandlerSink) -> None:
    """Register ``servicer`` like the generated ``add_VoiceServiceServicer_to_server``, with
    deserializers that never raise (see the module docstring)."""
    handlers = {
        "Converse": grpc.stream_stream_rpc_method_handler(
            servicer.Converse,
            request_deserializer=_lenient(pb.ConverseRequest, _UNDECODABLE_CONVERSE),
            response_serializer=pb.ConverseResponse.SerializeToString,
        ),
        "ListVoices": grpc.unary_unary_rpc_method_handler(
            servicer.ListVoices,
            request_deserializer=_lenient(pb.ListVoicesRequest, _UNDECODABLE_VOICES),
            response_serializer=pb.ListVoicesResponse.SerializeToString,
        ),
        "ListTools": grpc.unary_unary_rpc_method_handler(
            servicer.ListTools,
            request_deserializer=_lenient(pb.ListToolsRequest, _UNDECODABLE_TOOLS),
            response_serializer=pb.ListToolsResponse.SerializeToString,
        ),
    }
    name = pb.DESCRIPTOR.services_by_name["VoiceService"].full_name
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(name, handlers),))
    server.add_registered_method_handlers(name, handlers)


async def _abort(context: grpc.aio.ServicerContext[Any, Any], error: SonicwireError) -> NoReturn:
    """End the call with ``error``'s status (one log line).

    Called outside any ``except`` block, with the error's traceback and context dropped: a
    traceback holds the handler's frames, the frames hold the error (and the client's request,
    up to the message size limit), and that cycle waited for the cyclic GC. Refused streams
    then grew RSS by ~0.7 MB each (200 MB/s under a flood of 190 KB configs).
    """
    error.__traceback__ = error.__context__ = error.__cause__ = None
    log.info("stream ended: %s %s", error.reason, bounded_message(error))
    await context.abort(
        grpc_code(error), bounded_message(error), trailing_metadata=status_trailers(error)
    )


async def _client_events(
    requests: AsyncIterator[pb.ConverseRequest], audio: StreamAudio | None = None
) -> AsyncIterator[ev.ClientEvent]:
    event_from_request = convert.event_from_request
    audio_type = ev.AudioReceived
    async for request in requests:
        if request is _UNDECODABLE_CONVERSE:
            raise _UNDECODABLE
        event = event_from_request(request)
        if type(event) is not audio_type:
            yield event
            continue
        if not event.audio:
            # The gateway refuses empty chunks too: both front doors answer alike.
            raise _EMPTY_AUDIO
        if audio is None:
            yield event
        else:
            # Encoded input (G.711, Opus) is decoded here: the core sees PCM only.
            for pcm in audio.decode_input(event.audio):
                yield audio_type(pcm)


def _request_id(metadata: Iterable[tuple[str, str | bytes]] | None) -> tuple[tuple[str, str], ...]:
    """The caller's ``x-request-id``, echoed back so requests can be traced end to end."""
    for key, value in metadata or ():
        if key == "x-request-id" and isinstance(value, str) and len(value) <= 128:
            return (("x-request-id", value),)
    return ()


class _Unblock:
    """Ends a stream whose handler waits on the transport when its conversation fails.

    The handler awaits each ``context.write`` while HTTP/2 flow control holds it: a client
    that stops reading keeps it there for good, so a failure the conversation decides meanwhile
    (CLIENT_TOO_SLOW, a limit, the drain) would never be read from ``outputs``, and the stream
    slot and the backend session would stay held. The conversation calls this (per stream, on
    failure, only if its consumer is not waiting for outputs; also after a normal end whose
    last outputs were not taken within the stall timeout, or the drain); it cancels the
    handler's task, the blocked write raises CancelledError, and the handler's teardown runs at
    once.
    """

    __slots__ = ("error", "task")

    def __init__(self, task: asyncio.Task[Any] | None) -> None:
        self.task = task
        self.error: SonicwireError | None = None

    def __call__(self, error: SonicwireError) -> None:
        task = self.task
        if task is not None and task is not asyncio.current_task() and not task.done():
            self.error = error
            task.cancel()


class VoiceServicer(pb_grpc.VoiceServiceServicer):
    def __init__(self, runtime: ServerRuntime) -> None:
        self._runtime = runtime

    async def Converse(  # type: ignore[override]
        self,
        request_iterator: AsyncIterator[pb.ConverseRequest],
        context: grpc.aio.ServicerContext[pb.ConverseRequest, pb.ConverseResponse],
    ) -> None:
        # Writes with context.write (what grpc.aio does with each message of a generator
        # handler, minus the generator's round trip): a blocked write is then this task's own
        # await (in `_converse`), which `_Unblock` can interrupt with the teardown running at
        # once.
        runtime = self._runtime
        failure: SonicwireError | None = None
        first: pb.SessionConfig | None = None
        unblock = _Unblock(asyncio.current_task())
        try:
            runtime.check_accepting()
            metadata = context.invocation_metadata()
            caller = runtime.authenticator.authenticate(metadata)
            request_id = _request_id(metadata)
            with runtime.limiter.acquire(caller):
                first = await self._first_message(request_iterator)
                if first is None:
                    return  # an empty stream is a complete, if short, conversation
                # In a frame of its own: after an `_Unblock` the status below may wait for
                # good on a client that reads nothing, and this frame must not hold the
                # conversation (front end, session, history) meanwhile: its slot is free.
                await self._converse(first, caller, request_id, request_iterator, context, unblock)
        except SonicwireError as error:
            failure = error
        except asyncio.CancelledError:
            # Ours (see `_Unblock`) and nobody else's: end with the conversation's status,
            # which a client that reads again gets after what was sent before it.
            task = unblock.task
            if unblock.error is None or task is None or task.uncancel():
                raise
            failure = unblock.error
        if failure is not None:
            first = None  # not held by this frame while grpc keeps the abort's traceback
            # Aborted outside the except block, see `_abort`.
            metrics.STREAMS_REJECTED.labels(failure.reason).inc()
            if isinstance(failure, BackendError):
                metrics.BACKEND_ERRORS.labels(failure.reason).inc()
            if unblock.error is None:
                await _abort(context, failure)
            else:
                # Over gRPC the status waits behind the responses the client has not read; a
                # client that cancels or disconnects meanwhile (or the server's final stop)
                # fails that send, as expected (grpc.aio would log it as an error); its
                # resources were released above. That failure is grpc.aio's public
                # InternalError (the base of cygrpc's ExecuteBatchError, the only one raised
                # here); `context.cancelled()` beforehand cannot replace it, as the cancel
                # lands while the send waits. AbortError, the abort's own end, is not one.
                with contextlib.suppress(grpc.aio.InternalError):
                    await _abort(context, failure)

    async def _converse(
        self,
        first: pb.SessionConfig,
        caller: str,
        request_id: tuple[tuple[str, str], ...],
        request_iterator: AsyncIterator[pb.ConverseRequest],
        context: grpc.aio.ServicerContext[pb.ConverseRequest, pb.ConverseResponse],
        unblock: _Unblock,
    ) -> None:
        """The conversation of one `Converse` stream, from SessionStarted to its end."""
        runtime = self._runtime
        write = context.write
        async with runtime.conversation(first, caller) as (conversation, started):
            conversation.on_failure = unblock
            await context.send_initial_metadata(
                (*request_id, ("x-sonicwire-session-id", started.session_id))
            )
            context.set_trailing_metadata(request_id)
            metrics.STREAMS_TOTAL.inc()
            metrics.ACTIVE_STREAMS.inc()
            audio = StreamAudio(*convert.wire_formats(first))
            try:
                await write(pb.ConverseResponse(session_started=started))
                decode = None if audio.input_format.is_pcm else audio
                events = _client_events(request_iterator, decode)
                policy = runtime.input_policy(conversation.session.settings.input_sample_rate)
                conversation.admit(policy.check)
                # aclosing: a cancel here still runs the conversation's teardown now.
                pcm_out = audio.output_format.is_pcm
                to_response = convert.response_from_output
                async with contextlib.aclosing(conversation.outputs(events)) as outputs:
                    async for output in outputs:
                        if pcm_out:
                            await write(to_response(output))
                            continue
                        for encoded in audio.encode_outputs((output,)):
                            await write(to_response(encoded))
            finally:
                metrics.ACTIVE_STREAMS.dec()

    async def _first_message(
        self, requests: AsyncIterator[pb.ConverseRequest]
    ) -> pb.SessionConfig | None:
        runtime = self._runtime
        timeout = runtime.config.idle_timeout_s or None
        first = asyncio.ensure_future(anext(requests, None))
        draining = asyncio.ensure_future(runtime.drain_started.wait())
        try:
            done, _ = await asyncio.wait(
                (first, draining), timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            draining.cancel()
            if not first.done():
                first.cancel()
                # Consume the cancellation here: no "exception was never retrieved" later.
                await asyncio.gather(first, return_exceptions=True)
        if first not in done:
            if draining in done:
                # SIGTERM while the client had not configured its stream: say why it ends.
                raise runtime.draining_error("the server is shutting down; retry elsewhere")
            raise IdleTimeout("IDLE_TIMEOUT", "no SessionConfig received in time")
        request = first.result()
        if request is None:
            return None
        if request is _UNDECODABLE_CONVERSE:
            raise _UNDECODABLE
        if request.WhichOneof("request") != "config":
            raise ProtocolError(
                "FIRST_MESSAGE_NOT_CONFIG", "the first message of a stream must be a SessionConfig"
            )
        return request.config

    async def ListVoices(
        self,
        request: pb.ListVoicesRequest,
        context: grpc.aio.ServicerContext[pb.ListVoicesRequest, pb.ListVoicesResponse],
    ) -> pb.ListVoicesResponse:
        try:
            self._runtime.authenticator.authenticate(context.invocation_metadata())
            if request is _UNDECODABLE_VOICES:
                raise _UNDECODABLE
            return self._runtime.list_voices(request.backend, request.model)
        except SonicwireError as error:
            failure = error
        await _abort(context, failure)

    async def ListTools(
        self,
        request: pb.ListToolsRequest,
        context: grpc.aio.ServicerContext[pb.ListToolsRequest, pb.ListToolsResponse],
    ) -> pb.ListToolsResponse:
        try:
            self._runtime.authenticator.authenticate(context.invocation_metadata())
            if request is _UNDECODABLE_TOOLS:
                raise _UNDECODABLE
            return self._runtime.list_tools()
        except SonicwireError as error:
            failure = error
        await _abort(context, failure)
