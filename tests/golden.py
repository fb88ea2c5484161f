"""The one switch that lets golden tests rewrite their files: ``SONICWIRE_UPDATE_GOLDEN=1``.

Golden files pin wire formats; a test that rewrites its own expectation passes whatever the code
does, so the switch is for a developer's deliberate update only. ``tests/conftest.py`` refuses to
run under CI (``CI=true``) when it is set, and refuses the retired name ``UPDATE_GOLDEN`` anywhere.
"""

from __future__ import annotations

import os

__all__ = ["RETIRED_VARS", "UPDATE_GOLDEN_VAR", "updating_golden"]

#: The single environment variable; "1" rewrites the golden files.
UPDATE_GOLDEN_VAR = "SONICWIRE_UPDATE_GOLDEN"
#: Former names: setting one is an error, so nobody believes a rewrite happened (or did not).
RETIRED_VARS = ("UPDATE_GOLDEN",)


def updating_golden() -> bool:
    """True when the developer asked for the golden files to be rewritten."""
    return os.environ.get(UPDATE_GOLDEN_VAR, "") not in ("", "0")
