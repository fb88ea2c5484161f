"""Backend faults over a real loopback stream: dropped mid-turn, hung, hung while opening.

For each: what the client sees (status code, ErrorInfo reason), that the server releases the
conversation, its stream slot and the backend session, and that nothing the client said was
silently dropped (the backend received every audio frame the server accepted, in order).
"""

from __future__ import annotations

import asyncio
import math
import struct

import grpc
import pytest

from sonicwire.server.core import events as ev
from sonicwire.server.core.errors import BackendError
from sonicwire.server.testing.server import running_server
from sonicwire.v1 import voice_service_pb2_grpc as pb_grpc

from .backends import Hang, HangingOpenBackend, Replies, Script, ScriptedBackend, ScriptedSession
from .streams import (
    CORE_ARTEFACT,
    RAW_CONFIG,
    audio,
    eventually,
    read_to_end,
    read_until,
    record_server_ends,
    released,
    text,
)

FRAME = 640  # 20 ms at 16 kHz


def _tone(ms: int, hz: int = 440, rate: int = 16_000) -> bytes:
    n = rate * ms // 1000
    return struct.pack(
        f"<{n}h", *(int(6000 * math.sin(2 * math.pi * hz * i / rate)) for i in range(n))
    )


def _mic(chunks: int) -> list[bytes]:
    """Quiet, distinct audio chunks of odd sizes (the VAD stays silent; the bytes differ)."""
    sizes = [FRAME, 1000, 320, 2 * FRAME, 98]
    return [bytes([i % 7 + 1, 0]) * (sizes[i % len(sizes)] // 2) for i in range(chunks)]


async def _start_turn(
    stub: pb_grpc.VoiceServiceStub, backend: ScriptedBackend
) -> tuple[grpc.aio.StreamStreamCall, ScriptedSession, bytes]:
    """Open a stream, send audio then a typed turn; the backend starts answering with audio."""
    call = stub.Converse()
    await call.write(RAW_CONFIG)
    await read_until(call, "session_started")
    sent = b"".join(_mic(23))
    for chunk in _mic(23):
        await call.write(audio(chunk))
    await call.write(text("tell me a story"))
    session = backend.sessions[0]
    await eventually(lambda: any(isinstance(c, ev.SendText) for c in session.commands))
    session.push(ev.AssistantText("Once upon a time", False))
    session.push(ev.AssistantAudio(_tone(1500), 16_000))
    await read_until(call, "audio")  # the assistant is speaking: mid-turn
    return call, session, sent


def _assert_audio_kept(session: ScriptedSession, sent: bytes) -> None:
    # Every whole 20 ms frame the server accepted reached the backend, unchanged and in order,
    # before the typed turn (the partial frame at the end waits for more audio).
    accepted = len(sent) // FRAME * FRAME
    assert bytes(session.audio) == sent[:accepted]
    first_text = next(i for i, c in enumerate(session.commands) if isinstance(c, ev.SendText))
    assert not any(isinstance(c, ev.SendAudio) for c in session.commands[first_text:])


@pytest.mark.parametrize(
    ("fault", "code", "reason"),
    [
        (
            ev.BackendFailed("BACKEND_STREAM_RESET", "the model stream was reset", True),
            grpc.StatusCode.UNAVAILABLE,
            "BACKEND_STREAM_RESET",
        ),
        (
            BackendError("BACKEND_CONNECTION_LOST", "connection to the model lost", retryable=True),
            grpc.StatusCode.UNAVAILABLE,
            "BACKEND_CONNECTION_LOST",
        ),
        # A backend that breaks its contract (raw exceptions instead of BackendFailed) is a
        # server bug: INTERNAL, with the exception's type in the message, never a hang.
        (ConnectionResetError("peer reset"), grpc.StatusCode.INTERNAL, "INTERNAL"),
    ],
    ids=["BackendFailed event", "events raise BackendError", "events raise OSError"],
)
async def test_backend_dropped_mid_turn(
    fault: ev.BackendFailed | BaseException, code: grpc.StatusCode, reason: str
) -> None:
    backend = ScriptedBackend(Script())
    async with running_server(backend=backend) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            call, session, sent = await _start_turn(pb_grpc.VoiceServiceStub(channel), backend)
            if isinstance(fault, BaseException):
                session.fail_with(fault)
            else:
                session.push(fault)
            outcome = await read_to_end(call)

            assert (outcome.code, outcome.reason) == (code, reason), outcome
            assert outcome.details
            if isinstance(fault, ev.BackendFailed):
                assert outcome.details == fault.message
            # The cut turn never completes: the client knows the answer is incomplete.
            assert "turn_complete" not in outcome.kinds()
            await eventually(lambda: released(server) and session.closed.is_set())
            _assert_audio_kept(session, sent)


async def test_backend_that_never_answers_meets_the_idle_timeout() -> None:
    """The client waits in silence for an answer that never comes: IDLE_TIMEOUT ends it."""
    backend = ScriptedBackend(Hang())
    async with running_server(backend=backend, idle_timeout_s=0.5) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            call = pb_grpc.VoiceServiceStub(channel).Converse()
            await call.write(RAW_CONFIG)
            sent = b"".join(_mic(10))
            for chunk in _mic(10):
                await call.write(audio(chunk))
            await call.write(text("hello?"))
            outcome = await read_to_end(call)
            assert (outcome.code, outcome.reason) == (
                grpc.StatusCode.DEADLINE_EXCEEDED,
                "IDLE_TIMEOUT",
            ), outcome
            session = backend.sessions[0]
            await eventually(lambda: released(server) and session.closed.is_set())
            _assert_audio_kept(session, sent)
            # The backend was told the conversation is over, even though it never answered.
            assert session.ended_by_server


async def test_backend_that_never_answers_is_bounded_by_the_session_length() -> None:
    """A client that keeps streaming keeps the stream alive; only the session limit ends it.

    (There is no backend response timeout yet; see the report of issue 9.)
    """
    backend = ScriptedBackend(Hang())
    with record_server_ends() as ends:
        async with running_server(backend=backend, max_session_s=1.0) as server:
            async with grpc.aio.insecure_channel(server.target) as channel:
                call = pb_grpc.VoiceServiceStub(channel).Converse()
                await call.write(RAW_CONFIG)
                await call.write(text("hello?"))
                # A live microphone: 20 ms of silence every 20 ms, for at most 10 s.
                for _ in range(500):
                    if call.done():
                        break
                    try:
                        await call.write(audio(bytes(FRAME)))
                    except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
                        break  # the server ended the stream
                    await asyncio.sleep(0.02)
                outcome = await read_to_end(call)
                await eventually(lambda: released(server) and backend.sessions[0].closed.is_set())
    expected = (grpc.StatusCode.RESOURCE_EXHAUSTED, "SESSION_TOO_LONG")
    assert [(end.code, end.reason) for end in ends] == [expected]
    if (outcome.code, outcome.details) != CORE_ARTEFACT:  # grpc/grpc#36066, see streams.py
        assert (outcome.code, outcome.reason) == expected, outcome


async def test_backend_that_does_not_close_after_the_last_turn_ends_ok() -> None:
    """Half-close after an answered turn; the backend never ends its stream. Nothing is lost,
    so the close timeout ends the conversation with OK."""
    backend = ScriptedBackend(Replies(close_on_end=False))
    async with running_server(backend=backend, backend_timeout_s=1.0) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            call = pb_grpc.VoiceServiceStub(channel).Converse()
            await call.write(RAW_CONFIG)
            await call.write(text("hello"))
            await call.done_writing()
            outcome = await read_to_end(call)
            assert outcome.code == grpc.StatusCode.OK, outcome
            assert "turn_complete" in outcome.kinds()
            await eventually(lambda: released(server) and backend.sessions[0].closed.is_set())


async def test_backend_that_never_answers_the_last_turn_is_reported_after_half_close() -> None:
    """Half-close right after a typed turn; the backend never answers it.

    The close timeout (`--backend-timeout-seconds`) must not end the stream with OK: the user's
    last turn got no answer, and a clean OK would say the conversation completed.
    """
    backend = ScriptedBackend(Hang())
    async with running_server(backend=backend, backend_timeout_s=1.0) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            call = pb_grpc.VoiceServiceStub(channel).Converse()
            await call.write(RAW_CONFIG)
            await call.write(text("are you there?"))
            await call.done_writing()
            outcome = await read_to_end(call)
            await eventually(lambda: released(server) and backend.sessions[0].closed.is_set())
            assert "turn_complete" not in outcome.kinds()
            assert outcome.code in (
                grpc.StatusCode.DEADLINE_EXCEEDED,
                grpc.StatusCode.UNAVAILABLE,
            ), f"the unanswered turn ended as {outcome}"
            assert outcome.reason.startswith("BACKEND_"), outcome


async def test_backend_open_that_hangs_is_released_when_the_client_gives_up() -> None:
    """`Backend.open` never returns; the client's deadline (shorter than the server's backend
    timeout) ends the call and the server lets go of the stream slot and the pending open."""
    backend = HangingOpenBackend()
    async with running_server(backend=backend) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            call = pb_grpc.VoiceServiceStub(channel).Converse(timeout=1.0)
            await call.write(RAW_CONFIG)
            outcome = await read_to_end(call)
            assert outcome.code == grpc.StatusCode.DEADLINE_EXCEEDED, outcome
            await eventually(lambda: released(server) and backend.opening == 0)
            assert backend.cancelled == 1


async def test_backend_open_that_hangs_meets_the_backend_timeout() -> None:
    """With a patient client, the server's own backend timeout ends a hung `Backend.open`
    with DEADLINE_EXCEEDED / BACKEND_TIMEOUT and releases everything."""
    backend = HangingOpenBackend()
    async with running_server(backend=backend, backend_timeout_s=0.5) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            call = pb_grpc.VoiceServiceStub(channel).Converse(timeout=30.0)
            await call.write(RAW_CONFIG)
            outcome = await read_to_end(call)
            assert (outcome.code, outcome.reason) == (
                grpc.StatusCode.DEADLINE_EXCEEDED,
                "BACKEND_TIMEOUT",
            ), outcome
            await eventually(lambda: released(server) and backend.opening == 0)
            assert backend.cancelled == 1
