"""A client that leaves while its conversation is starting: the gateway lets go at once.

Found by the red-team session (s23): a client that sent its config and closed the socket kept
its gateway connection, and the upstream stream setting up its conversation, until the start
finished, however long that took (here: a backend whose open hangs, so until the backend
timeout). Clients doing it in a loop with heavy configs filled the gateway's connection limit
(100), which stayed full ~26 s after they stopped. Now the start is cancelled when the socket
closes. Both routes (/ws and a Twilio call), over loopback gRPC and the in-process channel.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect

from sonicwire.gateway.twilio.carrier import SimulatedCarrier
from sonicwire.server.testing.server import running_server
from tests.faults.backends import HangingOpenBackend

from .conftest import gateway_for
from .helpers import wait_for

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("route", ["/ws", "/twilio"])
@pytest.mark.parametrize("transport", ["grpc", "inproc"])
async def test_a_client_leaving_before_its_conversation_starts_is_let_go(
    transport: str, route: str
) -> None:
    backend = HangingOpenBackend()
    # The backend timeout (60 s) is what released the connection before.
    async with running_server(backend=backend, backend_timeout_s=60.0) as server:
        async with gateway_for(server, transport) as gateway:
            url = f"ws://127.0.0.1:{gateway.port}{route}"
            if route == "/ws":
                ws = await connect(url)
                await ws.send(json.dumps({"action": "config"}))
                await asyncio.wait_for(backend.opened.wait(), 10)
                ws.transport.abort()  # gone, without a closing handshake
            else:
                call = SimulatedCarrier(url, parameters={"apiKey": "unused"})
                await call.connect()
                await asyncio.wait_for(backend.opened.wait(), 10)
                await call.close()  # the caller hung up (a clean close this time)
            await wait_for(lambda: gateway.stats.connections_active == 0)
            await wait_for(lambda: backend.cancelled == 1)  # the server stopped opening it
            assert backend.opening == 0
            assert not server.runtime.conversations
