"""Auto-resume: the policy, and the microphone replay buffer (pure bookkeeping, no I/O).

When a server replica goes away (``GoingAway``, or the stream ends with UNAVAILABLE), the
conversation reconnects through the same target, resumes with the last resume token and
sends again the microphone audio the new replica needs: everything captured since the last
*safe point*. A safe point is a moment when the server has turned all the audio it got into
conversation state it saves (no user speech in progress, no answer outstanding); the server
saves that state at every turn boundary, on drain and when a stream ends.

:class:`ReplayBuffer` keeps that audio, bounded: once it holds ``capacity_ms`` the oldest
audio is dropped and counted as *lost* (only if a resume then needs it). At a safe point it
keeps only the last ``lookback_ms`` (speech the server had not noticed yet: its voice
activity detector lags the audio by a few hundred milliseconds), never reaching back before
the end of the user's last answered utterance, which the saved state already holds.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from sonicwire.v1 import voice_service_pb2 as pb

from .retry import RetryPolicy

__all__ = ["AutoResume", "ReplayBuffer", "ReplayStats", "bytes_per_ms"]


def _default_retry() -> RetryPolicy:
    # About 10 s of reconnecting in all: long enough for a balancer to notice a replica is
    # gone and for a rolling restart's next pod to come up.
    return RetryPolicy(max_attempts=10, initial_backoff=0.05, max_backoff=2.0)


@dataclass(frozen=True, slots=True)
class AutoResume:
    """How a started conversation survives its server replica going away.

    Attributes:
        enabled: resume at all; ``False`` ends the conversation with the error instead.
        retry: backoff between reconnect attempts of one resume (UNAVAILABLE is retried,
            any refusal of the resume itself is not).
        buffer_ms: most microphone audio kept for replay; older audio is dropped (and reported
            as ``Resumed.audio_lost_ms`` if a resume needed it).
        lookback_ms: audio kept from before a safe point, for speech whose start the server
            had not reported yet.
        drain_timeout_s: after ``GoingAway``, longest wait for the old stream to end once it
            was half-closed at a safe point (its final state is saved by then).
    """

    enabled: bool = True
    retry: RetryPolicy = field(default_factory=_default_retry)
    buffer_ms: int = 10_000
    lookback_ms: int = 1_000
    drain_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if self.buffer_ms < 0 or self.lookback_ms < 0:
            raise ValueError("buffer_ms and lookback_ms must not be negative")
        if self.drain_timeout_s < 0:
            raise ValueError("drain_timeout_s must not be negative")

    @classmethod
    def off(cls) -> AutoResume:
        """No auto-resume: a replica going away ends the conversation."""
        return cls(enabled=False)


@dataclass(frozen=True, slots=True)
class ReplayStats:
    """What one resume sent again and what it could not."""

    resent_bytes: int
    lost_bytes: int


class ReplayBuffer:
    """Microphone audio since the last safe point, in the order it was captured.

    Positions are byte offsets on the current stream's microphone audio (what was written to
    it); the server's ``SpeechActivity.offset_ms`` is on the same axis.
    """

    def __init__(
        self, *, bytes_per_ms: float, capacity_ms: int, lookback_ms: int, exact_offsets: bool = True
    ) -> None:
        """Args:
        bytes_per_ms: microphone bytes per millisecond (nominal for a compressed encoding).
        capacity_ms: most audio kept.
        lookback_ms: audio kept from before a safe point.
        exact_offsets: the server's ``offset_ms`` maps to byte offsets (not for Opus).
        """
        self._bytes_per_ms = bytes_per_ms
        self._exact = exact_offsets
        self._capacity = int(capacity_ms * bytes_per_ms)
        self._lookback = int(lookback_ms * bytes_per_ms)
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._sent = 0  # bytes written to the current stream
        self._floor = 0  # end of the last answered utterance (stream position)
        self._overflow = 0  # bytes dropped for room since the last safe point
        self.speaking = False
        self.outstanding = 0  # user turns (spoken or typed) not answered yet

    @property
    def buffered_bytes(self) -> int:
        return self._size

    @property
    def idle(self) -> bool:
        """A safe point: no speech in progress and no answer outstanding."""
        return not self.speaking and self.outstanding == 0

    def ms(self, nbytes: int) -> int:
        return round(nbytes / self._bytes_per_ms) if self._bytes_per_ms else 0

    def captured(self, chunk: bytes, *, sent: bool) -> None:
        """Keep ``chunk``; ``sent`` when it was written to the live stream."""
        self._chunks.append(chunk)
        self._size += len(chunk)
        if sent:
            self._sent += len(chunk)
        while self._size > self._capacity and self._chunks:
            dropped = self._chunks.popleft()
            self._size -= len(dropped)
            self._overflow += len(dropped)
        if sent and self.idle:
            self._trim()

    # -- what the server said --------------------------------------------------------------

    def speech_started(self) -> None:
        self.speaking = True

    def speech_stopped(self, offset_ms: int) -> None:
        self.speaking = False
        self.outstanding += 1
        if self._exact:
            self._floor = max(self._floor, int(offset_ms * self._bytes_per_ms))

    def text_sent(self) -> None:
        self.outstanding += 1

    def turn_completed(self) -> None:
        self.outstanding = max(self.outstanding - 1, 0)
        if self.idle:
            self._trim()

    def _trim(self) -> None:
        # Everything the server got before the safe point is in its saved state: keep only the
        # lookback, and nothing of an utterance it has answered.
        self._overflow = 0
        keep_from = max(self._sent - self._lookback, self._floor)
        start = self._sent - self._size  # stream position of the first buffered byte
        # Whole chunks only, so a replay keeps the stream's framing.
        while self._chunks and start + len(self._chunks[0]) <= keep_from:
            dropped = self._chunks.popleft()
            self._size -= len(dropped)
            start += len(dropped)

    # -- a resume --------------------------------------------------------------------------

    def replay(self) -> tuple[list[bytes], ReplayStats]:
        """The audio to send on the new stream, and what was lost; the buffer now describes
        the new stream (everything in it counts as sent once the caller wrote it)."""
        chunks = list(self._chunks)
        stats = ReplayStats(resent_bytes=self._size, lost_bytes=self._overflow)
        self._sent = self._size
        self._floor = 0
        self._overflow = 0
        self.speaking = False
        self.outstanding = 0
        return chunks, stats


_OPUS_BYTES_PER_MS = 4.0  # ~32 kbit/s: sizes the replay buffer of a compressed stream


def bytes_per_ms(config: pb.SessionConfig) -> tuple[float, bool]:
    """Microphone bytes per millisecond in the session's input format, and whether that is
    exact (so the server's ``SpeechActivity.offset_ms`` maps to a byte offset)."""
    rate = config.input_format.sample_rate_hz or 16000
    channels = config.input_format.channels or 1
    encoding = config.input_format.encoding
    if encoding in (pb.AUDIO_ENCODING_UNSPECIFIED, pb.AUDIO_ENCODING_PCM_S16LE):
        return rate * channels * 2 / 1000, True
    if encoding in (pb.AUDIO_ENCODING_MULAW, pb.AUDIO_ENCODING_ALAW):
        return rate * channels / 1000, True
    return _OPUS_BYTES_PER_MS, False
