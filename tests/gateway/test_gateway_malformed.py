"""Every malformed input gets a defined error event or close code, and the socket survives
the non-fatal ones."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from websockets.asyncio.client import connect

from sonicwire.gateway import Gateway

from .conftest import GatewayFactory
from .helpers import events_until, recv_event, until_closed, wait_for

# Each test runs with the gateway on loopback gRPC and on the in-process channel (`sonicwire up`).
pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.parametrize("gateway_transport", ["grpc", "inproc"]),
]


def _json(value: Any) -> str:
    return json.dumps(value)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# (case id, frame, reason) — each frame is answered with a non-fatal INVALID_ARGUMENT error.
NON_FATAL: list[tuple[str, str | bytes, str]] = [
    ("not json", "hello", "INVALID_JSON"),
    ("truncated json", '{"action": "text"', "INVALID_JSON"),
    ("json array", "[1, 2]", "INVALID_MESSAGE"),
    ("json string", '"audiostream"', "INVALID_MESSAGE"),
    ("json null", "null", "INVALID_MESSAGE"),
    ("no action", "{}", "MISSING_FIELD"),
    ("action not a string", _json({"action": 5}), "INVALID_FIELD"),
    ("unknown action", _json({"action": "dance"}), "UNKNOWN_ACTION"),
    ("audio without data", _json({"action": "audiostream"}), "MISSING_FIELD"),
    ("audio data null", _json({"action": "audiostream", "audioData": None}), "MISSING_FIELD"),
    ("audio data number", _json({"action": "audiostream", "audioData": 12}), "INVALID_FIELD"),
    ("bad base64", _json({"action": "audiostream", "audioData": "%%%"}), "INVALID_BASE64"),
    ("base64 no padding", _json({"action": "audiostream", "audioData": "AAA"}), "INVALID_BASE64"),
    ("non-ascii base64", _json({"action": "audiostream", "audioData": "é"}), "INVALID_BASE64"),
    (
        "odd byte count",
        _json({"action": "audiostream", "audioData": _b64(b"\x01\x02\x03")}),
        "AUDIO_CHUNK_INVALID",
    ),
    ("empty audio", _json({"action": "audiostream", "audioData": ""}), "AUDIO_CHUNK_INVALID"),
    ("odd binary frame", b"\x00\x01\x02", "AUDIO_CHUNK_INVALID"),
    ("empty binary frame", b"", "AUDIO_CHUNK_INVALID"),
    ("text missing", _json({"action": "text"}), "MISSING_FIELD"),
    ("text blank", _json({"action": "text", "text": "  "}), "INVALID_FIELD"),
    ("text not a string", _json({"action": "text", "text": ["hi"]}), "INVALID_FIELD"),
    ("text too long", _json({"action": "text", "text": "é" * 2049}), "TEXT_TOO_LONG"),
    ("playback no turn", _json({"action": "playback", "played_ms": 5}), "MISSING_FIELD"),
    (
        "playback negative",
        _json({"action": "playback", "turn_id": "t1", "played_ms": -1}),
        "INVALID_FIELD",
    ),
    (
        "playback boolean",
        _json({"action": "playback", "turn_id": "t1", "played_ms": True}),
        "INVALID_FIELD",
    ),
    (
        "playback fraction",
        _json({"action": "playback", "turn_id": "t1", "played_ms": 1.5}),
        "INVALID_FIELD",
    ),
    ("tool result no id", _json({"action": "tool_result", "content": "x"}), "MISSING_FIELD"),
    (
        "config bad rate",
        _json({"action": "config", "sample_rate": 44100}),
        "AUDIO_FORMAT_UNSUPPORTED",
    ),
    ("config stereo", _json({"action": "config", "channels": 2}), "AUDIO_FORMAT_UNSUPPORTED"),
    ("config mp3", _json({"action": "config", "format": "mp3"}), "AUDIO_FORMAT_UNSUPPORTED"),
    ("config typo", _json({"action": "config", "sample_rte": 16000}), "UNKNOWN_FIELD"),
    (
        "config vad out of range",
        _json({"action": "config", "vad": {"confidence": 2}}),
        "INVALID_FIELD",
    ),
    ("config vad typo", _json({"action": "config", "vad": {"engine": "x"}}), "INVALID_FIELD"),
    (
        "config bad tool name",
        _json({"action": "config", "client_tools": [{"name": "1bad"}]}),
        "INVALID_FIELD",
    ),
]


@pytest.mark.parametrize(
    ("frame", "reason"), [c[1:] for c in NON_FATAL], ids=[c[0] for c in NON_FATAL]
)
async def test_malformed_message_gets_an_error_event(
    gateway: Gateway, frame: str | bytes, reason: str
) -> None:
    async with connect(gateway.ws_url) as ws:
        await ws.send(frame)
        error = await recv_event(ws)
        # The socket is still usable: a valid message afterwards is served.
        await ws.send(json.dumps({"action": "text", "text": "ok?"}))
        events = await events_until(ws, lambda e: e["event"] == "turn_complete")
    assert error["event"] == "error"
    assert (error["code"], error["reason"], error["fatal"]) == ("INVALID_ARGUMENT", reason, False)
    assert error["message"]
    assert any(e.get("text") == "You said: ok?" for e in events)


async def test_config_after_audio_is_refused(gateway: Gateway) -> None:
    async with connect(gateway.ws_url) as ws:
        await ws.send(bytes(640))
        assert (await recv_event(ws))["event"] == "session_started"
        await ws.send(json.dumps({"action": "config", "sample_rate": 48000}))
        error = await recv_event(ws)
        await ws.send(json.dumps({"action": "text", "text": "still here"}))
        events = await events_until(ws, lambda e: e["event"] == "turn_complete")
    assert (error["reason"], error["fatal"]) == ("CONFIG_ALREADY_RECEIVED", False)
    assert any(e.get("text") == "You said: still here" for e in events)


async def test_second_config_is_refused(gateway: Gateway) -> None:
    async with connect(gateway.ws_url) as ws:
        await ws.send(json.dumps({"action": "config"}))
        assert (await recv_event(ws))["event"] == "session_started"
        await ws.send(json.dumps({"action": "config"}))
        error = await recv_event(ws)
    assert error["reason"] == "CONFIG_ALREADY_RECEIVED"


async def test_oversized_message_closes_with_1009(make_gateway: GatewayFactory) -> None:
    async with make_gateway(max_message_bytes=4096, send_buffer_bytes=4096) as gw:
        async with connect(gw.ws_url) as ws:
            await ws.send(json.dumps({"action": "text", "text": "x" * 5000}))
            closed = await until_closed(ws)
        assert closed.code == 1009
        async with connect(gw.ws_url) as ws:
            await ws.send(bytes(8192))
            closed = await until_closed(ws)
        assert closed.code == 1009
        await wait_for(lambda: gw.stats.closes[1009] == 2)


async def test_text_frame_with_invalid_utf8_closes_with_1007(gateway: Gateway) -> None:
    async with connect(gateway.ws_url) as ws:
        await ws.send(b'{"action": "text", "text": "\xff"}', text=True)
        closed = await until_closed(ws)
    assert closed.code == 1007


async def test_rate_limit_closes_with_4429(make_gateway: GatewayFactory) -> None:
    async with make_gateway(max_messages_per_second=5, message_burst=5) as gw:
        async with connect(gw.ws_url) as ws:
            for _ in range(50):
                await ws.send(json.dumps({"action": "nope"}))
            closed = await until_closed(ws)
    fatal = [e for e in closed.events if e["fatal"]]
    assert [(e["code"], e["reason"]) for e in fatal] == [("RESOURCE_EXHAUSTED", "RATE_LIMITED")]
    assert closed.code == 4429
    assert len(closed.events) == 6  # five refusals within the burst, then the fatal error


async def test_a_config_the_server_rejects_closes_with_4400(make_gateway: GatewayFactory) -> None:
    # The server's INVALID_ARGUMENT at the start is a bad request (as it is mid-stream), not a
    # gateway failure: the same status table serves both (the Twilio edge's 1011 gap).
    async with make_gateway() as gw, connect(gw.ws_url) as ws:
        await ws.send(json.dumps({"action": "config", "time_zone": "Mars/Olympus"}))
        closed = await until_closed(ws)
    assert [(e["code"], e["reason"], e["fatal"]) for e in closed.events] == [
        ("INVALID_ARGUMENT", "TIME_ZONE_INVALID", True)
    ]
    assert closed.code == 4400


async def test_silent_socket_times_out_with_4408(make_gateway: GatewayFactory) -> None:
    async with make_gateway(first_message_timeout_s=0.2) as gw, connect(gw.ws_url) as ws:
        closed = await until_closed(ws)
    assert [(e["code"], e["reason"], e["fatal"]) for e in closed.events] == [
        ("DEADLINE_EXCEEDED", "IDLE_TIMEOUT", True)
    ]
    assert closed.code == 4408


async def test_connection_limit_closes_with_1013(make_gateway: GatewayFactory) -> None:
    async with make_gateway(max_connections=1) as gw, connect(gw.ws_url) as first:
        await first.send(json.dumps({"action": "config"}))
        assert (await recv_event(first))["event"] == "session_started"
        async with connect(gw.ws_url) as second:
            closed = await until_closed(second)
        assert closed.code == 1013
        assert [e["reason"] for e in closed.events] == ["GATEWAY_CONNECTION_LIMIT"]
        # The first socket is unaffected.
        await first.send(json.dumps({"action": "text", "text": "hi"}))
        events = await events_until(first, lambda e: e["event"] == "turn_complete")
        assert any(e.get("text") == "You said: hi" for e in events)
