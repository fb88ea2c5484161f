"""A browser that sends audio faster than real time: paced by flow control and answered, with
nothing piling up between the gateway and the server, over loopback gRPC and in process."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect

from sonicwire.server.app import RunningServer
from sonicwire.server.local_rpc import WINDOW_BYTES

from .conftest import GatewayFactory
from .helpers import audiostream, frames, of_kind, recv_event, until_closed, with_silence

pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.parametrize("gateway_transport", ["grpc", "inproc"]),
]

UTTERANCES = 3


async def test_fast_sender_is_paced_and_answered(
    make_gateway: GatewayFactory,
    echo_server: RunningServer,
    speech_16k: bytes,
    gateway_transport: str,
) -> None:
    peak = 0

    async def watch_pipes() -> None:
        # In process, what waits between the gateway and the server is the call's request
        # pipe: it must stay within its window however fast the browser sends.
        nonlocal peak
        assert echo_server.local is not None
        while True:
            for call in echo_server.local.calls():
                peak = max(peak, call.requests.buffered_bytes)
            await asyncio.sleep(0.002)

    watcher = asyncio.create_task(watch_pipes())
    async with make_gateway(max_messages_per_second=0) as gw, connect(gw.ws_url) as ws:
        audio = with_silence(speech_16k) * UTTERANCES
        messages = [audiostream(chunk) for chunk in frames(audio)]

        async def flood() -> None:
            for message in messages:  # no pacing at all: as fast as the socket takes them
                await ws.send(message)

        sender = asyncio.create_task(flood())
        events = []
        while not of_kind(events, "turn_complete"):  # an answer came back while flooding
            events.append(await recv_event(ws, timeout=60))
        await sender
        await ws.send(json.dumps({"action": "end"}))
        closed = await until_closed(ws)
    watcher.cancel()
    assert closed.code == 1000
    assert of_kind(events, "media"), "assistant audio came back"
    assert gw.stats.closes.get(1011, 0) == 0
    if gateway_transport == "inproc":
        assert 0 < peak <= WINDOW_BYTES + 1024  # one serialized 20 ms frame over the window
