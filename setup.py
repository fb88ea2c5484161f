"""Build hook: the per-frame modules compiled to C with mypyc (docs/server_cpu.md, "Compiled").

Everything else about the package is in pyproject.toml. The modules listed in
``sonicwire.server.native.COMPILED`` (the front end, the session core, the response conversion)
run once per 20 ms frame of every stream; mypyc compiles them from the same strictly typed
sources the type checker reads, so there is one implementation, not a C copy to keep equal.

``SONICWIRE_COMPILE``:

* ``1``: compile, and fail the install if that is not possible (scripts/setup.sh, the image);
* ``0``: pure Python (the light client needs no compiler);
* unset: compile when the build environment can (mypy and numpy importable: mypyc type-checks
  the modules against numpy's stubs), else pure Python.

Compiling needs the type checker to see the server's dependencies, so scripts/setup.sh
builds with ``--no-build-isolation`` in the venv that has them.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

from setuptools import setup


def _load_native() -> object:
    """server/sonicwire/server/native.py by path: the list and the manifest, shared with the
    runtime check, without importing the package (nothing is installed yet)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), *_NATIVE)
    spec = importlib.util.spec_from_file_location("_sonicwire_native", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_NATIVE = ("server", "sonicwire", "server", "native.py")
sonicwire_native: Any = _load_native()


def _compile() -> bool:
    wanted = os.environ.get("SONICWIRE_COMPILE", "")
    if wanted == "0":
        return False
    able = all(importlib.util.find_spec(m) is not None for m in ("mypyc", "numpy"))
    if wanted == "1" and not able:
        raise SystemExit("SONICWIRE_COMPILE=1 but mypyc or numpy is not importable here")
    return able


def _ext_modules(compiling: bool) -> list[object]:
    if not compiling:
        return []
    from mypyc.build import mypycify

    # Written first, so that build_py packs it into a wheel beside the extensions; a failed
    # build forgets it again (below).
    sonicwire_native.write_manifest()
    return list(mypycify(list(sonicwire_native.COMPILED_PATHS), opt_level="3"))


_compiling = _compile()
try:
    setup(ext_modules=_ext_modules(_compiling))
except BaseException as failed:
    # mypyc or the C compiler stopped: the older extensions may still be in place, and a
    # manifest of today's sources would pass them as current (native.forget_manifest).
    if _compiling and not (isinstance(failed, SystemExit) and failed.code in (None, 0)):
        sonicwire_native.forget_manifest()
    raise
