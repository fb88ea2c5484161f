"""bench.estimator_ab: its cases run and report what the closing notes quote (no timing)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import estimator_ab

pytestmark = pytest.mark.skipif(
    not Path("/usr/share/sounds/alsa/Front_Center.wav").exists(),
    reason="needs the alsa-utils voice samples (installed by scripts/setup.sh)",
)


def test_unknown_cases_are_refused() -> None:
    with pytest.raises(SystemExit):
        estimator_ab.main(["--cases", "erle,nonsense"])


def test_the_echo_backend_case_reports_locks_and_estimator_counts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    estimator_ab._run_cases(["echo_backend"])
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert [x["case"] for x in lines] == ["echo_backend"]
    result, counts = lines[0]["result"], lines[0]["estimator"]
    assert result["lines"] == 8
    # the user repeating what the far end played is (nearly) never taken for echo
    assert result["locked"] <= 1 and result["realignments"] <= 1
    assert 0 < counts["blocks"] <= counts["updates"]
