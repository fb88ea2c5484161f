"""A copy of the server's sources without the compiled extensions, for a child process.

The per-frame modules may be compiled (sonicwire.server.native). What must see pure Python,
to compare with the build or to patch a class from outside (bench.estimator_ab counts calls
that way), runs in a child with this copy first on ``PYTHONPATH``: the same sources and venv.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

__all__ = ["ROOT", "pure_python_env"]

ROOT = Path(__file__).resolve().parents[1]


def pure_python_env(scratch: Path) -> dict[str, str]:
    """The environment of a child that imports the server from a pure copy under ``scratch``."""
    pure = scratch / "server"
    if not pure.exists():
        shutil.copytree(ROOT / "server", pure, ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    roots = [pure, ROOT / "clients" / "python", ROOT / "gateway_ws", ROOT]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(str(p) for p in roots))
