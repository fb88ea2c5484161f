"""A client that stops reading is closed once the gateway's bounded send buffer fills up."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from sonicwire.server.app import RunningServer
from sonicwire.server.limits import InputLimits

from .conftest import GatewayFactory
from .helpers import wait_for

# Each test runs with the gateway on loopback gRPC and on the in-process channel (`sonicwire up`).
pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.parametrize("gateway_transport", ["grpc", "inproc"]),
]

SEND_BUFFER = 64 * 1024


async def test_slow_reader_is_closed_with_bounded_memory(
    make_gateway: GatewayFactory, echo_server: RunningServer
) -> None:
    # The flood below is typed text: lift the server's per-stream text rate limit for it.
    echo_server.runtime.input_limits = InputLimits(text_rate_per_s=0)
    settings = {
        "send_buffer_bytes": SEND_BUFFER,
        "max_message_bytes": 16 * 1024,
        "max_messages_per_second": 0,  # the client floods on purpose
        "send_timeout_s": 30.0,  # so the buffer limit, not the timeout, is what trips
    }
    async with make_gateway(**settings) as gw:
        # A tiny receive window, and a client that never calls recv(): after a frame or two
        # the client stops reading the socket and the gateway's writes back up.
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", gw.port))
        text = json.dumps({"action": "text", "text": "x" * 4000})
        async with connect(
            gw.ws_url, sock=sock, max_queue=1, ping_interval=None, close_timeout=1
        ) as ws:
            # Each typed turn makes the server send back ~8 KB of transcripts. The turns are
            # spaced a little so the gRPC server's own slow-client guard is not what trips;
            # 3000 turns (24 MB) are far more than kernel socket buffers plus ours can hold.
            try:
                for _ in range(3000):
                    await ws.send(text)
                    await asyncio.sleep(0.002)
                    if gw.stats.closes:
                        break
            except ConnectionClosed:
                pass
            await wait_for(lambda: gw.stats.closes[4507] == 1)
        assert dict(gw.stats.closes) == {4507: 1}
        assert gw.stats.errors["SLOW_CONSUMER"] == 1
        assert SEND_BUFFER // 2 < gw.stats.peak_send_buffer_bytes <= SEND_BUFFER
        await wait_for(lambda: gw.stats.connections_active == 0)
