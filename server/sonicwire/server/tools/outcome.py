"""What goes into the tool runner and what comes out.

A :class:`ToolInvocation` is the model's request; a :class:`ToolDispatch` announces that it
passed validation and is running (the ``ToolCall`` event); a :class:`ToolOutcome` is the one and
only answer to it. ``ToolOutcome.result_json`` is always a valid JSON text that can be handed to the
model as the tool result, whatever the status: a backend that gets no (or invalid) result for a
call it made fails the whole conversation (Nova answers "Invalid input request").

Error results have one shape::

    {"error": {"type": "timeout", "message": "get_weather did not answer within 5 s"}}

with ``type`` one of ``invalid_arguments``, ``unknown_tool``, ``timeout``, ``cancelled``,
``tool_error`` (or the type a handler gave to :class:`~sonicwire.server.tools.tool.ToolError`),
and an optional ``details`` value (for example the schema violations).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sonicwire.server.core.events import ToolExecutor, ToolStatus

__all__ = [
    "ToolDispatch",
    "ToolInvocation",
    "ToolOutcome",
    "ToolStatus",
    "error_result_json",
]


@dataclass(frozen=True)
class ToolInvocation:
    """A tool call requested by the model.

    Attributes:
        call_id: the backend's id for the call (Nova's ``toolUseId``); unique per session.
        name: the tool's name.
        arguments_json: the arguments as a JSON text (an object; "" counts as ``{}``).
    """

    call_id: str
    name: str
    arguments_json: str


@dataclass(frozen=True)
class ToolDispatch:
    """A call that passed validation and is now running (the ``ToolCall`` event to the client).

    For ``executor=CLIENT`` this is the request the client must answer with a ``ToolResult``
    within ``timeout_s``; for ``SERVER`` it is informational.
    """

    call_id: str
    name: str
    arguments_json: str
    executor: ToolExecutor
    timeout_s: float


@dataclass(frozen=True)
class ToolOutcome:
    """The single result of one :class:`ToolInvocation`.

    Attributes:
        call_id, name: copied from the invocation.
        status: how the call ended.
        result_json: what the model gets as the tool result; always valid JSON.
        error: a short human-readable reason for logs and the client ("" when OK).
        duration_s: from ``ToolRunner.start`` to this outcome, by the runner's clock
            (queueing behind ``max_concurrent`` included).
    """

    call_id: str
    name: str
    status: ToolStatus
    result_json: str
    error: str
    duration_s: float

    @property
    def ok(self) -> bool:
        return self.status is ToolStatus.OK


def error_result_json(type: str, message: str, details: Any = None) -> str:
    """The JSON the model sees for a failed call.

    ``details`` must be JSON-serialisable; a value that is not is replaced by its ``repr``.
    """
    error: dict[str, Any] = {"type": type, "message": message}
    if details is not None:
        error["details"] = details
    try:
        return json.dumps({"error": error}, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        error["details"] = repr(details)
        return json.dumps({"error": error}, ensure_ascii=False)
