"""A gateway that resumes upstream (the default) in front of a single server that drains while
other conversations keep it draining: the move a socket tries can only reach that server
again, and its refusal says so (it names the replica and the time its drain has left), so the
socket closes 1001 (reconnect) after one retry.

Before, the SDK's resume retried the whole policy against the draining server (10 attempts,
about 9 s) before the socket closed; the browser heard nothing meanwhile.
"""

from __future__ import annotations

import asyncio
import json

import grpc
import pytest
from websockets.asyncio.client import connect

from sonicwire.gateway import Gateway, GatewayConfig
from sonicwire.server.testing.server import running_server
from sonicwire.v1 import voice_service_pb2_grpc as pb_grpc

from ..server.helpers import config_request
from .helpers import events_until, until_closed

pytestmark = pytest.mark.timeout(60)


async def test_a_move_refused_twice_by_one_draining_replica_closes_the_socket_at_once() -> None:
    async with running_server(backend="echo") as server:
        async with (
            Gateway(GatewayConfig(port=0, grpc_target=server.target)) as gateway,
            grpc.aio.insecure_channel(server.target) as channel,
        ):
            assert gateway.upstream.resume
            # Another client's conversation, which stays: the server drains for its grace.
            other = pb_grpc.VoiceServiceStub(channel).Converse()
            await other.write(config_request())
            assert (await other.read()).HasField("session_started")
            async with connect(gateway.ws_url) as ws:
                await ws.send(json.dumps({"action": "text", "text": "hello"}))
                await events_until(ws, lambda e: e["event"] == "turn_complete")
                # A long grace: the drain outlasts every retry the SDK would make.
                drain = asyncio.create_task(server.drain(30.0))
                closed = await until_closed(ws)
            other.cancel()
            await asyncio.wait_for(drain, 30)  # ends with the last conversation
    [error] = [e for e in closed.events if e["event"] == "error"]
    assert (error["code"], error["reason"]) == ("UNAVAILABLE", "SERVER_DRAINING"), error
    assert "after 2 attempt(s)" in error["message"], error
    assert closed.code == 1001  # reconnect (the page does, and resumes by itself)
    assert not [e for e in closed.events if e["event"] == "going_away"]
