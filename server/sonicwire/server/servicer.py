"""The gRPC VoiceService: thin translation between protos and the conversation driver.

Authentication runs first (health and reflection are separate services and need no key), then
the stream limits, then the first-message rule; everything after that is the `Conversation`'s.
Every `SonicwireError` becomes a status with an ErrorInfo via ``status.py``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable

import grpc

from sonicwire.server import convert, metrics
from sonicwire.server.core import events as ev
from sonicwire.server.core.errors import (
    BackendError,
    IdleTimeout,
    ProtocolError,
    SonicwireError,
)
from sonicwire.server.runtime import ServerRuntime
from sonicwire.server.status import grpc_code, status_trailers
from sonicwire.server.transcode import StreamAudio
from sonicwire.v1 import voice_service_pb2 as pb
from sonicwire.v1 import voice_service_pb2_grpc as pb_grpc

__all__ = ["VoiceServicer"]

log = logging.getLogger(__name__)


async def _client_events(
    requests: AsyncIterator[pb.ConverseRequest], audio: StreamAudio | None = None
) -> AsyncIterator[ev.ClientEvent]:
    async for request in requests:
        event = convert.event_from_request(request)
        if audio is not None and isinstance(event, ev.AudioReceived):
            # Encoded input (G.711, Opus) is decoded here: the core sees PCM only.
            for pcm in audio.decode_input(event.audio):
                yield ev.AudioReceived(pcm)
        else:
            yield event


def _request_id(metadata: Iterable[tuple[str, str | bytes]] | None) -> tuple[tuple[str, str], ...]:
    """The caller's ``x-request-id``, echoed back so requests can be traced end to end."""
    for key, value in metadata or ():
        if key == "x-request-id" and isinstance(value, str) and len(value) <= 128:
            return (("x-request-id", value),)
    return ()


class VoiceServicer(pb_grpc.VoiceServiceServicer):
    def __init__(self, runtime: ServerRuntime) -> None:
        self._runtime = runtime

    async def Converse(
        self,
        request_iterator: AsyncIterator[pb.ConverseRequest],
        context: grpc.aio.ServicerContext[pb.ConverseRequest, pb.ConverseResponse],
    ) -> AsyncIterator[pb.ConverseResponse]:
        runtime = self._runtime
        try:
            runtime.check_accepting()
            metadata = context.invocation_metadata()
            caller = runtime.authenticator.authenticate(metadata)
            request_id = _request_id(metadata)
            with runtime.limiter.acquire(caller):
                first = await self._first_message(request_iterator)
                if first is None:
                    return  # an empty stream is a complete, if short, conversation
                async with runtime.conversation(first, caller) as (conversation, started):
                    await context.send_initial_metadata(
                        (*request_id, ("x-sonicwire-session-id", started.session_id))
                    )
                    context.set_trailing_metadata(request_id)
                    metrics.STREAMS_TOTAL.inc()
                    metrics.ACTIVE_STREAMS.inc()
                    audio = StreamAudio(*convert.wire_formats(first))
                    try:
                        yield pb.ConverseResponse(session_started=started)
                        decode = None if audio.input_format.is_pcm else audio
                        events = _client_events(request_iterator, decode)
                        async for output in conversation.outputs(events):
                            if audio.output_format.is_pcm:
                                yield convert.response_from_output(output)
                                continue
                            for encoded in audio.encode_outputs((output,)):
                                yield convert.response_from_output(encoded)
                    finally:
                        metrics.ACTIVE_STREAMS.dec()
        except SonicwireError as error:
            log.info("stream ended: %s %s", error.reason, error.message)
            metrics.STREAMS_REJECTED.labels(error.reason).inc()
            if isinstance(error, BackendError):
                metrics.BACKEND_ERRORS.labels(error.reason).inc()
            await context.abort(
                grpc_code(error), error.message, trailing_metadata=status_trailers(error)
            )

    async def _first_message(
        self, requests: AsyncIterator[pb.ConverseRequest]
    ) -> pb.SessionConfig | None:
        timeout = self._runtime.config.idle_timeout_s or None
        try:
            async with asyncio.timeout(timeout):
                request = await anext(requests, None)
        except TimeoutError:
            raise IdleTimeout("IDLE_TIMEOUT", "no SessionConfig received in time") from None
        if request is None:
            return None
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
            return self._runtime.list_voices(request.backend)
        except SonicwireError as error:
            await context.abort(
                grpc_code(error), error.message, trailing_metadata=status_trailers(error)
            )

    async def ListTools(
        self,
        request: pb.ListToolsRequest,
        context: grpc.aio.ServicerContext[pb.ListToolsRequest, pb.ListToolsResponse],
    ) -> pb.ListToolsResponse:
        try:
            self._runtime.authenticator.authenticate(context.invocation_metadata())
            return self._runtime.list_tools()
        except SonicwireError as error:
            await context.abort(
                grpc_code(error), error.message, trailing_metadata=status_trailers(error)
            )
