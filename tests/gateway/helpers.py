"""Helpers for gateway tests: a real WebSocket client against a real gateway and gRPC server."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

FRAME_BYTES = 640  # 20 ms at 16 kHz
TIMEOUT_S = 20.0  # generous bound for any single wait; tests never assert on durations

Event = dict[str, Any]


def audiostream(pcm: bytes) -> str:
    """The seed protocol's audio message."""
    return json.dumps({"action": "audiostream", "audioData": base64.b64encode(pcm).decode()})


def frames(pcm: bytes, size: int = FRAME_BYTES) -> list[bytes]:
    """Split PCM into ``size``-byte chunks."""
    return [pcm[i : i + size] for i in range(0, len(pcm), size)]


def with_silence(speech: bytes, before_ms: int = 250, after_ms: int = 1200) -> bytes:
    """Speech padded with silence so the server's VAD sees it start and stop."""
    return bytes(32 * before_ms) + speech + bytes(32 * after_ms)


async def recv_event(ws: ClientConnection, timeout: float = TIMEOUT_S) -> Event:
    """The next event (a JSON text frame)."""
    async with asyncio.timeout(timeout):
        message = await ws.recv()
    assert isinstance(message, str), "the gateway sends text frames only"
    event: Event = json.loads(message)
    return event


async def events_until(
    ws: ClientConnection, done: Callable[[Event], bool], timeout: float = TIMEOUT_S
) -> list[Event]:
    """Events up to and including the first for which ``done`` is true."""
    events: list[Event] = []
    async with asyncio.timeout(timeout):
        while True:
            event = await recv_event(ws, timeout)
            events.append(event)
            if done(event):
                return events


@dataclass
class Closed:
    """How a socket ended, seen by the client."""

    code: int | None
    reason: str
    events: list[Event] = field(default_factory=list)


async def until_closed(ws: ClientConnection, timeout: float = TIMEOUT_S) -> Closed:
    """Read events until the gateway closes the socket."""
    events: list[Event] = []
    async with asyncio.timeout(timeout):
        try:
            while True:
                message = await ws.recv()
                if isinstance(message, str):
                    events.append(json.loads(message))
        except ConnectionClosed as closed:
            rcvd = closed.rcvd
            return Closed(rcvd.code if rcvd else None, rcvd.reason if rcvd else "", events)


def of_kind(events: list[Event], kind: str) -> list[Event]:
    """The events whose ``event`` is ``kind``."""
    return [e for e in events if e["event"] == kind]


async def wait_for(predicate: Callable[[], bool], timeout: float = TIMEOUT_S) -> None:
    """Poll ``predicate`` until true (for gateway-side counters updated after a close)."""
    async with asyncio.timeout(timeout):
        while True:
            if predicate():
                return
            await asyncio.sleep(0.01)
