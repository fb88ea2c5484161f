"""Rate limiting with no clock of its own: the caller passes the time."""

from __future__ import annotations

__all__ = ["TokenBucket"]


class TokenBucket:
    """A token bucket: ``rate`` tokens per second, holding at most ``burst``.

    ``rate <= 0`` disables the limit (every :meth:`take` succeeds).

    :meth:`credit` exists because a socket's messages queue up while the gateway is not
    reading (e.g. while a conversation starts): a client that sent at a fair pace must not be
    charged for the burst it finds when reading resumes.
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
        elapsed = now - self._last
        self._last = now
        if elapsed > 0:
            # Refill up to the burst, but never clip a credit granted above it. (Comparisons
            # rather than max/min: this runs for every message, 50 a second per socket.)
            refilled = self._tokens + elapsed * self.rate
            if refilled > self.burst:
                refilled = self.burst
            if refilled > self._tokens:
                self._tokens = refilled
        if self._tokens < tokens:
            return False
        self._tokens -= tokens
        return True

    def credit(self, seconds: float) -> None:
        """Allow what a fair client could have sent during ``seconds`` of not being read,
        above the burst if need be."""
        if self.rate > 0 and seconds > 0:
            self._tokens += seconds * self.rate
