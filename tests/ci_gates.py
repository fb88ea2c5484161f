"""Pytest hooks that make CI able to fail where a local run may be lenient.

Under CI (``CI=true``, as ``.ci/run`` and every hosted CI set it):

- a skipped test (or a skipped module or package: ``pytest.importorskip`` in a conftest) is a
  failure unless its node id matches an entry of the allow-list file (``tests/ci_skips.txt``,
  ini option ``ci_skip_allowlist``), and each entry must give its reason. A skip on a developer's
  machine (no espeak-ng, say) stays a skip: CI is where coverage is counted.
- ``SONICWIRE_UPDATE_GOLDEN`` set is a usage error: golden tests would rewrite their files and pass.

Everywhere, the retired golden variable ``UPDATE_GOLDEN`` is a usage error, so nobody sets the
old name and believes the files were (or were not) rewritten; and so is a compiled module built
from an older source (``sonicwire.server.native.stale_modules``): the tests would run the build,
not the code under test. Under CI the per-frame modules must be compiled at all, as
scripts/setup.sh builds them: CI tests what ships. (Those two only for this repository's own
tests: a planted project, below, is not about the build.)

``tests/conftest.py`` imports these hooks; ``tests/ops/test_ci_gates.py`` runs pytest on planted
tests to show each gate fails.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sonicwire.server import native
from tests.golden import RETIRED_VARS, UPDATE_GOLDEN_VAR, updating_golden

__all__ = [
    "AllowedSkip",
    "in_ci",
    "load_allowlist",
    "pytest_addoption",
    "pytest_configure",
    "pytest_make_collect_report",
    "pytest_runtest_makereport",
]

DEFAULT_ALLOWLIST = "tests/ci_skips.txt"
_REPOSITORY = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class AllowedSkip:
    """One allow-list entry: a node id pattern (fnmatch) and why skipping it in CI is right."""

    pattern: str
    reason: str

    def matches(self, nodeid: str) -> bool:
        return fnmatch.fnmatchcase(nodeid, self.pattern)


def in_ci() -> bool:
    """True under CI: the conventional ``CI`` variable set to a true value."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def load_allowlist(path: Path) -> list[AllowedSkip]:
    """Parse ``<node id pattern> | <reason>`` lines; ``#`` comments and blank lines are ignored.

    An entry without a reason is an error, not a silent allowance.
    """
    if not path.exists():
        return []
    entries = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pattern, sep, reason = (part.strip() for part in line.partition("|"))
        if not sep or not pattern or not reason:
            raise pytest.UsageError(
                f"{path}:{number}: expected '<node id pattern> | <reason>', got {raw!r}"
            )
        entries.append(AllowedSkip(pattern, reason))
    return entries


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "ci_skip_allowlist",
        "file of '<node id pattern> | <reason>' lines: the skips CI (CI=true) accepts",
        default=DEFAULT_ALLOWLIST,
    )


_ALLOWLIST = pytest.StashKey[list[AllowedSkip]]()


def pytest_configure(config: pytest.Config) -> None:
    for name in RETIRED_VARS:
        if name in os.environ:
            raise pytest.UsageError(
                f"{name} is no longer read; the golden-update switch is {UPDATE_GOLDEN_VAR}=1"
            )
    if in_ci() and updating_golden():
        raise pytest.UsageError(
            f"{UPDATE_GOLDEN_VAR} is set under CI: golden tests would rewrite their files and "
            "pass whatever the code does; unset it"
        )
    if Path(config.rootpath).resolve() == _REPOSITORY:
        _check_native_build()  # this repository's build; not a project these hooks are tried on
    path = Path(config.rootpath) / str(config.getini("ci_skip_allowlist"))
    config.stash[_ALLOWLIST] = load_allowlist(path)


def _check_native_build() -> None:
    stale = native.stale_modules()
    if stale:
        raise pytest.UsageError(
            f"compiled modules older than their sources: {', '.join(stale)}; rebuild them "
            "(scripts/setup.sh, or `make clean` for pure Python)"
        )
    if in_ci() and native.needs_build():
        raise pytest.UsageError(
            f"CI=true but the per-frame code is not compiled ({native.describe()}): "
            "scripts/setup.sh compiles it, and CI tests what ships"
        )


def _unlisted_skip(config: pytest.Config, nodeid: str, reason: str) -> str | None:
    """The failure message for a skip CI does not accept, or None when it is allowed."""
    if not in_ci():
        return None
    if any(entry.matches(nodeid) for entry in config.stash.get(_ALLOWLIST, [])):
        return None
    allowlist = config.getini("ci_skip_allowlist")
    return (
        f"skipped under CI=true ({reason}); a skip hides coverage, so in CI it fails unless "
        f"{allowlist} lists it as '<node id pattern> | <reason>'"
    )


def _skip_reason(longrepr: object) -> str:
    # A skip's longrepr is (file, line, "Skipped: reason"); anything else is shown as is.
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.skipped:
        xfail = getattr(report, "wasxfail", None)
        reason = f"xfail: {xfail}" if xfail is not None else _skip_reason(report.longrepr)
        message = _unlisted_skip(item.config, report.nodeid, reason)
        if message is not None:
            report.outcome = "failed"
            report.longrepr = message
            if xfail is not None:
                del report.wasxfail
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    # A module or package that skips at import (importorskip) never yields test items: its
    # collect report is the only trace, so the gate has to act here too.
    report = yield
    if report.skipped:
        message = _unlisted_skip(collector.config, report.nodeid, _skip_reason(report.longrepr))
        if message is not None:
            report.outcome = "failed"
            report.longrepr = message
    return report
