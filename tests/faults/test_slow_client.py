"""A client that stops reading while the backend produces output as fast as it can.

The server must not buffer without bound: once `MAX_PENDING_OUTPUTS` responses wait for the
client, the stream fails with RESOURCE_EXHAUSTED ``CLIENT_TOO_SLOW`` (the client learns why
when it reads again), the backend session is closed, and memory returns to where it was. The
memory figure is the RSS of this test process, which holds the server and the (non-reading)
clients, over rounds of flooded streams; without the bound it would grow by the flood's rate
until the test's time bound.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
from unittest import mock

import grpc
import psutil
import pytest

from sonicwire.server import conversation, metrics
from sonicwire.server.conversation import MAX_PENDING_OUTPUTS, Budget
from sonicwire.server.testing.server import running_server
from sonicwire.v1 import voice_service_pb2 as pb
from sonicwire.v1 import voice_service_pb2_grpc as pb_grpc

from .backends import Flood, ScriptedBackend
from .streams import eventually, read_to_end, read_until, released, text

ROUNDS = 3
STREAMS = 4
# 2000 pending 1 KB transcripts per stream plus gRPC's flow-control windows: a few MB each.
MAX_GROWTH_MB = 60


async def test_client_that_stops_reading_is_dropped_with_bounded_memory() -> None:
    backend = ScriptedBackend(Flood())
    process = psutil.Process()
    rss_mb: list[float] = []
    async with running_server(backend=backend) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            stub = pb_grpc.VoiceServiceStub(channel)
            for round_ in range(ROUNDS):
                calls = []
                for _ in range(STREAMS):
                    call = stub.Converse()
                    await call.write(pb.ConverseRequest(config=pb.SessionConfig()))
                    await read_until(call, "session_started")
                    await call.write(text("flood"))
                    calls.append(call)  # ...and never read again until the server gave up
                sessions = backend.sessions[round_ * STREAMS :]
                await eventually(
                    lambda s=sessions: len(s) == STREAMS and all(x.closed.is_set() for x in s),
                    timeout_s=60,
                )
                await eventually(lambda: released(server))
                for call, session in zip(calls, sessions, strict=True):
                    outcome = await read_to_end(call)
                    assert (outcome.code, outcome.reason) == (
                        grpc.StatusCode.RESOURCE_EXHAUSTED,
                        "CLIENT_TOO_SLOW",
                    ), outcome
                    # The backend really outran the client, and the flood stopped when the
                    # stream failed (the session was closed, its generator finished).
                    assert session.flooded > MAX_PENDING_OUTPUTS
                    assert not session.flooding
                    # What the client got before the status is a prefix of what was produced.
                    assert len(outcome.responses) < session.flooded
                    print(
                        f"flooded {session.flooded} events; the client read "
                        f"{len(outcome.responses)} before the status"
                    )
                del calls
                gc.collect()
                rss_mb.append(process.memory_info().rss / 2**20)
    growth = rss_mb[-1] - rss_mb[0]
    print(f"RSS after each round of {STREAMS} flooded streams (MB): {rss_mb}")
    assert growth < MAX_GROWTH_MB, f"RSS after each round (MB): {rss_mb}"


@pytest.mark.parametrize("then", ["reads", "cancels"])
@pytest.mark.parametrize("transport", ["grpc", "in_process"])
async def test_client_that_stops_reading_is_ended_while_its_send_is_blocked(
    transport: str, then: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A reader that stops after ``session_started`` while the backend produces 1 KB every
    2 ms: the handler's write waits on flow control for good, so the stall timeout's
    CLIENT_TOO_SLOW is decided while nothing reads ``outputs``. The stream must still end: the
    backend session closed and the stream slot free without the client doing anything. A
    client that reads again then gets what was sent, then the status; one that cancels ends
    the call without an error logged."""
    backend = ScriptedBackend(Flood(pace_s=0.002))
    short_stall = functools.partial(Budget, stall_timeout_s=1.0)
    rejected = metrics.STREAMS_REJECTED.labels("CLIENT_TOO_SLOW")
    with mock.patch.object(conversation, "Budget", short_stall):
        async with running_server(backend=backend) as server:
            channel = (
                grpc.aio.insecure_channel(server.target)
                if transport == "grpc"
                else server.local_channel()
            )
            async with channel:
                call = pb_grpc.VoiceServiceStub(channel).Converse()
                await call.write(pb.ConverseRequest(config=pb.SessionConfig()))
                await read_until(call, "session_started")
                before = rejected._value.get()
                await call.write(text("flood"))
                await eventually(lambda: len(backend.sessions) == 1)
                session = backend.sessions[0]
                await asyncio.wait_for(session.closed.wait(), 60)
                await eventually(lambda: released(server))
                assert rejected._value.get() == before + 1
                assert not session.flooding
                if then == "cancels":
                    call.cancel()
                    # Over gRPC the status still waits behind the unread responses; in process
                    # the call already ended with it (a pipe keeps responses and status apart).
                    code = await asyncio.wait_for(call.code(), 10)
                    assert code == (
                        grpc.StatusCode.CANCELLED
                        if transport == "grpc"
                        else grpc.StatusCode.RESOURCE_EXHAUSTED
                    )
                    await eventually(lambda: server.local.live_calls == 0)
                    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
                    assert not errors, errors
                    return
                outcome = await read_to_end(call)
                assert (outcome.code, outcome.reason) == (
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    "CLIENT_TOO_SLOW",
                ), outcome
                assert 0 < len(outcome.responses) <= session.flooded
