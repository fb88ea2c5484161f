"""The front end's hand-inlined numpy arithmetic gives numpy's own values, to the bit.

The per-frame and per-reading paths skip numpy's Python wrappers (np.std, np.mean,
np.median, np.sinc, np.clip) where the wrapper cost more than the arithmetic; these tests pin
that the shortcuts compute exactly what the wrappers did, so no decision of the front end
(GCC-PHAT confidence, coherence, skew fit, fractional-delay reference) moves.
"""

from __future__ import annotations

import numpy as np
import pytest

from sonicwire.server.dsp.aec import _SINC_INDEX, _SINC_TAPS, _SINC_WINDOW, EchoStage
from sonicwire.server.dsp.delay import _mean, _std
from sonicwire.server.dsp.timeline import FarEndTimeline, SampleLog

N = 320


@pytest.mark.parametrize("size", [1, 2, 3, 127, 128, 129, 1000, 6001])
def test_std_and_mean_are_numpys(size: int) -> None:
    rng = np.random.default_rng(size)
    for _ in range(50):
        x = (rng.standard_normal(size) * 10 ** rng.uniform(-6, 6)).astype(np.float32)
        if rng.random() < 0.5:
            x = np.abs(x)
        for got, expected in ((_std(x), np.std(x)), (_mean(x), np.mean(x))):
            assert got == expected and type(got) is type(expected)
        x64 = x.astype(np.float64)
        assert _mean(x64) == np.mean(x64) and type(_mean(x64)) is np.float64


def test_the_fractional_reference_is_the_windowed_sinc_it_was() -> None:
    far = (np.random.default_rng(1).standard_normal(16000) * 8000).astype(np.int16)
    timeline = FarEndTimeline(16000)
    timeline.push(far.tobytes(), 0)
    stage = EchoStage(timeline, SampleLog(1000), noise_suppression=False)
    stage.set_skew(3.7e-5, 0)
    stage._base = 1000.0
    half = _SINC_TAPS // 2 - 1
    checked = 0
    for position in range(2000, 15000, N):
        start = position - stage.offset_at(position)
        whole = int(np.floor(start))
        frac = start - whole
        if frac < 1e-3 or frac > 1 - 1e-3:
            continue
        x = far[whole - half : whole - half + N + _SINC_TAPS - 1].astype(np.float32)
        taps = np.sinc(frac - _SINC_INDEX) * _SINC_WINDOW
        y = np.correlate(x, taps.astype(np.float32), "valid")
        expected = np.clip(np.rint(y), -32768, 32767).astype(np.int16)
        assert np.array_equal(stage._reference(position, stage.offset_at(position)), expected)
        checked += 1
    assert checked > 30
    stage.close()
