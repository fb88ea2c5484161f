"""A draining server's refusal says which replica refused and how long its drain has left, so
that a resuming client can tell a replica that keeps refusing from a balancer that may reach
another (tests/client/test_resume_draining.py)."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from sonicwire.client.errors import error_from_rpc
from sonicwire.server.testing.server import running_server
from sonicwire.v1 import voice_service_pb2_grpc as pb_grpc

from .helpers import config_request

pytestmark = pytest.mark.timeout(60)


async def test_a_draining_refusal_names_the_replica_and_the_drain_left() -> None:
    async with running_server(backend="echo") as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            stub = pb_grpc.VoiceServiceStub(channel)
            live = stub.Converse()  # keeps the server draining for its grace
            await live.write(config_request())
            assert (await live.read()).HasField("session_started")
            drain = asyncio.create_task(server.drain(30.0))
            assert (await live.read()).HasField("going_away")
            refused = stub.Converse()
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await refused.read()  # no write: none can race the refusal (grpc#36066)
            live.cancel()
            await asyncio.wait_for(drain, 30)
    error = error_from_rpc(caught.value)
    assert (error.code, error.reason) == (grpc.StatusCode.UNAVAILABLE, "SERVER_DRAINING")
    assert error.metadata["replica"] == server.runtime.replica_id
    assert len(server.runtime.replica_id) == 8
    assert 0 < int(error.metadata["drain_left_ms"]) <= 30_000
