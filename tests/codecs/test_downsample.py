"""Downsampler2x: 16 -> 8 kHz frame by frame, flat in the telephone band, no aliasing, and
the inverse of Upsampler2x up to its delay."""

from __future__ import annotations

import numpy as np
import pytest

from sonicwire.server.codecs.downsample import DELAY_SAMPLES, Downsampler2x
from sonicwire.server.codecs.upsample import Upsampler2x


def tone(hz: float, count: int, rate: int = 16_000, amp: float = 10_000.0) -> bytes:
    t = np.arange(count) / rate
    return (amp * np.sin(2 * np.pi * hz * t)).astype("<i2").tobytes()


def level_db(pcm: bytes, amp: float = 10_000.0, skip: int = 200) -> float:
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)[skip:]
    rms = float(np.sqrt(np.mean(x**2)))
    return 20 * np.log10(max(rms, 1e-9) / (amp / np.sqrt(2)))


def in_frames(resampler: Downsampler2x, pcm: bytes, frame: int) -> bytes:
    return b"".join(resampler.process(pcm[i : i + frame]) for i in range(0, len(pcm), frame))


@pytest.mark.parametrize("hz", [300, 1000, 2000, 3400])
def test_the_telephone_band_passes_unchanged(hz: int) -> None:
    out = in_frames(Downsampler2x(), tone(hz, 16_000), 640)
    assert len(out) == 16_000  # one second in, half the samples out
    assert abs(level_db(out)) < 0.1


@pytest.mark.parametrize("hz", [4600, 6000, 7900])
def test_what_would_alias_is_removed(hz: int) -> None:
    assert level_db(in_frames(Downsampler2x(), tone(hz, 16_000), 640)) < -70


def test_every_frame_comes_out_at_once_and_pieces_match_the_whole() -> None:
    pcm = tone(1000, 3333)
    down = Downsampler2x()
    assert len(down.process(pcm[:640])) == 320  # 20 ms in, 10 ms worth of 8 kHz bytes out
    whole = Downsampler2x().process(pcm)
    pieces = in_frames(Downsampler2x(), pcm, 101)  # odd bytes, odd samples
    assert pieces == whole
    assert len(Downsampler2x().flush()) == 2 * DELAY_SAMPLES


def test_it_undoes_the_upsampler_up_to_both_delays() -> None:
    original = tone(500, 8000, rate=8000)
    back = Downsampler2x().process(Upsampler2x().process(original))
    a = np.frombuffer(original, dtype="<i2").astype(np.int32)
    b = np.frombuffer(back, dtype="<i2").astype(np.int32)
    delay = 2 * DELAY_SAMPLES  # 2 ms each way
    assert np.max(np.abs(a[100:4000] - b[100 + delay : 4000 + delay])) <= 2
