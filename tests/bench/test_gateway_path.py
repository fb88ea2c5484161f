"""bench.gateway_path: the gateway's per-message path in process (shape, not speed)."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from bench.gateway_path import Hop, main, measure


def test_every_message_reaches_the_handler_and_replies_are_framed() -> None:
    run = measure(frames=300, warmup=100)
    assert run.requests_handled == 400  # warm-up and timed messages, none lost or merged
    # One 40 ms reply per two messages: ~1.8 KB of media JSON framed per reply.
    assert 150 * 1700 < run.media_bytes < 150 * 2000
    assert run.us_per_message > 0


def test_prints_cpu_per_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--frames", "50", "--warmup", "10", "--repeats", "2"]) == 0
    assert "us CPU per audio message" in capsys.readouterr().out


def test_the_grpc_hop_carries_every_message_both_ways() -> None:
    # The two-process deployment's hop: a real grpc.aio server on 127.0.0.1, port 0.
    run = measure(frames=200, warmup=50, hop=Hop("grpc"))
    assert run.requests_handled == 250
    assert 100 * 1700 < run.media_bytes < 100 * 2000
    assert run.us_per_message > 0


def test_extra_channel_arguments_reach_each_side(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, list[tuple[str, object]]] = {}
    made_channel, made_server = grpc.aio.insecure_channel, grpc.aio.server

    def channel(target: str, options: Any = None, **kwargs: Any) -> Any:
        seen["channel"] = list(options or ())
        return made_channel(target, options=options, **kwargs)

    def server(*args: Any, options: Any = None, **kwargs: Any) -> Any:
        seen["server"] = list(options or ())
        return made_server(*args, options=options, **kwargs)  # type: ignore[misc]

    monkeypatch.setattr(grpc.aio, "insecure_channel", channel)
    monkeypatch.setattr(grpc.aio, "server", server)
    hop = Hop(
        "grpc", (("grpc.http2.lookahead_bytes", 4096),), (("grpc.http2.max_frame_size", 32768),)
    )
    assert measure(frames=20, warmup=5, hop=hop).requests_handled == 25
    assert ("grpc.http2.lookahead_bytes", 4096) in seen["channel"]
    assert ("grpc.primary_user_agent", "sonicwire-gateway") in seen["channel"]  # Upstream's own
    assert ("grpc.http2.max_frame_size", 32768) in seen["server"]
    assert ("grpc.keepalive_permit_without_calls", 1) in seen["server"]  # the server's own


def test_channel_arguments_need_the_grpc_hop() -> None:
    with pytest.raises(SystemExit):
        main(["--channel-arg", "grpc.http2.bdp_probe=0"])
