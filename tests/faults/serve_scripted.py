"""``python -m tests.faults.serve_scripted [server flags]``: the real `sonicwire serve` entry
point (flags, signals, drain, exit), with the tool-calling test backend instead of a real one.

Subprocess fault tests use it to see the process as an operator does: signals and exit codes.
"""

from __future__ import annotations

import sys
from typing import Any

from sonicwire.server import app
from sonicwire.server.backends.base import Backend
from sonicwire.server.cli import main as serve_main
from sonicwire.server.testing.backends import ToolCallingBackend


def _test_backend(name: str, **options: Any) -> Backend:
    return ToolCallingBackend()


if __name__ == "__main__":
    app.create_backend = _test_backend
    sys.exit(serve_main(sys.argv[1:]))
