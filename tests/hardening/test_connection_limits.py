"""Issue 14, item 6: idle, never-authenticated connections cannot pile up. Past
``--max-connections`` new connections are closed at once; a connection that never completes
its HTTP/2 handshake is closed after ``--handshake-timeout-seconds``."""

from __future__ import annotations

import asyncio
import socket

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sonicwire.server.testing.server import running_server


def is_closed(sock: socket.socket) -> bool:
    """True once the server closed ``sock`` (it may first have sent its SETTINGS frame)."""
    try:
        while True:
            if sock.recv(4096) == b"":
                return True
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True


def idle_sockets(port: int, n: int) -> list[socket.socket]:
    socks = []
    for _ in range(n):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setblocking(False)
        socks.append(sock)
    return socks


async def count_closed(socks: list[socket.socket], want: int, tries: int = 100) -> int:
    closed: set[int] = set()
    for _ in range(tries):  # at most tries / 10 s
        closed |= {i for i, s in enumerate(socks) if i not in closed and is_closed(s)}
        if len(closed) >= want:
            break
        await asyncio.sleep(0.1)
    return len(closed)


async def health_answers(target: str, tries: int = 20) -> bool:
    """True once a new connection is served. The server frees a slot only when it has seen
    the idle client close, which can lag the close on a loaded machine; until then a new
    connection is refused (UNAVAILABLE), which is the limit working, so it is tried again
    (at most ``tries`` times, 0.5 s apart)."""
    for attempt in range(tries):
        try:
            async with grpc.aio.insecure_channel(target) as channel:
                reply = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=10
                )
            return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.UNAVAILABLE or attempt == tries - 1:
                raise
            await asyncio.sleep(0.5)
    return False


async def test_connections_past_the_limit_are_closed() -> None:
    async with running_server(max_connections=5, handshake_timeout_s=60) as server:
        socks = idle_sockets(server.port, 20)
        try:
            # The 15 over the limit are closed at once (at least most of them: a socket the
            # server closed may still be draining when it is checked) ...
            assert await count_closed(socks, 15, tries=300) >= 10
            # ... the ones within the limit stay open (handshake timeout 60 s).
            assert await count_closed(socks, 20, tries=5) < 20
        finally:
            for sock in socks:
                sock.close()
        assert await health_answers(server.target)


async def test_idle_connections_without_a_handshake_are_closed() -> None:
    async with running_server(max_connections=0, handshake_timeout_s=0.5) as server:
        socks = idle_sockets(server.port, 50)
        try:
            assert await count_closed(socks, 50, tries=300) == 50
        finally:
            for sock in socks:
                sock.close()
        assert await health_answers(server.target)
