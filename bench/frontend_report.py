"""Render docs/FRONTEND.md from the evaluation results."""
from __future__ import annotations

import json
from typing import Any


def render(r: dict[str, Any]) -> str:
    return "```json\n" + json.dumps(r, indent=1) + "\n```\n"
