"""The conversation's tool calls: who runs each, which are pending, which an interruption ends.

Part of the session core (pure: no clock, no I/O). The session opens a call when the backend
requests it, and asks this book what to tell the client and the tool runner:

- a server call goes to the client at once (as information); a client call only once the
  runner has checked its arguments (`dispatched`), so the client never runs a bad call;
- a call is pending until its outcome comes back (`complete`);
- an interruption cancels the pending calls except those of tools that survive it
  (``SessionSettings.tools_surviving_interruption``), whose result still goes to the model.
"""

from __future__ import annotations

from sonicwire.server.core import events as ev

__all__ = ["CLIENT_CLOSED_REASON", "ToolCalls"]

CLIENT_CLOSED_REASON = "the client ended its input before returning a result"


class ToolCalls:
    """Pending tool calls of one conversation (see the module docstring)."""

    def __init__(self, client_tools: frozenset[str], surviving: frozenset[str]) -> None:
        self._client_tools = client_tools
        self._surviving = surviving
        self._executors: dict[str, ev.ToolExecutor] = {}  # call id -> who runs it, if pending
        self._names: dict[str, str] = {}  # call id -> tool name, of pending calls
        self._awaiting_dispatch: dict[str, ev.ToolCallOut] = {}

    @property
    def pending(self) -> bool:
        return bool(self._executors)

    @property
    def client_pending(self) -> bool:
        """Whether a call the client runs is pending."""
        client = ev.ToolExecutor.CLIENT
        return any(who is client for who in self._executors.values())

    def executor(self, name: str) -> ev.ToolExecutor:
        """Who runs tool ``name``."""
        if name in self._client_tools:
            return ev.ToolExecutor.CLIENT
        return ev.ToolExecutor.SERVER

    def is_client_call(self, call_id: str) -> bool:
        """Whether ``call_id`` is a pending call the client runs (and may answer)."""
        return self._executors.get(call_id) is ev.ToolExecutor.CLIENT

    def open(self, call: ev.ToolCallOut) -> ev.ToolCallOut | None:
        """Register a requested call; returns it when the client hears of it now."""
        self._executors[call.call_id] = call.executor
        self._names[call.call_id] = call.name
        if call.executor is ev.ToolExecutor.CLIENT:
            self._awaiting_dispatch[call.call_id] = call
            return None
        return call

    def dispatched(self, call_id: str) -> ev.ToolCallOut | None:
        """The runner accepted the arguments: the client call to send now, if one waited."""
        return self._awaiting_dispatch.pop(call_id, None)

    def complete(self, call_id: str) -> bool:
        """A call's outcome came back; True when it was pending."""
        self._awaiting_dispatch.pop(call_id, None)
        self._names.pop(call_id, None)
        return self._executors.pop(call_id, None) is not None

    def cancel_all(self, reason: str) -> ev.CancelTools | None:
        """Forget every pending call; the runner's cancel, if any was pending."""
        if not self._executors:
            return None
        self._executors.clear()
        self._names.clear()
        self._awaiting_dispatch.clear()
        return ev.CancelTools(reason)

    def client_closed(self) -> ev.CancelTools | None:
        """The client half-closed: the runner's cancel of its pending calls, which it can no
        longer answer (they stay pending until the runner reports them)."""
        doomed = tuple(c for c, who in self._executors.items() if who is ev.ToolExecutor.CLIENT)
        if not doomed:
            return None
        return ev.CancelTools(CLIENT_CLOSED_REASON, doomed)

    def interrupted(self, *, survive: bool = True) -> ev.CancelTools | None:
        """The assistant's turn was interrupted: the runner's cancel of the pending calls of
        tools that do not survive it (they stay pending until the runner reports them);
        ``survive=False``: of every pending call."""
        if not self._executors:
            return None
        keep = self._surviving if survive else frozenset()
        survivors = {c for c, name in self._names.items() if name in keep}
        if not survivors:
            return ev.CancelTools("interrupted")
        doomed = tuple(c for c in self._executors if c not in survivors)
        return ev.CancelTools("interrupted", doomed) if doomed else None
