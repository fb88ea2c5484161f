"""Print how many cases each fuzz property ran (CI logs keep the counts)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from .strategies import CASES, EXAMPLES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not CASES:
        return
    terminalreporter.section(f"fuzz cases (SONICWIRE_FUZZ_EXAMPLES={EXAMPLES})")
    for name, count in sorted(CASES.items()):
        terminalreporter.write_line(f"{count:>8}  {name}")
    report = os.environ.get("SONICWIRE_FUZZ_REPORT")
    if report:
        Path(report).write_text(json.dumps(dict(CASES), indent=2, sort_keys=True) + "\n")
