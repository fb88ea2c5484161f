"""The async driver of one conversation: pumps I/O into the session core and back out.

`Conversation.outputs` is an async generator the transport (the gRPC servicer) iterates; it
runs three small tasks while it is iterated and is a member of the loop's release clock:

    inputs  -> session.receive_client      (client messages; idle timeout; half-close)
    backend -> session.receive_backend     (backend events)
    sender  -> backend_session.send        (commands the input task did not send, in order)
    clock   -> session.tick                (paced audio release, limits: `ReleaseClock`)

After every input the session's drained outputs go to a bounded queue that the generator
yields from, commands to the command queue, tool actions to the `ToolExecution`.

Per-message cost (docs/BENCHMARKS.md, "the gap to the floor"): a task wake-up per message is
a measurable share of a stream's CPU at 50 messages a second, so the input task sends the
commands its own message produced itself (one sender at a time keeps them in order; the
sender task only wakes for commands from the backend, the clock or tool results). Paced
audio is released by the client's own input while it flows (each input ticks the session
before its audio is processed, so the echo reference is scheduled where a timer at the exact
deadline would have put it); the loop's one `ReleaseClock` ticks a conversation only when its
deadline plus a grace (`release_clock.release_grace_s`) has passed without input, or a limit
is due. A timer per stream used to fire for nearly every 20 ms step of every reply.

Backpressure, not buffering: the input task reads the next client message only while the
stream's work is within budget (`Budget`: outputs the client has not taken yet, commands the
backend has not taken yet, assistant audio not yet released by the pacing clock). Otherwise it
waits, gRPC stops reading the stream, and HTTP/2 flow control slows the client down; a client
that sends audio faster than real time is paced to the speed the conversation can go, and
nothing is dropped. Per stream this bounds memory beyond the front end to about
``Budget.pending_output_bytes`` + the two queues (< 2 MB with the defaults). A stream paused
for longer than ``stall_timeout_s`` because its client does not read ends CLIENT_TOO_SLOW; so
does one that ended normally (half-close, the backend's end) whose last outputs the client has
not taken within ``stall_timeout_s`` (of the end, or of a pause it was already in): the
transport may be parked writing them for good.

The session is never touched concurrently (one event loop, no awaits while it is being fed).
Leaving the generator for any reason (end, error, client cancel) cancels the tasks and closes
the backend session and tools in ``finally`` (`aclose`, which the runtime also calls on every
other exit path): no task outlives the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Protocol

from sonicwire.server.backends.base import BackendSession
from sonicwire.server.conversation_limits import Budget, Limits
from sonicwire.server.core import events as ev
from sonicwire.server.core.errors import LimitExceeded, SonicwireError
from sonicwire.server.core.playout import release_batch_ms
from sonicwire.server.core.session import Session
from sonicwire.server.metrics import StreamMetrics
from sonicwire.server.release_clock import ReleaseClock, release_grace_s

__all__ = ["Budget", "Conversation", "NoTools", "ToolExecution"]

log = logging.getLogger(__name__)

# A hard cap behind the budget below (only outputs caused by already-read input can pass it).
MAX_PENDING_OUTPUTS = 2000
TEARDOWN_TIMEOUT_S = 1.0
_DONE = object()
_NEVER = float("inf")


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


class _Outbox:
    """The outputs for the client, in order, taken by one consumer (`Conversation.outputs`).

    An `asyncio.Queue` did the same with more work on every item (its unfinished-task count
    and Event, a putters deque, a getter deque); at one output per 20 ms of assistant audio
    per stream, a deque and the one waiting future are enough.
    """

    __slots__ = ("_waiter", "items")

    def __init__(self) -> None:
        self.items: deque[object] = deque()
        self._waiter: asyncio.Future[None] | None = None

    def put(self, item: object) -> None:
        self.items.append(item)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self) -> None:
        """Return when an item is queued (at once if one is)."""
        if self.items:
            return
        waiter = self._waiter = asyncio.get_running_loop().create_future()
        try:
            await waiter
        finally:
            if self._waiter is waiter:
                self._waiter = None


class Conversation(Limits):
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
        budget: Budget | None = None,
        admit: Callable[[ev.ClientEvent, float], None] | None = None,
        release_clock: ReleaseClock | None = None,
    ) -> None:
        """``admit(event, now)`` checks each client message before the session sees it (rates,
        sizes: ``limits.InputPolicy.check``) and raises `SonicwireError` to end the stream.
        ``release_clock`` (its time source must be ``clock``): default, the running loop's
        shared clock for ``clock``."""
        self.session = session
        self._backend = backend
        self._clock = clock
        self._idle_timeout_s = idle_timeout_s
        self._max_session_s = max_session_s
        self._close_timeout_s = close_timeout_s
        self._tools: ToolExecution = NoTools(self.on_tool_outcome)
        self._metrics = metrics or StreamMetrics()
        self._out = _Outbox()
        # Commands not yet sent, in order. `_deliver` sends them, one caller at a time.
        self._commands: deque[ev.BackendCommand] = deque()
        self._sending = False
        self._sender_wake = asyncio.Event()  # commands queued while no one was sending
        self._sender_closing = False
        # Set while the input task waits for the backend to take a command: the input is
        # then paused by the server, like `_paused_at`, not idle.
        self._input_sending_since: float | None = None
        self._release_clock = release_clock
        # When the clock must tick this conversation next (`Paced`); inf: nothing waits.
        self.clock_deadline = _NEVER
        # When the session's next paced release step falls due (inf: none): an input that
        # arrives after it ticks the session before its own audio is processed.
        self._release_at = _NEVER
        lead_ms = session.settings.playback_lead_ms
        batch_ms = release_batch_ms(session.settings.playback_batch_ms, lead_ms)
        self._release_grace_s = release_grace_s(lead_ms, batch_ms)
        self._failure: SonicwireError | None = None
        self._done = False
        # Set when the conversation ends normally while `outputs`' consumer is busy (see
        # `_finish`): by then it must have taken the end, or the stream ends CLIENT_TOO_SLOW.
        self._end_by = _NEVER
        self._started_at = self._last_input_at = clock()
        self._client_tool_open = False  # session.waiting_on_client_tool at the last flush
        self._closed_at: float | None = None
        self._budget = budget or Budget()
        self._admit = admit
        self._room = asyncio.Event()  # set while the input task may read the next message
        self._room.set()
        # `_room.is_set()` as a plain attribute: read several times per message, where the
        # Event's method call cost more than the test
        self._room_open = True
        self._paused_at: float | None = None
        self._closed = False
        # Called at turn boundaries and on drain: the runtime saves the state for resume.
        self.on_checkpoint: Callable[[], None] | None = None
        # Called on failure if `outputs`' consumer is not waiting for an output: it may be
        # blocked handing one to a client that never reads (the servicer then cancels it).
        self.on_failure: Callable[[SonicwireError], None] | None = None
        self._audio_in_s = 0.0  # microphone audio received, in seconds
        self._audio_clock: float | None = None  # when the first audio arrived
        self._bytes_per_s = 2.0 * session.settings.input_sample_rate

    def admit(self, check: Callable[[ev.ClientEvent, float], None]) -> None:
        """Check each client message with ``check(event, now)`` before the session sees it
        (call before iterating `outputs`); it raises `SonicwireError` to end the stream."""
        self._admit = check

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
            if self.on_checkpoint is not None:
                self.on_checkpoint()

    def terminate(self, error: SonicwireError) -> None:
        """End the conversation now with ``error`` (also one that ended normally but whose end
        is still being written: the drain must not wait on a client that does not read)."""
        if self._done:
            self._cut_end(error)
        else:
            self._fail(error)

    # --- the stream ------------------------------------------------------------------------

    async def outputs(
        self, inputs: AsyncIterator[ev.ClientEvent]
    ) -> AsyncGenerator[ev.ClientOutput]:
        """Yield everything for the client; raise the `SonicwireError` that ended the stream."""
        tasks = [
            asyncio.create_task(self._guard(self._pump_inputs(inputs)), name="inputs"),
            asyncio.create_task(self._guard(self._pump_backend()), name="backend"),
            asyncio.create_task(self._guard(self._send_commands()), name="sender"),
        ]
        self._arm_timer()
        pending = self._out.items
        try:
            while True:
                while not pending:
                    await self._out.wait()
                item = pending.popleft()
                if not self._room_open:
                    self._update_room()  # taking an output may reopen the input
                if item is _DONE or self._failure is not None:
                    break  # an error preempts whatever is still queued
                yield item  # type: ignore[misc]
            if self._failure is not None:
                raise self._failure
        finally:
            self._done = True
            self._end_by = _NEVER  # the end was taken (or the stream is gone): nothing waits
            self._metrics.flush()
            self.clock_deadline = _NEVER
            if self._release_clock is not None:
                self._release_clock.cancel(self)
            self.session.abort()
            self._commands.extend(self.session.commands_to_send())
            for action in self.session.tool_actions():
                self._tools.handle(action)
            for task in tasks:
                if task.get_name() != "sender":
                    task.cancel()
            # Let the sender deliver EndSession (orderly close) but never wait long for it.
            self._sender_closing = True
            self._sender_wake.set()
            sender = tasks[2]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait({sender}, timeout=1.0)
            sender.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.aclose()

    async def aclose(self) -> None:
        """Close the tools and the backend session (idempotent; `outputs` calls it when it ends,
        the runtime on every other exit path)."""
        if self._closed:
            return
        self._closed = self._done = True
        self._end_by = _NEVER
        if self._release_clock is not None:
            self._release_clock.cancel(self)
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
        # The idle timeout is a deadline the timer watches (`_limit_deadline`), not a timer
        # armed around every read: at 50 messages a second per stream that timer was a
        # measurable share of the driver's CPU.
        inline = 0  # messages handled since this task last let the loop run on purpose
        while True:
            if not self._room_open:
                await self._room.wait()  # backpressure: the client waits on flow control
                continue
            if self._audio_clock is not None and (ahead := self._audio_ahead_s()) > 0:
                # Paced by flow control; re-checked often, the answer may end meanwhile.
                await asyncio.sleep(min(ahead, 0.1))
                continue
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
            if self._admit is not None:
                self._admit(event, now)
            if now >= self._release_at:
                # Release what fell due since the last message first: its echo reference is
                # then scheduled before this audio, where the exact deadline would have put it.
                self.session.tick(now)
            if type(event) is ev.AudioReceived:  # final dataclass: an exact type check
                if self._audio_clock is None:
                    self._audio_clock = now
                self._audio_in_s += len(event.audio) / self._bytes_per_s
                self._metrics.on_audio_input()
            self.session.receive_client(event, now)
            self._flush(inline=True)
            if self._commands:
                # Sent here, not by waking the sender task (see the module docstring).
                self._input_sending_since = now
                try:
                    await self._deliver()
                finally:
                    self._input_sending_since = None
            inline += 1
            if inline >= self._budget.pending_commands:
                # Input that never suspends (a buffered burst, a backend that takes commands
                # at once) must still let the backend's events and the outputs through, as
                # the sender's queue filling up to this budget did when it sent them all.
                inline = 0
                await asyncio.sleep(0)

    async def _pump_backend(self) -> None:
        async for event in self._backend.events():
            self.session.receive_backend(event, self._clock())
            self._flush()
        if not self.session.ended:
            # The backend ended on its own: nothing more can happen in this conversation.
            self._finish()

    async def _send_commands(self) -> None:
        """Send the commands no one else is sending (from the backend, the timer, tools);
        after `outputs` ends, the rest (EndSession) before returning."""
        while True:
            await self._sender_wake.wait()
            self._sender_wake.clear()
            await self._deliver()
            if self._sender_closing and not self._commands:
                return

    async def _deliver(self) -> None:
        """Send the queued commands in order. One caller at a time: a second caller returns at
        once and the first one, still in its loop, sends what was added meanwhile."""
        if self._sending:
            return
        self._sending = True
        try:
            commands = self._commands
            while commands:
                command = commands.popleft()
                if not self._room_open:
                    self._update_room()  # taking a command may reopen the input
                await self._backend.send(command)
        finally:
            self._sending = False

    def _arm_timer(self) -> None:
        """Publish the next deadline to the release clock (see the module docstring): a float
        and, the first time, a set insert; nothing is armed or cancelled per message."""
        if self._done:
            return
        self.clock_deadline = self._next_deadline()
        pacer = self._release_clock
        if pacer is None:
            pacer = self._release_clock = ReleaseClock.shared(self._clock)
        pacer.schedule(self)

    def on_clock(self, now: float) -> None:
        """The release clock's tick once `clock_deadline` has passed: limits, paced audio."""
        if self._done:
            self.clock_deadline = _NEVER  # ended: only the end's deadline may still be due
            if now >= self._end_by:
                stall = self._budget.stall_timeout_s
                self._cut_end(
                    LimitExceeded(
                        "CLIENT_TOO_SLOW",
                        f"the stream ended but the client did not read its end within {stall:g} "
                        "s: the client is not reading the response stream",
                    )
                )
            return
        try:
            self._check_limits(now)
            self.session.tick(now)
            self._flush()  # re-publishes the deadline
        except SonicwireError as error:
            self._fail(error)
        except Exception as error:  # a bug must end this stream, not the server
            log.exception("conversation %s failed", self.session.session_id)
            self._fail(SonicwireError("INTERNAL", f"internal error: {type(error).__name__}"))
        if self._done:
            self.clock_deadline = self._end_by

    # --- helpers ---------------------------------------------------------------------------

    def _next_deadline(self) -> float:
        # Once per message: plain comparisons, no lists.
        release = self.session.next_deadline()
        limit = self._limit_deadline()
        if release is None:
            self._release_at = _NEVER
            return _NEVER if limit is None else limit
        self._release_at = release
        release += self._release_grace_s
        return release if limit is None or release < limit else limit

    def _audio_ahead_s(self) -> float:
        """How long to wait before reading more input: while the assistant answers, audio
        beyond real time (counted from the first audio) plus the lead."""
        lead = self._budget.input_lead_s
        if lead <= 0 or self._audio_clock is None or not self.session.awaiting_response:
            return 0.0
        return self._audio_in_s - (self._clock() - self._audio_clock) - lead

    def _update_room(self) -> None:
        """Open or close the input according to the `Budget` (see the module docstring)."""
        budget = self._budget
        behind = (
            len(self._out.items) >= budget.pending_outputs
            or len(self._commands) >= budget.pending_commands
            or self.session.pending_output_bytes >= budget.pending_output_bytes
        )
        if behind and self._room_open:
            self._room.clear()
            self._room_open = False
            self._paused_at = self._clock()
            self._arm_timer()  # the stall deadline
        elif not behind and not self._room_open:
            self._room.set()
            self._room_open = True
            # Time spent paused by the server is not the client's silence.
            self._last_input_at = self._clock()
            self._paused_at = None
            self._arm_timer()

    def _flush(self, *, inline: bool = False) -> None:
        """Hand the session's outputs, commands and tool actions on. ``inline``: the caller
        (the input task) sends the commands itself right after; otherwise the sender task is
        woken for them unless someone is sending already."""
        if self._done:
            return
        session = self.session
        if outputs := session.outputs_to_send():
            on_output = self._metrics.on_output
            put = self._out.put
            for output in outputs:
                on_output(output)
                put(output)
                if isinstance(output, ev.TurnCompleteOut) and self.on_checkpoint is not None:
                    self.on_checkpoint()
        if commands := session.commands_to_send():
            self._commands.extend(commands)
            if not inline and not self._sending:
                self._sender_wake.set()
        if actions := session.tool_actions():
            for action in actions:
                self._tools.handle(action)
        if len(self._out.items) > MAX_PENDING_OUTPUTS:
            self._fail(
                LimitExceeded("CLIENT_TOO_SLOW", "the client is not reading the response stream")
            )
        elif session.ended:
            self._finish()
        waiting = session.waiting_on_client_tool
        if outputs or (self._client_tool_open and not waiting):
            # Idle means no message either way: the assistant just said something (a client
            # listening to a long answer is not idle; a backend stuck mid-answer still meets
            # the idle timeout), or the client's tool call just ended (not counted meanwhile).
            self._last_input_at = max(self._last_input_at, self._clock())
        self._client_tool_open = waiting
        self._update_room()
        self._arm_timer()

    def _finish(self) -> None:
        if not self._done:
            self._done = True
            if self._failure is None and self._out._waiter is None:
                # A normal end while `outputs`' consumer is not waiting for an output: it may be
                # parked in a write to a client that stopped reading (the queued outputs then
                # never drain), and no failure would come to unblock it, so the slot and the
                # backend session would be held for good. The end gets the stall timeout to be
                # taken (`on_clock`); once per stream, nothing per message. A stream already
                # paused (its client not reading) keeps that pause's deadline: the backend's
                # end must not restart the stall clock.
                stall = self._budget.stall_timeout_s
                self._end_by = self._clock() + stall
                if self._paused_at is not None:
                    self._end_by = min(self._end_by, self._paused_at + stall)
                self.clock_deadline = self._end_by
                pacer = self._release_clock
                if pacer is None:
                    pacer = self._release_clock = ReleaseClock.shared(self._clock)
                pacer.schedule(self)
            self._out.put(_DONE)

    def _fail(self, error: SonicwireError) -> None:
        if not self._done:
            self._failure = error
            parked = self._out._waiter is not None  # the consumer waits in `_Outbox.wait`
            self._finish()  # wakes a consumer parked on the outbox, and only that one
            if not parked and self.on_failure is not None:
                self.on_failure(error)

    def _cut_end(self, error: SonicwireError) -> None:
        """End with ``error`` a conversation that ended normally but whose end `outputs`' consumer
        has not taken (see `_finish`): it cannot be waiting for an output (`_DONE` is queued),
        so it is writing, maybe for good. Only the end's deadline, the drain and a resume
        elsewhere do this; an error of a task after a normal end is still ignored."""
        if self._end_by != _NEVER and self._failure is None:
            self._end_by = _NEVER
            self._failure = error
            if self.on_failure is not None:
                self.on_failure(error)
