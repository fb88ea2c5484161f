"""`SampleLog.write_bytes`: the bytes path stores exactly what `write` stores."""

from __future__ import annotations

import numpy as np
import pytest

from sonicwire.server.dsp.timeline import SampleLog


def _pcm(rng: np.random.Generator, samples: int) -> bytes:
    return rng.integers(-32768, 32768, samples, dtype=np.int16).tobytes()


def test_write_bytes_matches_write_through_growth_compaction_gaps_and_overlaps() -> None:
    """Two logs fed the same writes, one as bytes and one as arrays, read alike throughout:
    the next frame (the fast path), the same after the log grew (a new buffer and byte view)
    and after it compacted, a gap (zeroed), an overwrite, and a write partly before the base."""
    rng = np.random.default_rng(7)
    by_bytes, by_array = SampleLog(800), SampleLog(800)
    position = 0
    writes: list[tuple[int, bytes]] = []
    for step in range(60):
        length = 320
        if step % 7 == 3:
            position += 100  # a gap since the last end
        elif step % 11 == 5:
            position -= 50  # an overlap with what was written
        data = _pcm(rng, length)
        writes.append((position, data))
        position += length
        if step % 13 == 12:
            writes.append((-1, b""))  # a marker: forget the old part, so the log compacts
    for start, data in writes:
        if start < 0:
            keep = by_array.end - 1000
            by_bytes.forget_before(keep)
            by_array.forget_before(keep)
            continue
        by_bytes.write_bytes(start, data)
        by_array.write(start, np.frombuffer(data, dtype=np.int16))
        assert by_bytes.end == by_array.end
        lo = max(0, by_array.end - 1500)
        np.testing.assert_array_equal(by_bytes.read(lo, 1500), by_array.read(lo, 1500))
    # Growth happened, and compaction dropped the first writes (they read as zeros now).
    assert by_bytes.capacity > 800
    assert not by_bytes.read(0, 320).any() and np.frombuffer(writes[0][1], np.int16).any()
    assert by_bytes.capacity == by_array.capacity
    # A write entirely before the base is dropped by both: nothing moves.
    end = by_array.end
    before = by_bytes.read(end - 2000, 2000).copy()
    by_bytes.write_bytes(0, _pcm(rng, 320))
    by_array.write(0, np.frombuffer(_pcm(rng, 320), dtype=np.int16))
    assert by_bytes.end == by_array.end == end
    np.testing.assert_array_equal(by_bytes.read(end - 2000, 2000), before)
    np.testing.assert_array_equal(by_bytes.read(end - 2000, 2000), by_array.read(end - 2000, 2000))


def test_write_bytes_reads_back_as_little_endian_int16() -> None:
    log = SampleLog(4)
    log.write_bytes(0, b"\x01\x00\xff\xff")  # 1, -1
    log.write_bytes(2, b"\x00\x80\xff\x7f")  # -32768, 32767
    log.write_bytes(5, b"\x02\x00")  # after a one-sample gap, past the capacity: grows
    assert log.read(0, 6).tolist() == [1, -1, -32768, 32767, 0, 2]
    assert log.end == 6


@pytest.mark.parametrize("capacity", [0, -1])
def test_capacity_must_be_positive(capacity: int) -> None:
    with pytest.raises(ValueError, match="capacity"):
        SampleLog(capacity)
