"""A client that leaves while its conversation is starting: the gateway lets go at once.

Found by the red-team session (s23): a client that sent its config and closed the socket kept
its gateway connection, and the upstream stream setting up its conversation, until the start
finished, however long that took (here: a backend whose open hangs, so until the backend
timeout). Clients doing it in a loop with heavy configs filled the gateway's connection limit
(100), which stayed full ~26 s after they stopped. Now the start is cancelled when the socket
closes. Both routes (/ws and a Twilio call), over loopback gRPC and the in-process channel.
`until_closed` itself: the cancelled start is awaited, nothing is left pending.
"""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import cast

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosedError

from sonicwire.gateway.guard import until_closed
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


class _Socket:
    """The two things `until_closed` uses of a server connection; `close` ends `wait_closed`."""

    def __init__(self) -> None:
        self._closed = asyncio.Event()
        self.protocol = SimpleNamespace(close_exc=ConnectionClosedError(None, None))

    def close(self) -> None:
        self._closed.set()

    async def wait_closed(self) -> None:
        await self._closed.wait()


class _SlowToCancel:
    """A start whose cancellation takes a few loop turns (as cancelling an upstream call does)."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cleaned_up = False

    async def run(self) -> str:
        self.started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            for _ in range(3):
                await asyncio.sleep(0)
            self.cleaned_up = True
            raise
        return "started"


def _other_tasks() -> set[asyncio.Task[object]]:
    return asyncio.all_tasks() - {asyncio.current_task()}  # type: ignore[misc]


async def test_until_closed_awaits_the_cancelled_start_when_the_client_leaves() -> None:
    """Before, the start was only asked to cancel: `until_closed` returned while it was still
    pending (unwinding, or for the loop to destroy at shutdown: "Task was destroyed but it is
    pending")."""
    socket, start = _Socket(), _SlowToCancel()

    async def leave() -> None:
        await start.started.wait()
        socket.close()

    leaving = asyncio.create_task(leave())
    with pytest.raises(ConnectionClosedError):
        await until_closed(cast(ServerConnection, socket), start.run())
    await leaving
    assert start.cleaned_up
    assert not _other_tasks()


async def test_until_closed_awaits_the_start_when_its_caller_is_cancelled() -> None:
    socket, start = _Socket(), _SlowToCancel()
    caller = asyncio.create_task(until_closed(cast(ServerConnection, socket), start.run()))
    await start.started.wait()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert start.cleaned_up
    assert not _other_tasks()


async def test_until_closed_returns_the_result_and_leaves_nothing_behind() -> None:
    async def work() -> str:
        await asyncio.sleep(0)
        return "started"

    assert await until_closed(cast(ServerConnection, _Socket()), work()) == "started"
    assert not _other_tasks()
