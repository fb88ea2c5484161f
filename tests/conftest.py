"""Shared fixtures: real speech audio and helpers to talk to a loopback server."""

from __future__ import annotations

import array
import gc
import shutil
import subprocess
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

# The CI gates (skips need an allow-list entry under CI=true; one golden-update switch): hooks
# imported here so pytest registers them for the whole suite.
from tests.ci_gates import (  # noqa: F401
    pytest_addoption,
    pytest_configure,
    pytest_make_collect_report,
    pytest_runtest_makereport,
)

ALSA_SAMPLES = Path("/usr/share/sounds/alsa")


@pytest.fixture(autouse=True)
def _unfreeze_the_heap() -> Iterator[None]:
    """Undo a test's ``gc.freeze``. Every server start freezes the heap
    (sonicwire.server.heap.settle): right for a server process, whose start-up objects live as
    long as it does, but in one pytest process each test's servers, streams and their cyclic
    garbage would stay frozen, never collected, until the whole run ends."""
    yield
    gc.unfreeze()


def read_wav_mono16(path: Path) -> tuple[bytes, int]:
    """Return (16-bit mono PCM, sample rate) of a WAV file (stereo is averaged)."""
    with wave.open(str(path), "rb") as wav:
        assert wav.getsampwidth() == 2, f"{path}: expected 16-bit PCM"
        rate, channels = wav.getframerate(), wav.getnchannels()
        data = wav.readframes(wav.getnframes())
    if channels == 1:
        return data, rate
    samples = array.array("h", data)
    mono = array.array(
        "h", (sum(samples[i : i + channels]) // channels for i in range(0, len(samples), channels))
    )
    return mono.tobytes(), rate


def synthesize(text: str, path: Path, voice: str = "en-us") -> Path:
    """Speak ``text`` with espeak-ng into a 16-bit WAV (espeak-ng writes 22.05 kHz)."""
    espeak = shutil.which("espeak-ng")
    assert espeak, "espeak-ng is required (installed by scripts/setup.sh)"
    subprocess.run([espeak, "-v", voice, "-w", str(path), text], check=True, capture_output=True)
    return path


@pytest.fixture(scope="session")
def speech_16k(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """About 1.5 s of real recorded speech ("Front Center"), resampled to 16 kHz mono."""
    import numpy as np
    import soxr

    pcm, rate = read_wav_mono16(ALSA_SAMPLES / "Front_Center.wav")
    samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float32)
    out = soxr.resample(samples, rate, 16_000)
    return np.clip(out, -32768, 32767).astype(np.int16).tobytes()


@pytest.fixture(scope="session")
def speech_8k(speech_16k: bytes) -> bytes:
    """The same speech at 8 kHz (telephone band), as a carrier would carry it."""
    import numpy as np
    import soxr

    samples = np.frombuffer(speech_16k, dtype=np.int16).astype(np.float32)
    out = soxr.resample(samples, 16_000, 8_000)
    return np.clip(out, -32768, 32767).astype(np.int16).tobytes()
