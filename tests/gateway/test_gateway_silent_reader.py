"""Issue 14, item 8: a client that stops reading its socket entirely (so it answers no ping)
is closed as a slow consumer, 4507, as documented, not 1011 "keepalive ping timeout"."""

from __future__ import annotations

import asyncio
import base64
import os
import socket

import pytest

from .conftest import GatewayFactory
from .helpers import wait_for

# Each test runs with the gateway on loopback gRPC and on the in-process channel (`sonicwire up`).
pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.parametrize("gateway_transport", ["grpc", "inproc"]),
]


def open_and_go_silent(port: int) -> socket.socket:
    """A WebSocket handshake by hand, then nothing: the socket is never read again."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Protocol: sonicwire.v1\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


async def test_client_that_reads_nothing_is_closed_4507(make_gateway: GatewayFactory) -> None:
    async with make_gateway(ping_interval_s=0.5) as gw:
        sock = await asyncio.to_thread(open_and_go_silent, gw.port)
        try:
            await wait_for(lambda: gw.stats.closes[4507] == 1)
            assert 1011 not in gw.stats.closes
            assert gw.stats.errors["SLOW_CONSUMER"] == 1
        finally:
            sock.close()
