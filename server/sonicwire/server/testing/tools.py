"""Test helpers for code that runs tools (in the testing package, out of the product's import
path: tests of tools and tool plugins use them, the server never does).

::

    clock = ManualClock()
    outcomes = OutcomeRecorder()
    runner = ToolRunner(registry, on_outcome=outcomes, clock=clock)
    runner.start(ToolInvocation("c1", "get_date_time", "{}"))
    outcome = await outcomes.wait_for("c1")
"""

from __future__ import annotations

import asyncio

from sonicwire.server.tools.outcome import ToolDispatch, ToolOutcome

__all__ = ["DispatchRecorder", "ManualClock", "OutcomeRecorder"]


class ManualClock:
    """A clock that moves only when told to; pass it as ``ToolRunner(clock=...)``."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class OutcomeRecorder:
    """An ``on_outcome`` callback that keeps every outcome and lets a test await them."""

    def __init__(self) -> None:
        self.outcomes: list[ToolOutcome] = []
        self._changed = asyncio.Event()

    def __call__(self, outcome: ToolOutcome) -> None:
        self.outcomes.append(outcome)
        self._changed.set()

    def for_call(self, call_id: str) -> list[ToolOutcome]:
        return [o for o in self.outcomes if o.call_id == call_id]

    async def wait_for(self, call_id: str, timeout_s: float = 5.0) -> ToolOutcome:
        """The first outcome of ``call_id``, waiting up to ``timeout_s`` for it."""
        async with asyncio.timeout(timeout_s):
            while True:
                found = self.for_call(call_id)
                if found:
                    return found[0]
                self._changed.clear()
                await self._changed.wait()

    async def wait_count(self, count: int, timeout_s: float = 5.0) -> list[ToolOutcome]:
        """All outcomes once there are at least ``count``."""
        async with asyncio.timeout(timeout_s):
            while len(self.outcomes) < count:
                self._changed.clear()
                await self._changed.wait()
        return list(self.outcomes)


class DispatchRecorder:
    """An ``on_dispatch`` callback that keeps every dispatch (the ``ToolCall`` events)."""

    def __init__(self) -> None:
        self.dispatches: list[ToolDispatch] = []

    def __call__(self, dispatch: ToolDispatch) -> None:
        self.dispatches.append(dispatch)
