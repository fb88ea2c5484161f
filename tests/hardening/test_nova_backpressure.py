"""Issue 14: the queue toward Nova Sonic is bounded. Input events wait for the HTTP/2 writer
in a bounded outbox; past `MAX_PENDING_INPUT` the sender waits (`writable`), so backpressure
reaches the client instead of the queue growing."""

from __future__ import annotations

import asyncio
from typing import Any

from sonicwire.server.backends.nova_sonic.stream import MAX_PENDING_INPUT, NovaStream


class SlowInput:
    """A request body whose writes complete only when the test lets them."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.written = 0

    async def send(self, chunk: Any) -> None:
        await self.gate.wait()
        self.written += 1

    async def close(self) -> None:
        return None


class Duplex:
    def __init__(self) -> None:
        self.input_stream = SlowInput()


async def test_outbox_is_bounded_and_writable_waits_for_the_writer() -> None:
    stream = NovaStream(client=None, label="")  # type: ignore[arg-type]
    duplex = Duplex()
    stream._duplex = duplex
    writer = asyncio.create_task(stream._write_loop())
    try:
        for _ in range(MAX_PENDING_INPUT + 10):
            stream.send({"event": {"audioInput": {"content": "AAAA"}}})
        waiting = asyncio.create_task(stream.writable())
        await asyncio.sleep(0.05)
        assert not waiting.done()  # the sender is held back while the writer is stuck
        duplex.input_stream.gate.set()  # Bedrock takes input again
        await asyncio.wait_for(waiting, 5)
        assert duplex.input_stream.written > 10
    finally:
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)


async def test_writable_returns_once_the_stream_failed() -> None:
    stream = NovaStream(client=None, label="")  # type: ignore[arg-type]
    for _ in range(MAX_PENDING_INPUT + 1):
        stream.send({"event": {}})
    waiting = asyncio.create_task(stream.writable())
    await asyncio.sleep(0.01)
    assert not waiting.done()
    from sonicwire.server.core.errors import BackendError

    stream._fail(BackendError("BACKEND_UNAVAILABLE", "gone"))
    await asyncio.wait_for(waiting, 5)
