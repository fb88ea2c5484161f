"""A WebSocket connection that does not buffer without bound for a peer that does not read.

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

import logging

from websockets.asyncio.server import ServerConnection

__all__ = ["MAX_UNSENT_BYTES", "GuardedConnection"]

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
