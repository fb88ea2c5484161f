"""Limits per process and per stream.

`StreamLimiter`: concurrent streams, global and per API key, so one key cannot starve another.
`TokenBucket` and `InputPolicy`: what one stream may send after its config (typed text and tool
results by rate and size, short audio chunks by rate), checked before a message reaches the
session core. The caller passes the time in (the driver owns the clock).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sonicwire.server.core import events as ev
from sonicwire.server.core.errors import LimitExceeded, ProtocolError

__all__ = ["SHORT_AUDIO_MS", "InputLimits", "InputPolicy", "StreamLimiter", "TokenBucket"]


class StreamLimiter:
    """Counts live streams; `acquire` raises `LimitExceeded` past a limit (0 = unlimited)."""

    def __init__(self, max_streams: int = 0, max_streams_per_key: int = 0) -> None:
        self.max_streams = max_streams
        self.max_streams_per_key = max_streams_per_key
        self._total = 0
        self._per_key: Counter[str] = Counter()

    @property
    def active(self) -> int:
        return self._total

    @contextmanager
    def acquire(self, key: str) -> Iterator[None]:
        if self.max_streams and self._total >= self.max_streams:
            raise LimitExceeded(
                "SESSION_LIMIT_REACHED",
                f"the server is at its limit of {self.max_streams} concurrent conversations",
            )
        if self.max_streams_per_key and self._per_key[key] >= self.max_streams_per_key:
            raise LimitExceeded(
                "KEY_SESSION_LIMIT_REACHED",
                f"this API key is at its limit of {self.max_streams_per_key} concurrent "
                "conversations",
            )
        self._total += 1
        self._per_key[key] += 1
        try:
            yield
        finally:
            self._total -= 1
            self._per_key[key] -= 1
            if not self._per_key[key]:
                del self._per_key[key]


class TokenBucket:
    """``rate`` tokens a second up to ``burst``; `take` says whether one was available."""

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self._tokens = float(self.burst)
        self._at = now

    def take(self, now: float) -> bool:
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


@dataclass(frozen=True, slots=True)
class InputLimits:
    """Per-stream input limits (``ServerConfig`` fields; 0 rate = unlimited)."""

    text_rate_per_s: float = 2.0
    text_burst: int = 10
    tool_result_rate_per_s: float = 20.0
    tool_result_burst: int = 50
    max_tool_result_bytes: int = 64 * 1024
    # Audio chunks shorter than SHORT_AUDIO_MS: a real client sends 10-20 ms frames (50-100 a
    # second, never counted); the rate leaves room for one that sends each audio callback as
    # it comes (128 samples at 48 kHz: 375 a second) and bounds one that sends 1 ms chunks.
    # The burst lets such a client resend at once what the Python SDK's auto-resume replays
    # (AutoResume.buffer_ms, 10 s: 3,750 of its chunks) or what a network stall of ~10 s held
    # back; a flood still costs only the burst once, then the rate.
    audio_rate_per_s: float = 500.0
    audio_burst: int = 4000


SHORT_AUDIO_MS = 10
"""Audio chunks shorter than this count against ``InputLimits.audio_rate_per_s``."""


class InputPolicy:
    """Checks one stream's messages against `InputLimits`.

    Typed text and tool results each add to the conversation's history and to the backend's
    work, so a flood of them would grow the session without bound: past the rate a stream
    ends with RESOURCE_EXHAUSTED (TEXT_RATE_EXCEEDED / TOOL_RESULT_RATE_EXCEEDED).

    Audio is paced by backpressure (``conversation.py``), but every message costs the server
    about the same whatever it carries: a client sending 1 ms chunks as fast as it can cost
    as much per message as 20 ms frames, with a twentieth of the audio. So chunks shorter than
    `SHORT_AUDIO_MS` are counted (AUDIO_RATE_EXCEEDED past the rate); longer ones are not: a
    recording uploaded faster than real time (``sonicwire talk --speed 0``) sends 20 ms chunks
    as fast as the server reads them, and must not be refused.
    """

    def __init__(self, limits: InputLimits, now: float, input_sample_rate_hz: int = 16000) -> None:
        self.limits = limits
        self._text = TokenBucket(limits.text_rate_per_s, limits.text_burst, now)
        self._results = TokenBucket(limits.tool_result_rate_per_s, limits.tool_result_burst, now)
        self._audio = TokenBucket(limits.audio_rate_per_s, limits.audio_burst, now)
        # Decoded PCM s16le at the input rate (the core sees PCM only); 0 = not limited.
        self._short_audio_bytes = (
            2 * input_sample_rate_hz * SHORT_AUDIO_MS // 1000 if limits.audio_rate_per_s else 0
        )

    def check(self, event: ev.ClientEvent, now: float) -> None:
        """Raise `LimitExceeded` or `ProtocolError` if ``event`` breaks a limit."""
        if type(event) is ev.AudioReceived:  # ~50 a second: one length test for 20 ms frames
            if len(event.audio) < self._short_audio_bytes and not self._audio.take(now):
                limits = self.limits
                raise LimitExceeded(
                    "AUDIO_RATE_EXCEEDED",
                    f"more than {limits.audio_rate_per_s:g} audio chunks shorter than "
                    f"{SHORT_AUDIO_MS} ms a second (burst {limits.audio_burst}); send 10-20 ms "
                    "chunks",
                )
            return
        limits = self.limits
        match event:
            case ev.TextReceived():
                if limits.text_rate_per_s and not self._text.take(now):
                    raise LimitExceeded(
                        "TEXT_RATE_EXCEEDED",
                        f"more than {limits.text_rate_per_s:g} text inputs a second "
                        f"(burst {limits.text_burst})",
                    )
            case ev.ToolResultReceived(content=content):
                if len(content) > limits.max_tool_result_bytes:
                    raise ProtocolError(
                        "TOOL_RESULT_TOO_LARGE",
                        f"a tool result of {len(content)} characters; the limit is "
                        f"{limits.max_tool_result_bytes}",
                    )
                if limits.tool_result_rate_per_s and not self._results.take(now):
                    raise LimitExceeded(
                        "TOOL_RESULT_RATE_EXCEEDED",
                        f"more than {limits.tool_result_rate_per_s:g} tool results a second "
                        f"(burst {limits.tool_result_burst})",
                    )
            case _:
                pass
