"""The page, /health and /livez over plain HTTP, and a gRPC server that is down."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket

import pytest
from websockets.asyncio.client import connect

from sonicwire.gateway import Gateway, GatewayConfig
from sonicwire.gateway.config import STATIC_DIR

from .helpers import until_closed

pytestmark = pytest.mark.timeout(60)


async def http_get(port: int, path: str) -> tuple[int, dict[str, str], bytes]:
    """GET ``path`` from 127.0.0.1:``port`` (in a thread: http.client blocks)."""

    def get() -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    return await asyncio.to_thread(get)


def free_port() -> int:
    """A port nothing listens on (bound then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def test_health_reports_the_grpc_server(gateway: Gateway) -> None:
    status, headers, body = await http_get(gateway.port, "/health")
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {
        "status": "ok",
        "service": "sonicwire-gateway",
        "grpc": "SERVING",
        "connections": 0,
    }


async def test_health_is_degraded_when_the_grpc_server_is_down() -> None:
    config = GatewayConfig(port=0, grpc_target=f"127.0.0.1:{free_port()}")
    async with Gateway(config) as gw:
        status, _, body = await http_get(gw.port, "/health")
        live_status, _, live = await http_get(gw.port, "/livez")
    assert status == 503
    assert json.loads(body)["status"] == "degraded"
    assert json.loads(body)["grpc"] == "UNREACHABLE"
    assert (live_status, json.loads(live)["status"]) == (200, "ok")


async def test_server_down_closes_the_socket_with_4503() -> None:
    config = GatewayConfig(port=0, grpc_target=f"127.0.0.1:{free_port()}")
    async with Gateway(config) as gw, connect(gw.ws_url) as ws:
        await ws.send(json.dumps({"action": "config"}))
        closed = await until_closed(ws)
    assert closed.code == 4503
    [error] = closed.events
    assert (error["event"], error["code"], error["fatal"]) == ("error", "UNAVAILABLE", True)


async def test_page_is_served_with_security_headers(gateway: Gateway) -> None:
    status, headers, body = await http_get(gateway.port, "/")
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert body == (STATIC_DIR / "index.html").read_bytes()
    for name, kind in [("app.js", "text/javascript"), ("audio-worklets.js", "text/javascript")]:
        status, headers, body = await http_get(gateway.port, f"/{name}")
        assert (status, headers["Content-Type"]) == (200, f"{kind}; charset=utf-8")
        assert body == (STATIC_DIR / name).read_bytes()


@pytest.mark.parametrize(
    "path", ["/nope", "/../config.py", "/%2e%2e/config.py", "/static/../../app.py", "/ws/x"]
)
async def test_unknown_paths_are_404(gateway: Gateway, path: str) -> None:
    status, _, _ = await http_get(gateway.port, path)
    assert status == 404


async def test_plain_get_on_ws_is_refused(gateway: Gateway) -> None:
    status, _, _ = await http_get(gateway.port, "/ws")
    assert status == 426  # Upgrade Required
