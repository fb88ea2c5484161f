"""Issue 21's targets, each threshold written once.

The verdicts (``bench.summary``, ``bench.paired_like_for_like``) and every sentence of the
report that names a target (``bench.report_headline``, ``bench.report_like_for_like``,
``bench.report_floor``) read the threshold from here, so a sentence cannot name another number
than the one its verdict was judged against. ``TEXT`` is how the report writes each of them.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "ABOVE_FLOOR_MS",
    "IDLE_NOVA_MB",
    "KERNELS_X",
    "LIKE_FOR_LIKE_X",
    "RSS_PER_STREAM_MB",
    "STREAMS_PER_CORE",
    "TEXT",
]

#: Server CPU per stream-second at most this times the DSP kernels alone.
KERNELS_X: Final = 2.0
#: Real-time streams one process on one core sustains, at least.
STREAMS_PER_CORE: Final = 150
#: Sonicwire's driver + core above the floor (kernels + bare grpc.aio echo), ms per
#: stream-second, at most.
ABOVE_FLOOR_MS: Final = 1.0
#: Sonicwire's CPU per stream-second over pipecat's on the same protocol, at most.
LIKE_FOR_LIKE_X: Final = 0.5
#: RSS per stream beyond idle, MB, below.
RSS_PER_STREAM_MB: Final = 1.0
#: Idle server RSS with nova-sonic configured, MB, below.
IDLE_NOVA_MB: Final = 150.0

#: Each threshold as the report writes it ("0.5x", "1.0 ms", ...).
TEXT: Final = {
    "kernels": f"{KERNELS_X:g}x",
    "streams": f"{STREAMS_PER_CORE}",
    "above_floor": f"{ABOVE_FLOOR_MS:.1f} ms",
    "like_for_like": f"{LIKE_FOR_LIKE_X:g}x",
    "rss": f"{RSS_PER_STREAM_MB:g} MB",
    "idle_nova": f"{IDLE_NOVA_MB:g} MB",
}
