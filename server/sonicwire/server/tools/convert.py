"""Per-backend forms of a :class:`~sonicwire.server.tools.spec.ToolSpec` (pure functions).

* Nova Sonic: :func:`to_nova_tool` gives one entry of ``promptStart.toolConfiguration.tools``;
  the schema travels as a JSON *string* under ``inputSchema.json``.
* The offline engine takes the spec's fields as they are (examples, answer template, schema;
  ``backends/local/toolmodel.py`` compiles them), so it needs no conversion here.

A golden file in ``tests/tools/golden/`` pins the Nova form.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .spec import ToolSpec

__all__ = [
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
