"""bench.gateway_path: the gateway's per-message path in process (shape, not speed)."""

from __future__ import annotations

import pytest

from bench.gateway_path import main, measure


def test_every_message_reaches_the_handler_and_replies_are_framed() -> None:
    run = measure(frames=300, warmup=100)
    assert run.requests_handled == 400  # warm-up and timed messages, none lost or merged
    # One 40 ms reply per two messages: ~1.8 KB of media JSON framed per reply.
    assert 150 * 1700 < run.media_bytes < 150 * 2000
    assert run.us_per_message > 0


def test_prints_cpu_per_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--frames", "50", "--warmup", "10", "--repeats", "2"]) == 0
    assert "us CPU per audio message" in capsys.readouterr().out
