"""`sonicwire gateway` flags and environment, and `sonicwire up` (server + gateway)."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from websockets.asyncio.client import connect

from sonicwire.gateway.cli import main
from sonicwire.gateway.config import GatewayConfig, gateway_config_from_args, parse_gateway_args
from sonicwire.gateway.up import build_parser, loopback_target, run_up, up_main
from sonicwire.server.config import ServerConfig, config_from_args

from .helpers import events_until, until_closed
from .test_gateway_http import http_get

pytestmark = pytest.mark.timeout(60)


def test_defaults_match_the_design() -> None:
    config = parse_gateway_args([])
    assert (config.host, config.port, config.grpc_target) == ("127.0.0.1", 8000, "127.0.0.1:50051")
    assert config.allowed_origins == ()
    assert config.grpc_insecure is None
    assert config == GatewayConfig()


def test_environment_then_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SONICWIRE_GATEWAY_PORT", "9001")
    monkeypatch.setenv("SONICWIRE_GATEWAY_GRPC_TARGET", "voice.internal:443")
    monkeypatch.setenv("SONICWIRE_GATEWAY_ALLOWED_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("SONICWIRE_GATEWAY_SEND_TIMEOUT_SECONDS", "2.5")
    monkeypatch.setenv("SONICWIRE_GATEWAY_GRPC_INSECURE", "true")
    monkeypatch.setenv("SONICWIRE_GATEWAY_API_KEY", "k")
    config = parse_gateway_args(["--port", "9002", "--max-connections", "7"])
    assert config.port == 9002
    assert config.grpc_target == "voice.internal:443"
    assert config.allowed_origins == ("https://a.example", "https://b.example")
    assert config.send_timeout_s == 2.5
    assert config.grpc_insecure is True
    assert config.api_key == "k"
    assert config.max_connections == 7


def test_inconsistent_flags_are_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_gateway_args(["--tls-cert", "cert.pem"])
    assert exited.value.code == 2
    assert "tls_key" in capsys.readouterr().err


def test_help_never_shows_the_api_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SONICWIRE_GATEWAY_API_KEY", "topsecret")
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "topsecret" not in capsys.readouterr().out


def test_up_takes_server_flags_and_prefixed_gateway_flags() -> None:
    args = build_parser().parse_args(
        [
            "--port",
            "0",
            "--backend",
            "echo",
            "--gateway-port",
            "0",
            "--gateway-max-connections",
            "3",
        ]
    )
    assert (args.port, args.backend) == (0, "echo")
    assert (args.gateway_port, args.gateway_max_connections) == (0, 3)
    assert not hasattr(args, "gateway_grpc_target")  # derived from the server


@pytest.mark.parametrize(
    ("host", "target"),
    [
        ("127.0.0.1", "127.0.0.1:5"),
        ("0.0.0.0", "127.0.0.1:5"),
        ("::", "[::1]:5"),
        ("::1", "[::1]:5"),
        ("localhost", "localhost:5"),
    ],
)
def test_loopback_target(host: str, target: str) -> None:
    assert loopback_target(host, 5) == target


def test_up_refuses_tls(capsys: pytest.CaptureFixture[str]) -> None:
    code = up_main(["--port", "0", "--gateway-port", "0", "--tls-cert", "c", "--tls-key", "k"])
    assert code == 2
    assert "separately" in capsys.readouterr().err


def test_up_gateway_transport_flag_and_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert build_parser().parse_args([]).gateway_transport == "auto"
    monkeypatch.setenv("SONICWIRE_GATEWAY_TRANSPORT", "grpc")
    assert build_parser().parse_args([]).gateway_transport == "grpc"
    args = build_parser().parse_args(["--gateway-transport", "inproc"])
    assert args.gateway_transport == "inproc"


def test_up_names_a_bad_transport_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SONICWIRE_GATEWAY_TRANSPORT", "in-process")
    with pytest.raises(SystemExit) as exited:
        up_main(["--port", "0", "--gateway-port", "0"])
    assert exited.value.code == 2
    assert "SONICWIRE_GATEWAY_TRANSPORT='in-process': choose from auto, inproc, grpc" in (
        capsys.readouterr().err
    )


def test_up_refuses_inproc_with_several_workers(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--port", "0", "--gateway-port", "0", "--workers", "2"]
    assert up_main([*argv, "--gateway-transport", "inproc"]) == 2
    assert "one server process" in capsys.readouterr().err


@pytest.mark.parametrize(("transport", "in_process"), [("auto", True), ("grpc", False)])
async def test_up_runs_server_and_gateway_together(
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    transport: str,
    in_process: bool,
) -> None:
    from sonicwire.server.app import RunningServer

    channels = []
    make_channel = RunningServer.local_channel

    def spy(self: RunningServer) -> object:
        channel = make_channel(self)
        channels.append(channel)
        return channel

    monkeypatch.setattr(RunningServer, "local_channel", spy)
    caplog.set_level(logging.INFO, logger="sonicwire.gateway")
    ready: asyncio.Future[tuple[str, str]] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_up(
            ServerConfig(host="127.0.0.1", port=0, backend="echo"),
            GatewayConfig(port=0),
            ready=ready,
            stop=stop,
            transport=transport,
        )
    )
    url, target = await asyncio.wait_for(ready, 20)
    port = int(url.rsplit(":", 1)[1].rstrip("/"))
    status, _, body = await http_get(port, "/health")
    assert (status, json.loads(body)["grpc"]) == (200, "SERVING")
    async with connect(url.replace("http", "ws") + "ws") as ws:
        await ws.send(json.dumps({"action": "text", "text": "up?"}))
        events = await events_until(ws, lambda e: e["event"] == "turn_complete")
    assert any(e.get("text") == "You said: up?" for e in events)
    stop.set()
    await asyncio.wait_for(task, 30)
    out = capsys.readouterr().out
    assert f"open {url}" in out
    assert target in out
    # The default (one server process) reaches the server in process; grpc over loopback.
    assert len(channels) == (1 if in_process else 0)
    assert ("reaches it in process" in out) == in_process
    # The gateway's own start-up line names the same route (it said "gRPC <target>" always).
    (started,) = [r.getMessage() for r in caplog.records if "gateway on" in r.getMessage()]
    route = "in process" if in_process else f"gRPC {target}"
    assert f"to the server: {route}" in started
    assert all(channel.closed for channel in channels)


@pytest.mark.parametrize("transport", ["auto", "grpc"])
async def test_up_stopping_sends_going_away_then_closes_1001(
    monkeypatch: pytest.MonkeyPatch, transport: str
) -> None:
    """What the module docstring says a browser gets on SIGTERM. Before, the gateway resumed
    upstream by default, as `sonicwire gateway` does: the server's GoingAway was kept from
    the browser (the move was then refused by the same draining server) and the socket closed
    with 1001 alone."""
    monkeypatch.delenv("SONICWIRE_GATEWAY_UPSTREAM_RESUME", raising=False)
    args = build_parser().parse_args(
        [
            *("--host", "127.0.0.1", "--port", "0", "--backend", "echo", "--gateway-port", "0"),
            *("--drain-grace-seconds", "1", "--gateway-transport", transport),
        ]
    )
    ready: asyncio.Future[tuple[str, str]] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    up = run_up(
        config_from_args(args),
        gateway_config_from_args(args),
        ready=ready,
        stop=stop,
        transport=args.gateway_transport,
    )
    task = asyncio.create_task(up)
    url, _target = await asyncio.wait_for(ready, 20)
    async with connect(url.replace("http", "ws") + "ws") as ws:
        await ws.send(json.dumps({"action": "text", "text": "up?"}))
        await events_until(ws, lambda e: e["event"] == "turn_complete")
        stop.set()  # what SIGTERM does
        closed = await until_closed(ws)
    await asyncio.wait_for(task, 30)
    going_away, *_ = closed.events
    assert (going_away["event"], going_away["grace_ms"]) == ("going_away", 1000), closed.events
    assert closed.code == 1001
