"""Test code stays out of the product's import path (issue 21, code health).

Test and benchmark helpers live in ``sonicwire.server.testing`` (the local Bedrock endpoint, a
running server, the local engine's harness). The server, the gateway and the client never import
it, so a deployment never loads test code, and a helper can need test-only dependencies (the
``testing`` extra, espeak-ng) without the product needing them.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = (
    ROOT / "server" / "sonicwire" / "server",
    ROOT / "gateway_ws" / "sonicwire" / "gateway",
    ROOT / "clients" / "python" / "sonicwire" / "client",
)
TESTING = ROOT / "server" / "sonicwire" / "server" / "testing"


def _module_name(path: Path) -> str:
    for root in PRODUCT:
        if path.is_relative_to(root):
            parts = ["sonicwire", root.name, *path.relative_to(root).with_suffix("").parts]
            return ".".join(p for p in parts if p != "__init__")
    raise ValueError(path)


def _imports(path: Path, source: str | None = None) -> list[str]:
    """Absolute names of the modules ``path`` imports (relative imports resolved); ``source``
    stands in for the file's text."""
    tree = ast.parse(path.read_text() if source is None else source, str(path))
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            names += [module, *(f"{module}.{alias.name}" for alias in node.names)]
    return names


def product_files() -> list[Path]:
    files = []
    for root in PRODUCT:
        files += [p for p in root.rglob("*.py") if not p.is_relative_to(TESTING)]
    return sorted(files)


def test_no_product_module_imports_the_testing_package() -> None:
    offenders = {
        str(path.relative_to(ROOT)): name
        for path in product_files()
        for name in _imports(path)
        if name == "sonicwire.server.testing" or name.startswith("sonicwire.server.testing.")
    }
    assert offenders == {}


def test_the_check_sees_relative_and_absolute_imports() -> None:
    # The scan itself must be able to fail: both spellings of an import of the package count.
    module = ROOT / "server" / "sonicwire" / "server" / "backends" / "local" / "any.py"
    source = "from ...testing import local_harness\nimport sonicwire.server.testing\n"
    names = _imports(module, source)
    assert "sonicwire.server.testing.local_harness" in names
    assert "sonicwire.server.testing" in names


def test_the_local_engine_package_has_no_test_harness() -> None:
    local = ROOT / "server" / "sonicwire" / "server" / "backends" / "local"
    assert not (local / "harness.py").exists()
    assert (TESTING / "local_harness.py").exists()


def test_no_test_helper_module_outside_the_testing_package() -> None:
    # Helpers for tests (recorders, fake clocks, harnesses) live in the testing package only:
    # a module named testing/harness elsewhere in the product would ship test code again.
    stray = [
        str(path.relative_to(ROOT))
        for path in product_files()
        if path.stem in ("testing", "harness", "fakes", "fixtures")
    ]
    assert stray == []
