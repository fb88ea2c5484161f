"""`clear` is sent the moment an Interruption arrives: ahead of the assistant audio still queued
for Twilio (which is dropped), behind only the one message already being written.

The call's outbound pump runs against a socket whose sends block until released (a slow
network: the queue backs up) and a scripted conversation; the order of what reaches the socket
is the assertion, no timing is."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from sonicwire.client import AudioOutput, Interruption, InterruptionSource
from sonicwire.gateway import GatewayConfig
from sonicwire.gateway.twilio.call import TwilioCall, TwilioStats
from sonicwire.gateway.twilio.playback import Playback


class _SlowSocket:
    """Every send waits for ``gate``: what is queued behind the first one stays queued."""

    id = "slow-socket"

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.sent: list[dict[str, object]] = []

    async def send(self, message: str | bytes) -> None:
        await self.gate.wait()
        self.sent.append(json.loads(message))


class _Script:
    """The conversation's events, yielding to the loop between them (as a stream would)."""

    def __init__(self, events: list[object]) -> None:
        self._events = events

    async def __aiter__(self) -> AsyncIterator[object]:
        for event in self._events:
            await asyncio.sleep(0)
            yield event


def _audio(offset_ms: int) -> AudioOutput:
    return AudioOutput(audio=b"\x01" * 800, turn_id="t1", offset_ms=offset_ms)  # 100 ms


async def test_clear_jumps_the_queued_audio_and_the_cut_turn_sends_nothing_more() -> None:
    socket = _SlowSocket()
    stats = TwilioStats()
    call = TwilioCall(
        socket,  # type: ignore[arg-type]
        upstream=None,  # type: ignore[arg-type]
        config=GatewayConfig(),
        stats=stats,
        signed=True,
    )
    call._playback = Playback("MZ1")
    call._done = asyncio.get_running_loop().create_future()
    writer = asyncio.create_task(call._write())
    script = _Script(
        [
            _audio(0),  # 5 frames + a mark: the first frame is being written, the rest queue
            _audio(100),
            Interruption(turn_id="t1", played_ms=20, source=InterruptionSource.BARGE_IN),
            _audio(200),  # the cut turn's audio still in flight from the server
        ]
    )
    await call._pump(script)  # type: ignore[arg-type]
    socket.gate.set()
    call._outbox.close()
    await writer

    events = [m["event"] for m in socket.sent]
    assert events == ["media", "clear"]  # the frame on the wire, then clear: nothing else
    assert stats.clears_out == 1
    assert stats.frames_out == 10  # framed (and counted) before the clear dropped them
