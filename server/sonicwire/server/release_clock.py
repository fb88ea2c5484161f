"""One pacing clock per event loop: a single periodic callback that wakes the conversations
whose deadline has passed, instead of a loop timer per conversation.

Why (docs/BENCHMARKS.md, "the gap to the floor"): the assistant's audio is released at real
time plus a lead, in 20 ms steps. A timer per stream fired for nearly every step of every
reply (a `TimerHandle`, a heap push and pop, a callback), although the client's own input,
which arrives every 20 ms and releases what is due as it comes, had mostly done the work
already. Now a conversation only publishes its next deadline (`Paced.clock_deadline`, a float
it updates as it goes) and this clock, ticking every ``period_s`` while anyone is scheduled,
calls `Paced.on_clock` for the ones that are due: a comparison per conversation per tick.

The conversation chooses its release deadline late enough that flowing input wins the race
(`release_grace_s`) and early enough that the audio still goes out before
the client has to play it: the clock is the backstop for a client that stops sending (and for
the stream limits: idle, stall, length), not the pacer of every step.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable
from typing import Protocol

from sonicwire.server.core.playout import RELEASE_STEP_MS

__all__ = ["PERIOD_S", "RELEASE_GRACE_S", "Paced", "ReleaseClock", "release_grace_s"]

PERIOD_S = 0.020
"""How often the clock looks at its members: one audio release step."""

RELEASE_GRACE_S = 0.040
"""At most this long after a release falls due the clock waits for the client's next input to
release it (input every 20 ms then always wins). The worst case is a release the grace +
`PERIOD_S` late: `release_grace_s` keeps that `_LATE_MARGIN_S` of loop lag before the client
would have to play the audio, which leaves 20 ms at the default lead (120 ms) and batch
(40 ms): the first unreleased audio is due to play lead - batch after its release fell due."""

_LATE_MARGIN_S = 0.040  # loop lag a paced release may suffer before it reaches the client late


def release_grace_s(lead_ms: int, batch_ms: int = RELEASE_STEP_MS) -> float:
    """The grace for a lead and release batch (`release_batch_ms`): what is left of the lead
    after the batch, one clock period and the margin, capped at `RELEASE_GRACE_S`."""
    spare = (lead_ms - batch_ms) / 1000 - PERIOD_S - _LATE_MARGIN_S
    return min(RELEASE_GRACE_S, max(0.0, spare))


class Paced(Protocol):
    """What the clock needs from a member (a `Conversation`)."""

    @property
    def clock_deadline(self) -> float:
        """When `on_clock` must run next, in the clock's time (``inf``: nothing waits)."""
        ...

    def on_clock(self, now: float) -> None: ...


# One clock per (event loop, time source): members of one clock compare their deadlines with
# the same ``now``. Weak keys: a closed loop takes its clocks with it.
_SHARED: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[Callable[[], float], ReleaseClock]
] = weakref.WeakKeyDictionary()


class ReleaseClock:
    """Calls `Paced.on_clock` of each scheduled member once its ``clock_deadline`` has passed,
    checked every ``period_s`` of loop time while at least one member is scheduled.

    ``period_s=None``: no loop callback; the owner calls `tick` itself (tests step a fake
    ``clock`` and tick by hand, so no assertion depends on wall-clock time).
    """

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, period_s: float | None = PERIOD_S
    ) -> None:
        self.clock = clock
        self.period_s = period_s
        self._members: set[Paced] = set()
        # Whether the loop callback is armed. Neither the loop nor its `TimerHandle` (which
        # holds the loop) is kept: a shared clock is the value of its loop's weak key, and a
        # reference back to the loop would keep every finished loop alive.
        self._armed = False

    @classmethod
    def shared(cls, clock: Callable[[], float] = time.monotonic) -> ReleaseClock:
        """The running loop's clock for ``clock`` (created on first use)."""
        loop = asyncio.get_running_loop()
        clocks = _SHARED.get(loop)
        if clocks is None:
            clocks = _SHARED[loop] = {}
        shared = clocks.get(clock)
        if shared is None:
            shared = clocks[clock] = cls(clock)
        return shared

    def __len__(self) -> int:
        return len(self._members)

    @property
    def running(self) -> bool:
        """Whether the loop callback is armed."""
        return self._armed

    def schedule(self, member: Paced) -> None:
        """Watch ``member``'s deadline from now on (cheap to repeat: a set insert)."""
        members = self._members
        if member not in members:
            members.add(member)
            if not self._armed and self.period_s is not None:
                self._start()

    def cancel(self, member: Paced) -> None:
        """Stop watching ``member`` (idempotent). The loop callback stops at its next tick
        when no one is left."""
        self._members.discard(member)

    def tick(self) -> int:
        """Run `on_clock` of every member that is due now; how many ran."""
        now = self.clock()
        # A list first: a member's on_clock may cancel itself or schedule others.
        due = [m for m in self._members if m.clock_deadline <= now]
        for member in due:
            member.on_clock(now)
        return len(due)

    def _start(self) -> None:
        assert self.period_s is not None
        asyncio.get_running_loop().call_later(self.period_s, self._on_period)
        self._armed = True

    def _on_period(self) -> None:
        self._armed = False
        try:
            self.tick()
        finally:  # a member's failure must not stop the clock of every other stream
            self._rearm()

    def _rearm(self) -> None:
        if self._members:
            assert self.period_s is not None
            # call_later from now, not a fixed grid: a late tick (a busy loop) is not followed
            # by a burst of catch-up ticks. The callback runs on the loop that armed it.
            asyncio.get_running_loop().call_later(self.period_s, self._on_period)
            self._armed = True
