"""The seed protocol and its extensions over a real WebSocket, against a real gRPC server."""

from __future__ import annotations

import base64
import json

import pytest
from websockets.asyncio.client import connect

from sonicwire.gateway import Gateway
from sonicwire.server.app import RunningServer

from .conftest import GatewayFactory
from .helpers import (
    audiostream,
    events_until,
    frames,
    of_kind,
    recv_event,
    until_closed,
    wait_for,
    with_silence,
)

# Each test runs with the gateway on loopback gRPC and on the in-process channel (`sonicwire up`).
pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.parametrize("gateway_transport", ["grpc", "inproc"]),
]


def _is_turn_complete(event: dict[str, object]) -> bool:
    return event["event"] == "turn_complete"


async def test_seed_protocol_round_trip(gateway: Gateway, speech_16k: bytes) -> None:
    """audiostream in, media out: no config, no subprotocol, exactly the seed messages."""
    async with connect(gateway.ws_url) as ws:
        for chunk in frames(with_silence(speech_16k)):
            await ws.send(audiostream(chunk))
        events = await events_until(ws, _is_turn_complete)
        await ws.send(json.dumps({"action": "end"}))
        closed = await until_closed(ws)

    assert events[0]["event"] == "session_started"
    assert events[0]["input_sample_rate"] == 16000
    kinds = [e.get("kind") for e in of_kind(events, "speech_activity")]
    assert kinds[:2] == ["started", "stopped"], "the server heard the speech"
    user = [t for t in of_kind(events, "transcript") if t["role"] == "user"]
    assert user and user[0]["final"] is True
    media = of_kind(events, "media")
    assert media, "assistant audio came back"
    for event in media:
        assert {k: event[k] for k in ("sample_rate", "channels", "format")} == {
            "sample_rate": 16000,
            "channels": 1,
            "format": "pcm_s16le",
        }
        assert len(base64.b64decode(event["data"])) % 2 == 0
    turn = events[-1]
    assert turn["stop_reason"] == "end_turn"
    assert {e["turn_id"] for e in media} == {turn["turn_id"]}
    played_back = sum(len(base64.b64decode(e["data"])) for e in media)
    assert played_back // 32 == turn["audio_ms"]  # 32 bytes per ms at 16 kHz s16le
    assert any(t["role"] == "assistant" for t in of_kind(events, "transcript"))
    assert closed.code == 1000


async def test_binary_frames_are_raw_pcm(gateway: Gateway, speech_16k: bytes) -> None:
    async with connect(gateway.ws_url) as ws:
        await ws.send(json.dumps({"action": "config", "sample_rate": 16000}))
        for chunk in frames(with_silence(speech_16k)):
            await ws.send(chunk)
        events = await events_until(ws, _is_turn_complete)
    assert of_kind(events, "speech_activity")
    assert of_kind(events, "media")
    assert gateway.stats.messages_in["audio"] == len(frames(with_silence(speech_16k)))


async def test_large_audio_message_is_split_for_the_server(
    make_gateway: GatewayFactory, speech_16k: bytes
) -> None:
    """One 100 KB message is more than the server's 64 KiB chunk limit: the gateway splits it."""
    async with make_gateway(max_message_bytes=256 * 1024) as gw, connect(gw.ws_url) as ws:
        pcm = with_silence(speech_16k)
        assert len(pcm) > 65536
        await ws.send(pcm)
        events = await events_until(ws, _is_turn_complete)
    assert of_kind(events, "media")
    assert not of_kind(events, "error")


async def test_config_sets_the_output_rate(gateway: Gateway, speech_16k: bytes) -> None:
    async with connect(gateway.ws_url) as ws:
        config = {"action": "config", "sample_rate": 16000, "output_sample_rate": 24000}
        await ws.send(json.dumps(config))
        started = await recv_event(ws)
        for chunk in frames(with_silence(speech_16k)):
            await ws.send(chunk)
        events = await events_until(ws, _is_turn_complete)
    assert started["event"] == "session_started"
    assert started["output_sample_rate"] == 24000
    media = of_kind(events, "media")
    assert media and all(e["sample_rate"] == 24000 for e in media)
    samples = sum(len(base64.b64decode(e["data"])) // 2 for e in media)
    assert samples * 1000 // 24000 == pytest.approx(events[-1]["audio_ms"], abs=2)


async def test_typed_text_round_trip(gateway: Gateway) -> None:
    async with connect(gateway.ws_url) as ws:
        await ws.send(json.dumps({"action": "text", "text": "hello gateway"}))
        events = await events_until(ws, _is_turn_complete)
    transcripts = [(t["role"], t["text"]) for t in of_kind(events, "transcript")]
    assert ("user", "hello gateway") in transcripts
    assert ("assistant", "You said: hello gateway") in transcripts


async def test_playback_reports_reach_the_server(gateway: Gateway, speech_16k: bytes) -> None:
    async with connect(gateway.ws_url) as ws:
        for chunk in frames(with_silence(speech_16k)):
            await ws.send(chunk)
        events = await events_until(ws, lambda e: e["event"] == "media")
        turn_id = events[-1]["turn_id"]
        await ws.send(json.dumps({"action": "playback", "turn_id": turn_id, "played_ms": 20}))
        await ws.send(json.dumps({"action": "text", "text": "still there?"}))
        rest = await events_until(
            ws, lambda e: e["event"] == "transcript" and e["text"].startswith("You said")
        )
    assert gateway.stats.messages_in["playback"] == 1
    assert not of_kind(events + rest, "error")


async def test_typed_text_interrupts_the_reply(gateway: Gateway, speech_16k: bytes) -> None:
    async with connect(gateway.ws_url) as ws:
        for chunk in frames(with_silence(speech_16k)):
            await ws.send(chunk)
        first = await events_until(ws, lambda e: e["event"] == "media")
        await ws.send(json.dumps({"action": "text", "text": "stop"}))
        events = await events_until(
            ws, lambda e: e["event"] == "turn_complete" and e["stop_reason"] == "interrupted"
        )
    interruption = of_kind(events, "interruption")
    assert interruption == [
        {
            "event": "interruption",
            "turn_id": first[-1]["turn_id"],
            "played_ms": interruption[0]["played_ms"],
            "source": "text_input",
        }
    ]


async def test_end_before_anything_closes_normally(gateway: Gateway) -> None:
    async with connect(gateway.ws_url) as ws:
        await ws.send(json.dumps({"action": "end"}))
        closed = await until_closed(ws)
    assert (closed.code, closed.events) == (1000, [])


async def test_gateway_shutdown_closes_with_going_away(
    make_gateway: GatewayFactory,
) -> None:
    async with make_gateway() as gw:
        ws = await connect(gw.ws_url)
        await ws.send(json.dumps({"action": "config"}))
        assert (await recv_event(ws))["event"] == "session_started"
    closed = await until_closed(ws)
    assert closed.code == 1001


async def test_server_drain_sends_going_away_then_1001(
    echo_server: RunningServer, make_gateway: GatewayFactory
) -> None:
    # Without upstream resume (with it, see test_gateway_upstream_resume.py).
    async with make_gateway(upstream_resume=False) as gateway, connect(gateway.ws_url) as ws:
        await ws.send(json.dumps({"action": "config"}))
        assert (await recv_event(ws))["event"] == "session_started"
        await echo_server.drain(grace_s=0.2)
        closed = await until_closed(ws)
    assert [e["event"] for e in closed.events][:1] == ["going_away"]
    error = of_kind(closed.events, "error")[0]
    assert (error["code"], error["reason"], error["fatal"]) == (
        "UNAVAILABLE",
        "SERVER_DRAINING",
        True,
    )
    assert closed.code == 1001
    await wait_for(lambda: gateway.stats.connections_active == 0)
