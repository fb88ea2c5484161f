"""`StreamMetrics` adds audio frames to the shared counters in batches (the driver's per-frame
cost), and never loses one: a full batch, a turn's end and the stream's end (`flush`) add
what was counted."""

from __future__ import annotations

from prometheus_client import REGISTRY

from sonicwire.server.core import events as ev
from sonicwire.server.metrics import StreamMetrics


def _frames() -> tuple[float, float]:
    sample = REGISTRY.get_sample_value
    return (
        sample("sonicwire_frames_in_total") or 0.0,
        sample("sonicwire_frames_out_total") or 0.0,
    )


def test_frames_reach_the_counters_per_batch_and_at_flush() -> None:
    metrics = StreamMetrics()
    batch = StreamMetrics.FRAME_BATCH
    in0, out0 = _frames()
    for _ in range(batch - 1):
        metrics.on_audio_input()
        metrics.on_output(ev.AudioOut(b"\0\0", "t1", 0))
    assert _frames() == (in0, out0)  # still counted per stream
    metrics.on_audio_input()
    metrics.on_output(ev.AudioOut(b"\0\0", "t1", 0))
    assert _frames() == (in0 + batch, out0 + batch)  # a whole batch added at once
    for _ in range(3):
        metrics.on_audio_input()
    metrics.on_output(ev.AudioOut(b"\0\0", "t1", 0))
    metrics.flush()
    assert _frames() == (in0 + batch + 3, out0 + batch + 1)
    metrics.flush()  # nothing left: adds nothing
    assert _frames() == (in0 + batch + 3, out0 + batch + 1)


def test_a_turns_end_adds_the_frames_counted_so_far() -> None:
    metrics = StreamMetrics()
    in0, out0 = _frames()
    metrics.on_audio_input()
    metrics.on_output(ev.AudioOut(b"\0\0", "t1", 0))
    metrics.on_output(ev.TurnCompleteOut("t1", ev.StopReason.END_TURN, 5, 5, 0, 20))
    assert _frames() == (in0 + 1, out0 + 1)
