"""The async driver of one conversation: pumps I/O into the session core and back out.

`Conversation.outputs` is an async generator the transport (the gRPC servicer) iterates; it
runs four small tasks while it is iterated:

    inputs  -> session.receive_client      (client messages; idle timeout; half-close)
    backend -> session.receive_backend     (backend events)
    ticker  -> session.tick                (paced audio release, session length limit)
    sender  -> backend_session.send        (commands, in order)

After every input the session's drained outputs go to a bounded queue that the generator
yields from, commands to the sender's queue, tool actions to the `ToolExecution`. The session
is never touched concurrently (one event loop, no awaits while it is being fed). Leaving the
generator for any reason (end, error, client cancel) cancels the tasks and closes the backend
session and tools in ``finally``: no task outlives the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Protocol

from sonicwire.server.backends.base import BackendSession
from sonicwire.server.core import events as ev
from sonicwire.server.core.errors import (
    BackendError,
    ErrorCode,
    IdleTimeout,
    LimitExceeded,
    SonicwireError,
)
from sonicwire.server.core.session import Session
from sonicwire.server.metrics import StreamMetrics

__all__ = ["Conversation", "NoTools", "ToolExecution"]

log = logging.getLogger(__name__)

# About 40 s of 20 ms audio: a client that stops reading for longer is dropped, not buffered
# without bound.
MAX_PENDING_OUTPUTS = 2000
TEARDOWN_TIMEOUT_S = 1.0
_DONE = object()


class ToolExecution(Protocol):
    """What the driver needs from a tool runner (see ``sonicwire.server.tools_bridge``)."""

    def handle(self, action: ev.ToolAction) -> None: ...

    async def aclose(self) -> None: ...


class NoTools:
    """Tool execution for sessions without tools: every call ends as UNKNOWN_TOOL at once."""

    def __init__(self, on_outcome: Callable[[ev.ToolCompleted], None]) -> None:
        self._on_outcome = on_outcome

    def handle(self, action: ev.ToolAction) -> None:
        if isinstance(action, ev.RunTool):
            result = '{"error": {"type": "unknown_tool", "message": "no tools are available"}}'
            self._on_outcome(
                ev.ToolCompleted(action.call_id, action.name, ev.ToolStatus.UNKNOWN_TOOL, result, 0)
            )

    async def aclose(self) -> None:
        return None


class Conversation:
    """Runs one `Session` against one `BackendSession` until the conversation ends."""

    def __init__(
        self,
        session: Session,
        backend: BackendSession,
        *,
        clock: Callable[[], float] = time.monotonic,
        idle_timeout_s: float = 0.0,
        max_session_s: float = 0.0,
        close_timeout_s: float = 30.0,
        metrics: StreamMetrics | None = None,
    ) -> None:
        self.session = session
        self._backend = backend
        self._clock = clock
        self._idle_timeout_s = idle_timeout_s
        self._max_session_s = max_session_s
        self._close_timeout_s = close_timeout_s
        self._tools: ToolExecution = NoTools(self.on_tool_outcome)
        self._metrics = metrics or StreamMetrics()
        self._out: asyncio.Queue[object] = asyncio.Queue()
        self._commands: asyncio.Queue[ev.BackendCommand | None] = asyncio.Queue()
        self._wake = asyncio.Event()
        self._sleep_until: float | None = None  # the deadline the ticker sleeps towards
        self._failure: SonicwireError | None = None
        self._done = False
        self._started_at = self._last_input_at = clock()
        self._closed_at: float | None = None

    def attach_tools(self, tools: ToolExecution) -> None:
        """Use ``tools`` to run tool calls (call before iterating `outputs`)."""
        self._tools = tools

    # --- called by the transport and the tool runner ---------------------------------------

    def on_tool_dispatch(self, call_id: str) -> None:
        if not self._done:
            self.session.receive_tool_dispatched(call_id)
            self._flush()

    def on_tool_outcome(self, outcome: ev.ToolCompleted) -> None:
        if not self._done:
            self.session.receive_tool_result(outcome, self._clock())
            self._flush()

    def go_away(self, reason: str, grace_s: float) -> None:
        """The server is draining: tell the client; `terminate` follows after the grace."""
        if not self._done:
            self.session.go_away(reason, round(grace_s * 1000))
            self._flush()

    def terminate(self, error: SonicwireError) -> None:
        """End the conversation now with ``error``."""
        self._fail(error)

    # --- the stream ------------------------------------------------------------------------

    async def outputs(
        self, inputs: AsyncIterator[ev.ClientEvent]
    ) -> AsyncIterator[ev.ClientOutput]:
        """Yield everything for the client; raise the `SonicwireError` that ended the stream."""
        tasks = [
            asyncio.create_task(self._guard(self._pump_inputs(inputs)), name="inputs"),
            asyncio.create_task(self._guard(self._pump_backend()), name="backend"),
            asyncio.create_task(self._guard(self._send_commands()), name="sender"),
            asyncio.create_task(self._guard(self._tick()), name="ticker"),
        ]
        try:
            while True:
                item = await self._out.get()
                if item is _DONE or self._failure is not None:
                    break  # an error preempts whatever is still queued
                yield item  # type: ignore[misc]
            if self._failure is not None:
                raise self._failure
        finally:
            self._done = True
            self.session.abort()
            for command in self.session.commands_to_send():
                self._commands.put_nowait(command)
            for action in self.session.tool_actions():
                self._tools.handle(action)
            for task in tasks:
                if task.get_name() != "sender":
                    task.cancel()
            # Let the sender deliver EndSession (orderly close) but never wait long for it.
            self._commands.put_nowait(None)
            sender = tasks[2]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait({sender}, timeout=1.0)
            sender.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            # A tool that ignores cancellation must not hold the stream's status hostage.
            try:
                await asyncio.wait_for(self._tools.aclose(), TEARDOWN_TIMEOUT_S)
            except TimeoutError:
                log.warning(
                    "session %s: tool calls still running %.1f s after the end; left behind",
                    self.session.session_id,
                    TEARDOWN_TIMEOUT_S,
                )
            await self._backend.aclose()

    # --- tasks -----------------------------------------------------------------------------

    async def _guard(self, work: object) -> None:
        try:
            await work  # type: ignore[misc]
        except asyncio.CancelledError:
            raise
        except SonicwireError as error:
            self._fail(error)
        except Exception as error:  # a bug must end this stream, not the server
            log.exception("conversation %s failed", self.session.session_id)
            self._fail(SonicwireError("INTERNAL", f"internal error: {type(error).__name__}"))

    async def _pump_inputs(self, inputs: AsyncIterator[ev.ClientEvent]) -> None:
        # The idle timeout is a deadline the ticker watches (`_limit_deadline`), not a timer
        # armed around every read: at 50 messages a second per stream that timer was a
        # measurable share of the driver's CPU.
        while True:
            try:
                event = await anext(inputs)
            except StopAsyncIteration:
                # A half-close, or (in grpc.aio) a client cancel that looks like one: either
                # way the session finishes its turn; a cancel arrives as CancelledError later.
                self._closed_at = self._clock()
                self.session.close(self._closed_at)
                self._flush()
                return
            now = self._last_input_at = self._clock()
            self._metrics.on_input(event)
            self.session.receive_client(event, now)
            self._flush()

    async def _pump_backend(self) -> None:
        async for event in self._backend.events():
            self.session.receive_backend(event, self._clock())
            self._flush()
        if not self.session.ended:
            # The backend ended on its own: nothing more can happen in this conversation.
            self._finish()

    async def _send_commands(self) -> None:
        while (command := await self._commands.get()) is not None:
            await self._backend.send(command)

    async def _tick(self) -> None:
        # Inputs already release audio as they arrive (the session ticks itself); this task only
        # covers the gaps between inputs, so it sleeps until the next deadline and is woken
        # only when a new deadline comes sooner (`_flush`): not once per 20 ms input frame.
        while not self._done:
            now = self._clock()
            deadline = self._sleep_until = self._next_deadline()
            self._wake.clear()
            if deadline is not None and deadline <= now:
                await asyncio.sleep(0)  # a due deadline must still let the loop run
            else:
                timeout = None if deadline is None else deadline - now
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
            now = self._clock()
            self._check_limits(now)
            self.session.tick(now)
            self._flush()

    # --- helpers ---------------------------------------------------------------------------

    def _next_deadline(self) -> float | None:
        deadlines = [d for d in (self.session.next_deadline(), self._limit_deadline()) if d]
        return min(deadlines) if deadlines else None

    def _limit_deadline(self) -> float | None:
        deadlines = []
        if self._idle_timeout_s and self._closed_at is None:
            deadlines.append(self._last_input_at + self._idle_timeout_s)
        if self._max_session_s:
            deadlines.append(self._started_at + self._max_session_s)
        if self._closed_at is not None and self._close_timeout_s:
            deadlines.append(self._closed_at + self._close_timeout_s)
        return min(deadlines) if deadlines else None

    def _check_limits(self, now: float) -> None:
        if (
            self._idle_timeout_s
            and self._closed_at is None
            and now - self._last_input_at >= self._idle_timeout_s
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

    def _flush(self) -> None:
        if self._done:
            return
        for output in self.session.outputs_to_send():
            self._metrics.on_output(output)
            self._out.put_nowait(output)
        for command in self.session.commands_to_send():
            self._commands.put_nowait(command)
        for action in self.session.tool_actions():
            self._tools.handle(action)
        if self._out.qsize() > MAX_PENDING_OUTPUTS:
            self._fail(
                LimitExceeded("CLIENT_TOO_SLOW", "the client is not reading the response stream")
            )
        elif self.session.ended:
            self._finish()
        deadline = self._next_deadline()
        if deadline is not None and (self._sleep_until is None or deadline < self._sleep_until):
            self._wake.set()

    def _finish(self) -> None:
        if not self._done:
            self._done = True
            self._out.put_nowait(_DONE)

    def _fail(self, error: SonicwireError) -> None:
        if not self._done:
            self._failure = error
            self._finish()
