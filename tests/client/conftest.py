"""Fixtures for the client SDK and CLI tests: a scripted loopback server and WAV files."""

from __future__ import annotations

import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

from .fake_server import FakeVoiceService, LoopbackServer, loopback_server


@pytest.fixture
def fake() -> FakeVoiceService:
    """The scripted servicer (set its ``fail_*``/``api_key`` attributes to change behaviour)."""
    return FakeVoiceService()


@pytest.fixture
def server(fake: FakeVoiceService) -> Iterator[LoopbackServer]:
    """``fake`` served on 127.0.0.1 (with health and reflection) in a background thread."""
    with loopback_server(fake) as running:
        yield running


def write_test_wav(
    path: Path,
    *,
    rate: int = 16000,
    channels: int = 1,
    width: int = 2,
    speech_ms: int = 200,
    silence_ms: int = 0,
) -> Path:
    """A WAV with ``speech_ms`` of a non-silent square wave then ``silence_ms`` of zeros."""
    frames = bytearray()
    for i in range(rate * speech_ms // 1000):
        sample = (1000 if (i // 20) % 2 else -1000).to_bytes(2, "little", signed=True)
        frames += (sample[-width:] if width <= 2 else b"\x00" * (width - 2) + sample) * channels
    frames += bytes(rate * silence_ms // 1000 * width * channels)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(bytes(frames))
    return path


@pytest.fixture
def speech_wav(tmp_path: Path) -> Path:
    """200 ms of 'speech' at 16 kHz mono."""
    return write_test_wav(tmp_path / "speech.wav")
