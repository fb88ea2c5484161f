"""Canonical audio framing: 16 kHz mono s16le in 20 ms frames (320 samples, 640 bytes).

:class:`FrameChunker` turns byte strings of any length into exact frames and keeps the
remainder for the next call, so the frames that come out never depend on how the input was
split.
"""

from __future__ import annotations

__all__ = [
    "FRAME_BYTES",
    "FRAME_MS",
    "FRAME_SAMPLES",
    "SAMPLE_BYTES",
    "SAMPLE_RATE",
    "FrameChunker",
]

SAMPLE_RATE = 16000
"""Canonical sample rate in Hz."""
SAMPLE_BYTES = 2
"""Bytes per sample (signed 16-bit little-endian, mono)."""
FRAME_MS = 20
"""Frame duration in milliseconds."""
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000
"""Samples per frame (320)."""
FRAME_BYTES = FRAME_SAMPLES * SAMPLE_BYTES
"""Bytes per frame (640)."""


class FrameChunker:
    """Re-chunk arbitrary byte strings into ``frame_bytes``-sized frames.

    ``push(data)`` returns the complete frames now available (possibly none) and keeps the
    rest, including an odd trailing byte, for the next call. ``pending`` tells how many bytes
    wait; ``flush()`` returns them (the caller decides whether to pad or drop a partial frame).
    """

    def __init__(self, frame_bytes: int = FRAME_BYTES) -> None:
        if frame_bytes <= 0:
            raise ValueError("frame_bytes must be positive")
        self._frame_bytes = frame_bytes
        self._pending = bytearray()

    @property
    def frame_bytes(self) -> int:
        return self._frame_bytes

    @property
    def pending(self) -> int:
        """Bytes received but not yet returned as a frame."""
        return len(self._pending)

    def push(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Append ``data`` and return every complete frame, in order."""
        size = self._frame_bytes
        if not self._pending and len(data) == size:
            return [bytes(data)]  # the common case: the client already sends 20 ms frames
        self._pending += data
        count = len(self._pending) // size
        if count == 0:
            return []
        buf = self._pending
        frames = [bytes(buf[i * size : (i + 1) * size]) for i in range(count)]
        del buf[: count * size]
        return frames

    def flush(self) -> bytes:
        """Return and forget the pending partial frame (possibly empty)."""
        rest = bytes(self._pending)
        self._pending.clear()
        return rest
