"""Per-stream memory of the front end: bounded buffers, and no lazy import on first use."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from sonicwire.server.dsp.median import median
from sonicwire.server.dsp.pipeline import FrontEnd, FrontEndSettings

from .dsp_testsignals import bursts, to_int16

N = 320


def _signals(seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """A far end and an unrelated talker at the mic (the echo probes run all along)."""
    return to_int16(bursts(seconds, seed=4)), to_int16(bursts(seconds, seed=5))


def _talk(
    fe: FrontEnd, seconds: float, signals: tuple[np.ndarray, np.ndarray] | None = None
) -> None:
    far, mic = signals or _signals(seconds)
    for t in range(0, len(mic) - N + 1, N):
        fe.push_far_end(far[t : t + N].tobytes())
        fe.process(mic[t : t + N].tobytes())


@pytest.mark.parametrize("echo_cancellation", [True, False])
def test_the_sample_logs_keep_their_size_over_a_long_stream(echo_cancellation: bool) -> None:
    # the logs forget everything older than the history they need on every frame: over a
    # stream much longer than their capacity they compact in place and never grow (with
    # the canceller off the far end used to be kept forever: ~115 MB an hour)
    fe = FrontEnd(FrontEndSettings(echo_cancellation=echo_cancellation))
    far_log, mic_log = fe._timeline.log, fe._mic_log
    sizes = (far_log.capacity, mic_log.capacity)
    _talk(fe, 30.0)
    assert (far_log.capacity, mic_log.capacity) == sizes
    assert far_log.end >= 30 * 16000 - 2 * N  # it did hold the whole far end, in turn
    # ~200 kB of int16 per stream (it was ~470 kB): the history (with the 5 frames a spread
    # replay reads late, dsp/aec.py) plus 1 s / 0.5 s of slack
    assert far_log.capacity * 2 + mic_log.capacity * 2 < 215_000
    fe.close()


def test_a_far_end_queued_far_ahead_of_a_muted_mic_is_kept_whole() -> None:
    fe = FrontEnd()
    far = to_int16(bursts(8.0, seed=4))
    fe.push_far_end(far.tobytes())  # 8 s queued at once, more than the log's room
    log = fe._timeline.log
    assert np.array_equal(log.read(0, len(far)), far)
    fe.close()


def test_the_estimator_keeps_one_spectrum_between_readings() -> None:
    fe = FrontEnd()
    _talk(fe, 6.0)
    assert fe.stats.estimates > 0
    assert fe._estimator._last_block is None  # dropped once the jump check is done
    fe.close()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_median_is_numpys_to_the_bit(dtype: type) -> None:
    rng = np.random.default_rng(7)
    for size in [*range(1, 30), 119, 120, 121, 1000]:
        for _ in range(20):
            x = (rng.standard_normal(size) * 10 ** rng.uniform(-3, 9)).astype(dtype)
            expected = np.median(x)
            got = median(x)
            assert got == expected and type(got) is type(expected)
    x = np.array([1.0, np.nan, 2.0], dtype=dtype)
    assert np.isnan(median(x))


def test_a_stream_loads_no_module_the_server_did_not_load_at_start() -> None:
    # numpy loads numpy.fft (and np.median numpy.ma) on first use: ~2.5 MB of resident
    # memory that the first stream of a server would otherwise carry (bench RSS/stream)
    code = (
        "import sys\n"
        "import numpy as np\n"
        "from sonicwire.server.dsp.pipeline import FrontEnd\n"
        "from tests.dsp.test_dsp_memory import _signals, _talk\n"
        "signals = _signals(6.0)\n"
        "before = set(sys.modules)\n"
        "fe = FrontEnd()\n"
        "_talk(fe, 6.0, signals)\n"
        "assert fe.stats.estimates and fe.stats.probes, fe.stats\n"
        "print(sorted(m for m in set(sys.modules) - before if m.startswith('numpy')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
