"""G.711 mu-law and A-law (ITU-T G.711): one byte per sample, stateless.

The coding is the C implementation in the standard library's ``audioop`` (Sun's reference
``g711.c`` tables, the same ones sox and FFmpeg use; the tests check that byte for byte
against both). ``audioop`` is deprecated in Python 3.12 and removed in 3.13, where the
maintained ``audioop-lts`` package provides the same module; the project depends on it there.
"""

from __future__ import annotations

import sys
import warnings

if sys.version_info >= (3, 13):
    import audioop  # provided by audioop-lts
else:  # pragma: no cover - depends on the interpreter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop

from sonicwire.server.codecs.base import CodecError

__all__ = [
    "AlawDecoder",
    "AlawEncoder",
    "MulawDecoder",
    "MulawEncoder",
    "alaw_to_pcm",
    "mulaw_to_pcm",
    "pcm_to_alaw",
    "pcm_to_mulaw",
]


def _check_pcm(pcm: bytes) -> None:
    if len(pcm) % 2:
        raise CodecError(f"PCM of {len(pcm)} bytes is not a whole number of 16-bit samples")


def mulaw_to_pcm(data: bytes) -> bytes:
    """Expand mu-law bytes to s16le PCM (twice as many bytes)."""
    return audioop.ulaw2lin(data, 2)


def pcm_to_mulaw(pcm: bytes) -> bytes:
    """Compress s16le PCM to mu-law. Raises `CodecError` for an odd byte count."""
    _check_pcm(pcm)
    return audioop.lin2ulaw(pcm, 2)


def alaw_to_pcm(data: bytes) -> bytes:
    """Expand A-law bytes to s16le PCM."""
    return audioop.alaw2lin(data, 2)


def pcm_to_alaw(pcm: bytes) -> bytes:
    """Compress s16le PCM to A-law. Raises `CodecError` for an odd byte count."""
    _check_pcm(pcm)
    return audioop.lin2alaw(pcm, 2)


class MulawDecoder:
    """Stream decoder: any number of bytes per chunk."""

    def decode(self, payload: bytes) -> list[bytes]:
        return [mulaw_to_pcm(payload)] if payload else []


class AlawDecoder:
    """Stream decoder: any number of bytes per chunk."""

    def decode(self, payload: bytes) -> list[bytes]:
        return [alaw_to_pcm(payload)] if payload else []


class MulawEncoder:
    """Stream encoder: one chunk out per chunk in, nothing buffered."""

    packet_ms = 0

    def encode(self, pcm: bytes) -> list[bytes]:
        return [pcm_to_mulaw(pcm)] if pcm else []

    def flush(self) -> list[bytes]:
        return []

    def reset(self) -> None:
        return None


class AlawEncoder:
    """Stream encoder: one chunk out per chunk in, nothing buffered."""

    packet_ms = 0

    def encode(self, pcm: bytes) -> list[bytes]:
        return [pcm_to_alaw(pcm)] if pcm else []

    def flush(self) -> list[bytes]:
        return []

    def reset(self) -> None:
        return None
