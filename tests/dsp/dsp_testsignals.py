"""Shared signal helpers for the DSP tests (seeded, synthetic unless noted)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

FS = 16000
ALSA = Path("/usr/share/sounds/alsa")


def to_int16(x: npt.NDArray[np.float64]) -> npt.NDArray[np.int16]:
    return np.clip(np.round(x * 32768), -32768, 32767).astype(np.int16)


def bursts(seconds: float, seed: int, level: float = 0.1) -> npt.NDArray[np.float64]:
    """Speech-like far-end: coloured noise in 150-600 ms bursts with short pauses."""
    rng = np.random.default_rng(seed)
    n = int(seconds * FS)
    x = np.zeros(n)
    t = 0
    while t < n:
        length = int(rng.uniform(0.15, 0.6) * FS)
        burst = np.convolve(rng.standard_normal(length), [1.0, 0.6, 0.3], mode="same")
        burst *= np.hanning(length) ** 0.3
        x[t : t + length] = burst[: n - t]
        t += length + int(rng.uniform(0.05, 0.2) * FS)
    return level * x / (np.std(x) + 1e-12)


def room(seed: int, length: int = 1600) -> npt.NDArray[np.float64]:
    """A short synthetic echo path: a direct tap then an exponentially decaying tail."""
    rng = np.random.default_rng(seed)
    h = rng.standard_normal(length) * np.exp(-np.arange(length) / 250.0) * 0.3
    h[0] = 1.0
    return h / np.sqrt(np.sum(h**2))


def alsa_speech(name: str = "Front_Center") -> npt.NDArray[np.float64]:
    """Real recorded speech from alsa-utils (16 kHz float); skips the test when absent."""
    import soxr
    from scipy.io import wavfile

    path = ALSA / f"{name}.wav"
    if not path.exists():
        pytest.skip("alsa-utils voice samples not installed")
    rate, data = wavfile.read(path)
    if data.ndim > 1:
        data = data[:, 0]
    return np.asarray(soxr.resample(data.astype(np.float64) / 32768, rate, FS))
