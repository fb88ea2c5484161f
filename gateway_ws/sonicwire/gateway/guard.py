"""Guards of a WebSocket against its client: a connection that does not buffer without bound
for a peer that does not read (`GuardedConnection`), and waits that end when the client leaves
(`until_closed`).

The WebSocket library answers every ping with a pong, and a close with a close, by writing to
the transport as the frames are read, whether or not the peer reads what it is sent. A client
that streams pings and never reads made the gateway keep every pong in memory: about 1 byte
buffered per byte the client sent, for as long as the socket lived (the keepalive ends it only
after its ping interval and timeout, 40 s by default). Everything else the gateway sends waits
for the transport to drain (the library's write limit) and is bounded by the outbox.

So a read that leaves more than :data:`MAX_UNSENT_BYTES` unsent aborts the connection. That
much unsent is never the gateway's own output: its sends stop at the library's write limit
(32 KiB) plus one message. gRPC's HTTP/2 transport does the same for its induced frames (it
stops reading while too many are pending).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

from websockets.asyncio.server import ServerConnection

__all__ = ["MAX_UNSENT_BYTES", "GuardedConnection", "until_closed"]

log = logging.getLogger("sonicwire.gateway")

MAX_UNSENT_BYTES = 1024 * 1024


class GuardedConnection(ServerConnection):
    """`ServerConnection` that aborts when a peer makes it buffer more than
    :data:`MAX_UNSENT_BYTES` without reading (pass as ``serve(create_connection=...)``)."""

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        transport = self.transport
        if transport.get_write_buffer_size() > MAX_UNSENT_BYTES and not transport.is_closing():
            log.info(
                "ws %s: %d bytes unsent: the client sends (pings) but does not read; aborted",
                self.id,
                transport.get_write_buffer_size(),
            )
            transport.abort()


async def until_closed[T](ws: ServerConnection, work: Awaitable[T]) -> T:
    """``work``'s result, unless the client closes the socket first: then ``work`` is
    cancelled and the socket's `ConnectionClosed` is raised.

    For the waits that read nothing from the socket meanwhile, such as a conversation's start:
    a client that sends its config and leaves (a page reload, a caller hanging up at once)
    held its gateway connection, and the server's set-up of its conversation, until the
    start finished, however long that took; clients that did so in a loop filled the
    gateway's connection limit (and kept it full ~26 s after they stopped).

    Both waits have ended when this returns or raises: ``work`` is awaited after it is
    cancelled (its clean-up, such as cancelling the upstream call, has run, and no task is
    left pending for the loop to destroy). A ``work`` that fails otherwise while it is
    cancelled raises its own error.
    """
    task = asyncio.ensure_future(work)
    closed = asyncio.ensure_future(ws.wait_closed())
    try:
        await asyncio.wait((task, closed), return_when=asyncio.FIRST_COMPLETED)
    finally:
        closed.cancel()
        if not task.done():
            task.cancel()  # also when the caller itself is cancelled
        # Returns once both have ended; it raises only the caller's own cancellation, never
        # theirs (so a cancelled caller still stops here, as it should).
        await asyncio.wait((task, closed))
    if task.cancelled():
        raise ws.protocol.close_exc
    return task.result()
