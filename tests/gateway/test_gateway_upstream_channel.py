"""The gateway's gRPC channel: the arguments it opens the two-process hop with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from grpc import aio

from sonicwire.gateway import GatewayConfig
from sonicwire.gateway.upstream import Upstream


def _options_of(monkeypatch: pytest.MonkeyPatch, config: GatewayConfig) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def channel(*args: Any, options: Any = None, **kwargs: Any) -> object:
        seen.update(options)
        return object()

    monkeypatch.setattr(aio, "insecure_channel", channel)
    monkeypatch.setattr(aio, "secure_channel", channel)
    Upstream(config)
    return seen


def test_no_bdp_probing_on_the_loopback_hop(monkeypatch: pytest.MonkeyPatch) -> None:
    # BDP probes' pings and their timers cost system calls per message (docs/gateway.md,
    # "The two-process hop"); replies are paced audio, far below the 64 KiB window.
    options = _options_of(monkeypatch, GatewayConfig(grpc_target="127.0.0.1:50051"))
    assert options["grpc.http2.bdp_probe"] == 0
    assert options["grpc.keepalive_time_ms"] == 30_000  # the other arguments as before


def test_no_bdp_probing_on_a_loopback_hop_over_tls(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(b"")
    config = GatewayConfig(grpc_target="localhost:50051", grpc_ca=str(ca), grpc_insecure=False)
    options = _options_of(monkeypatch, config)
    assert options["grpc.http2.bdp_probe"] == 0
    assert options["grpc.primary_user_agent"] == "sonicwire-gateway"


@pytest.mark.parametrize(
    ("target", "insecure"),
    [("voice.example:443", None), ("10.0.0.7:50051", True)],
    ids=["tls", "plaintext"],
)
def test_bdp_probing_stays_on_to_a_remote_server(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, target: str, insecure: bool | None
) -> None:
    # Every socket's replies share the channel's one connection: without probing its receive
    # window stays at 64 KiB per round trip for all of them (40 streams of 16 kHz audio 100 ms
    # away got 0.58 of the 1.28 MB/s they need, replies up to 4.9 s late; docs/gateway.md).
    ca = tmp_path / "ca.pem"
    ca.write_bytes(b"")
    config = GatewayConfig(grpc_target=target, grpc_ca=str(ca), grpc_insecure=insecure)
    options = _options_of(monkeypatch, config)
    assert "grpc.http2.bdp_probe" not in options
    assert options["grpc.keepalive_time_ms"] == 30_000  # the other arguments as before
