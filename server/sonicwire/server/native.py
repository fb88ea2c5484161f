"""Which modules run compiled, and whether the compiled ones were built from today's sources.

The per-frame path (the front end, the session core, the response conversion) is compiled
to C with mypyc when the package is installed (setup.py; docs/server_cpu.md, "Compiled"):
the same typed sources, run without the interpreter's per-bytecode cost. A compiled module
is an extension next to its ``.py`` and wins the import, so a source edited after the build
would silently not run: the build records each source's digest (``native_manifest.json``),
and :func:`stale_modules` names the compiled modules whose source changed since. The tests
refuse to run on stale modules and the server says which path it runs.

Standard library only: setup.py loads this file by path, before anything is installed.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import json
from pathlib import Path

__all__ = [
    "COMPILED",
    "COMPILED_PATHS",
    "compiled_modules",
    "describe",
    "forget_manifest",
    "needs_build",
    "remove_build",
    "stale_modules",
    "write_manifest",
]

_PACKAGE_DIR = Path(__file__).resolve().parent
_MANIFEST = _PACKAGE_DIR / "native_manifest.json"

# Every module here runs per frame of every stream (bench.inprocess splits the cost). Left
# out: dsp.aec3 (an optional engine), dsp.speex (thin cffi glue); core.errors, core.state and
# core.snapshot (exception classes, and not per frame: compiled, a subclass of SonicwireError
# lost its class-level ``code``); the async drivers (mypyc does not compile conversation.py's
# async generators, and a driver's cost is its awaits).
_DSP = (
    "aec",
    "convergence",
    "delay",
    "frames",
    "front_end_output",
    "gate",
    "median",
    "pipeline",
    "resample",
    "settings",
    "skew",
    "timeline",
    "vad",
)
_CORE = (
    "events",
    "history",
    "input_rules",
    "playout",
    "ports",
    "session",
    "settings",
    "speech",
    "tool_calls",
    "utterance",
)
COMPILED: tuple[str, ...] = (
    *(f"sonicwire.server.dsp.{name}" for name in _DSP),
    *(f"sonicwire.server.core.{name}" for name in _CORE),
    "sonicwire.server.convert",
    "sonicwire.server.release_clock",
)
"""Modules compiled by setup.py, by import name."""


def _source(module: str) -> Path:
    return _PACKAGE_DIR.joinpath(*module.split(".")[2:]).with_suffix(".py")


COMPILED_PATHS: tuple[str, ...] = tuple(
    str(Path("server", *module.split(".")).with_suffix(".py")) for module in COMPILED
)
"""The same modules as paths from the repository's root (what mypyc is given)."""


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_manifest(manifest: Path = _MANIFEST) -> None:
    """Record the digest of each compiled module's source (called by setup.py's build)."""
    digests = {module: _digest(_source(module)) for module in COMPILED}
    manifest.write_text(json.dumps(digests, indent=1, sort_keys=True) + "\n")


def forget_manifest(manifest: Path = _MANIFEST) -> None:
    """Drop the record after a failed build (called by setup.py): the manifest is written
    before mypyc and the C compiler run, and a build that stops half way may leave the older
    extensions in place; without a record every compiled module counts as stale, so those are
    never taken for the edited sources (by the tests' gate, nor by setup's `needs_build`)."""
    manifest.unlink(missing_ok=True)


def compiled_modules() -> list[str]:
    """The modules of :data:`COMPILED` that import as extensions (without importing them)."""
    found = []
    for module in COMPILED:
        spec = importlib.util.find_spec(module)
        origin = spec.origin if spec is not None else None
        if origin and origin.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)):
            found.append(module)
    return found


def stale_modules(compiled: list[str] | None = None, manifest: Path = _MANIFEST) -> list[str]:
    """Compiled modules whose source differs from what they were compiled from."""
    compiled = compiled_modules() if compiled is None else compiled
    if not compiled:
        return []
    try:
        built: dict[str, str] = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return compiled  # no record of what they were built from
    return [m for m in compiled if built.get(m) != _digest(_source(m))]


def needs_build() -> bool:
    """Whether setup should compile: a module of :data:`COMPILED` is not, or is stale."""
    compiled = compiled_modules()
    return len(compiled) < len(COMPILED) or bool(stale_modules(compiled))


def remove_build(package_dir: Path = _PACKAGE_DIR) -> list[Path]:
    """Delete a previous build from the source tree (scripts/setup.sh with
    ``SONICWIRE_COMPILE=0``): the compiled modules' extensions, mypyc's shared library beside
    setup.py and the manifest. Left in place they would still win the imports, and the pure
    Python asked for would not be what runs. Returns what was removed."""
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    found: list[Path] = []
    for module in COMPILED:
        folder = package_dir.joinpath(*module.split(".")[2:-1])
        found += folder.glob(module.rsplit(".", 1)[1] + ".*")
    found += package_dir.parents[2].glob("*__mypyc.*")
    removed = [path for path in found if path.name.endswith(suffixes)]
    manifest = package_dir / _MANIFEST.name
    removed += [manifest] if manifest.exists() else []
    for path in removed:
        path.unlink()
    return removed


def describe() -> str:
    """One line for logs and benchmark reports: which path the per-frame code runs."""
    compiled = compiled_modules()
    if not compiled:
        return "pure Python (per-frame modules not compiled)"
    stale = stale_modules()
    text = f"compiled with mypyc ({len(compiled)} of {len(COMPILED)} per-frame modules)"
    return text + (f"; STALE, rebuild: {', '.join(stale)}" if stale else "")
