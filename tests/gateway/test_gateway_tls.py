"""TLS all the way: a browser-like client on wss:// and https:// to the gateway, and the
gateway to a TLS gRPC server, both with certificates from a test CA."""

from __future__ import annotations

import asyncio
import json
import ssl
import urllib.request
from pathlib import Path

import pytest
import trustme
from websockets.asyncio.client import connect

from sonicwire.gateway import Gateway, GatewayConfig
from sonicwire.server.backends.echo import EchoBackend
from sonicwire.server.testing.server import running_server

from .helpers import audiostream, events_until, frames, of_kind, with_silence

pytestmark = pytest.mark.timeout(60)


def _write(ca: trustme.CA, root: Path, name: str) -> tuple[str, str]:
    issued = ca.issue_cert("localhost", "127.0.0.1")
    cert, key = root / f"{name}.pem", root / f"{name}.key"
    issued.private_key_and_cert_chain_pem.write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    return str(cert), str(key)


async def test_wss_and_https_to_the_gateway_and_tls_to_the_grpc_server(
    tmp_path: Path, speech_16k: bytes
) -> None:
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server_cert, server_key = _write(ca, tmp_path, "grpc")
    gateway_cert, gateway_key = _write(ca, tmp_path, "gateway")
    client_context = ssl.create_default_context(cafile=str(ca_file))

    async with running_server(
        backend=EchoBackend(), tls_cert=server_cert, tls_key=server_key
    ) as server:
        config = GatewayConfig(
            port=0,
            grpc_target=f"localhost:{server.port}",
            grpc_insecure=False,
            grpc_ca=str(ca_file),
            tls_cert=gateway_cert,
            tls_key=gateway_key,
        )
        async with Gateway(config) as gateway:
            assert gateway.url.startswith("https://")
            assert gateway.ws_url.startswith("wss://")
            health = await asyncio.to_thread(
                lambda: urllib.request.urlopen(
                    gateway.url + "health", timeout=10, context=client_context
                ).read()
            )
            assert json.loads(health)["grpc"] == "SERVING"
            async with connect(gateway.ws_url, ssl=client_context) as ws:
                for chunk in frames(with_silence(speech_16k)):
                    await ws.send(audiostream(chunk))
                events = await events_until(ws, lambda e: e["event"] == "turn_complete")
    assert events[0]["event"] == "session_started"
    assert of_kind(events, "media"), "assistant audio came back over both TLS hops"
