"""A client that streams WebSocket pings and never reads its socket: the gateway answered every
ping with a pong into its send buffer, ~1 byte kept per byte received, until the keepalive ended
the socket 40 s later. Found by the red-team session (s23): 8 s of such a flood left 3.9 MB
unsent in the gateway, growing at the client's upload rate. Now the socket is aborted past
`guard.MAX_UNSENT_BYTES`. Both WebSocket routes (the browser's ``/ws``, Twilio's ``/twilio``)."""

from __future__ import annotations

import asyncio
import time

import pytest
from websockets.asyncio.client import connect

from sonicwire.gateway import Gateway
from sonicwire.gateway.guard import MAX_UNSENT_BYTES

from .conftest import GatewayFactory

pytestmark = pytest.mark.timeout(90)

_PING = bytes([0x89, 0x80 | 125]) + b"\0\0\0\0" + b"p" * 125  # masked, the largest ping
_BATCH = _PING * 512  # 67 KB
_FLOOD_LIMIT_BYTES = 400 * 1024 * 1024  # far past the kernel buffers of both ends
_FLOOD_LIMIT_S = 45.0


def _unsent(gateway: Gateway) -> int:
    server = gateway._server
    assert server is not None
    return max((c.transport.get_write_buffer_size() for c in server.connections), default=0)


@pytest.mark.parametrize("path", ["/ws", "/twilio"])
async def test_a_client_that_pings_and_never_reads_is_cut_off(
    make_gateway: GatewayFactory, path: str
) -> None:
    async with make_gateway() as gateway:
        ws = await connect(f"ws://127.0.0.1:{gateway.port}{path}")
        transport = ws.transport
        transport.pause_reading()  # from now on this client reads nothing
        sent, largest, started = 0, 0, time.monotonic()
        try:
            while not transport.is_closing() and gateway._server.connections:
                if sent > _FLOOD_LIMIT_BYTES or time.monotonic() - started > _FLOOD_LIMIT_S:
                    pytest.fail(f"still open after {sent} bytes of pings; {largest} unsent")
                if transport.get_write_buffer_size() < 1 << 20:
                    transport.write(_BATCH)
                    sent += len(_BATCH)
                await asyncio.sleep(0)
                largest = max(largest, _unsent(gateway))
        finally:
            transport.abort()
    assert largest <= MAX_UNSENT_BYTES + 64 * 1024  # one read's worth of pongs past the cap


async def test_a_client_that_pings_and_reads_is_left_alone(make_gateway: GatewayFactory) -> None:
    async with make_gateway() as gateway:
        async with connect(f"ws://127.0.0.1:{gateway.port}/ws") as ws:
            for batch in range(20):
                pongs = [await ws.ping(f"{batch}:{i}".ljust(125)) for i in range(100)]
                await asyncio.wait_for(asyncio.gather(*pongs), 10)
            assert len(gateway._server.connections) == 1
