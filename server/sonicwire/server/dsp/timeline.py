"""The audio histories the echo path reads by absolute mic position.

:class:`SampleLog` holds int16 samples addressed by position (the mic log, and the far end as
scheduled); :class:`FarEndTimeline` models the client's playback queue on the mic sample clock
(see :mod:`.delay` for how the echo's delay is found on it). Synchronous, no clock.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from mypy_extensions import mypyc_attr

__all__ = ["FarEndTimeline", "SampleLog"]

Int16Array = npt.NDArray[np.int16]


# Compiled with mypyc (sonicwire.server.native), a class refuses interpreted subclasses unless
# it says otherwise: the tests subclass this one to see which positions the echo path reads.
@mypyc_attr(allow_interpreted_subclasses=True)
class SampleLog:
    """int16 samples addressed by absolute position, with zeros wherever nothing was written.

    A flat array plus a base position; it compacts (drops samples before ``forget_before``)
    or grows when a write would not fit, so reads of recent data are contiguous views.
    """

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self._buf: Int16Array = np.zeros(capacity, dtype=np.int16)
        self._bytes = memoryview(self._buf).cast("B")  # the same memory, for `write_bytes`
        self._base = 0  # absolute position of _buf[0]
        self._end = 0  # one past the last written position
        self._keep_from = 0  # positions before this may be discarded
        self._zeros: Int16Array = np.zeros(0, dtype=np.int16)

    @property
    def end(self) -> int:
        """One past the last written position."""
        return self._end

    @property
    def capacity(self) -> int:
        return len(self._buf)

    def forget_before(self, position: int) -> None:
        """Allow samples before ``position`` to be dropped at the next compaction."""
        if position > self._keep_from:  # twice a frame per stream: no max() call
            self._keep_from = position

    def write(self, start: int, data: Int16Array) -> None:
        """Store ``data`` at ``[start, start + len(data))``; a gap since the last end is zeroed."""
        stop = start + len(data)
        base = self._base
        if start == self._end and start >= base and stop - base <= len(self._buf):
            # the common case (the next frame, room left): what the general path below does
            self._buf[start - base : stop - base] = data
            self._end = stop
            return
        if start < self._base:
            skip = self._base - start
            if skip >= len(data):
                return
            data = data[skip:]
            start = self._base
        self._reserve(stop)
        base = self._base
        if start > self._end:
            self._buf[self._end - base : start - base] = 0
        self._buf[start - base : stop - base] = data
        if stop > self._end:
            self._end = stop

    def write_bytes(self, start: int, data: bytes) -> None:
        """`write` of s16le bytes (``len(data)`` even). The common case (the next frame, room
        left) copies the bytes straight into the log: no array is made for them, which was
        ~0.6 us of every mic frame. The same values: ``np.frombuffer`` would read these very
        bytes as the log's int16 samples."""
        base = self._base
        stop = start + len(data) // 2
        if start == self._end and start >= base and stop - base <= len(self._buf):
            self._bytes[2 * (start - base) : 2 * (stop - base)] = data
            self._end = stop
            return
        self.write(start, np.frombuffer(data, dtype=np.int16))

    def truncate(self, position: int) -> None:
        """Forget everything from ``position`` on (it reads as zeros again)."""
        if position < self._end:
            lo = max(position, self._base)
            self._buf[lo - self._base : self._end - self._base] = 0
            self._end = max(position, self._base)

    def read(self, start: int, count: int) -> Int16Array:
        """Samples ``[start, start + count)``: a view if all were written, else zero-filled.

        The result may be a view into the log: copy it before the next write if you keep it.
        """
        base = self._base
        if start >= base and start + count <= self._end:
            return self._buf[start - base : start - base + count]
        lo = max(start, base)
        hi = min(start + count, self._end)
        if hi <= lo:
            if len(self._zeros) != count:
                self._zeros = np.zeros(count, dtype=np.int16)
            return self._zeros
        out = np.zeros(count, dtype=np.int16)
        out[lo - start : hi - start] = self._buf[lo - base : hi - base]
        return out

    def _reserve(self, stop: int) -> None:
        if stop - self._base <= len(self._buf):
            return
        new_base = min(self._keep_from, self._end)
        shift = new_base - self._base
        if shift > 0:
            live = self._end - new_base
            self._buf[:live] = self._buf[shift : shift + live].copy()
            self._buf[live:] = 0
            self._base = new_base
        if stop - self._base > len(self._buf):
            size = max(2 * len(self._buf), stop - self._base)
            grown = np.zeros(size, dtype=np.int16)
            grown[: self._end - self._base] = self._buf[: self._end - self._base]
            self._buf = grown
            self._bytes = memoryview(grown).cast("B")


@dataclass(slots=True)
class _Segment:  # mutable: a push that continues the last segment lengthens it in place
    far_start: int  # index of the first sample in the far-end stream
    position: int  # scheduled mic-timeline position of that sample
    length: int


class FarEndTimeline:
    """The client's playback queue, laid out on the mic sample clock.

    ``push(pcm, mic_position)`` schedules released audio; ``scheduled(far_index)`` tells where
    a far-end sample was scheduled; ``truncate(played, mic_position)`` removes what a barge-in
    flushed. ``log`` holds the scheduled samples for the echo canceller and the estimator.
    """

    def __init__(self, history: int, capacity: int | None = None) -> None:
        self.history = history
        self.log = SampleLog(capacity or 4 * history)
        self._segments: list[_Segment] = []
        self._starts: list[int] = []  # far_start of each segment, for bisect
        self._far_total = 0
        self._queue_end = 0

    @property
    def far_total(self) -> int:
        """Far-end samples released so far (after truncation: the played count it was cut to)."""
        return self._far_total

    @property
    def queue_end(self) -> int:
        """Scheduled position where the last queued far-end sample ends."""
        return self._queue_end

    def push(self, pcm: bytes, mic_position: int) -> None:
        """Schedule ``pcm`` (16 kHz mono s16le) released at ``mic_position``."""
        samples = np.frombuffer(pcm, dtype=np.int16, count=len(pcm) // 2)
        if not len(samples):
            return
        start = max(mic_position, self._queue_end)
        last = self._segments[-1] if self._segments else None
        if last is not None and last.position + last.length == start:
            last.length += len(samples)
        else:
            self._segments.append(_Segment(self._far_total, start, len(samples)))
            self._starts.append(self._far_total)
        self.log.write(start, samples)
        self._far_total += len(samples)
        self._queue_end = start + len(samples)

    def scheduled(self, far_index: int) -> int | None:
        """Scheduled position of far-end sample ``far_index``, or None if unknown or forgotten."""
        if far_index < 0 or far_index >= self._far_total or not self._segments:
            return None
        i = bisect.bisect_right(self._starts, far_index) - 1
        if i < 0:
            return None
        seg = self._segments[i]
        return seg.position + (far_index - seg.far_start)

    def truncate(self, played: int, mic_position: int) -> None:
        """Barge-in: far-end audio from index ``played`` on will never play.

        The far-end index is re-based so that the next pushed sample is number ``played``
        (the client's played counter continues from what it actually played).
        """
        if played >= self._far_total:
            return
        played = max(played, 0)
        position = self.scheduled(played)
        if position is None:
            cut = mic_position
        else:
            cut = max(position, min(mic_position, self._queue_end))
        self.log.truncate(cut)
        i = bisect.bisect_right(self._starts, played) - 1
        if i >= 0:
            seg = self._segments[i]
            keep = played - seg.far_start
            del self._segments[i:]
            del self._starts[i:]
            if keep > 0:
                self._segments.append(_Segment(seg.far_start, seg.position, keep))
                self._starts.append(seg.far_start)
        self._far_total = played
        self._queue_end = min(self._queue_end, cut)

    def forget_before(self, position: int) -> None:
        """Drop bookkeeping for audio scheduled before ``position``."""
        self.log.forget_before(position)
        drop = 0
        for seg in self._segments[:-1]:
            if seg.position + seg.length < position:
                drop += 1
            else:
                break
        if drop:
            del self._segments[:drop]
            del self._starts[:drop]
