"""A server-side tool: a :class:`ToolSpec` plus the async handler that runs it.

Writing one::

    from sonicwire.server.tools import ToolContext, ToolError, tool

    @tool(
        description="Look up the weather for a city.",
        parameters={
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
        timeout_s=5,
    )
    async def get_weather(args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
        if args["city"] == "Atlantis":
            raise ToolError("No weather service covers Atlantis.", type="not_found")
        return {"city": args["city"], "forecast": "sunny"}

``get_weather`` is now a :class:`Tool`; register it, or expose it as a plugin (see
:mod:`sonicwire.server.tools.registry`). Handlers get arguments already validated against the
schema; they return any JSON-serialisable value, raise :class:`ToolError` for an error the model
should see with a type, and must not block the event loop (use ``asyncio.to_thread`` for blocking
work). Any other exception is reported to the model as a ``tool_error`` with its message.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .spec import ToolExecutor, ToolSpec, ToolSpecError

__all__ = [
    "Tool",
    "ToolContext",
    "ToolError",
    "ToolHandler",
    "tool",
]


@dataclass(frozen=True)
class ToolContext:
    """What a handler knows about the call it serves.

    Attributes:
        session_id: the conversation's session id ("" when the runner was given none).
        call_id: the model's id for this call.
        name: the tool's name.
        timeout_s: the effective timeout of this call in seconds.
        extras: read-only session-scoped values the driver passed to the runner (for example
            the authenticated caller); empty by default.
    """

    session_id: str
    call_id: str
    name: str
    timeout_s: float
    extras: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


#: ``async def handler(args, ctx) -> result``; ``result`` must be JSON-serialisable.
ToolHandler = Callable[[dict[str, Any], ToolContext], Awaitable[Any]]


class ToolError(Exception):
    """An error a handler wants the model to see, with a stable ``type``.

    The model receives ``{"error": {"type": type, "message": message}}`` plus ``"details"``
    when given (any JSON value).
    """

    def __init__(self, message: str, *, type: str = "tool_error", details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.type = type
        self.details = details


def _is_async_callable(obj: Any) -> bool:
    return inspect.iscoroutinefunction(obj) or inspect.iscoroutinefunction(
        getattr(obj, "__call__", None)  # noqa: B004 - an object with an async __call__
    )


@dataclass(frozen=True)
class Tool:
    """A server-executed tool.

    Raises:
        ToolSpecError: the spec is not ``ToolExecutor.SERVER`` or the handler is not async.
    """

    spec: ToolSpec
    handler: ToolHandler = field(compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.spec, ToolSpec):
            raise ToolSpecError(f"Tool.spec must be a ToolSpec, got {type(self.spec).__name__}")
        if self.spec.executor is not ToolExecutor.SERVER:
            raise ToolSpecError(
                f"tool {self.spec.name!r}: a Tool with a handler runs on the server; "
                "client tools are plain ToolSpecs with executor=CLIENT"
            )
        if not _is_async_callable(self.handler):
            raise ToolSpecError(
                f"tool {self.spec.name!r}: the handler must be an async function "
                "(async def handler(args, ctx)); run blocking work with asyncio.to_thread"
            )

    @property
    def name(self) -> str:
        return self.spec.name


def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    timeout_s: float | None = None,
    keywords: tuple[str, ...] = (),
    examples: tuple[str, ...] = (),
    answer: str = "",
    continue_on_interruption: bool = False,
) -> Callable[[ToolHandler], Tool]:
    """Decorate an async handler into a :class:`Tool`.

    Args:
        name: defaults to the function's name.
        description: defaults to the function's docstring.
        parameters: the JSON schema of the arguments; defaults to "no arguments".
        timeout_s: this tool's own timeout; ``None`` uses the runner's default.
        keywords, examples, answer: how the offline engine recognises the tool and speaks its
            result (see :class:`ToolSpec`).
        continue_on_interruption: calls keep running through a barge-in and their result
            still reaches the model (see :class:`ToolSpec`); default: cancelled.

    Raises:
        ToolSpecError: when the resulting spec is invalid.
    """

    def wrap(handler: ToolHandler) -> Tool:
        spec = ToolSpec(
            name=name if name is not None else getattr(handler, "__name__", ""),
            description=(description if description is not None else inspect.getdoc(handler) or ""),
            parameters=(
                parameters if parameters is not None else {"type": "object", "properties": {}}
            ),
            executor=ToolExecutor.SERVER,
            timeout_s=timeout_s,
            keywords=keywords,
            examples=examples,
            answer=answer,
            continue_on_interruption=continue_on_interruption,
        )
        return Tool(spec=spec, handler=handler)

    return wrap
