"""Client-side tools: functions the model can call that run in *your* process.

Pass them to ``Client.converse(config, tools={...})``. Each is declared in
``SessionConfig.client_tools`` and every ``ToolCall`` for it (executor CLIENT) is answered
automatically with a ``ToolResult``::

    async def lookup_order(args: dict[str, Any]) -> dict[str, Any]:
        return {"status": "shipped", "order": args["order_id"]}

    tools = {
        "lookup_order": ClientTool(
            lookup_order,
            description="Look up an order by id.",
            parameters={"type": "object", "properties": {"order_id": {"type": "string"}},
                        "required": ["order_id"]},
        ),
        "ping": lambda args: "pong",      # a bare callable: permissive schema, docstring
    }

A handler takes the arguments as a dict and returns the result: a ``str`` is sent as is, any
other value as JSON. Async handlers run on the event loop; plain functions run in a worker
thread so they cannot stall the conversation. An exception becomes an error result
(``is_error=True``) carrying ``{"error": "<type>: <message>"}``.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sonicwire.v1 import voice_service_pb2 as pb

__all__ = ["ClientTool", "ToolHandler", "declare_tools", "run_tool"]

ToolHandler = Callable[[dict[str, Any]], Any | Awaitable[Any]]
"""A tool implementation: takes the arguments dict, returns (or awaits to) the result."""

_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9_-]{0,63}$")
_ANY_OBJECT: Mapping[str, Any] = {"type": "object"}


@dataclass(frozen=True, slots=True)
class ClientTool:
    """A client-side tool: its handler plus what the model is told about it.

    Attributes:
        handler: the implementation (sync or async), called with the arguments dict.
        description: what the tool does, for the model; defaults to the handler's docstring.
        parameters: JSON schema (an object schema) of the arguments.
        timeout_ms: how long the server waits for the result; 0 for the server default.
        examples: how users ask for the tool, with ``{prop}`` slots, for the offline engine
            ("what are the opening hours of the {store} store"); see docs/tools.md.
        answer_template: how the offline engine speaks the result ("{store} opens at {opens}.").
    """

    handler: ToolHandler
    description: str = ""
    parameters: Mapping[str, Any] = field(default_factory=lambda: dict(_ANY_OBJECT))
    timeout_ms: int = 0
    examples: tuple[str, ...] = ()
    answer_template: str = ""

    def definition(self, name: str) -> pb.ToolDefinition:
        """Return the ``ToolDefinition`` declaring this tool as ``name``.

        Raises:
            ValueError: if ``name`` is not a valid tool name.
        """
        if not _NAME.match(name):
            raise ValueError(
                f"invalid tool name {name!r}: use a letter then up to 63 letters, digits, _ or -"
            )
        description = self.description or inspect.getdoc(self.handler) or ""
        return pb.ToolDefinition(
            name=name,
            description=description,
            parameters_json_schema=json.dumps(dict(self.parameters)),
            timeout_ms=self.timeout_ms,
            examples=list(self.examples),
            answer_template=self.answer_template,
        )


def _as_tool(tool: ClientTool | ToolHandler) -> ClientTool:
    return tool if isinstance(tool, ClientTool) else ClientTool(tool)


def declare_tools(
    config: pb.SessionConfig, tools: Mapping[str, ClientTool | ToolHandler]
) -> tuple[pb.SessionConfig, dict[str, ClientTool]]:
    """Declare client tools in a copy of ``config``.

    Tools already declared in ``config.client_tools`` under the same name keep their
    declaration (so a hand-written schema wins); the others are appended.

    Args:
        config: the session configuration; not modified.
        tools: tool name to handler or :class:`ClientTool`.

    Returns:
        The new configuration and the tools by name.

    Raises:
        ValueError: for an invalid tool name.
    """
    resolved = {name: _as_tool(tool) for name, tool in tools.items()}
    result = pb.SessionConfig()
    result.CopyFrom(config)
    declared = {d.name for d in result.client_tools}
    for name, tool in resolved.items():
        definition = tool.definition(name)
        if name not in declared:
            result.client_tools.append(definition)
    return result, resolved


async def run_tool(tool: ClientTool, arguments: dict[str, Any]) -> tuple[str, bool]:
    """Run a tool handler and encode its outcome for a ``ToolResult``.

    Args:
        tool: the tool to run.
        arguments: the parsed arguments.

    Returns:
        ``(content, is_error)``: the JSON (or plain text) content and whether the tool failed.
        Exceptions raised by the handler are caught and reported as an error result;
        cancellation is not caught.
    """
    try:
        if inspect.iscoroutinefunction(tool.handler):
            value = await tool.handler(arguments)
        else:
            value = await asyncio.to_thread(tool.handler, arguments)
            if inspect.isawaitable(value):
                value = await value
        if isinstance(value, str):
            return value, False
        return json.dumps(value), False
    except Exception as exc:  # the model should hear about any failure, not the stream die
        return json.dumps({"error": f"{type(exc).__name__}: {exc}"}), True
