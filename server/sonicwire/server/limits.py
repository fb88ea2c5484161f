"""Concurrent-stream limits, global and per API key, so one key cannot starve another."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from sonicwire.server.core.errors import LimitExceeded

__all__ = ["StreamLimiter"]


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
