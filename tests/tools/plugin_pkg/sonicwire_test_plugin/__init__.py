"""A third-party tool plugin, as a package would ship it.

The tests put this folder on ``sys.path`` and write a ``.dist-info`` with an ``entry_points.txt``
next to it, so ``importlib.metadata`` sees an installed distribution that declares::

    [sonicwire.tools]
    text = sonicwire_test_plugin:reverse_text
    math = sonicwire_test_plugin:make_math_tools
"""

from __future__ import annotations

from typing import Any

from sonicwire.server.tools import Tool, ToolContext, tool


@tool(
    description="Reverse a piece of text.",
    parameters={
        "type": "object",
        "properties": {"text": {"type": "string"}},
        "required": ["text"],
        "additionalProperties": False,
    },
)
async def reverse_text(args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    return {"reversed": args["text"][::-1]}


@tool(
    description="Add two integers.",
    parameters={
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "required": ["a", "b"],
    },
)
async def add_numbers(args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    return {"sum": args["a"] + args["b"]}


def make_math_tools() -> list[Tool]:
    """A plugin may be a callable returning its tools (built lazily, e.g. with configuration)."""
    return [add_numbers]


#: The list form, for ``--tools sonicwire_test_plugin:TOOLS``.
TOOLS = [reverse_text, add_numbers]


class Namespace:
    """For dotted references: ``sonicwire_test_plugin:Namespace.TOOLS``."""

    TOOLS = [reverse_text]


#: Not a plugin: loading it must fail with a clear error.
NOT_TOOLS = 42
