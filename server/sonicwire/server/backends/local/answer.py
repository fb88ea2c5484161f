"""Speak a tool's result (pure): the tool's answer template, else its message, else a
short generic sentence; never raw JSON.

A template is sentences with fields of the result: ``"It's {time}. Today is {date:date}."``.
A field is a key of the result object (``{a.b}`` for a nested one), with an optional reading
after a colon (``date``, ``time``, ``id``, ``number``, ``text``; see `saying.say_value`). A
sentence that names a field the result lacks (or has as null or "") is left out, so one
template covers results of several shapes (an order with a delivery date, one without). When
no sentence is left, or the tool has no template, the result's ``message`` (or ``summary``,
``answer``, ``text``) is spoken; failing that, a generic sentence.

Errors (``{"error": {...}}``, as every tool failure reaches a backend) are explained briefly:
a tool's own error message is spoken when it is short, a timeout or an invalid argument gets
its own sentence.
"""

from __future__ import annotations

import json
import re
import string
from typing import Any

from .saying import Line, say_value, say_words

__all__ = ["answer_prefix", "render_answer"]

_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_MESSAGE_KEYS = ("message", "summary", "answer", "text", "description")
_MAX_SPOKEN_MESSAGE = 300
_FORMATTER = string.Formatter()


def render_answer(name: str, template: str, result_json: str) -> tuple[Line, ...]:
    """The reply to a call of tool ``name`` whose result (JSON) is ``result_json``."""
    try:
        result: Any = json.loads(result_json)
    except (TypeError, ValueError):  # results reach backends as JSON; this is a broken one
        return _error_lines(name, {"type": "tool_error"})
    if isinstance(result, dict) and isinstance(result.get("error"), dict | str):
        return _error_lines(name, result["error"])
    if template and isinstance(result, dict):
        lines = [line for s in _SENTENCE.split(template) if (line := _fill(s, result))]
        if lines:
            return tuple(lines)
    message = _message(result)
    if message:
        return tuple(Line(s, _spoken(s)) for s in _SENTENCE.split(message) if s)
    return (Line.plain(f"Done: {_tool_words(name)}."),)


def answer_prefix(template: str, arguments: dict[str, Any]) -> Line | None:
    """The start of the answer that the call's own arguments already tell: the template's
    first sentence up to its last field known from ``arguments`` ("Order {order_id} is
    {status}." with ``order_id`` 1001 -> "Order 1001"). It can be synthesised (and spoken)
    while the tool runs; None when the first sentence starts with a field the result gives.
    """
    if not template:
        return None
    first = _SENTENCE.split(template, 1)[0]
    try:
        parsed = list(_FORMATTER.parse(first))
    except ValueError:
        return None
    text: list[str] = []
    spoken: list[str] = []
    known = ("", "")
    for literal, field, spec, _conversion in parsed:
        if field is None:
            break
        value = arguments.get(field)
        if value is None or value == "" or isinstance(value, dict | list):
            break
        shown, said = say_value(value, spec or "")
        text += [literal, shown]
        spoken += [literal, said]
        known = ("".join(text).strip(), "".join(spoken).strip())
    if len(known[1].split()) < 2:
        return None  # too short to be worth a separate piece of audio
    return Line(*known)


def _fill(sentence: str, result: dict[str, Any]) -> Line | None:
    text: list[str] = []
    spoken: list[str] = []
    try:
        parsed = list(_FORMATTER.parse(sentence))
    except ValueError:  # a stray brace: say the sentence as written
        return Line.plain(sentence)
    for literal, field, spec, _conversion in parsed:
        text.append(literal)
        spoken.append(literal)
        if field is None:
            continue
        value = _lookup(result, field)
        if value is None or value == "" or isinstance(value, dict | list):
            return None
        shown, said = say_value(value, spec or "")
        text.append(shown)
        spoken.append(said)
    return Line("".join(text).strip(), "".join(spoken).strip())


def _lookup(result: dict[str, Any], field: str) -> Any:
    value: Any = result
    for part in field.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _message(result: Any) -> str:
    if isinstance(result, str):
        text = result.strip()
    elif isinstance(result, dict):
        text = next(
            (result[k].strip() for k in _MESSAGE_KEYS if isinstance(result.get(k), str)), ""
        )
    else:
        text = ""
    # A long message is more than an answer should say; raw JSON is never spoken.
    if not text or len(text) > _MAX_SPOKEN_MESSAGE or text[0] in "{[":
        return ""
    return text


def _spoken(sentence: str) -> str:
    return say_words(sentence)[1]


def _error_lines(name: str, error: dict[str, Any] | str) -> tuple[Line, ...]:
    kind = error.get("type", "") if isinstance(error, dict) else ""
    message = error.get("message", "") if isinstance(error, dict) else error
    what = _tool_words(name)
    if kind == "timeout":
        return (Line.plain(f"Sorry, {what} took too long."),)
    if kind == "invalid_arguments":
        return (Line.plain(f"Sorry, I couldn't use those details for {what}."),)
    if kind in ("cancelled", "unknown_tool", "result_too_large", "") or not isinstance(
        message, str
    ):
        return (Line.plain(f"Sorry, {what} didn't work."),)
    # A handler's own message (ToolError) is written for the user: short ones are spoken.
    if message and len(message) <= 150 and not message.startswith(("{", "[")):
        return (Line("Sorry.", "Sorry."), Line(message, _spoken(message)))
    return (Line.plain(f"Sorry, {what} didn't work."),)


def _tool_words(name: str) -> str:
    return re.sub(r"[_\-]+", " ", name).strip() or "that"
