from __future__ import annotations

import numpy as np
import pytest

from sonicwire.server.dsp.resample import SUPPORTED_RATES, Resampler


def tone(rate: int, seconds: float, freq: float = 440.0) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    return (np.sin(2 * np.pi * freq * t) * 10000).astype(np.int16).tobytes()


def dominant(pcm: bytes, rate: int) -> float:
    x = np.frombuffer(pcm, dtype=np.int16).astype(np.float64)
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spec) * rate / len(x))


@pytest.mark.parametrize("src", sorted(SUPPORTED_RATES))
@pytest.mark.parametrize("dst", sorted(SUPPORTED_RATES))
def test_rates_keep_length_and_pitch(src: int, dst: int) -> None:
    r = Resampler(src, dst)
    pcm = tone(src, 1.0)
    out = b""
    for i in range(0, len(pcm), 966):  # odd-sized pieces, including odd byte counts
        out += r.process(pcm[i : i + 966])
    out += r.flush()
    assert abs(len(out) // 2 - dst) <= dst // 100
    assert abs(dominant(out, dst) - 440.0) < 5.0
    assert r.identity == (src == dst)


def test_identity_is_exact() -> None:
    r = Resampler(16000, 16000)
    pcm = tone(16000, 0.1)
    assert r.process(pcm[:101]) + r.process(pcm[101:]) + r.flush() == pcm


def test_streaming_matches_one_shot() -> None:
    pcm = tone(48000, 0.5, 1000.0)
    a = Resampler(48000, 16000)
    one = a.process(pcm) + a.flush()
    b = Resampler(48000, 16000)
    pieces = b"".join(b.process(pcm[i : i + 962]) for i in range(0, len(pcm), 962)) + b.flush()
    x = np.frombuffer(one, dtype=np.int16).astype(np.int32)
    y = np.frombuffer(pieces, dtype=np.int16).astype(np.int32)
    assert len(x) == len(y)
    assert np.max(np.abs(x - y)) <= 2


@pytest.mark.parametrize("rate", [0, -16000, 500_000])
def test_rejects_impossible_rates(rate: int) -> None:
    with pytest.raises(ValueError):
        Resampler(rate, 16000)


def test_backend_rates_outside_the_client_set_work() -> None:
    """Piper voices speak at 22050 Hz: the core converts them for the client and the AEC."""
    resampler = Resampler(22050, 16000)
    out = resampler.process(bytes(22050 * 2)) + resampler.flush()
    assert len(out) == 16000 * 2
