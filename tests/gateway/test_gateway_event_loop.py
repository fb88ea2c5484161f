"""The gateway's own process: its event loop (uvloop by default) and cheap socket reads.

The CPU figures behind these defaults are in docs/gateway.md ("CPU per frame"); tests never
assert timings, only that each path is taken and works end to end.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket
import sys

import pytest
import uvloop
from websockets.asyncio.client import connect

from sonicwire.gateway.app import _READ_SIZE, _shrink_reads
from sonicwire.gateway.cli import loop_factory, main
from sonicwire.gateway.config import GatewayConfig, parse_gateway_args
from sonicwire.gateway.protocol import encode, parse_message
from sonicwire.gateway.up import build_parser
from sonicwire.server.app import RunningServer

from .helpers import audiostream, events_until, frames, of_kind, with_silence

pytestmark = pytest.mark.timeout(60)


def test_event_loop_defaults_to_auto_and_picks_uvloop_when_installed() -> None:
    assert GatewayConfig().event_loop == "auto"
    assert loop_factory("auto") is uvloop.new_event_loop
    assert loop_factory("uvloop") is uvloop.new_event_loop
    assert loop_factory("asyncio") is None


def test_event_loop_flag_and_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SONICWIRE_GATEWAY_EVENT_LOOP", "asyncio")
    assert parse_gateway_args([]).event_loop == "asyncio"
    assert parse_gateway_args(["--event-loop", "uvloop"]).event_loop == "uvloop"


def test_unknown_event_loop_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_gateway_args(["--event-loop", "trio"])
    assert exited.value.code == 2
    assert "event_loop must be one of auto, uvloop, asyncio" in capsys.readouterr().err


def test_uvloop_asked_for_but_missing_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    assert loop_factory("auto") is None  # auto falls back to asyncio quietly
    assert main(["--event-loop", "uvloop", "--port", "0"]) == 2
    assert "uvloop is not installed" in capsys.readouterr().err


def test_up_has_no_event_loop_flag() -> None:
    """`sonicwire up` runs the gateway inside the server's process and loop."""
    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["--gateway-event-loop", "uvloop"])


async def test_asyncio_socket_reads_are_bounded_below_the_mmap_threshold() -> None:
    left, right = socket.socketpair()
    try:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_connection(asyncio.Protocol, sock=left)
        assert transport.max_size > _READ_SIZE  # type: ignore[attr-defined]  # asyncio's 256 KiB
        _shrink_reads(transport)
        assert transport.max_size == _READ_SIZE  # type: ignore[attr-defined]
        transport.close()
    finally:
        right.close()
    _shrink_reads(object())  # any other transport (uvloop's, TLS) is left alone


def test_json_falls_back_to_the_standard_library_for_what_orjson_refuses() -> None:
    """orjson is strict; the gateway still accepts and writes what it always did."""
    lone = "a\ud800"
    stdlib = json.dumps({"text": lone}, separators=(",", ":"), ensure_ascii=False)
    assert encode({"text": lone}) == stdlib
    assert encode({"n": 2**70}) == '{"n":1180591620717411303424}'
    assert parse_message(json.dumps({"action": "text", "text": lone})).text == lone  # type: ignore[union-attr]
    with pytest.raises(Exception) as refused:
        parse_message('{"action": "config", "vad": {"confidence": NaN}}')
    assert getattr(refused.value, "reason", None) == "INVALID_FIELD"  # parsed, then range-checked


def test_json_a_message_passes_on_keeps_its_integers_whole() -> None:
    """orjson reads an integer beyond 64 bits as a float without refusing it: a tool's result
    content and a client tool's schema are passed on as JSON text, and must keep the digits
    the client sent (the standard library reads them)."""
    big = 123456789012345678901234567890
    result = parse_message(
        json.dumps({"action": "tool_result", "tool_call_id": "c1", "content": {"id": big}})
    )
    assert json.loads(result.content) == {"id": big}  # type: ignore[union-attr]
    schema = {"type": "object", "properties": {"n": {"type": "integer", "maximum": 2**70}}}
    tool = {"name": "count", "parameters": schema}
    config = parse_message(json.dumps({"action": "config", "client_tools": [tool]}))
    (parsed,) = config.client_tools  # type: ignore[union-attr]
    assert json.loads(parsed.parameters_json_schema) == schema


async def test_gateway_process_on_uvloop_round_trip(
    echo_server: RunningServer, speech_16k: bytes
) -> None:
    """`python -m sonicwire.gateway` (uvloop by default) carries a whole spoken turn."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sonicwire.gateway",
        "--port",
        "0",
        "--grpc-target",
        echo_server.target,
        "--event-loop",
        "uvloop",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        assert process.stdout is not None and process.stderr is not None
        async with asyncio.timeout(20):
            line = (await process.stdout.readline()).decode()
        url = line.split("open ", 1)[1].split()[0]
        async with connect(url.replace("http", "ws", 1) + "ws") as ws:
            for chunk in frames(with_silence(speech_16k)):
                await ws.send(audiostream(chunk))
            events = await events_until(ws, lambda e: e["event"] == "turn_complete")
        media = of_kind(events, "media")
        assert media, "assistant audio came back"
        played = sum(len(base64.b64decode(e["data"])) for e in media)
        assert played // 32 == events[-1]["audio_ms"]
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(20):
            _, err = await process.communicate()
    assert process.returncode == 0
    assert "event loop uvloop" in err.decode()
