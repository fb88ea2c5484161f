"""Fixtures: a loopback gRPC server with the echo backend and a gateway in front of it.

The gateway reaches the server over loopback gRPC, or, in modules parametrized on
``gateway_transport`` with ``"inproc"``, through the server's in-process channel as
``sonicwire up`` does (`sonicwire.server.local_channel`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest

from sonicwire.gateway import Gateway, GatewayConfig
from sonicwire.gateway.upstream import Upstream
from sonicwire.server.app import RunningServer
from sonicwire.server.backends.echo import EchoBackend
from sonicwire.server.testing.server import running_server

GatewayFactory = Callable[..., AbstractAsyncContextManager[Gateway]]


@pytest.fixture
async def echo_server() -> AsyncIterator[RunningServer]:
    """A real gRPC server on 127.0.0.1:<free port> with the echo backend."""
    async with running_server(backend=EchoBackend()) as server:
        yield server


@pytest.fixture
def gateway_transport() -> str:
    """How gateways reach the echo server: ``grpc`` (loopback) or ``inproc``."""
    return "grpc"


@asynccontextmanager
async def gateway_for(
    server: RunningServer, transport: str, **overrides: Any
) -> AsyncIterator[Gateway]:
    """A gateway on a free port in front of ``server``, reaching it by ``transport``."""
    settings: dict[str, Any] = {"port": 0, "grpc_target": server.target}
    settings.update(overrides)
    config = GatewayConfig(**settings)
    upstream = None
    if transport == "inproc":
        upstream = Upstream(config, channel=server.local_channel())
    try:
        async with Gateway(config, upstream=upstream) as gateway:
            yield gateway
    finally:
        if upstream is not None:
            await upstream.aclose()


@pytest.fixture
def make_gateway(echo_server: RunningServer, gateway_transport: str) -> GatewayFactory:
    """``async with make_gateway(**overrides) as gw``: a gateway on a free port."""

    def factory(**overrides: Any) -> AbstractAsyncContextManager[Gateway]:
        return gateway_for(echo_server, gateway_transport, **overrides)

    return factory


@pytest.fixture
async def gateway(make_gateway: GatewayFactory) -> AsyncIterator[Gateway]:
    """A gateway with the default settings in front of the echo server."""
    async with make_gateway() as gw:
        yield gw
