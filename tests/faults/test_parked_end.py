"""A stream that ends normally while its handler is parked writing to a client that stopped
reading: the end must not wait on that client for good.

The conversation ends (the client half-closed and the turn is over, or the backend ended the
session) with responses still queued behind a full flow-control window. Nothing fails, so
before the fix nothing unblocked the handler's ``context.write``: the stream slot, the backend
session and the conversation's tasks stayed held until the client read or cancelled. Each case
runs over loopback gRPC and over the in-process channel. The final writes get the stall timeout
(``Budget.stall_timeout_s``, shortened here); a drain ends such a stream within its grace.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import grpc
import pytest

from sonicwire.server import conversation, metrics
from sonicwire.server.app import RunningServer
from sonicwire.server.conversation import Budget
from sonicwire.server.testing.server import running_server
from sonicwire.v1 import voice_service_pb2 as pb
from sonicwire.v1 import voice_service_pb2_grpc as pb_grpc

from .backends import Burst, Flood, ScriptedBackend, ScriptedSession
from .streams import eventually, read_to_end, read_until, record_server_ends, released, text

TRANSPORTS = ["grpc", "in_process"]
# The client half-closes after its question, or the backend ends the session after its answer.
ENDS = ["client_half_closes", "backend_ends"]
# Named tasks of a conversation (`Conversation.outputs`): none may outlive its stream.
_TASKS = {"inputs", "backend", "sender"}


def _conversation_tasks() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name() in _TASKS and not t.done()]


@contextmanager
def _stall_timeout(seconds: float) -> Iterator[None]:
    with mock.patch.object(
        conversation, "Budget", functools.partial(Budget, stall_timeout_s=seconds)
    ):
        yield


def _channel(server: RunningServer, transport: str) -> grpc.aio.Channel:
    if transport == "grpc":
        return grpc.aio.insecure_channel(server.target)
    return server.local_channel()


def _live_calls(server: RunningServer) -> int:
    assert server.local is not None
    return server.local.live_calls


async def _started(
    channel: grpc.aio.Channel, config: pb.SessionConfig | None = None
) -> tuple[grpc.aio.StreamStreamCall[Any, Any], pb.SessionStarted]:
    """A Converse call configured with ``config`` (default settings), read to SessionStarted."""
    call = pb_grpc.VoiceServiceStub(channel).Converse()
    await call.write(pb.ConverseRequest(config=config or pb.SessionConfig()))
    return call, (await read_until(call, "session_started"))[-1].session_started


async def _ended_normally(
    backend: ScriptedBackend, call: grpc.aio.StreamStreamCall[Any, Any], end: str
) -> ScriptedSession:
    """Ask for the burst, end the conversation as ``end`` says, read nothing more; returns
    once the conversation ended (its backend session saw the end), none of it read."""
    await call.write(text("burst"))
    await eventually(lambda: len(backend.sessions) == 1)
    session = backend.sessions[0]
    if end == "client_half_closes":
        await call.done_writing()
        # The turn is over and the client's input ended: the conversation sent EndSession.
        await eventually(lambda: session.ended_by_server)
    else:
        await eventually(lambda: session.events_ended)
    return session


@pytest.mark.parametrize("end", ENDS)
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_stream_that_ended_normally_is_released_while_its_send_is_blocked(
    transport: str, end: str
) -> None:
    backend = ScriptedBackend(Burst(end_session=end == "backend_ends"))
    rejected = metrics.STREAMS_REJECTED.labels("CLIENT_TOO_SLOW")
    with _stall_timeout(1.0):
        async with running_server(backend=backend) as server:
            async with _channel(server, transport) as channel:
                call, _ = await _started(channel)
                before = rejected._value.get()
                session = await _ended_normally(backend, call, end)
                # Released with the client doing nothing at all.
                await asyncio.wait_for(session.closed.wait(), 60)
                await eventually(lambda: released(server))
                await eventually(lambda: not _conversation_tasks())
                assert rejected._value.get() == before + 1
                # A client that reads again gets what was sent, then why the rest was not.
                outcome = await read_to_end(call)
                assert (outcome.code, outcome.reason) == (
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    "CLIENT_TOO_SLOW",
                ), outcome
                assert 0 < len(outcome.responses) <= Burst().count
                assert "turn_complete" not in outcome.kinds()
                await eventually(lambda: _live_calls(server) == 0)


@pytest.mark.parametrize("end", ENDS)
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_drain_ends_a_stream_whose_end_waits_on_a_client_that_does_not_read(
    transport: str, end: str
) -> None:
    """The stall timeout (30 s by default) is longer than the drain's grace: the drain itself
    must end the parked stream, release everything, and tell the client why."""
    backend = ScriptedBackend(Burst(end_session=end == "backend_ends"))
    rejected = metrics.STREAMS_REJECTED.labels("SERVER_DRAINING")
    with record_server_ends() as ends:
        async with running_server(backend=backend) as server:
            async with _channel(server, transport) as channel:
                call, _ = await _started(channel)
                before = rejected._value.get()
                session = await _ended_normally(backend, call, end)
                assert not session.closed.is_set()
                await asyncio.wait_for(server.drain(grace_s=0.5), 30)
                # Everything released by the time the drain returns.
                assert session.closed.is_set()
                assert released(server)
                assert not _conversation_tasks()
                assert _live_calls(server) == 0
                # The handler ended the call with the drain's status...
                assert rejected._value.get() == before + 1
                assert [e.code for e in ends] == [grpc.StatusCode.UNAVAILABLE], ends
                outcome = await read_to_end(call)
    assert "turn_complete" not in outcome.kinds()
    assert outcome.code == grpc.StatusCode.UNAVAILABLE, outcome
    if transport == "in_process":
        # ...which a client that reads again gets in process, after what was sent. Over gRPC
        # the status waits behind the unread responses until the server's final stop cancels
        # the call (UNAVAILABLE without the reason): HTTP/2 sends trailers after the data.
        assert outcome.reason == "SERVER_DRAINING", outcome


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_session_length_limit_ends_a_stream_while_its_send_is_blocked(
    transport: str,
) -> None:
    """The session-length limit is a failure (SESSION_TOO_LONG), not a normal end: covered by
    the failure path (``Conversation.on_failure``) already; kept here beside the normal ends."""
    backend = ScriptedBackend(Flood(pace_s=0.002))
    async with running_server(backend=backend, max_session_s=2.0) as server:
        async with _channel(server, transport) as channel:
            call, _ = await _started(channel)
            await call.write(text("flood"))
            await eventually(lambda: len(backend.sessions) == 1)
            session = backend.sessions[0]
            await asyncio.wait_for(session.closed.wait(), 60)
            await eventually(lambda: released(server))
            await eventually(lambda: not _conversation_tasks())
            outcome = await read_to_end(call)
            assert (outcome.code, outcome.reason) == (
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                "SESSION_TOO_LONG",
            ), outcome


@pytest.mark.parametrize("end", ENDS)
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_resume_elsewhere_ends_a_stream_whose_end_waits_on_a_client_that_does_not_read(
    transport: str, end: str
) -> None:
    """The old stream ended normally but is parked writing its end; a new stream resumes the
    conversation: the old one is released at once (not after the stall timeout, 60 s here)
    with SESSION_RESUMED_ELSEWHERE, and the new one holds the session."""
    backend = ScriptedBackend(Burst(end_session=end == "backend_ends"))
    rejected = metrics.STREAMS_REJECTED.labels("SESSION_RESUMED_ELSEWHERE")
    with _stall_timeout(60.0):
        async with running_server(backend=backend) as server:
            async with _channel(server, transport) as channel:
                old, first = await _started(channel)
                before = rejected._value.get()
                session = await _ended_normally(backend, old, end)
                assert not session.closed.is_set()
                config = pb.SessionConfig(
                    resume_session_id=first.session_id, resume_token=first.resume_token
                )
                new, started = await _started(channel, config)
                assert started.session_id == first.session_id
                # The old stream's backend session is closed and its slot freed, long before
                # its stall timeout; only the new stream is left.
                await asyncio.wait_for(session.closed.wait(), 10)
                await eventually(lambda: len(server.runtime.conversations) == 1)
                await eventually(lambda: server.runtime.limiter.active == 1)
                assert rejected._value.get() == before + 1
                new.cancel()
                await eventually(lambda: released(server))
                await eventually(lambda: not _conversation_tasks())
                outcome = await read_to_end(old)
                # A client that reads again gets what was sent, then why the rest was not
                # (over gRPC too: no final stop has cancelled the call meanwhile).
                assert "turn_complete" not in outcome.kinds()
                assert 0 < len(outcome.responses) <= Burst().count
                assert (outcome.code, outcome.reason) == (
                    grpc.StatusCode.ABORTED,
                    "SESSION_RESUMED_ELSEWHERE",
                ), outcome


@pytest.mark.parametrize("end", ENDS)
async def test_a_released_parked_stream_holds_no_conversation_while_its_status_waits(
    end: str,
) -> None:
    """Over gRPC the status of a stream released out of its blocked write waits behind the
    responses the client has not read, as long as the client neither reads nor disconnects.
    Meanwhile the handler must hold none of the conversation's state (front end, session,
    history): the slot is free, so such clients are counted by no limit."""
    backend = ScriptedBackend(Burst(end_session=end == "backend_ends"))
    with _stall_timeout(1.0):
        async with running_server(backend=backend) as server:
            async with grpc.aio.insecure_channel(server.target) as channel:
                call, _ = await _started(channel)
                (live,) = server.runtime.conversations
                ref = weakref.ref(live)
                del live
                session = await _ended_normally(backend, call, end)
                await asyncio.wait_for(session.closed.wait(), 60)
                await eventually(lambda: released(server))
                # The client still reads nothing: the handler waits to send the status.
                gc.collect()
                assert ref() is None, [type(r).__name__ for r in gc.get_referrers(ref())]
                outcome = await read_to_end(call)
                assert outcome.reason == "CLIENT_TOO_SLOW", outcome


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_drain_ends_many_streams_whose_ends_wait_on_clients_that_do_not_read(
    transport: str,
) -> None:
    """Several parked ends at once (each client on its own connection, so no stream waits on
    another's flow control): the drain releases every one by the time it returns."""
    backend = ScriptedBackend(Burst())
    streams = 4
    rejected = metrics.STREAMS_REJECTED.labels("SERVER_DRAINING")
    async with running_server(backend=backend) as server:
        async with contextlib.AsyncExitStack() as stack:
            calls = []
            for i in range(streams):
                channel = await stack.enter_async_context(_channel(server, transport))
                call, _ = await _started(channel)
                await call.write(text("burst"))
                await eventually(lambda i=i: len(backend.sessions) == i + 1)
                await call.done_writing()
                calls.append(call)
            await eventually(lambda: all(s.ended_by_server for s in backend.sessions))
            assert not any(s.closed.is_set() for s in backend.sessions)
            assert server.runtime.limiter.active == streams
            before = rejected._value.get()
            await asyncio.wait_for(server.drain(grace_s=0.5), 30)
            assert all(s.closed.is_set() for s in backend.sessions)
            assert released(server)
            assert not _conversation_tasks()
            assert rejected._value.get() == before + streams
            for call in calls:
                outcome = await read_to_end(call)
                assert "turn_complete" not in outcome.kinds()
                assert outcome.code == grpc.StatusCode.UNAVAILABLE, outcome
