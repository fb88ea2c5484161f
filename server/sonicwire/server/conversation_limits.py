"""The limits one conversation is held to, and the error each one ends it with.

`Budget` is how far a stream's work may run ahead of its client and backend before its input
is paused (see ``conversation``'s docstring, "Backpressure"). `Limits` is the part of
`Conversation` that turns its timestamps into deadlines: which limit falls due next (published
to the release clock once per message) and, once one has passed, which `SonicwireError` ends
the stream (CLIENT_TOO_SLOW, IDLE_TIMEOUT, SESSION_TOO_LONG, BACKEND_TIMEOUT) or whether the
half-closed conversation simply ends. A mixin rather than an object of its own: the input
task updates these timestamps on every message, and plain attributes of the conversation
cost nothing more there.
"""

from __future__ import annotations

from dataclasses import dataclass

from sonicwire.server.core.errors import (
    BackendError,
    ErrorCode,
    IdleTimeout,
    LimitExceeded,
)
from sonicwire.server.core.session import Session

__all__ = ["Budget", "Limits"]


@dataclass(frozen=True, slots=True)
class Budget:
    """How far one stream's work may run ahead before its input is paused."""

    # Outputs queued for the client (about 1.3 s of 20 ms audio): past it, the client reads
    # slower than the conversation produces.
    pending_outputs: int = 64
    # Commands queued for the backend: past it, the backend takes input slower than it comes.
    pending_commands: int = 64
    # Assistant audio received but not yet released at real time (~16 s at 16 kHz output).
    pending_output_bytes: int = 1024 * 1024
    # A stream paused this long because its client does not read ends CLIENT_TOO_SLOW, and
    # so does one whose client has not taken its last outputs this long after it ended.
    stall_timeout_s: float = 30.0
    # While the assistant answers, microphone audio may run at most this far ahead of real
    # time (counted from the first audio); beyond it the input is paced to real time. A
    # client uploading a recording faster than real time (``sonicwire talk --speed 0``) then
    # has its next question arrive after the answer, as it would live, instead of inside it
    # (where it would barge in, or be lost with barge-in off). Outside answers input is read
    # as fast as it comes. 0 = off.
    input_lead_s: float = 3.0


class Limits:
    """Deadlines and limit errors of a `Conversation` (which sets every attribute below)."""

    session: Session
    _budget: Budget
    _idle_timeout_s: float
    _max_session_s: float
    _close_timeout_s: float
    _started_at: float
    _last_input_at: float
    _closed_at: float | None
    _paused_at: float | None
    _input_sending_since: float | None

    def _finish(self) -> None:
        raise NotImplementedError

    def _paused_since(self) -> float | None:
        """Since when the server has not been reading input (budget, or a send waiting)."""
        if self._paused_at is not None:
            return self._paused_at
        return self._input_sending_since

    def _limit_deadline(self) -> float | None:
        # The earliest of the limits that apply (computed once per message: no lists).
        deadline: float | None = None
        paused = self._paused_since()
        if paused is not None:
            deadline = paused + self._budget.stall_timeout_s
        elif (
            self._idle_timeout_s
            and self._closed_at is None
            and not self.session.waiting_on_client_tool
        ):
            deadline = self._last_input_at + self._idle_timeout_s
        if self._max_session_s:
            end = self._started_at + self._max_session_s
            deadline = end if deadline is None else min(deadline, end)
        if self._closed_at is not None and self._close_timeout_s:
            end = self._closed_at + self._close_timeout_s
            deadline = end if deadline is None else min(deadline, end)
        return deadline

    def _check_limits(self, now: float) -> None:
        paused = self._paused_since()
        stall = self._budget.stall_timeout_s
        if paused is not None and self._paused_at is None and now - paused >= stall:
            # The input task has waited this long for the backend to take a command.
            raise BackendError(
                "BACKEND_TIMEOUT",
                f"the backend did not take input for {stall:g} s",
                code=ErrorCode.DEADLINE_EXCEEDED,
            )
        if paused is not None and now - paused >= stall:
            raise LimitExceeded(
                "CLIENT_TOO_SLOW",
                f"the stream could not go on for {self._budget.stall_timeout_s:g} s: the client "
                "is not reading the response stream",
            )
        if (
            self._idle_timeout_s
            and paused is None
            and self._closed_at is None
            and now - self._last_input_at >= self._idle_timeout_s
            # A client running a client tool (a confirmation dialog, a slow lookup) is not
            # idle: the call's own timeout bounds that wait (red-team session s36). What the
            # assistant says counts as activity too (`Conversation._flush`).
            and not self.session.waiting_on_client_tool
        ):
            raise IdleTimeout(
                "IDLE_TIMEOUT", f"no message from the client for {self._idle_timeout_s:g} s"
            )
        if self._max_session_s and now - self._started_at >= self._max_session_s:
            raise LimitExceeded(
                "SESSION_TOO_LONG",
                f"the conversation reached the maximum length of {self._max_session_s:g} s",
            )
        if self._closed_at is not None and now - self._closed_at >= self._close_timeout_s:
            if self.session.awaiting_response:
                # The client ended its input and is still owed an answer: say that it never
                # came rather than ending with OK as if the conversation were complete.
                raise BackendError(
                    "BACKEND_TIMEOUT",
                    f"the backend did not answer within {self._close_timeout_s:g} s",
                    code=ErrorCode.DEADLINE_EXCEEDED,
                )
            self._finish()
