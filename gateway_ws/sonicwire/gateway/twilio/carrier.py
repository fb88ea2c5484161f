"""A simulated Twilio for tests and benchmarks: speaks the Media Streams protocol exactly as
Twilio does, from the carrier's side.

    async with SimulatedCarrier(url, parameters={"apiKey": key}) as call:
        await call.send_audio(mulaw)           # 160-byte media messages, paced at real time
        await call.press("1")
        await call.hang_up()                   # stop, then close

It numbers every message (``sequenceNumber`` from 1, ``media.chunk`` from 1, ``timestamp`` in
ms since the start), plays what it receives at real time (one 20 ms frame every 20 ms), echoes
each ``mark`` once everything sent before it has been played, and on ``clear`` drops the
buffered audio and echoes the pending marks at once, as Twilio documents. What it received and
played is recorded with `time.monotonic` timestamps for the assertions and the benchmark.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

__all__ = ["Received", "SimulatedCarrier"]

_FRAME_BYTES = 160
_FRAME_S = 0.020
_MULAW_SILENCE = b"\xff"  # mu-law code of linear 0


@dataclass(frozen=True, slots=True)
class Received:
    """One message from the gateway, as the carrier got it."""

    at: float
    event: str
    payload: bytes = b""
    name: str = ""


@dataclass
class _Playout:
    queue: deque[bytes | str] = field(default_factory=deque)  # frames, and mark names
    played: bytearray = field(default_factory=bytearray)
    first_played_at: float | None = None


class SimulatedCarrier:
    """One simulated call to a gateway's ``/twilio`` endpoint."""

    def __init__(
        self,
        url: str,
        *,
        parameters: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        call_sid: str = "CA00000000000000000000000000000001",
        stream_sid: str = "MZ00000000000000000000000000000001",
        account_sid: str = "AC00000000000000000000000000000001",
        media_format: Mapping[str, Any] | None = None,
    ) -> None:
        self.url = url
        self.parameters = dict(parameters or {})
        self.headers = dict(headers or {})
        self.call_sid = call_sid
        self.stream_sid = stream_sid
        self.account_sid = account_sid
        self.media_format = dict(
            media_format or {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
        )
        self.received: list[Received] = []
        self.marks_echoed: list[str] = []
        self.close_code: int | None = None
        self._ws: ClientConnection | None = None
        self._sequence = 0
        self._chunk = 0
        self._started_at = 0.0
        self._out = _Playout()
        self._send_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._frame_ready = asyncio.Event()

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def connect(self) -> None:
        """Open the WebSocket and send ``connected`` and ``start``."""
        self._ws = await connect(
            self.url, additional_headers=self.headers, max_size=1 << 20, open_timeout=10
        )
        self._started_at = time.monotonic()
        await self._send_raw({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        await self.send_start()
        self._tasks = [
            asyncio.create_task(self._receive(), name="carrier-receive"),
            asyncio.create_task(self._play(), name="carrier-play"),
        ]

    async def send_start(self) -> None:
        """The ``start`` message (sent by `connect`; again only to test a broken carrier)."""
        await self._send_numbered(
            "start",
            start={
                "streamSid": self.stream_sid,
                "accountSid": self.account_sid,
                "callSid": self.call_sid,
                "tracks": ["inbound"],
                "customParameters": self.parameters,
                "mediaFormat": self.media_format,
            },
        )

    async def close(self) -> None:
        """Close the socket (if still open) and stop the carrier's tasks."""
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def wait_closed(self, timeout_s: float) -> int | None:
        """Wait until the gateway closes the socket; its close code (None on timeout)."""
        assert self._ws is not None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._ws.wait_closed()
        if self._ws.close_code is not None:
            self.close_code = self._ws.close_code
        return self.close_code

    # -- sending -----------------------------------------------------------------------------

    async def send_audio(self, mulaw: bytes, *, realtime: bool = True) -> None:
        """Send caller audio as Twilio does: 160-byte (20 ms) media messages, paced.

        Twilio's frames are always whole: a partial last frame is padded with mu-law silence
        (a short one would also shift the server's 20 ms framing of everything after it).
        """
        start = time.monotonic()
        for index, offset in enumerate(range(0, len(mulaw), _FRAME_BYTES)):
            frame = mulaw[offset : offset + _FRAME_BYTES].ljust(_FRAME_BYTES, _MULAW_SILENCE)
            self._chunk += 1
            timestamp = round((time.monotonic() - self._started_at) * 1000)
            await self._send_numbered(
                "media",
                media={
                    "track": "inbound",
                    "chunk": str(self._chunk),
                    "timestamp": str(timestamp),
                    "payload": base64.b64encode(frame).decode("ascii"),
                },
            )
            if realtime:
                delay = start + (index + 1) * _FRAME_S - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)

    async def press(self, digit: str) -> None:
        """A keypad press (Twilio sends one ``dtmf`` message per key)."""
        await self._send_numbered("dtmf", dtmf={"track": "inbound_track", "digit": digit})

    async def hang_up(self) -> None:
        """The caller hangs up: ``stop``, as Twilio sends it before closing."""
        await self._send_numbered(
            "stop", stop={"accountSid": self.account_sid, "callSid": self.call_sid}
        )

    async def send_raw(self, data: str | bytes) -> None:
        """Send anything (malformed-input tests)."""
        assert self._ws is not None
        await self._ws.send(data)

    async def _send_numbered(self, event: str, **body: Any) -> None:
        self._sequence += 1
        await self._send_raw(
            {
                "event": event,
                "sequenceNumber": str(self._sequence),
                **body,
                "streamSid": self.stream_sid,
            }
        )

    async def _send_raw(self, message: dict[str, Any]) -> None:
        assert self._ws is not None
        async with self._send_lock:
            await self._ws.send(json.dumps(message))

    # -- what came back ----------------------------------------------------------------------

    async def wait_answer(self, quiet_s: float = 1.0, timeout_s: float = 60.0) -> bytes:
        """Wait until audio came, all of it was played and nothing new for ``quiet_s``;
        returns the mu-law played. Raises `TimeoutError` after ``timeout_s``."""
        async with asyncio.timeout(timeout_s):
            while True:
                media = self.events("media")
                quiet = bool(media) and time.monotonic() - media[-1].at >= quiet_s
                if quiet and not self._out.queue:
                    return self.played
                await asyncio.sleep(0.05)

    @property
    def played(self) -> bytes:
        """The mu-law the caller heard (what was played before any clear)."""
        return bytes(self._out.played)

    def events(self, kind: str) -> list[Received]:
        """Received messages of one kind (``media``, ``mark`` or ``clear``)."""
        return [r for r in self.received if r.event == kind]

    def audio(self) -> bytes:
        """All mu-law received (played or not)."""
        return b"".join(r.payload for r in self.events("media"))

    async def _receive(self) -> None:
        assert self._ws is not None
        try:
            async for data in self._ws:
                message = json.loads(data)
                event = message["event"]
                now = time.monotonic()
                match event:
                    case "media":
                        payload = base64.b64decode(message["media"]["payload"])
                        self.received.append(Received(now, event, payload=payload))
                        self._out.queue.append(payload)
                    case "mark":
                        name = message["mark"]["name"]
                        self.received.append(Received(now, event, name=name))
                        self._out.queue.append(name)
                    case "clear":
                        self.received.append(Received(now, event))
                        await self._clear()
                    case _:
                        self.received.append(Received(now, event))
                self._frame_ready.set()
        except ConnectionClosed:
            pass
        finally:
            if self._ws.close_code is not None:
                self.close_code = self._ws.close_code

    async def _clear(self) -> None:
        pending = [item for item in self._out.queue if isinstance(item, str)]
        self._out.queue.clear()
        for name in pending:
            await self._echo_mark(name)

    async def _echo_mark(self, name: str) -> None:
        self.marks_echoed.append(name)
        with contextlib.suppress(ConnectionClosed):
            await self._send_numbered("mark", mark={"name": name})

    async def _play(self) -> None:
        next_at = time.monotonic()
        while True:
            queue = self._out.queue
            while queue and isinstance(queue[0], str):
                await self._echo_mark(str(queue.popleft()))
            if not queue:
                self._frame_ready.clear()
                await self._frame_ready.wait()
                next_at = max(next_at, time.monotonic())
                continue
            frame = queue.popleft()
            assert isinstance(frame, bytes)
            if self._out.first_played_at is None:
                self._out.first_played_at = time.monotonic()
            self._out.played += frame
            next_at += len(frame) / 8000
            delay = next_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
