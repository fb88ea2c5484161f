"""Streaming sample-rate conversion at the edges of the pipeline (soxr).

Clients may send and receive 8, 16, 24 or 48 kHz; everything inside the front end runs at
16 kHz. :class:`Resampler` keeps filter state between calls, so a stream converted in pieces
matches the same stream converted in one go (up to soxr's own chunking, which is exact for
its streaming API).
"""

from __future__ import annotations

import numpy as np
import soxr

__all__ = ["SUPPORTED_RATES", "Resampler"]

SUPPORTED_RATES: frozenset[int] = frozenset({8000, 16000, 24000, 48000})
"""Client sample rates the service accepts."""


class Resampler:
    """Convert a stream of mono s16le PCM from ``in_rate`` to ``out_rate``.

    ``process(pcm)`` returns whatever output is ready (soxr holds back a few milliseconds of
    filter delay); ``flush()`` returns the rest at end of stream. Equal rates take a fast path
    that returns the input unchanged. An odd trailing byte is kept for the next call.

    Raises :class:`ValueError` for a rate outside 1-192 kHz (clients are held to
    :data:`SUPPORTED_RATES` at the edge; backends may speak at any rate).
    """

    def __init__(self, in_rate: int, out_rate: int, *, quality: str = "HQ") -> None:
        # Clients are held to SUPPORTED_RATES at the edge (convert.py); backends may produce
        # any rate (piper voices speak at 22050 Hz), and soxr converts between any two.
        for rate in (in_rate, out_rate):
            if not 1000 <= rate <= 192_000:
                raise ValueError(f"unsupported sample rate {rate}")
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._odd = b""
        self._stream: soxr.ResampleStream | None = None
        if in_rate != out_rate:
            self._stream = soxr.ResampleStream(in_rate, out_rate, 1, dtype="int16", quality=quality)

    @property
    def identity(self) -> bool:
        return self._stream is None

    def process(self, pcm: bytes) -> bytes:
        """Resample the next piece of the stream."""
        if self._odd:
            pcm = self._odd + pcm
            self._odd = b""
        if len(pcm) % 2:
            self._odd = pcm[-1:]
            pcm = pcm[:-1]
        if self._stream is None:
            return bytes(pcm)
        if not pcm:
            return b""
        samples = np.frombuffer(pcm, dtype=np.int16)
        out = self._stream.resample_chunk(samples, last=False)
        return bytes(out.tobytes())

    def flush(self) -> bytes:
        """End the stream and return the samples soxr still held. A dangling byte is dropped."""
        self._odd = b""
        if self._stream is None:
            return b""
        out = self._stream.resample_chunk(np.zeros(0, dtype=np.int16), last=True)
        return bytes(out.tobytes())
