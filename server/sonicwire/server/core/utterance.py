"""Cutting user utterances out of the continuous microphone stream.

Backends that endpoint with the front end's VAD (echo, local) receive every cleaned frame plus
speech start/stop markers; `UtteranceCollector` keeps a bounded pre-roll so an utterance starts
``pad_ms`` before the detected onset and ends ``pad_ms`` after the detected end.
"""

from __future__ import annotations

from collections import deque

__all__ = ["UtteranceCollector"]

_BYTES_PER_SAMPLE = 2


class UtteranceCollector:
    """Feed audio and markers in stream order; finished utterances come out of `take`.

    Offsets are sample positions on the 16 kHz stream that `push_audio` receives.
    """

    def __init__(
        self,
        *,
        sample_rate: int = 16_000,
        pad_ms: int = 300,
        max_ms: int = 30_000,
        lookback_ms: int = 2_000,
    ) -> None:
        self._pad = sample_rate * pad_ms // 1000
        # While quiet, keep the pad plus the VAD's decision delay (its start_secs): the onset it
        # reports lies that far in the past when the start marker arrives.
        self._lookback = self._pad + sample_rate * lookback_ms // 1000
        self._max = sample_rate * max_ms // 1000
        # Audio kept so far, as (start offset, bytes) chunks; bounded to the pre-roll while quiet.
        self._chunks: deque[tuple[int, bytes]] = deque()
        self._position = 0
        self._start: int | None = None
        self._stop: int | None = None
        self._done: list[bytes] = []

    def push_audio(self, pcm: bytes) -> None:
        self._chunks.append((self._position, pcm))
        self._position += len(pcm) // _BYTES_PER_SAMPLE
        if self._start is None:
            self._trim(self._position - self._lookback)
        elif self._stop is not None and self._position >= self._stop + self._pad:
            self._finish(self._stop + self._pad)
        elif self._position - self._start > self._max:
            # A runaway utterance (VAD stuck on noise) is cut rather than grown without bound.
            self._finish(self._position)

    def speech_started(self, offset: int) -> None:
        if self._start is None:
            self._start = max(0, offset - self._pad)
            self._stop = None
        else:
            self._stop = None  # speech resumed before the trailing pad was complete

    def speech_stopped(self, offset: int) -> None:
        if self._start is not None:
            self._stop = offset
            if self._position >= offset + self._pad:
                self._finish(offset + self._pad)

    def flush(self) -> None:
        """End any utterance in progress now (the stream is ending)."""
        if self._start is not None:
            self._finish(self._position)

    @property
    def finished(self) -> bool:
        """Whether `take` would return anything (cheaper to ask on every frame)."""
        return bool(self._done)

    def take(self) -> list[bytes]:
        """Return the finished utterances and forget them."""
        done, self._done = self._done, []
        return done

    def _finish(self, end: int) -> None:
        assert self._start is not None
        self._done.append(self._slice(self._start, end))
        self._start = None
        self._stop = None
        self._trim(self._position - self._lookback)

    def _slice(self, start: int, end: int) -> bytes:
        parts = []
        for offset, pcm in self._chunks:
            count = len(pcm) // _BYTES_PER_SAMPLE
            lo = max(start, offset)
            hi = min(end, offset + count)
            if lo < hi:
                parts.append(pcm[(lo - offset) * 2 : (hi - offset) * 2])
        return b"".join(parts)

    def _trim(self, keep_from: int) -> None:
        while self._chunks:
            offset, pcm = self._chunks[0]
            if offset + len(pcm) // _BYTES_PER_SAMPLE <= keep_from:
                self._chunks.popleft()
            else:
                break
