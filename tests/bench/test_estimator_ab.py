"""bench.estimator_ab: its cases run and report what the closing notes quote (no timing)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import estimator_ab
from sonicwire.server import native
from tests.pure_python import ROOT, pure_python_env

pytestmark = pytest.mark.skipif(
    not Path("/usr/share/sounds/alsa/Front_Center.wav").exists(),
    reason="needs the alsa-utils voice samples (installed by scripts/setup.sh)",
)


def test_unknown_cases_are_refused() -> None:
    with pytest.raises(SystemExit):
        estimator_ab.main(["--cases", "erle,nonsense"])


def _worker(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "bench.estimator_ab", "--worker", "--cases", "echo_backend"]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_the_echo_backend_case_reports_locks_and_estimator_counts(tmp_path: Path) -> None:
    # in a child on pure Python: the counts come from patching DelayEstimator.update, which
    # a compiled front end would not call (sonicwire.server.native)
    run = _worker(pure_python_env(tmp_path))
    assert run.returncode == 0, run.stderr[-2000:]
    lines = [json.loads(x) for x in run.stdout.splitlines() if x.startswith("{")]
    assert [x["case"] for x in lines] == ["echo_backend"]
    result, counts = lines[0]["result"], lines[0]["estimator"]
    assert result["lines"] == 8
    # the user repeating what the far end played is (nearly) never taken for echo
    assert result["locked"] <= 1 and result["realignments"] <= 1
    assert 0 < counts["blocks"] <= counts["updates"]


def test_a_compiled_estimator_is_refused_rather_than_counted_as_zero() -> None:
    if "sonicwire.server.dsp.delay" not in native.compiled_modules():
        pytest.skip("pure Python install: nothing compiled to refuse")
    run = _worker(dict(os.environ))
    assert run.returncode != 0
    assert "compiled" in run.stderr
