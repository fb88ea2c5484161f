"""bench.channel_window: many paced streams on one channel through a delaying proxy."""

from __future__ import annotations

from bench.channel_window import measure


async def test_every_reply_crosses_the_proxy() -> None:
    result = await measure(rtt_s=0.01, streams=3, bdp_probe=0, seconds=0.2, bytes_per_s=32_000)
    assert result.received_bytes == result.needed_bytes == 3 * 5 * 1280
    assert len(result.lateness_s) == 15
