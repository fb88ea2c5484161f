"""The neutral tool description shared by every backend.

A :class:`ToolSpec` says what a tool is called, what it does and which arguments it takes (a JSON
schema object), and who executes it: the server (a registered async handler) or the calling client
(declared in ``SessionConfig``; the client answers ``ToolCall`` with ``ToolResult``). Backends
never see this class directly: :mod:`sonicwire.server.tools.convert` turns it into Nova's
``toolSpec`` or the local engine's intent.

A spec checks itself when built and raises :class:`ToolSpecError` when it is not usable, so a bad
plugin or a bad client declaration fails at registration or session start, never mid-call.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import jsonschema
import jsonschema.exceptions
import jsonschema.protocols
import jsonschema.validators

from sonicwire.server.core.events import ToolExecutor

__all__ = [
    "TOOL_NAME_PATTERN",
    "ToolExecutor",
    "ToolSpec",
    "ToolSpecError",
]

#: Tool names as Nova (and most model APIs) accept them.
TOOL_NAME_PATTERN = re.compile(r"^[a-zA-Z][a-zA-Z0-9_-]{0,63}$")

#: How many schema violations are reported back to the model for one call.
_MAX_REPORTED_ERRORS = 5


class ToolSpecError(ValueError):
    """A tool description (or a set of them) is not usable.

    Raised for a bad name, description or schema, a duplicate or shadowing name, and a plugin
    that does not provide tools. The message names the tool; the gRPC driver maps it to
    ``INVALID_ARGUMENT`` when it comes from a client's ``SessionConfig``.
    """


def _check_json_value(value: Any, what: str) -> Any:
    """Return a deep copy of ``value`` made of plain JSON types, or raise ToolSpecError."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ToolSpecError(f"{what} is not plain JSON: {exc}") from exc


@dataclass(frozen=True)
class ToolSpec:
    """One tool, described once for every backend.

    Args:
        name: matches :data:`TOOL_NAME_PATTERN` (a letter, then up to 63 letters, digits, ``_``
            or ``-``).
        description: what the tool does and when to use it, for the model. May be empty (a
            client may declare a tool without one); backends then fall back to the name.
        parameters: a JSON schema whose top-level ``type`` is ``"object"`` (the arguments are
            always an object). It is copied; the spec never aliases the caller's dict.
        executor: who runs the tool.
        timeout_s: this tool's own timeout in seconds; ``None`` uses the runner's default. The
            runner caps it at its ``max_timeout_s``.
        keywords: optional trigger words for the offline engine's intent router; when empty,
            they are derived from the name and description.

    Raises:
        ToolSpecError: when any of the above does not hold.
    """

    name: str
    description: str
    parameters: Mapping[str, Any] = field(hash=False)
    executor: ToolExecutor = ToolExecutor.SERVER
    timeout_s: float | None = None
    keywords: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not TOOL_NAME_PATTERN.fullmatch(self.name):
            raise ToolSpecError(
                f"tool name {self.name!r} must match {TOOL_NAME_PATTERN.pattern} "
                "(a letter, then up to 63 letters, digits, '_' or '-')"
            )
        if not isinstance(self.description, str):
            raise ToolSpecError(f"tool {self.name!r}: the description must be a string")
        object.__setattr__(self, "executor", _coerce_executor(self.name, self.executor))
        if self.timeout_s is not None:
            if (
                isinstance(self.timeout_s, bool)
                or not isinstance(self.timeout_s, int | float)
                or not math.isfinite(self.timeout_s)
                or self.timeout_s <= 0
            ):
                raise ToolSpecError(
                    f"tool {self.name!r}: timeout_s must be a positive number of seconds, "
                    f"got {self.timeout_s!r}"
                )
            object.__setattr__(self, "timeout_s", float(self.timeout_s))
        keywords = tuple(self.keywords)
        if not all(isinstance(k, str) and k.strip() for k in keywords):
            raise ToolSpecError(f"tool {self.name!r}: keywords must be non-empty strings")
        object.__setattr__(self, "keywords", keywords)
        object.__setattr__(self, "parameters", _check_schema(self.name, self.parameters))

    @classmethod
    def from_json(
        cls,
        name: str,
        description: str,
        parameters_json: str,
        *,
        executor: ToolExecutor = ToolExecutor.CLIENT,
        timeout_s: float | None = None,
    ) -> ToolSpec:
        """Build a spec whose schema arrives as a JSON string (a client's ``SessionConfig``).

        An empty ``parameters_json`` means "no arguments" (``{"type": "object"}``).

        Raises:
            ToolSpecError: the JSON does not parse, or the spec is invalid.
        """
        text = parameters_json.strip()
        if not text:
            parameters: Any = {"type": "object", "properties": {}}
        else:
            try:
                parameters = json.loads(text)
            except ValueError as exc:
                raise ToolSpecError(f"tool {name!r}: parameters are not valid JSON: {exc}") from exc
        return cls(
            name=name,
            description=description,
            parameters=parameters,
            executor=executor,
            timeout_s=timeout_s,
        )

    @property
    def parameters_json(self) -> str:
        """The schema as a compact JSON string (what Nova and the proto carry)."""
        return json.dumps(self.parameters, separators=(",", ":"), ensure_ascii=False)

    @cached_property
    def _validator(self) -> jsonschema.protocols.Validator:
        cls = jsonschema.validators.validator_for(
            self.parameters, default=jsonschema.Draft202012Validator
        )
        return cls(self.parameters, format_checker=cls.FORMAT_CHECKER)

    def validate_arguments(self, arguments: Any) -> list[str]:
        """Check decoded call arguments against the schema.

        Returns:
            Human-readable violations, most relevant first (at most five); empty when valid.
        """
        errors = sorted(
            self._validator.iter_errors(arguments),
            key=jsonschema.exceptions.relevance,
        )
        messages: list[str] = []
        for error in errors[:_MAX_REPORTED_ERRORS]:
            where = error.json_path if error.path else "$"
            messages.append(f"{where}: {error.message}")
        return messages


def _coerce_executor(name: str, value: Any) -> ToolExecutor:
    try:
        return ToolExecutor(value)
    except ValueError as exc:
        raise ToolSpecError(
            f"tool {name!r}: executor must be one of {[e.value for e in ToolExecutor]}, "
            f"got {value!r}"
        ) from exc


def _check_schema(name: str, parameters: Any) -> dict[str, Any]:
    if not isinstance(parameters, Mapping):
        raise ToolSpecError(
            f"tool {name!r}: parameters must be a JSON schema object, "
            f"got {type(parameters).__name__}"
        )
    schema: dict[str, Any] = _check_json_value(dict(parameters), f"tool {name!r}: parameters")
    if schema.get("type") != "object":
        raise ToolSpecError(
            f'tool {name!r}: the parameters schema must have "type": "object" '
            "(tool arguments are always a JSON object)"
        )
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except jsonschema.exceptions.SchemaError as exc:
        where = exc.json_path if exc.path else "$"
        raise ToolSpecError(
            f"tool {name!r}: parameters are not a valid JSON schema at {where}: {exc.message}"
        ) from exc
    return schema
