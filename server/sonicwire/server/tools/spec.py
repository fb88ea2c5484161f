"""The neutral tool description shared by every backend.

A :class:`ToolSpec` says what a tool is called, what it does and which arguments it takes (a JSON
schema object), and who executes it: the server (a registered async handler) or the calling client
(declared in ``SessionConfig``; the client answers ``ToolCall`` with ``ToolResult``). Backends
never see this class directly: :mod:`sonicwire.server.tools.convert` turns it into Nova's
``toolSpec``; the offline engine compiles it (with its example utterances and answer template)
into its language model and dialogue (``backends/local/toolmodel.py``).

A spec checks itself when built and raises :class:`ToolSpecError` when it is not usable, so a bad
plugin or a bad client declaration fails at registration or session start, never mid-call.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import jsonschema
import jsonschema.exceptions
import jsonschema.protocols
import jsonschema.validators

from sonicwire.server.core.events import ToolExecutor

__all__ = [
    "MAX_ANSWER_CHARS",
    "MAX_EXAMPLES",
    "MAX_EXAMPLE_CHARS",
    "TOOL_NAME_PATTERN",
    "ToolExecutor",
    "ToolSpec",
    "ToolSpecError",
]

#: Tool names as Nova (and most model APIs) accept them.
TOOL_NAME_PATTERN = re.compile(r"^[a-zA-Z][a-zA-Z0-9_-]{0,63}$")

#: Caps on the offline engine's hints: they become language-model text and are matched against
#: every utterance, so a client cannot make a session's start (or each turn) arbitrarily slow.
MAX_EXAMPLES = 100
MAX_EXAMPLE_CHARS = 200
MAX_ANSWER_CHARS = 500
#: A slot in an example utterance: ``{city}`` names the property ``city``.
_SLOT = re.compile(r"\{([^{}]*)\}")

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
        keywords: optional extra words that point at this tool for the offline engine (each
            is learnt like a one-word example).
        examples: optional example utterances for the offline engine, how a user asks for the
            tool; ``{prop}`` marks where the value of the schema property ``prop`` is said
            (``"what's the weather in {city}"``). At most :data:`MAX_EXAMPLES`, each at most
            :data:`MAX_EXAMPLE_CHARS` characters; every slot must name a property.
        answer: optional spoken-answer template for the offline engine: sentences with
            ``{field}`` naming fields of the tool's (object) result, ``{a.b}`` for nested ones
            (``"It's {time}. Today is {date}."``). A sentence naming a missing field is left out.
            At most :data:`MAX_ANSWER_CHARS` characters.
        continue_on_interruption: the tool's calls keep running when the user barges in
            (Nova 2's asynchronous tools; pipecat's ``cancel_on_interruption=False``): the
            result still reaches the model, which answers it in a new turn. Declared by the
            tool's author, for tools whose work matters even if the user talks over the
            answer (placing an order, a slow lookup the user will still want). By default a
            barge-in cancels pending calls and the model gets a CANCELLED result.

    Raises:
        ToolSpecError: when any of the above does not hold.
    """

    name: str
    description: str
    parameters: Mapping[str, Any] = field(hash=False)
    executor: ToolExecutor = ToolExecutor.SERVER
    timeout_s: float | None = None
    keywords: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()
    answer: str = ""
    continue_on_interruption: bool = False

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
        object.__setattr__(
            self, "examples", _check_examples(self.name, self.examples, self.parameters)
        )
        object.__setattr__(self, "answer", _check_answer(self.name, self.answer))
        if not isinstance(self.continue_on_interruption, bool):
            raise ToolSpecError(
                f"tool {self.name!r}: continue_on_interruption must be True or False, "
                f"got {self.continue_on_interruption!r}"
            )

    @classmethod
    def from_json(
        cls,
        name: str,
        description: str,
        parameters_json: str,
        *,
        executor: ToolExecutor = ToolExecutor.CLIENT,
        timeout_s: float | None = None,
        examples: Sequence[str] = (),
        answer: str = "",
        continue_on_interruption: bool = False,
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
            examples=tuple(examples),
            answer=answer,
            continue_on_interruption=continue_on_interruption,
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


def _check_examples(name: str, examples: Any, schema: Mapping[str, Any]) -> tuple[str, ...]:
    if isinstance(examples, str) or not isinstance(examples, Sequence):
        raise ToolSpecError(f"tool {name!r}: examples must be a list of strings")
    if len(examples) > MAX_EXAMPLES:
        raise ToolSpecError(
            f"tool {name!r}: {len(examples)} examples, at most {MAX_EXAMPLES} are allowed"
        )
    properties = schema.get("properties")
    known = set(properties) if isinstance(properties, Mapping) else set()
    out: list[str] = []
    for example in examples:
        if not isinstance(example, str) or not example.strip():
            raise ToolSpecError(f"tool {name!r}: examples must be non-empty strings")
        if len(example) > MAX_EXAMPLE_CHARS:
            raise ToolSpecError(
                f"tool {name!r}: the example {example[:40]!r}... is longer than "
                f"{MAX_EXAMPLE_CHARS} characters"
            )
        if example.count("{") != example.count("}") or "{}" in example:
            raise ToolSpecError(f"tool {name!r}: example {example!r} has an unbalanced slot")
        for slot in _SLOT.findall(example):
            if slot not in known:
                raise ToolSpecError(
                    f"tool {name!r}: example {example!r} names {{{slot}}}, which is not a "
                    f"property of the parameters schema (properties: {sorted(known)})"
                )
        out.append(" ".join(example.split()))
    return tuple(out)


def _check_answer(name: str, answer: Any) -> str:
    if not isinstance(answer, str):
        raise ToolSpecError(f"tool {name!r}: the answer template must be a string")
    if len(answer) > MAX_ANSWER_CHARS:
        raise ToolSpecError(
            f"tool {name!r}: the answer template is longer than {MAX_ANSWER_CHARS} characters"
        )
    if answer.count("{") != answer.count("}") or "{}" in answer:
        raise ToolSpecError(
            f"tool {name!r}: the answer template {answer!r} has an unbalanced or empty field"
        )
    return answer.strip()
