"""Per-backend conversion, pinned by golden files in tests/tools/golden/.

Regenerate after an intended change with ``SONICWIRE_UPDATE_GOLDEN=1 pytest tests/tools`` and
review the diff.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sonicwire.server.tools import (
    ToolExecutor,
    ToolSpec,
    to_nova_tool,
    to_nova_tool_configuration,
)
from sonicwire.server.tools.builtin import GET_DATE_TIME, TRACK_ORDER
from tests.golden import updating_golden

GOLDEN = Path(__file__).parent / "golden"

BOOK_TABLE = ToolSpec(
    name="book_table",
    description="Book a table at the restaurant for a given date, time and party size.",
    parameters={
        "type": "object",
        "properties": {
            "date": {"type": "string", "format": "date", "description": "Day of the booking."},
            "time": {"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$"},
            "party_size": {"type": "integer", "minimum": 1, "maximum": 12},
            "seating": {"enum": ["indoor", "terrace"], "description": "Where to sit."},
            "notes": {"type": ["string", "null"]},
            "guests": {
                "type": "array",
                "items": {"type": "object", "properties": {"name": {"type": "string"}}},
            },
        },
        "required": ["date", "time", "party_size"],
        "additionalProperties": False,
    },
    executor=ToolExecutor.CLIENT,
    timeout_s=8,
)

CASES = [GET_DATE_TIME, TRACK_ORDER, BOOK_TABLE]


def check_golden(name: str, produced: Any) -> None:
    path = GOLDEN / name
    text = json.dumps(produced, indent=2, ensure_ascii=False) + "\n"
    if updating_golden():
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing golden file {path}; run with SONICWIRE_UPDATE_GOLDEN=1"
    assert json.loads(path.read_text(encoding="utf-8")) == produced


def test_nova_tool_configuration_golden() -> None:
    check_golden("nova_tool_configuration.json", to_nova_tool_configuration(CASES))


@pytest.mark.parametrize("spec", CASES, ids=lambda s: s.name)
def test_nova_schema_is_a_json_string_of_the_parameters(spec: ToolSpec) -> None:
    tool_spec = to_nova_tool(spec)["toolSpec"]
    assert set(tool_spec) == {"name", "description", "inputSchema"}
    schema_text = tool_spec["inputSchema"]["json"]
    assert isinstance(schema_text, str)
    assert json.loads(schema_text) == spec.parameters


def test_nova_description_falls_back_to_the_name() -> None:
    spec = ToolSpec(name="ping_host", description="", parameters={"type": "object"})
    assert to_nova_tool(spec)["toolSpec"]["description"] == "ping host"
