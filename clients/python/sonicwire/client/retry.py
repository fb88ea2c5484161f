"""Connection retry policy: how often and how patiently to retry UNAVAILABLE at connect."""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["RetryPolicy"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retries of UNAVAILABLE while connecting (unary calls, and a stream until its
    ``SessionStarted``). A started conversation is never retried.

    The wait before retry *n* (1-based) is ``initial_backoff * multiplier ** (n - 1)``, capped
    at ``max_backoff``, then spread by up to ``±jitter`` of itself so that many clients do not
    reconnect in lockstep.

    Attributes:
        max_attempts: total attempts including the first; 1 disables retries.
        initial_backoff: seconds before the first retry.
        max_backoff: upper bound of a wait, in seconds.
        multiplier: growth factor of the wait.
        jitter: relative spread of the wait, 0 for none.
    """

    max_attempts: int = 4
    initial_backoff: float = 0.25
    max_backoff: float = 2.0
    multiplier: float = 2.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.initial_backoff < 0 or self.max_backoff < 0:
            raise ValueError("backoffs must not be negative")
        if self.multiplier < 1:
            raise ValueError("multiplier must be at least 1")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")

    @classmethod
    def none(cls) -> RetryPolicy:
        """A policy that never retries."""
        return cls(max_attempts=1)

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        base = min(self.initial_backoff * self.multiplier ** (attempt - 1), self.max_backoff)
        if self.jitter:
            base *= 1 + self.jitter * (2 * random.random() - 1)
        return base
