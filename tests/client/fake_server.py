"""A scripted fake Sonicwire server on loopback, for client SDK, CLI and recipe tests.

``FakeVoiceService`` implements the generated ``VoiceServiceServicer`` with a tiny scripted
assistant; ``LoopbackServer`` runs it (plus ``grpc.health.v1`` and server reflection) on a
``grpc.aio.server()`` bound to ``127.0.0.1`` in a background thread, so both sync tests (the
CLI's ``main()``, ``SyncClient``, ``buf curl``) and async tests can use it.

The script, per stream:

- first message must be ``config`` (else INVALID_ARGUMENT ``FIRST_MESSAGE_NOT_CONFIG``), with a
  supported input rate (else INVALID_ARGUMENT ``AUDIO_FORMAT_UNSUPPORTED``); then
  ``SessionStarted``;
- audio: a crude VAD. The first non-silent chunk gives ``SpeechActivity(STARTED)``; 100 ms of
  digital silence after speech gives ``SpeechActivity(STOPPED)`` and a reply to
  "<N> ms of speech";
- text: a reply to the text;
- a reply: user transcript (final), then, if the client declared a tool named ``lookup_order``,
  a ``ToolCall`` (executor CLIENT) whose ``ToolResult`` is awaited and reported in a
  ``ToolCallResult``; then an assistant transcript, ``REPLY_CHUNKS`` audio chunks of 20 ms
  (each filled with its index), ``TurnComplete(END_TURN)`` and ``Usage``;
- half-close: a pending spoken turn is answered, then the stream ends OK.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc import aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from grpc_status import rpc_status

from sonicwire.v1 import voice_service_pb2 as pb
from sonicwire.v1 import voice_service_pb2_grpc as pb_grpc

SERVICE = "sonicwire.v1.VoiceService"
REPLY_CHUNKS = 3
REPLY_TEXT = "Order 42 has shipped."
SILENCE_TO_STOP_MS = 100


def rich_status(
    code: grpc.StatusCode, reason: str, message: str, metadata: dict[str, str] | None = None
) -> grpc.Status:
    """A grpc.Status carrying google.rpc.Status + ErrorInfo, as the real server sends."""
    detail = any_pb2.Any()
    detail.Pack(
        error_details_pb2.ErrorInfo(
            reason=reason, domain="sonicwire.dev", metadata=metadata or {"k": "v"}
        )
    )
    status = status_pb2.Status(code=getattr(code_pb2, code.name), message=message, details=[detail])
    return rpc_status.to_status(status)


def reply_chunk(index: int, rate: int = 16000) -> bytes:
    """The ``index``-th 20 ms chunk of the scripted reply audio."""
    return bytes([index + 1, 0]) * (rate // 50)


@dataclass
class Recorded:
    """What one Converse stream received."""

    metadata: dict[str, str] = field(default_factory=dict)
    config: pb.SessionConfig | None = None
    audio_bytes: int = 0
    texts: list[str] = field(default_factory=list)
    tool_results: list[pb.ToolResult] = field(default_factory=list)
    playback: list[pb.PlaybackUpdate] = field(default_factory=list)
    half_closed: bool = False


class FakeVoiceService(pb_grpc.VoiceServiceServicer):
    """The scripted assistant. Set the ``fail_*`` attributes before a call to inject errors."""

    def __init__(self) -> None:
        self.api_key: str | None = None
        self.recorded: list[Recorded] = []
        self.unary_calls: list[tuple[str, dict[str, str]]] = []
        # (code, reason, message) to abort with: before SessionStarted / after it.
        self.fail_converse: tuple[grpc.StatusCode, str, str] | None = None
        self.fail_after_start: tuple[grpc.StatusCode, str, str] | None = None
        self.fail_unary: tuple[grpc.StatusCode, str, str] | None = None

    async def _check_key(self, context: aio.ServicerContext[Any, Any]) -> dict[str, str]:
        metadata = {k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)}
        if self.api_key is not None and metadata.get("x-api-key") != self.api_key:
            await context.abort_with_status(
                rich_status(grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED", "bad API key")
            )
        return metadata

    async def ListVoices(
        self, request: pb.ListVoicesRequest, context: aio.ServicerContext[Any, Any]
    ) -> pb.ListVoicesResponse:
        self.unary_calls.append(("ListVoices", await self._check_key(context)))
        if self.fail_unary:
            await context.abort_with_status(rich_status(*self.fail_unary))
        return pb.ListVoicesResponse(
            voices=[
                pb.Voice(id="joe", language_code="en-US", backend="local", default=True),
                pb.Voice(id="amy", language_code="en-GB", backend="local"),
            ]
        )

    async def ListTools(
        self, request: pb.ListToolsRequest, context: aio.ServicerContext[Any, Any]
    ) -> pb.ListToolsResponse:
        self.unary_calls.append(("ListTools", await self._check_key(context)))
        return pb.ListToolsResponse(
            tools=[
                pb.Tool(
                    name="get_date_time",
                    description="Current date and time.",
                    parameters_json_schema='{"type": "object"}',
                )
            ]
        )

    async def Converse(self, request_iterator: Any, context: aio.ServicerContext[Any, Any]) -> None:
        rec = Recorded(metadata=await self._check_key(context))
        self.recorded.append(rec)
        if self.fail_converse:
            await context.abort_with_status(rich_status(*self.fail_converse))
        first = await context.read()
        if first is aio.EOF or first.WhichOneof("request") != "config":
            await context.abort_with_status(
                rich_status(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "FIRST_MESSAGE_NOT_CONFIG",
                    "the first message must be config",
                )
            )
        rec.config = config = first.config
        rate = config.input_format.sample_rate_hz or 16000
        if rate not in (8000, 16000, 24000, 48000):
            await context.abort_with_status(
                rich_status(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "AUDIO_FORMAT_UNSUPPORTED",
                    f"sample rate {rate} Hz is not supported",
                )
            )
        client_tools = [t.name for t in config.client_tools]
        effective = pb.SessionConfig()
        effective.CopyFrom(config)
        effective.output_format.sample_rate_hz = config.output_format.sample_rate_hz or 16000
        await context.write(
            pb.ConverseResponse(
                session_started=pb.SessionStarted(
                    session_id=f"fake-{len(self.recorded)}",
                    config=effective,
                    backend="fake",
                    limits=pb.SessionLimits(max_audio_chunk_bytes=65536),
                    tools=["get_date_time", *client_tools],
                )
            )
        )
        if self.fail_after_start:
            await context.abort_with_status(rich_status(*self.fail_after_start))
        out_rate = effective.output_format.sample_rate_hz
        speech_ms = silence_ms = 0
        in_speech = False
        turn = 0
        while True:
            request = await context.read()
            if request is aio.EOF:
                rec.half_closed = True
                if in_speech:
                    turn += 1
                    await self._reply(context, rec, turn, f"{speech_ms} ms of speech", out_rate)
                return
            kind = request.WhichOneof("request")
            if kind == "audio":
                chunk = request.audio.audio
                rec.audio_bytes += len(chunk)
                chunk_ms = len(chunk) // 2 * 1000 // rate
                silent = not any(chunk)
                if not in_speech and not silent:
                    in_speech, speech_ms, silence_ms = True, 0, 0
                    await context.write(
                        pb.ConverseResponse(
                            speech_activity=pb.SpeechActivity(
                                kind=pb.SPEECH_ACTIVITY_KIND_STARTED,
                                offset_ms=rec.audio_bytes // 2 * 1000 // rate - chunk_ms,
                            )
                        )
                    )
                if in_speech:
                    speech_ms += chunk_ms
                    silence_ms = silence_ms + chunk_ms if silent else 0
                    if silence_ms >= SILENCE_TO_STOP_MS:
                        in_speech = False
                        await context.write(
                            pb.ConverseResponse(
                                speech_activity=pb.SpeechActivity(
                                    kind=pb.SPEECH_ACTIVITY_KIND_STOPPED,
                                    offset_ms=rec.audio_bytes // 2 * 1000 // rate,
                                )
                            )
                        )
                        turn += 1
                        heard = f"{speech_ms - silence_ms} ms of speech"
                        await self._reply(context, rec, turn, heard, out_rate)
            elif kind == "text":
                rec.texts.append(request.text.text)
                turn += 1
                await self._reply(context, rec, turn, request.text.text, out_rate)
            elif kind == "playback":
                rec.playback.append(request.playback)
            elif kind == "tool_result":
                rec.tool_results.append(request.tool_result)
                await context.write(
                    pb.ConverseResponse(
                        warning=pb.Warning(
                            reason="TOOL_RESULT_UNEXPECTED", message="no such tool call"
                        )
                    )
                )
            else:
                await context.abort_with_status(
                    rich_status(
                        grpc.StatusCode.INVALID_ARGUMENT,
                        "CONFIG_ALREADY_RECEIVED",
                        "config may only be sent once",
                    )
                )

    async def _reply(
        self,
        context: aio.ServicerContext[Any, Any],
        rec: Recorded,
        turn: int,
        heard: str,
        out_rate: int,
    ) -> None:
        turn_id = f"t{turn}"

        async def send(**kwargs: Any) -> None:
            await context.write(pb.ConverseResponse(**kwargs))

        await send(
            transcript=pb.Transcript(role=pb.ROLE_USER, text=heard, final=True, turn_id=turn_id)
        )
        assert rec.config is not None
        if any(t.name == "lookup_order" for t in rec.config.client_tools):
            call_id = f"call-{turn}"
            await send(
                tool_call=pb.ToolCall(
                    id=call_id,
                    name="lookup_order",
                    arguments_json='{"order_id": "42"}',
                    executor=pb.TOOL_EXECUTOR_CLIENT,
                    turn_id=turn_id,
                )
            )
            while True:  # wait for the client's answer, keeping other input
                request = await context.read()
                if request is aio.EOF:
                    rec.half_closed = True
                    return
                if request.WhichOneof("request") == "tool_result":
                    result = request.tool_result
                    rec.tool_results.append(result)
                    if result.tool_call_id == call_id:
                        break
                elif request.WhichOneof("request") == "audio":
                    rec.audio_bytes += len(request.audio.audio)
            await send(
                tool_call_result=pb.ToolCallResult(
                    id=call_id,
                    name="lookup_order",
                    status=pb.TOOL_STATUS_ERROR if result.is_error else pb.TOOL_STATUS_OK,
                    result_json=result.content,
                    duration_ms=5,
                )
            )
        await send(
            transcript=pb.Transcript(
                role=pb.ROLE_ASSISTANT, text=REPLY_TEXT, final=True, turn_id=turn_id
            )
        )
        for index in range(REPLY_CHUNKS):
            await send(
                audio=pb.AudioOutput(
                    audio=reply_chunk(index, out_rate), turn_id=turn_id, offset_ms=20 * index
                )
            )
        await send(
            turn_complete=pb.TurnComplete(
                turn_id=turn_id,
                stop_reason=pb.STOP_REASON_END_TURN,
                latency=pb.TurnLatency(first_audio_ms=120, transcript_ms=40),
                audio_ms=20 * REPLY_CHUNKS,
            )
        )
        await send(usage=pb.Usage(input_tokens=10, output_tokens=20, total_tokens=30))


class LoopbackServer:
    """Runs a servicer with health and reflection on 127.0.0.1 in a background thread."""

    def __init__(self, servicer: FakeVoiceService, port: int = 0) -> None:
        self.servicer = servicer
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._health: Any = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fake-sonicwire", daemon=True)
        self._error: BaseException | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> LoopbackServer:
        self._thread.start()
        assert self._ready.wait(10), "fake server did not start"
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def set_health(self, service: str, status: int) -> None:
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(self._health.set(service, status), self._loop)
        future.result(5)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # surfaced by start()
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = aio.server(options=[("grpc.so_reuseport", 0)])
        pb_grpc.add_VoiceServiceServicer_to_server(self.servicer, server)
        self._health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        for name in ("", SERVICE):
            await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        reflection.enable_server_reflection(
            [
                SERVICE,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ],
            server,
        )
        self.port = server.add_insecure_port(f"127.0.0.1:{self.port}")
        await server.start()
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await server.stop(None)


@contextmanager
def loopback_server(
    servicer: FakeVoiceService | None = None, port: int = 0
) -> Iterator[LoopbackServer]:
    """Run a fake server for the duration of the ``with`` block."""
    server = LoopbackServer(servicer or FakeVoiceService(), port).start()
    try:
        yield server
    finally:
        server.stop()
