"""The CI gates themselves can fail: a planted proto breaking change, an unlisted skip under
CI=true, and the golden-update switch under CI.

Each gate runs for real on a planted case: `scripts/proto_breaking.sh` in a temporary git
repository holding a copy of proto/ (so the baseline computation is exercised, not bypassed), and
pytest in a subprocess on a planted test file with `tests.ci_gates` as its plugin.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "proto_breaking.sh"
PROTO = ROOT / "proto" / "sonicwire" / "v1" / "voice_service.proto"
BUF_BIN = ROOT / "node_modules" / ".bin"


def _git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
    }
    done = subprocess.run(
        ["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True
    )
    return done.stdout


def _breaking(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{BUF_BIN}:{os.environ['PATH']}"}
    env.pop("BREAKING_AGAINST", None)
    return subprocess.run(
        [str(SCRIPT), *args], cwd=repo, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def proto_repo(tmp_path: Path) -> Path:
    """A git repository on branch main: a root commit without proto/, then the real proto/."""
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    (repo / "README").write_text("planted\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "root")
    shutil.copy(ROOT / "buf.yaml", repo / "buf.yaml")
    shutil.copytree(ROOT / "proto", repo / "proto")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "proto")
    return repo


def _edit_proto(repo: Path, old: str, new: str) -> None:
    path = repo / PROTO.relative_to(ROOT)
    text = path.read_text()
    assert old in text, f"planting needs {old!r} in the proto"
    path.write_text(text.replace(old, new, 1))


# A field of the contract (SessionConfig.session_id = 1) renumbered: a wire-breaking change.
FIELD = "string session_id = 1;"
ADDED = FIELD + "\n  // planted, additive\n  string planted_extra = 999;"


def test_planted_breaking_change_fails_the_gate(proto_repo: Path) -> None:
    _edit_proto(proto_repo, FIELD, "string session_id = 999;")
    _git(proto_repo, "commit", "-q", "-am", "renumber a field")
    # A fresh clone of main: the state CI sees.
    clone = proto_repo.parent / "clone"
    subprocess.run(["git", "clone", "-q", str(proto_repo), str(clone)], check=True)
    result = _breaking(clone)
    assert result.returncode == 1, result.stderr
    assert "parent of" in result.stderr  # compared with the commit before the proto change
    assert "session_id" in result.stdout + result.stderr


def test_additive_change_passes_against_a_real_baseline(proto_repo: Path) -> None:
    _edit_proto(proto_repo, FIELD, ADDED)
    _git(proto_repo, "commit", "-q", "-am", "add a field")
    result = _breaking(proto_repo)
    assert result.returncode == 0, result.stderr
    assert "against" in result.stderr and "no breaking change" in result.stderr


def test_release_tag_is_the_baseline_when_there_is_one(proto_repo: Path) -> None:
    _git(proto_repo, "tag", "v1.0.0")
    _edit_proto(proto_repo, FIELD, "string session_id = 999;")
    _git(proto_repo, "commit", "-q", "-am", "break")
    # A later commit under proto/ that breaks nothing: the newest proto commit's parent already
    (proto_repo / "proto" / "note.txt").write_text("later commit\n")
    _git(proto_repo, "add", ".")
    _git(proto_repo, "commit", "-q", "-m", "later proto commit")
    # has the break, so only the release tag as baseline catches it.
    baseline = _breaking(proto_repo, "--baseline")
    assert "last release tag v1.0.0" in baseline.stdout
    result = _breaking(proto_repo)
    assert result.returncode == 1, result.stderr


def test_shallow_clone_fetches_the_history_or_fails_loudly(proto_repo: Path) -> None:
    _edit_proto(proto_repo, FIELD, ADDED)
    _git(proto_repo, "commit", "-q", "-am", "add a field")
    for name in ("reachable", "orphan"):
        clone = proto_repo.parent / name
        subprocess.run(
            ["git", "clone", "-q", "--depth", "1", f"file://{proto_repo}", str(clone)], check=True
        )
    # With its origin reachable, the check deepens the clone and compares for real.
    reachable = _breaking(proto_repo.parent / "reachable")
    assert reachable.returncode == 0, reachable.stderr
    assert "fetched the full history" in reachable.stderr and "against" in reachable.stderr
    # Without it, the baseline is missing: a failure with the reason, never a pass.
    _git(proto_repo.parent / "orphan", "remote", "remove", "origin")
    orphan = _breaking(proto_repo.parent / "orphan")
    assert orphan.returncode == 1
    assert "shallow clone" in orphan.stderr


def test_working_tree_change_is_checked_too(proto_repo: Path) -> None:
    # Uncommitted edits are what a developer runs `make test` on.
    _edit_proto(proto_repo, FIELD, FIELD + "\n  // planted\n  string planted_extra = 999;")
    _git(proto_repo, "commit", "-q", "-am", "add a field")
    _edit_proto(proto_repo, FIELD, "string session_id = 998;")
    assert _breaking(proto_repo).returncode == 1


# --- pytest gates: an unlisted skip and the golden switch under CI ---

PLANTED_TESTS = """
import pytest

def test_runs():
    assert 1 + 1 == 2

def test_listed_skip():
    pytest.skip("listed on purpose")

def test_unlisted_skip():
    pytest.skip("no such library")

@pytest.mark.xfail(reason="known bug")
def test_unlisted_xfail():
    assert False
"""


def _planted_project(tmp_path: Path, allowlist: str) -> Path:
    project = tmp_path / "planted"
    (project / "sub").mkdir(parents=True)
    (project / "pytest.ini").write_text("[pytest]\nci_skip_allowlist = skips.txt\n")
    (project / "skips.txt").write_text(allowlist)
    (project / "test_planted.py").write_text(PLANTED_TESTS)
    # A package that skips at import, as tests/local does without pocketsphinx.
    (project / "sub" / "conftest.py").write_text(
        "import pytest\npytest.importorskip('no_such_module_for_the_gate')\n"
    )
    (project / "sub" / "test_sub.py").write_text("def test_in_skipped_package():\n    pass\n")
    return project


def _pytest(project: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    for name in ("SONICWIRE_UPDATE_GOLDEN", "UPDATE_GOLDEN", "CI"):
        if name not in env:
            full_env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.ci_gates", "-p", "no:cacheprovider",
         "-q", "-rA", *args, str(project)],
        cwd=project, env=full_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


LISTED = "test_planted.py::test_listed_skip | planted: the gate accepts a listed skip\n"


def test_unlisted_skips_fail_under_ci(tmp_path: Path) -> None:
    # A skipped package becomes a collection error: by default that stops the run (and fails it).
    project = _planted_project(tmp_path, LISTED)
    result = _pytest(project, "--continue-on-collection-errors", CI="true")
    out = result.stdout
    assert result.returncode == 1, out
    assert "FAILED test_planted.py::test_unlisted_skip" in out
    assert "FAILED test_planted.py::test_unlisted_xfail" in out
    assert "ERROR sub" in out  # the package skipped at import
    assert "2 failed, 1 passed, 1 skipped, 1 error" in out  # the listed one stays a skip
    assert "PASSED test_planted.py::test_runs" in out
    assert _pytest(project, CI="true").returncode != 0  # default: the collection error stops it


def test_skips_stay_skips_outside_ci(tmp_path: Path) -> None:
    result = _pytest(_planted_project(tmp_path, LISTED))
    assert result.returncode == 0, result.stdout
    assert "1 passed, 3 skipped, 1 xfailed" in result.stdout


def test_allowlist_entry_needs_a_reason(tmp_path: Path) -> None:
    result = _pytest(_planted_project(tmp_path, "test_planted.py::test_listed_skip\n"), CI="true")
    assert result.returncode != 0
    assert "expected '<node id pattern> | <reason>'" in result.stderr


def test_golden_update_switch_is_refused_under_ci(tmp_path: Path) -> None:
    project = _planted_project(tmp_path, LISTED)
    result = _pytest(project, CI="true", SONICWIRE_UPDATE_GOLDEN="1")
    assert result.returncode != 0
    assert "SONICWIRE_UPDATE_GOLDEN is set under CI" in result.stderr
    # Outside CI the switch is the developer's to use.
    assert _pytest(project, SONICWIRE_UPDATE_GOLDEN="1").returncode == 0


def test_retired_golden_variable_is_refused(tmp_path: Path) -> None:
    result = _pytest(_planted_project(tmp_path, LISTED), UPDATE_GOLDEN="1")
    assert result.returncode != 0
    assert "UPDATE_GOLDEN is no longer read" in result.stderr


# --- the native build gates (sonicwire.server.native): this repository's tests only ---


def test_the_tests_refuse_a_stale_build(monkeypatch: pytest.MonkeyPatch) -> None:
    from sonicwire.server import native
    from tests import ci_gates

    monkeypatch.setattr(native, "stale_modules", lambda *args: ["sonicwire.server.core.session"])
    with pytest.raises(pytest.UsageError, match="compiled modules older than their sources"):
        ci_gates._check_native_build()


def test_ci_refuses_an_uncompiled_build(monkeypatch: pytest.MonkeyPatch) -> None:
    from sonicwire.server import native
    from tests import ci_gates

    monkeypatch.setattr(native, "stale_modules", lambda *args: [])
    monkeypatch.setattr(native, "needs_build", lambda: True)
    monkeypatch.delenv("CI", raising=False)
    ci_gates._check_native_build()  # outside CI a pure Python install runs
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.UsageError, match="CI=true but the per-frame code is not compiled"):
        ci_gates._check_native_build()


def test_the_gates_on_a_planted_project_run_on_a_pure_python_install(tmp_path: Path) -> None:
    # the skip gates are tried on planted projects (above); on a pure Python install
    # (SONICWIRE_COMPILE=0) the build gate must not stop those runs before they test anything
    from tests.pure_python import pure_python_env

    pure = pure_python_env(tmp_path / "pure")["PYTHONPATH"]
    project = _planted_project(tmp_path, LISTED)
    result = _pytest(project, "--continue-on-collection-errors", CI="true", PYTHONPATH=pure)
    assert "2 failed, 1 passed, 1 skipped, 1 error" in result.stdout, result.stderr[-2000:]
