"""The transport limit: a bare grpc.aio bidi stream that echoes every audio message.

It speaks the same `VoiceService.Converse` contract as Sonicwire (a `SessionStarted` first,
then one `AudioOutput` per `AudioInput`, with the same bytes), so the same load generator drives
it, but it does nothing else: no session core, no front end, no pacing, no backend. Its CPU per
stream-second is the floor any grpc.aio server pays for the same message traffic.

``every=5`` answers every fifth input with the five inputs' audio in one output: the same reads
and bytes, one write per 100 ms, which is Sonicwire's message pattern under the echo backend
(~50 reads and ~10 writes a stream-second; docs/server_cpu.md, "Server minus in process").
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable

import grpc

from sonicwire.v1 import voice_service_pb2 as pb
from sonicwire.v1 import voice_service_pb2_grpc as pb_grpc

__all__ = ["BareEchoServicer"]

_ids = itertools.count(1)


class BareEchoServicer(pb_grpc.VoiceServiceServicer):
    """Echo each `AudioInput` back as an `AudioOutput` (or every ``every`` inputs' audio in one
    output); ``on_frame(session_id)`` per input."""

    def __init__(self, on_frame: Callable[[str], None] | None = None, every: int = 1) -> None:
        if every < 1:
            raise ValueError("every must be at least 1")
        self._on_frame = on_frame
        self._every = every

    async def Converse(
        self,
        request_iterator: AsyncIterator[pb.ConverseRequest],
        context: grpc.aio.ServicerContext[pb.ConverseRequest, pb.ConverseResponse],
    ) -> AsyncIterator[pb.ConverseResponse]:
        session_id = f"echo_{next(_ids)}"
        on_frame = self._on_frame
        every = self._every
        held: list[bytes] = []
        offset_ms = 0
        started = False
        async for request in request_iterator:
            if not started:
                started = True
                yield pb.ConverseResponse(
                    session_started=pb.SessionStarted(session_id=session_id, backend="bare-echo")
                )
                continue
            audio = request.audio.audio
            if on_frame is not None:
                on_frame(session_id)
            if every > 1:
                held.append(audio)
                if len(held) < every:
                    continue
                audio = b"".join(held)
                held.clear()
            yield pb.ConverseResponse(
                audio=pb.AudioOutput(audio=audio, turn_id="echo", offset_ms=offset_ms)
            )
            offset_ms += len(audio) // 32

    async def ListVoices(
        self,
        request: pb.ListVoicesRequest,
        context: grpc.aio.ServicerContext[pb.ListVoicesRequest, pb.ListVoicesResponse],
    ) -> pb.ListVoicesResponse:
        return pb.ListVoicesResponse()

    async def ListTools(
        self,
        request: pb.ListToolsRequest,
        context: grpc.aio.ServicerContext[pb.ListToolsRequest, pb.ListToolsResponse],
    ) -> pb.ListToolsResponse:
        return pb.ListToolsResponse()
