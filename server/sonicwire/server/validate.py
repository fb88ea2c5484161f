"""Cheap checks of a `SessionConfig` before any heavy work, and the per-stream input policy.

A config is checked in two passes so that no client can stall the event loop:

1. `check_config_shape` (on the loop, O(number of fields)): counts and byte sizes only, never a
   parse. 20,000 client tools or a 1 MB schema are refused here in microseconds.
2. `check_schema_text` (called from ``convert.client_tools_from_config``, which the runtime runs
   in a worker thread): the nesting depth of each JSON schema, counted without recursion and
   without parsing, so a 10,000-level schema is refused before ``json.loads``/``jsonschema``
   could raise `RecursionError`.

Every refusal is a `ProtocolError` with a stable reason (INVALID_ARGUMENT) whose message never
repeats unbounded client input: names are cut to `NAME_ECHO_CHARS`.

`check_resume` is the single place that decides what happens to ``resume_session_id``; the
resume feature replaces it (today: refused with RESUME_NOT_SUPPORTED).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

from sonicwire.server.core.errors import ProtocolError
from sonicwire.server.tools.spec import MAX_ANSWER_CHARS, MAX_EXAMPLE_CHARS, MAX_EXAMPLES
from sonicwire.v1 import voice_service_pb2 as pb

__all__ = [
    "DEFAULT_MAX_SCHEMA_DEPTH",
    "MAX_SPEAK_FIRST_PROMPT_BYTES",
    "NAME_ECHO_CHARS",
    "ConfigLimits",
    "check_config_shape",
    "check_inference",
    "check_resume",
    "check_schema_text",
    "check_tool_choice",
    "check_tool_choice_shape",
    "echo",
]

NAME_ECHO_CHARS = 64
# One Nova textInput holds about 1 KB; the speak-first instruction is one.
MAX_SPEAK_FIRST_PROMPT_BYTES = 1024

DEFAULT_MAX_SCHEMA_DEPTH = 32

_KNOWN_VAD_ENGINES = frozenset(pb.VadEngine.values())
_KNOWN_ENDPOINTING = frozenset(pb.EndpointingSensitivity.values())
_KNOWN_TOOL_CHOICE = frozenset(pb.ToolChoiceMode.values())
# Strings (with their escapes) removed, what is left of a schema's nesting is its brackets.
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


@dataclass(frozen=True, slots=True)
class ConfigLimits:
    """Caps on one `SessionConfig` (flags in ``config.py``; documented in docs/operations.md)."""

    max_client_tools: int = 64
    max_server_tools: int = 64
    max_tool_schema_bytes: int = 16 * 1024
    # All schemas together: jsonschema's schema check costs ~16 ms per KiB of properties
    # (measured: 0.24 s for one 15 KiB schema of 180 properties), in a worker thread but
    # holding the GIL; this bounds one config to well under a second of it.
    max_tool_schemas_total_bytes: int = 64 * 1024
    max_tool_schema_depth: int = DEFAULT_MAX_SCHEMA_DEPTH
    max_tool_description_bytes: int = 4 * 1024
    # Example utterances and the answer template: the same rule as `ToolSpec` (one rule for
    # plugins and client tools, stated in the proto), counted in characters like there.
    max_tool_examples: int = MAX_EXAMPLES
    max_tool_example_chars: int = MAX_EXAMPLE_CHARS
    max_tool_answer_chars: int = MAX_ANSWER_CHARS
    max_tool_name_bytes: int = 64
    max_system_prompt_bytes: int = 40_000
    max_short_field_bytes: int = 256  # voice, time_zone, resume id, answer template names


def echo(text: str) -> str:
    """``text`` cut for a status message (client input is never echoed unbounded)."""
    return repr(text[:NAME_ECHO_CHARS] + ("..." if len(text) > NAME_ECHO_CHARS else ""))


def _too_big(reason: str, what: str, size: int, limit: int) -> ProtocolError:
    return ProtocolError(reason, f"{what} has {size} bytes; the limit is {limit}")


def check_config_shape(config: pb.SessionConfig, limits: ConfigLimits) -> None:
    """Refuse a config whose sizes or counts are over ``limits``. Raises `ProtocolError`.

    Cost: proportional to the number of tools (bounded by the first check), no parsing.
    """
    if len(config.client_tools) > limits.max_client_tools:
        raise ProtocolError(
            "TOO_MANY_TOOLS",
            f"{len(config.client_tools)} client tools declared; the limit is "
            f"{limits.max_client_tools}",
        )
    if len(config.server_tools) > limits.max_server_tools:
        raise ProtocolError(
            "TOO_MANY_TOOLS",
            f"{len(config.server_tools)} server tools requested; the limit is "
            f"{limits.max_server_tools}",
        )
    prompt = len(config.system_prompt.encode())
    if prompt > limits.max_system_prompt_bytes:
        raise _too_big("PROMPT_TOO_LONG", "system_prompt", prompt, limits.max_system_prompt_bytes)
    for name, value in (
        ("voice", config.voice),
        ("resume_session_id", config.resume_session_id),
        ("resume_token", config.resume_token),
    ):
        if len(value) > limits.max_short_field_bytes:
            raise _too_big("CONFIG_INVALID", name, len(value), limits.max_short_field_bytes)
    for name in config.server_tools:
        if len(name) > limits.max_tool_name_bytes:
            raise _too_big("CLIENT_TOOL_INVALID", "a server tool name", len(name), 64)
    total = 0
    for tool in config.client_tools:
        _check_tool_shape(tool, limits)
        total += len(tool.parameters_json_schema)
    if total > limits.max_tool_schemas_total_bytes:
        raise _too_big(
            "TOOL_SCHEMA_TOO_LARGE",
            "the client tools' schemas together",
            total,
            limits.max_tool_schemas_total_bytes,
        )
    check_inference(config.inference)
    check_tool_choice_shape(config.tool_choice)
    speak_first = len(config.speak_first_prompt.encode())
    if speak_first > MAX_SPEAK_FIRST_PROMPT_BYTES:
        raise _too_big(
            "CONFIG_INVALID", "speak_first_prompt", speak_first, MAX_SPEAK_FIRST_PROMPT_BYTES
        )
    if config.vad.engine not in _KNOWN_VAD_ENGINES:
        raise ProtocolError("CONFIG_INVALID", f"vad.engine {config.vad.engine} is not a VadEngine")


def _check_tool_shape(tool: pb.ToolDefinition, limits: ConfigLimits) -> None:
    if len(tool.name) > limits.max_tool_name_bytes:
        raise _too_big("CLIENT_TOOL_INVALID", "a client tool name", len(tool.name), 64)
    label = f"client tool {echo(tool.name)}"
    schema = len(tool.parameters_json_schema)
    if schema > limits.max_tool_schema_bytes:
        raise _too_big(
            "TOOL_SCHEMA_TOO_LARGE", f"{label}: the schema", schema, limits.max_tool_schema_bytes
        )
    if len(tool.description) > limits.max_tool_description_bytes:
        raise _too_big(
            "CLIENT_TOOL_INVALID",
            f"{label}: the description",
            len(tool.description),
            limits.max_tool_description_bytes,
        )
    if len(tool.examples) > limits.max_tool_examples:
        raise ProtocolError(
            "CLIENT_TOOL_INVALID",
            f"{label}: {len(tool.examples)} examples; the limit is {limits.max_tool_examples}",
        )
    for example in tool.examples:
        if len(example) > limits.max_tool_example_chars:
            raise ProtocolError(
                "CLIENT_TOOL_INVALID",
                f"{label}: an example has {len(example)} characters; the limit is "
                f"{limits.max_tool_example_chars}",
            )
    if len(tool.answer_template) > limits.max_tool_answer_chars:
        raise ProtocolError(
            "CLIENT_TOOL_INVALID",
            f"{label}: the answer template has {len(tool.answer_template)} characters; the "
            f"limit is {limits.max_tool_answer_chars}",
        )


def check_schema_text(name: str, text: str, max_depth: int) -> None:
    """Refuse a JSON text nested deeper than ``max_depth``. Raises `ProtocolError`.

    Linear in the text (two regex passes in C, then a loop over the brackets only); malformed
    JSON passes here and is reported by the parser that follows.
    """
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    depth = 0
    for char in brackets:
        if char in "[{":
            depth += 1
            if depth > max_depth:
                raise ProtocolError(
                    "TOOL_SCHEMA_TOO_DEEP",
                    f"client tool {echo(name)}: the schema nests deeper than {max_depth} levels",
                )
        else:
            depth -= 1


def _finite_in(value: float, low: float, high: float, what: str) -> None:
    # NaN compares false with everything: test for it explicitly.
    if math.isnan(value) or not low <= value <= high:
        raise ProtocolError("CONFIG_INVALID", f"{what} must be within [{low:g}, {high:g}]")


def check_inference(inference: pb.InferenceSettings) -> None:
    """Refuse out-of-range inference values (0 means "the backend's default")."""
    if not 0 <= inference.max_tokens <= 65_536:
        raise ProtocolError("CONFIG_INVALID", "inference.max_tokens must be within [0, 65536]")
    _finite_in(inference.temperature, 0.0, 1.0, "inference.temperature")
    _finite_in(inference.top_p, 0.0, 1.0, "inference.top_p")
    if inference.greedy and inference.temperature:
        raise ProtocolError("CONFIG_INVALID", "inference.greedy means temperature 0; unset it")
    if inference.endpointing_sensitivity not in _KNOWN_ENDPOINTING:
        raise ProtocolError(
            "CONFIG_INVALID",
            f"inference.endpointing_sensitivity {inference.endpointing_sensitivity} is unknown",
        )


def check_tool_choice_shape(choice: pb.ToolChoice) -> None:
    """A known mode; a tool name exactly with TOOL (whether it is offered is checked once the
    session's tools are known, see `check_tool_choice`)."""
    if choice.mode not in _KNOWN_TOOL_CHOICE:
        raise ProtocolError("TOOL_CHOICE_INVALID", f"tool_choice.mode {choice.mode} is unknown")
    if (choice.mode == pb.TOOL_CHOICE_MODE_TOOL) != bool(choice.tool_name):
        raise ProtocolError(
            "TOOL_CHOICE_INVALID",
            "tool_choice.tool_name is required with TOOL_CHOICE_MODE_TOOL and only with it",
        )
    if len(choice.tool_name) > 64:
        raise _too_big("TOOL_CHOICE_INVALID", "tool_choice.tool_name", len(choice.tool_name), 64)


def check_tool_choice(choice: pb.ToolChoice, offered: Iterable[str]) -> None:
    """The tools a choice needs are offered. Raises `ProtocolError` TOOL_CHOICE_INVALID."""
    names = set(offered)
    if choice.mode in (pb.TOOL_CHOICE_MODE_ANY, pb.TOOL_CHOICE_MODE_TOOL) and not names:
        raise ProtocolError("TOOL_CHOICE_INVALID", "tool_choice needs tools, but none is offered")
    if choice.mode == pb.TOOL_CHOICE_MODE_TOOL and choice.tool_name not in names:
        raise ProtocolError(
            "TOOL_CHOICE_INVALID",
            f"tool_choice.tool_name {choice.tool_name!r} is not an offered tool",
        )


def check_resume(config: pb.SessionConfig) -> None:
    """The resume fields go together. Raises `ProtocolError` RESUME_TOKEN_MISSING.

    Whether the conversation exists, and whose it is, is the runtime's question (`resume`).
    """
    if config.resume_session_id and not config.resume_token:
        raise ProtocolError(
            "RESUME_TOKEN_MISSING",
            f"resume_session_id {echo(config.resume_session_id)} needs the resume_token that "
            "came in its SessionStarted",
        )
    if config.resume_token and not config.resume_session_id:
        raise ProtocolError("RESUME_TOKEN_MISSING", "resume_token without resume_session_id")
