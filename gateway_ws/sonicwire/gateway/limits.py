"""Rate limiting with no clock of its own: the caller passes the time."""

from __future__ import annotations

__all__ = ["TokenBucket"]


class TokenBucket:
    """A token bucket: ``rate`` tokens per second, holding at most ``burst``.

    ``rate <= 0`` disables the limit (every :meth:`take` succeeds).
    """

    def __init__(self, rate: float, burst: float, now: float) -> None:
        """Start full at time ``now`` (seconds, any monotonic clock)."""
        self.rate = rate
        self.burst = max(burst, 1.0)
        self._tokens = self.burst
        self._last = now

    def take(self, now: float, tokens: float = 1.0) -> bool:
        """Take ``tokens`` at time ``now``; False (and nothing taken) when too few are left."""
        if self.rate <= 0:
            return True
        elapsed = max(now - self._last, 0.0)
        self._last = now
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
        if self._tokens < tokens:
            return False
        self._tokens -= tokens
        return True
