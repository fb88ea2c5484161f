"""Per-backend forms of a :class:`~sonicwire.server.tools.spec.ToolSpec` (pure functions).

* Nova Sonic: :func:`to_nova_tool` gives one entry of ``promptStart.toolConfiguration.tools``;
  the schema travels as a JSON *string* under ``inputSchema.json``.
* The offline engine: :func:`to_local_intent` gives a :class:`LocalIntent`, which its intent
  router matches on keywords and fills from the slots.

Golden files in ``tests/tools/golden/`` pin both forms.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .spec import ToolExecutor, ToolSpec

__all__ = [
    "IntentSlot",
    "LocalIntent",
    "to_local_intent",
    "to_nova_tool",
    "to_nova_tool_configuration",
]


def to_nova_tool(spec: ToolSpec) -> dict[str, Any]:
    """``{"toolSpec": {"name", "description", "inputSchema": {"json": "<schema string>"}}}``."""
    return {
        "toolSpec": {
            "name": spec.name,
            # Nova wants a description; an undescribed (client) tool is described by its name.
            "description": spec.description.strip() or spec.name.replace("_", " "),
            "inputSchema": {"json": spec.parameters_json},
        }
    }


def to_nova_tool_configuration(specs: Iterable[ToolSpec]) -> dict[str, Any]:
    """The value of ``promptStart.toolConfiguration``: ``{"tools": [...]}``."""
    return {"tools": [to_nova_tool(spec) for spec in specs]}


@dataclass(frozen=True)
class IntentSlot:
    """One argument the offline engine must fill from the utterance.

    Attributes:
        name: the property name in the arguments object.
        type: the JSON type (``string``, ``integer``, ``number``, ``boolean``, ...; "" when
            the schema does not say).
        required: listed in the schema's ``required``.
        description: the property's description ("" if none).
        enum: the allowed values as given, when the schema lists them.
        pattern: the schema's regular expression, when it has one.
    """

    name: str
    type: str
    required: bool
    description: str = ""
    enum: tuple[Any, ...] = ()
    pattern: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "required": self.required,
            "description": self.description,
            "enum": list(self.enum),
            "pattern": self.pattern,
        }


@dataclass(frozen=True)
class LocalIntent:
    """A tool as the offline engine's intent router sees it.

    Attributes:
        name: the tool's name (the intent's name).
        description: the tool's description.
        keywords: lower-case trigger words, most specific first.
        slots: the arguments to extract, in schema order.
        executor: who runs the tool once the intent is recognised.
    """

    name: str
    description: str
    keywords: tuple[str, ...]
    slots: tuple[IntentSlot, ...]
    executor: ToolExecutor

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "keywords": list(self.keywords),
            "slots": [slot.to_dict() for slot in self.slots],
            "executor": self.executor.value,
        }


# Words that say nothing about which tool is meant.
_STOPWORD_TEXT = """
    a an and any are as at be by can current do does for from get gets give gives given has
    have how if in into is it its it's of on or out over say says set the their them then this
    that these those to up use used user uses using what when where whenever which who why will
    with you your here there other another tool tools e g eg such
"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_WORD = re.compile(r"[a-z][a-z']+")


def _derived_keywords(spec: ToolSpec) -> tuple[str, ...]:
    words = re.split(r"[_\-\s]+", spec.name.lower()) + _WORD.findall(spec.description.lower())
    out: dict[str, None] = {}
    for word in words:
        word = word.strip("'")
        if len(word) >= 3 and word not in _STOPWORDS:
            out.setdefault(word)
    return tuple(out)


def _json_type(schema: Any) -> str:
    if not isinstance(schema, dict):
        return ""
    kind = schema.get("type")
    if isinstance(kind, str):
        return kind
    if isinstance(kind, list):
        named = [k for k in kind if isinstance(k, str) and k != "null"]
        return named[0] if named else ""
    if "enum" in schema:
        return "string"
    return ""


def to_local_intent(spec: ToolSpec) -> LocalIntent:
    """The offline engine's view of a tool.

    Keywords are ``spec.keywords`` when given (lower-cased), else words of the name and
    description (three letters or more, common words dropped).
    """
    keywords = (
        tuple(dict.fromkeys(k.strip().lower() for k in spec.keywords))
        if spec.keywords
        else _derived_keywords(spec)
    )
    properties = spec.parameters.get("properties", {})
    required = set(spec.parameters.get("required", []))
    slots: list[IntentSlot] = []
    if isinstance(properties, dict):
        for name, prop in properties.items():
            prop = prop if isinstance(prop, dict) else {}
            enum = prop.get("enum")
            pattern = prop.get("pattern")
            slots.append(
                IntentSlot(
                    name=name,
                    type=_json_type(prop),
                    required=name in required,
                    description=str(prop.get("description", "")),
                    enum=tuple(enum) if isinstance(enum, list) else (),
                    pattern=pattern if isinstance(pattern, str) else None,
                )
            )
    return LocalIntent(
        name=spec.name,
        description=spec.description,
        keywords=keywords,
        slots=tuple(slots),
        executor=spec.executor,
    )
