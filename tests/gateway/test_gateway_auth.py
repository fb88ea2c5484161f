"""API keys in Sec-WebSocket-Protocol, and the Origin allow-list."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

from sonicwire.gateway import Gateway, GatewayConfig
from sonicwire.server.app import RunningServer
from sonicwire.server.backends.echo import EchoBackend
from sonicwire.server.testing.server import running_server

from .conftest import GatewayFactory, gateway_for
from .helpers import recv_event, until_closed

pytestmark = pytest.mark.timeout(60)

KEY = "sk_TEST-key.1~abc"  # token characters only, as browsers require


@pytest.fixture
async def keyed_server() -> AsyncIterator[RunningServer]:
    async with running_server(backend=EchoBackend(), api_keys=(KEY,)) as server:
        yield server


# Keys pass the same way over loopback gRPC and the in-process channel (`sonicwire up`).
@pytest.fixture(params=["grpc", "inproc"])
async def keyed_gateway(
    keyed_server: RunningServer, request: pytest.FixtureRequest
) -> AsyncIterator[Gateway]:
    async with gateway_for(keyed_server, request.param) as gw:
        yield gw


async def test_good_key_is_passed_upstream_and_never_echoed(
    keyed_gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    offer = [Subprotocol("sonicwire.v1"), Subprotocol(f"key.{KEY}")]
    async with connect(keyed_gateway.ws_url, subprotocols=offer) as ws:
        await ws.send(json.dumps({"action": "config"}))
        started = await recv_event(ws)
        assert ws.subprotocol == "sonicwire.v1"
        assert ws.response is not None
        response_headers = str(ws.response.headers)
    assert started["event"] == "session_started"
    assert KEY not in response_headers
    assert "Sec-WebSocket-Protocol: sonicwire.v1\r\n" in response_headers
    # The test's own client logs what it sends; everything on the gateway's side must not.
    ours = "\n".join(
        r.getMessage() for r in caplog.records if not r.name.startswith("websockets.client")
    )
    assert KEY not in ours, "the key must never be logged"
    assert "key.<redacted>" in ours  # websockets' debug log of the request, masked


@pytest.mark.parametrize(
    "subprotocols",
    [["sonicwire.v1", "key.wrong"], ["sonicwire.v1"], None],
    ids=["wrong key", "no key", "no subprotocol"],
)
async def test_bad_or_missing_key_closes_with_4401(
    keyed_gateway: Gateway, subprotocols: list[str] | None
) -> None:
    async with connect(keyed_gateway.ws_url, subprotocols=subprotocols) as ws:  # type: ignore[arg-type]
        await ws.send(json.dumps({"action": "config"}))
        closed = await until_closed(ws)
    assert closed.code == 4401
    [error] = closed.events
    assert (error["event"], error["code"], error["fatal"]) == ("error", "UNAUTHENTICATED", True)
    assert "wrong" not in json.dumps(error)


@pytest.mark.parametrize(
    "subprotocols", [["sonicwire.v1", "key."], ["sonicwire.v1", "key.a", "key.b"]]
)
async def test_malformed_key_offer_closes_with_4401(
    keyed_gateway: Gateway, subprotocols: list[str]
) -> None:
    async with connect(keyed_gateway.ws_url, subprotocols=subprotocols) as ws:  # type: ignore[arg-type]
        closed = await until_closed(ws)
    assert closed.code == 4401
    assert [e["reason"] for e in closed.events] == ["API_KEY_MALFORMED"]


async def test_non_token_key_is_refused_without_quoting_it(keyed_gateway: Gateway) -> None:
    secret = "abc=def"  # '=' is not a token character: browsers refuse it, we must too
    with pytest.raises(InvalidStatus) as refused:
        async with connect(
            keyed_gateway.ws_url,
            additional_headers={"Sec-WebSocket-Protocol": f"sonicwire.v1, key.{secret}"},
        ):
            pass
    response = refused.value.response
    assert response.status_code == 400
    assert secret.encode() not in response.body


async def test_gateway_key_is_used_when_the_socket_offers_none(
    keyed_server: RunningServer,
) -> None:
    config = GatewayConfig(port=0, grpc_target=keyed_server.target, api_key=KEY)
    async with Gateway(config) as gw, connect(gw.ws_url) as ws:
        await ws.send(json.dumps({"action": "config"}))
        assert (await recv_event(ws))["event"] == "session_started"


async def test_same_host_origin_is_accepted_by_default(gateway: Gateway) -> None:
    origin = f"http://127.0.0.1:{gateway.port}"
    async with connect(gateway.ws_url, origin=origin) as ws:  # type: ignore[arg-type]
        await ws.send(json.dumps({"action": "config"}))
        assert (await recv_event(ws))["event"] == "session_started"


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1:1", "file://"])
async def test_foreign_origin_is_refused_with_403(gateway: Gateway, origin: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(gateway.ws_url, origin=origin):  # type: ignore[arg-type]
            pass
    assert refused.value.response.status_code == 403
    assert gateway.stats.connections_total == 0


async def test_allow_list_replaces_same_host(make_gateway: GatewayFactory) -> None:
    allowed = "https://app.example"
    async with make_gateway(allowed_origins=(allowed,)) as gw:
        async with connect(gw.ws_url, origin=allowed) as ws:  # type: ignore[arg-type]
            await ws.send(json.dumps({"action": "config"}))
            assert (await recv_event(ws))["event"] == "session_started"
        with pytest.raises(InvalidStatus):
            async with connect(gw.ws_url, origin=f"http://127.0.0.1:{gw.port}"):  # type: ignore[arg-type]
                pass
    async with make_gateway(allowed_origins=("*",)) as gw:
        async with connect(gw.ws_url, origin="http://anything.example") as ws:  # type: ignore[arg-type]
            await ws.send(json.dumps({"action": "end"}))
            assert (await until_closed(ws)).code == 1000
