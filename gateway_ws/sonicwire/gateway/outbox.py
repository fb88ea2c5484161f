"""A bounded outbound queue for one WebSocket: a client that stops reading cannot make the
gateway buffer without limit.

Producers :meth:`Outbox.put` messages without waiting; one writer task (:meth:`Outbox.run`)
sends them in order. With a ``send_now`` callable, a message put while nothing is queued goes
to the socket at once from the producer, when the socket takes it without waiting (the usual
case: a client that reads keeps the queue empty); the writer task then only wakes for the
messages that have to wait. Two things count as a slow consumer and raise :class:`SlowConsumer`:
more than ``max_bytes`` queued, or one send waiting longer than ``send_timeout_s`` for the
client to read (the socket's write buffer is full). Memory per socket is therefore bounded by
``max_bytes`` plus the WebSocket library's write limit.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

__all__ = ["Outbox", "SlowConsumer"]


class SlowConsumer(Exception):
    """The client is not reading fast enough (buffer full, or a send timed out)."""


class Outbox:
    """Bounded FIFO of outbound messages with a single writer."""

    def __init__(
        self,
        send: Callable[[str | bytes], Awaitable[None]],
        *,
        max_bytes: int,
        send_timeout_s: float,
        send_now: Callable[[str | bytes], bool] | None = None,
    ) -> None:
        """Wrap ``send`` (e.g. ``ServerConnection.send``).

        Args:
            send: sends one message; may wait for the client to read.
            max_bytes: most bytes queued (not yet handed to ``send``).
            send_timeout_s: longest a single ``send`` may wait.
            send_now: writes one message at once and returns True if that needs no waiting
                (nothing buffered, connection open); otherwise returns False and writes
                nothing, and the message is queued for ``send``.
        """
        self._send = send
        self._send_now = send_now
        self._max_bytes = max_bytes
        self._send_timeout_s = send_timeout_s
        self._queue: deque[str | bytes] = deque()
        self._queued_bytes = 0
        self._wakeup = asyncio.Event()
        self._closed = False
        self._in_flight = False  # the head of the queue is being sent
        self.peak_bytes = 0
        """The most bytes ever queued at once."""
        self.sent_messages = 0
        """How many messages were sent."""

    @property
    def queued_bytes(self) -> int:
        """Bytes queued and not yet sent."""
        return self._queued_bytes

    def put(self, message: str | bytes) -> None:
        """Queue a message.

        Raises:
            SlowConsumer: the queue would exceed ``max_bytes``.
            RuntimeError: the outbox was closed.
        """
        if self._closed:
            raise RuntimeError("outbox closed")
        # An empty queue means nothing is being sent either (the head stays queued while in
        # flight), so writing now keeps the order. It saves a wake-up of the writer task and
        # its timeout per message: the gateway's CPU fell 15% at 10 streams, 3% at 30
        # (docs/gateway.md, "Outbound messages written by the producer").
        if not self._queue and self._send_now is not None and self._send_now(message):
            self.sent_messages += 1
            return
        size = len(message)
        if self._queued_bytes + size > self._max_bytes:
            raise SlowConsumer(
                f"send buffer full ({self._queued_bytes} bytes queued, limit {self._max_bytes})"
            )
        self._queue.append(message)
        self._queued_bytes += size
        self.peak_bytes = max(self.peak_bytes, self._queued_bytes)
        self._wakeup.set()

    def put_first(
        self, message: str | bytes, *, drop: Callable[[str | bytes], bool] | None = None
    ) -> int:
        """Queue ``message`` ahead of everything not yet being sent, first removing the queued
        messages ``drop`` selects (e.g. audio an interruption makes pointless).

        Returns:
            How many queued messages were dropped.

        Raises:
            RuntimeError: the outbox was closed.
        """
        if self._closed:
            raise RuntimeError("outbox closed")
        head = [self._queue.popleft()] if self._in_flight and self._queue else []
        kept = [m for m in self._queue if drop is None or not drop(m)]
        dropped = len(self._queue) - len(kept)
        self._queue = deque([*head, message, *kept])
        self._queued_bytes = sum(len(m) for m in self._queue)
        self._wakeup.set()
        return dropped

    def close(self) -> None:
        """Accept no more messages; :meth:`run` returns once the queue is sent."""
        self._closed = True
        self._wakeup.set()

    async def run(self) -> None:
        """Send queued messages until :meth:`close` and an empty queue.

        Raises:
            SlowConsumer: a send waited longer than ``send_timeout_s``.
            Whatever ``send`` raises (e.g. ``ConnectionClosed``).
        """
        while True:
            while not self._queue:
                if self._closed:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
            message = self._queue[0]
            self._in_flight = True
            try:
                async with asyncio.timeout(self._send_timeout_s):
                    await self._send(message)
            except TimeoutError:
                raise SlowConsumer(
                    f"a send waited more than {self._send_timeout_s:g}s for the client to read"
                ) from None
            finally:
                self._in_flight = False
            self._queue.popleft()
            self._queued_bytes -= len(message)
            self.sent_messages += 1
