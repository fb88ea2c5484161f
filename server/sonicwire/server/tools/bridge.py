"""Glue between the session core's tool actions and a :class:`~.runner.ToolRunner`.

The core (``sonicwire.server.core``) asks for tool work with ``ToolAction`` values and takes
outcomes back as ``ToolCompleted``; :class:`SessionTools` translates both ways and satisfies the
driver's ``ToolExecution`` protocol (``handle(action)`` and ``aclose()``)::

    tools = SessionTools(
        registry,
        client_specs,                      # ToolSpec(executor=CLIENT) from SessionConfig
        server_tools=config.server_tools,  # empty: all server tools
        on_outcome=conversation.on_tool_outcome,
        session_id=session_id,
    )
    conversation.attach_tools(tools)

It depends on the core's events only (tools -> core events, never the other way).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from sonicwire.server.core import events as ev

from .outcome import ToolDispatch, ToolInvocation, ToolOutcome
from .registry import ToolRegistry
from .runner import ToolRunner
from .spec import ToolSpec

__all__ = ["SessionTools", "to_tool_completed"]

_log = logging.getLogger(__name__)


def to_tool_completed(outcome: ToolOutcome) -> ev.ToolCompleted:
    """The core's form of an outcome (the two status enums share their values)."""
    return ev.ToolCompleted(
        call_id=outcome.call_id,
        name=outcome.name,
        status=outcome.status,
        result_json=outcome.result_json,
        duration_ms=round(outcome.duration_s * 1000),
    )


class SessionTools:
    """One session's tool execution, driven by the core's ``ToolAction`` values.

    Args:
        registry, client_tools, server_tools: see :class:`ToolRunner`.
        on_outcome: receives each call's ``ToolCompleted`` (exactly one per ``RunTool``).
        on_dispatch, default_timeout_s, max_timeout_s, max_concurrent, clock, session_id,
            context_extras, max_result_chars: passed to :class:`ToolRunner` as they are.

    Raises:
        ToolSpecError: as :class:`ToolRunner` (bad or shadowing client tools, unknown server
            tool names); the driver reports it as ``INVALID_ARGUMENT``/``CLIENT_TOOL_INVALID``.
    """

    def __init__(
        self,
        registry: ToolRegistry,
        client_tools: Sequence[ToolSpec] = (),
        *,
        on_outcome: Callable[[ev.ToolCompleted], None],
        server_tools: Collection[str] | None = None,
        on_dispatch: Callable[[ToolDispatch], None] | None = None,
        default_timeout_s: float = 10.0,
        max_timeout_s: float = 60.0,
        max_concurrent: int = 4,
        clock: Callable[[], float] = time.monotonic,
        session_id: str = "",
        context_extras: Mapping[str, Any] | None = None,
        max_result_chars: int = 100_000,
    ) -> None:
        self._on_outcome = on_outcome
        self.runner = ToolRunner(
            registry,
            client_tools,
            server_tools=server_tools,
            on_outcome=self._forward,
            on_dispatch=on_dispatch,
            default_timeout_s=default_timeout_s,
            max_timeout_s=max_timeout_s,
            max_concurrent=max_concurrent,
            clock=clock,
            session_id=session_id,
            context_extras=context_extras,
            max_result_chars=max_result_chars,
        )

    @property
    def specs(self) -> list[ToolSpec]:
        """The tools this session offers the model (server first, then client)."""
        return self.runner.specs

    def handle(self, action: ev.ToolAction) -> None:
        """Carry out one action from ``Session.tool_actions()``; never blocks."""
        match action:
            case ev.RunTool(call_id=call_id, name=name, arguments_json=arguments_json):
                self.runner.start(ToolInvocation(call_id, name, arguments_json))
            case ev.CancelTools(reason=reason, call_ids=None):
                self.runner.cancel_all(reason)
            case ev.CancelTools(reason=reason, call_ids=call_ids):
                for call_id in call_ids or ():
                    self.runner.cancel(call_id, reason)
            case ev.DeliverToolResult(call_id=call_id, content=content, is_error=is_error):
                if not self.runner.deliver_client_result(call_id, content, is_error):
                    _log.warning("tool result for %r arrived after its call ended", call_id)

    async def aclose(self) -> None:
        """Cancel pending calls (each still gets its outcome) and wait for handlers."""
        await self.runner.aclose()

    def _forward(self, outcome: ToolOutcome) -> None:
        self._on_outcome(to_tool_completed(outcome))
