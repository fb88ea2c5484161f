"""The TypeScript and Go clients' own unit tests (scripted streams, no network), run by pytest
so that `make test` runs them: `node --test clients/typescript/test/` and
`scripts/go test sonicwire.dev/go/sonicwire` (Debian's Go, GOPATH mode, offline)."""

from __future__ import annotations

import subprocess

from .conftest import GO, ROOT


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )


def test_typescript_unit_tests() -> None:
    result = _run(["node", "--test", "clients/typescript/test/"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# fail 0" in result.stdout and "# pass 0" not in result.stdout, result.stdout


def test_go_unit_tests() -> None:
    result = _run([str(GO), "test", "-count=1", "-v", "sonicwire.dev/go/sonicwire"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("--- PASS") >= 6 and "--- FAIL" not in result.stdout, result.stdout
