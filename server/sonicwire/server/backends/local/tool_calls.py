"""A local session's tool calls: requested from the core, their results awaited.

The engine runs no tool itself: it asks the core (`ev.ToolRequested`), whose tool runner runs
the session's tools (or the client does), and waits for `ev.SendToolResult`. A barge-in may cut
the turn while a call runs; such a call may run on (a tool that continues on interruption,
``ToolSpec.continue_on_interruption``) and its result come later, which the session answers as
a turn of its own (`jobs.ToolAnswer`), as Nova answers such a result.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable

from sonicwire.server.core import events as ev

from .dialogue import ToolCall
from .jobs import ToolAnswer, Utterance

__all__ = ["ToolCalls"]

# The server's tool runner times every call out well before this; it guards against a driver
# that never answers.
_TOOL_WAIT_S = 30.0
_TIMED_OUT = '{"error": {"type": "timeout", "message": "no tool result"}}'
_call_ids = itertools.count(1)


class ToolCalls:
    """The calls of one session: those awaiting their result, and those a barge-in cut (by
    id) whose result the core sends later (CANCELLED, or the real one if the tool continues on
    interruption). ``send`` puts an event out to the core (the session's response output)."""

    def __init__(self, send: Callable[[ev.BackendEvent], None]) -> None:
        self._send = send
        self._waits: dict[str, asyncio.Future[str]] = {}
        self._cut: dict[str, ToolCall] = {}

    async def result(self, call: ToolCall, job: Utterance | str | ToolAnswer) -> str:
        """Request ``call`` for the turn answering ``job`` and return its result's JSON (a
        timeout error's after `_TOOL_WAIT_S`). A barge-in cancels the wait; the call is then
        kept for its late result, except for a void early answer's (the user went on: the
        whole request is answered at the marker)."""
        call_id = f"local-{next(_call_ids)}"
        waiter: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waits[call_id] = waiter
        self._send(ev.ToolRequested(call_id, call.name, call.arguments_json))
        try:
            return await asyncio.wait_for(waiter, _TOOL_WAIT_S)
        except asyncio.CancelledError:
            if not (isinstance(job, Utterance) and job.void):
                self._cut[call_id] = call
            raise
        except TimeoutError:
            return _TIMED_OUT
        finally:
            self._waits.pop(call_id, None)

    def received(self, call_id: str, result_json: str, status: ev.ToolStatus) -> ToolAnswer | None:
        """Take a `ev.SendToolResult`: to the call awaiting it, else, for a cut call that ran
        on, the turn that answers it (for the session to queue); None when nothing is due."""
        waiter = self._waits.pop(call_id, None)
        cut = self._cut.pop(call_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(result_json)
        elif cut is not None and status is not ev.ToolStatus.CANCELLED:
            return ToolAnswer(cut, result_json)
        return None

    def cancel(self) -> None:
        """Stop every wait (the session is shutting down)."""
        for waiter in self._waits.values():
            waiter.cancel()
        self._waits.clear()
