"""A client tool's result sent after ``end`` reaches the server, as docs/gateway.md promises.

Found by the red-team session (s36): ``end`` half-closed the gRPC stream at once, so a
``tool_result`` sent after it could not be forwarded and was lost: the server waited for the
call's timeout and told the model TIMEOUT (since the server cancels a half-closed client's
pending calls: CANCELLED at once). The gateway now holds ``end`` until the client's open calls
are answered or ended by the server.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.client import connect

from sonicwire.gateway import Gateway
from sonicwire.gateway.state import ClientCalls
from sonicwire.server.app import RunningServer
from sonicwire.server.testing.backends import ToolCallingBackend
from sonicwire.server.testing.server import running_server

from .conftest import gateway_for
from .helpers import events_until, until_closed

pytestmark = pytest.mark.timeout(60)

_TOOL = {"name": "lookup", "timeout_ms": 60_000}


@pytest.fixture
async def tool_server() -> AsyncIterator[RunningServer]:
    async with running_server(backend=ToolCallingBackend()) as server:
        yield server


@pytest.fixture(params=["grpc", "inproc"])
async def tool_gateway(
    tool_server: RunningServer, request: pytest.FixtureRequest
) -> AsyncIterator[Gateway]:
    async with gateway_for(tool_server, request.param) as gateway:
        yield gateway


async def test_a_tool_result_after_end_reaches_the_model(tool_gateway: Gateway) -> None:
    async with connect(f"ws://127.0.0.1:{tool_gateway.port}/ws") as ws:
        await ws.send(json.dumps({"action": "config", "client_tools": [_TOOL]}))
        await ws.send(json.dumps({"action": "text", "text": "call lookup {}"}))
        events = await events_until(ws, lambda e: e["event"] == "tool_call")
        call_id = events[-1]["id"]
        await ws.send(json.dumps({"action": "end"}))
        result = {"action": "tool_result", "tool_call_id": call_id, "content": {"found": 1}}
        await ws.send(json.dumps(result))
        closed = await until_closed(ws)
    assert closed.code == 1000
    [outcome] = [e for e in closed.events if e["event"] == "tool_result"]
    assert (outcome["status"], outcome["result"]) == ("ok", {"found": 1})
    assert any(e["event"] == "turn_complete" for e in closed.events)


def test_end_is_held_until_every_open_call_settles() -> None:
    calls = ClientCalls()
    assert calls.end()  # nothing open: at once
    calls.called("c1")
    calls.called("c2")
    assert not calls.end()
    assert not calls.settled("c1")
    assert not calls.settled("unknown")
    assert calls.settled("c2")  # the last one: `end` goes now, once
    assert not calls.settled("c2")
    calls.called("c3")
    assert not calls.end()
    assert calls.forget()  # moved to another replica: nothing is left to answer there
