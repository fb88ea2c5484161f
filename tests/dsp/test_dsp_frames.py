from __future__ import annotations

import numpy as np
import pytest

from sonicwire.server.dsp.frames import FRAME_BYTES, FRAME_SAMPLES, SAMPLE_RATE, FrameChunker


def test_constants() -> None:
    assert (SAMPLE_RATE, FRAME_SAMPLES, FRAME_BYTES) == (16000, 320, 640)


@pytest.mark.parametrize(
    "sizes", [[640], [1], [7, 633, 1], [1280, 3], [639, 1, 641, 639], [3] * 500]
)
def test_split_invariance(sizes: list[int]) -> None:
    data = np.random.default_rng(1).integers(0, 256, 3000, dtype=np.uint8).tobytes()
    chunker = FrameChunker()
    frames: list[bytes] = []
    pos = 0
    while pos < len(data):
        for size in sizes:
            frames += chunker.push(data[pos : pos + size])
            pos += size
    whole = FrameChunker().push(data)
    assert frames == whole
    assert all(len(f) == FRAME_BYTES for f in frames)
    assert b"".join(frames) == data[: len(frames) * FRAME_BYTES]
    assert chunker.pending == len(data) - len(frames) * FRAME_BYTES


def test_odd_byte_is_kept_and_flushed() -> None:
    chunker = FrameChunker()
    assert chunker.push(b"\x01") == []
    assert chunker.push(b"\x00" * 639) == [b"\x01" + b"\x00" * 639]
    assert chunker.push(b"\x02\x03\x04") == []
    assert chunker.flush() == b"\x02\x03\x04"
    assert chunker.pending == 0


def test_rejects_bad_frame_size() -> None:
    with pytest.raises(ValueError):
        FrameChunker(0)
