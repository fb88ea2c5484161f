"""The simulated carrier frames caller audio as Twilio does: whole 20 ms media messages, numbered,
the last one padded with mu-law silence (a short frame would shift the server's framing of
everything after it by up to a frame, which Twilio never causes)."""

from __future__ import annotations

import base64
import json

from websockets.asyncio.server import ServerConnection, serve

from sonicwire.gateway.twilio.carrier import SimulatedCarrier


async def test_send_audio_pads_the_last_frame_and_numbers_every_message() -> None:
    received: list[dict[str, object]] = []

    async def record(ws: ServerConnection) -> None:
        async for message in ws:
            received.append(json.loads(message))

    async with serve(record, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        async with SimulatedCarrier(f"ws://127.0.0.1:{port}/twilio") as call:
            await call.send_audio(b"\x01" * 250, realtime=False)  # 31.25 ms of audio
            await call.hang_up()

    media = [m["media"] for m in received if m["event"] == "media"]
    payloads = [base64.b64decode(m["payload"]) for m in media]  # type: ignore[index]
    assert payloads == [b"\x01" * 160, b"\x01" * 90 + b"\xff" * 70]
    assert [m["chunk"] for m in media] == ["1", "2"]  # type: ignore[index]
    events = [m["event"] for m in received]
    assert events == ["connected", "start", "media", "media", "stop"]
    assert [m["sequenceNumber"] for m in received[1:]] == ["1", "2", "3", "4"]
