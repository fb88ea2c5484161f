"""Run one session's tool calls: validation, timeouts, a concurrency bound, cancellation.

One :class:`ToolRunner` per session, created by the driver (it needs a running event loop).
The contract the driver relies on:

* :meth:`ToolRunner.start` never blocks and never raises for anything the model sent.
* **Every started call produces exactly one** :class:`~.outcome.ToolOutcome` through
  ``on_outcome`` (OK, ERROR, INVALID_ARGUMENTS, UNKNOWN_TOOL, TIMEOUT or CANCELLED), and its
  ``result_json`` is always valid JSON to hand to the model.
* Calls that pass validation are announced first through ``on_dispatch`` (a
  :class:`~.outcome.ToolDispatch`): the driver sends the ``ToolCall`` event then, and for a
  client tool that is the client's cue to execute it. Rejected calls are never dispatched.

Callbacks run synchronously on the event loop, possibly from inside ``start``, ``cancel``,
``cancel_all`` and ``deliver_client_result``; the runner's state is already updated when they
run. They should only hand the value on (feed the session core, queue an event); an exception
they raise is logged and swallowed.

Timeouts: a tool's own ``timeout_s`` or ``default_timeout_s``, capped at ``max_timeout_s``. A
server call's timeout starts when it gets one of the ``max_concurrent`` slots (so a queued call
is not penalised for waiting); a client call's starts at dispatch. Client calls take no slot:
they cost the server nothing but a timer. A handler that times out or is cancelled gets its
outcome at once; the runner then cancels it and keeps its slot until it has unwound.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Collection, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType, TracebackType
from typing import Any, Self

from .outcome import ToolDispatch, ToolInvocation, ToolOutcome, ToolStatus, error_result_json
from .registry import ToolRegistry
from .spec import ToolExecutor, ToolSpec
from .tool import Tool, ToolContext, ToolError, ToolHandler

__all__ = ["ToolRunner"]

_log = logging.getLogger(__name__)
_LOGGED_ERROR_CHARS = 300  # of a failed call's error in the log line


@dataclass(eq=False)
class _Call:
    """A call between dispatch and outcome."""

    invocation: ToolInvocation
    spec: ToolSpec
    started: float
    timeout_s: float
    task: asyncio.Task[None] | None = None
    settled: bool = False


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _loads_strict(text: str) -> Any:
    """``json.loads`` without the NaN/Infinity extension, so what it accepts is real JSON."""
    return json.loads(text, parse_constant=_reject_constant)


async def _invoke(handler: ToolHandler, args: dict[str, Any], ctx: ToolContext) -> Any:
    return await handler(args, ctx)


class ToolRunner:
    """Execute the tool calls of one session.

    Args:
        registry: the server tools.
        client_tools: this session's client-executed tools (from ``SessionConfig``).
        server_tools: names of the server tools this session may use; ``None``/empty: all.
        default_timeout_s: the timeout of a tool that sets none.
        max_timeout_s: the cap on any tool's timeout.
        max_concurrent: server handlers running at once; further calls wait their turn.
        on_outcome: receives every :class:`ToolOutcome`, exactly one per started call.
        on_dispatch: receives a :class:`ToolDispatch` for each call that passed validation.
        clock: monotonic seconds, for ``duration_s`` only (timeouts use the event loop).
        session_id: passed to handlers in :class:`ToolContext` and used in log lines.
        context_extras: read-only values passed to handlers as ``ToolContext.extras``.
        max_result_chars: a longer result is replaced by a ``result_too_large`` error.

    Raises:
        ToolSpecError: a client tool is invalid or shadows a server tool, or a requested
            server tool does not exist.
        ValueError: a limit is not positive.
    """

    def __init__(
        self,
        registry: ToolRegistry,
        client_tools: Sequence[ToolSpec] = (),
        *,
        server_tools: Collection[str] | None = None,
        on_outcome: Callable[[ToolOutcome], None],
        on_dispatch: Callable[[ToolDispatch], None] | None = None,
        default_timeout_s: float = 10.0,
        max_timeout_s: float = 60.0,
        max_concurrent: int = 4,
        clock: Callable[[], float] = time.monotonic,
        session_id: str = "",
        context_extras: Mapping[str, Any] | None = None,
        max_result_chars: int = 100_000,
    ) -> None:
        if not default_timeout_s > 0 or not max_timeout_s > 0:
            raise ValueError("default_timeout_s and max_timeout_s must be positive")
        if max_concurrent < 1 or max_result_chars < 1:
            raise ValueError("max_concurrent and max_result_chars must be at least 1")
        specs = registry.specs_for_session(client_tools, server_tools)
        self._specs: dict[str, ToolSpec] = {spec.name: spec for spec in specs}
        self._tools: dict[str, Tool] = {}
        for spec in specs:
            found = registry.get(spec.name)
            if spec.executor is ToolExecutor.SERVER and found is not None:
                self._tools[spec.name] = found
        self._on_outcome = on_outcome
        self._on_dispatch = on_dispatch
        self._default_timeout_s = float(default_timeout_s)
        self._max_timeout_s = float(max_timeout_s)
        self._slots = asyncio.Semaphore(max_concurrent)
        self._clock = clock
        self._session_id = session_id
        self._extras: Mapping[str, Any] = MappingProxyType(dict(context_extras or {}))
        self._max_result_chars = max_result_chars
        self._calls: dict[str, _Call] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    # -- introspection ---------------------------------------------------------------------

    @property
    def specs(self) -> list[ToolSpec]:
        """What this session offers the model: server tools, then client tools."""
        return list(self._specs.values())

    def spec(self, name: str) -> ToolSpec | None:
        return self._specs.get(name)

    def timeout_for(self, spec: ToolSpec) -> float:
        """The effective timeout of a call to ``spec``, in seconds."""
        wanted = spec.timeout_s if spec.timeout_s is not None else self._default_timeout_s
        return min(wanted, self._max_timeout_s)

    @property
    def pending(self) -> list[str]:
        """Call ids dispatched and still without an outcome, oldest first."""
        return list(self._calls)

    @property
    def closed(self) -> bool:
        return self._closed

    # -- inputs -----------------------------------------------------------------------------

    def start(self, invocation: ToolInvocation) -> None:
        """Begin a call the model requested; returns at once.

        Unknown tools, arguments that are not a JSON object or break the schema, and calls
        after :meth:`aclose` get their outcome immediately (from inside this method) and are
        never executed. A ``call_id`` that is still pending is ignored with a warning: the
        first call's outcome answers it.

        Raises:
            RuntimeError: no running event loop.
        """
        asyncio.get_running_loop()  # fail before any state changes
        started = self._clock()
        name = invocation.name
        if self._closed:
            self._emit_now(
                invocation,
                started,
                ToolStatus.CANCELLED,
                "cancelled",
                "The session is ending; the tool was not run.",
            )
            return
        if invocation.call_id in self._calls:
            _log.warning(
                "session %s: duplicate tool call id %r for %s ignored",
                self._session_id,
                invocation.call_id,
                name,
            )
            return
        spec = self._specs.get(name)
        if spec is None:
            self._emit_now(
                invocation,
                started,
                ToolStatus.UNKNOWN_TOOL,
                "unknown_tool",
                f"There is no tool named {name!r}.",
                {"available_tools": sorted(self._specs)},
            )
            return
        args, problems = self._parse_arguments(spec, invocation.arguments_json)
        if problems:
            self._emit_now(
                invocation,
                started,
                ToolStatus.INVALID_ARGUMENTS,
                "invalid_arguments",
                f"The arguments for {name} are invalid: {problems[0]}",
                {"errors": problems},
            )
            return

        call = _Call(invocation, spec, started, self.timeout_for(spec))
        self._calls[invocation.call_id] = call
        if self._on_dispatch is not None:
            dispatch = ToolDispatch(
                call_id=invocation.call_id,
                name=name,
                arguments_json=invocation.arguments_json,
                executor=spec.executor,
                timeout_s=call.timeout_s,
            )
            try:
                self._on_dispatch(dispatch)
            except Exception:
                _log.exception("session %s: on_dispatch raised", self._session_id)
            if call.settled:  # the callback cancelled it
                return
        if spec.executor is ToolExecutor.CLIENT:
            coro = self._run_client(call)
        else:
            coro = self._run_server(call, self._tools[name], args)
        call.task = self._spawn(coro, f"tool {name} {invocation.call_id}")

    def deliver_client_result(self, call_id: str, content_json: str, is_error: bool) -> bool:
        """Settle a client-executed call with the client's ``ToolResult``.

        ``content_json`` that is not valid JSON is passed on as a JSON string. With
        ``is_error`` the model sees ``{"error": {"type": "tool_error", ...}}``.

        Returns:
            False when ``call_id`` is not a pending client call (unknown, a server tool's id,
            already timed out or cancelled, or a duplicate); the caller should warn the client.
        """
        call = self._calls.get(call_id)
        if call is None or call.spec.executor is not ToolExecutor.CLIENT:
            return False
        try:
            value: Any = _loads_strict(content_json)
        except ValueError:
            value = content_json
        name = call.spec.name
        if is_error:
            if isinstance(value, str) and value.strip():
                message = value
            else:
                message = f"The client reported an error running {name}."
            details = None if isinstance(value, str) else value
            self._settle(
                call, ToolStatus.ERROR, error_result_json("tool_error", message, details), message
            )
        else:
            self._settle_with_value(call, value)
        if call.task is not None:
            call.task.cancel()
        return True

    def cancel(self, call_id: str, reason: str = "cancelled") -> bool:
        """Cancel one pending call; it gets a CANCELLED outcome now.

        Returns:
            False when ``call_id`` is not pending.
        """
        call = self._calls.get(call_id)
        if call is None:
            return False
        settled = self._settle(
            call,
            ToolStatus.CANCELLED,
            error_result_json(
                "cancelled",
                f"The call to {call.spec.name} was cancelled "
                f"({reason}); it may not have completed.",
            ),
            reason,
        )
        if call.task is not None:
            call.task.cancel()
        return settled

    def cancel_all(self, reason: str = "cancelled") -> int:
        """Cancel every pending call (barge-in, session end); return how many."""
        return sum(self.cancel(call_id, reason) for call_id in list(self._calls))

    async def aclose(self, grace_s: float = 5.0) -> None:
        """Cancel everything, refuse new calls, and wait for handlers to unwind.

        A handler that ignores cancellation for longer than ``grace_s`` is logged and left
        behind rather than holding the session open.
        """
        self._closed = True
        self.cancel_all("the session ended")
        if not self._tasks:
            return
        _, stuck = await asyncio.wait(set(self._tasks), timeout=grace_s)
        if stuck:
            _log.error(
                "session %s: %d tool task(s) still running %.1f s after cancellation: %s",
                self._session_id,
                len(stuck),
                grace_s,
                sorted(t.get_name() for t in stuck),
            )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- internals --------------------------------------------------------------------------

    def _parse_arguments(self, spec: ToolSpec, text: str) -> tuple[dict[str, Any], list[str]]:
        if not text.strip():
            args: Any = {}
        else:
            try:
                args = _loads_strict(text)
            except ValueError as exc:
                return {}, [f"the arguments are not valid JSON ({exc})"]
        if not isinstance(args, dict):
            return {}, [f"the arguments must be a JSON object, got {type(args).__name__}"]
        return args, spec.validate_arguments(args)

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _run_client(self, call: _Call) -> None:
        await asyncio.sleep(call.timeout_s)
        name = call.spec.name
        self._settle(
            call,
            ToolStatus.TIMEOUT,
            error_result_json(
                "timeout",
                f"The client did not return a result for {name} within {call.timeout_s:g} s.",
            ),
            f"no client result within {call.timeout_s:g} s",
        )

    async def _run_server(self, call: _Call, tool: Tool, args: dict[str, Any]) -> None:
        name = call.spec.name
        async with self._slots:
            ctx = ToolContext(
                session_id=self._session_id,
                call_id=call.invocation.call_id,
                name=name,
                timeout_s=call.timeout_s,
                extras=self._extras,
            )
            handler = self._spawn(_invoke(tool.handler, args, ctx), f"handler {name}")
            try:
                done, _ = await asyncio.wait({handler}, timeout=call.timeout_s)
                if done:
                    self._settle_from_handler(call, handler)
                else:
                    self._settle(
                        call,
                        ToolStatus.TIMEOUT,
                        error_result_json(
                            "timeout", f"{name} did not finish within {call.timeout_s:g} s."
                        ),
                        f"timed out after {call.timeout_s:g} s",
                    )
            finally:
                if not handler.done():
                    handler.cancel()
                    # Keep the slot until the handler has really stopped.
                    await asyncio.wait({handler})
                if not handler.cancelled():
                    handler.exception()  # mark retrieved; it was reported or is moot

    def _settle_from_handler(self, call: _Call, handler: asyncio.Task[Any]) -> None:
        name = call.spec.name
        if handler.cancelled():
            message = f"{name} was cancelled while running."
            self._settle(call, ToolStatus.ERROR, error_result_json("tool_error", message), message)
            return
        exc = handler.exception()
        if isinstance(exc, ToolError):
            self._settle(
                call,
                ToolStatus.ERROR,
                error_result_json(exc.type, exc.message, exc.details),
                exc.message,
            )
        elif exc is not None:
            _log.error(
                "session %s: tool %s (call %s) raised",
                self._session_id,
                name,
                call.invocation.call_id,
                exc_info=exc,
            )
            message = f"{name} failed: {str(exc) or type(exc).__name__}"
            self._settle(call, ToolStatus.ERROR, error_result_json("tool_error", message), message)
        else:
            self._settle_with_value(call, handler.result())

    def _settle_with_value(self, call: _Call, value: Any) -> None:
        name = call.spec.name
        try:
            text = json.dumps(value, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as exc:
            message = f"{name} returned a result that is not JSON: {exc}"
            self._settle(call, ToolStatus.ERROR, error_result_json("tool_error", message), message)
            return
        if len(text) > self._max_result_chars:
            message = (
                f"{name} returned {len(text)} characters; the limit is {self._max_result_chars}."
            )
            self._settle(
                call, ToolStatus.ERROR, error_result_json("result_too_large", message), message
            )
            return
        self._settle(call, ToolStatus.OK, text, "")

    def _settle(self, call: _Call, status: ToolStatus, result_json: str, error: str) -> bool:
        if call.settled:
            return False
        call.settled = True
        self._calls.pop(call.invocation.call_id, None)
        self._emit(call.invocation, call.started, status, result_json, error)
        return True

    def _emit_now(
        self,
        invocation: ToolInvocation,
        started: float,
        status: ToolStatus,
        error_type: str,
        message: str,
        details: Any = None,
    ) -> None:
        self._emit(
            invocation, started, status, error_result_json(error_type, message, details), message
        )

    def _emit(
        self,
        invocation: ToolInvocation,
        started: float,
        status: ToolStatus,
        result_json: str,
        error: str,
    ) -> None:
        outcome = ToolOutcome(
            call_id=invocation.call_id,
            name=invocation.name,
            status=status,
            result_json=result_json,
            error=error,
            duration_s=max(0.0, self._clock() - started),
        )
        if status is not ToolStatus.OK:
            # Cut: a client's error result is its own text, up to the 64 KiB result limit.
            shown = (
                error if len(error) <= _LOGGED_ERROR_CHARS else f"{error[:_LOGGED_ERROR_CHARS]}..."
            )
            _log.info(
                "session %s: tool %s (call %s) %s: %s",
                self._session_id,
                invocation.name,
                invocation.call_id,
                status.value,
                shown,
            )
        try:
            self._on_outcome(outcome)
        except Exception:
            _log.exception("session %s: on_outcome raised", self._session_id)
