"""Echo through the real server at device delays: a short subset of ``bench/echo_field.py``.

``python -m bench.echo_field --cases ...``: one ``sonicwire serve --backend echo`` child
process, three scripted conversations at once through the Python client with the simulated
device (a room, a device delay the client cannot see, a second voice barging in): a control
with no echo at the microphone, 450 ms with ``PlaybackUpdate`` reports, 800 ms without. The
assertions count events (self-interruptions, self-triggered user turns); no test here asserts
a time.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from bench.echo_field import Case
from bench.procs import ROOT

pytestmark = pytest.mark.timeout(480)

CONTROL = Case(0, reports=True, echo=False)
DELAYED = {
    "450ms-reports": Case(450, reports=True),
    "800ms-no-reports": Case(800, reports=False),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    # The bench's own command in a child process: it runs the client (and the server it
    # starts) in the real-time class where permitted, as a device's audio thread, so a busy
    # machine does not turn the microphone into bursts; a run disturbed anyway is retried.
    out = tmp_path_factory.mktemp("echo-field") / "field.json"
    names = ",".join(c.name for c in (CONTROL, *DELAYED.values()))
    subprocess.run(
        [sys.executable, "-m", "bench.echo_field", "--cases", names, "--concurrency", "3",
         "--out", str(out)],
        cwd=ROOT, check=True, timeout=420, capture_output=True,
    )  # fmt: skip
    report = json.loads(out.read_text())
    return {r["name"]: r for r in report["runs"]}


def _valid(run: dict[str, Any]) -> dict[str, Any]:
    if "error" in run:
        raise RuntimeError(f"{run['name']} did not run: {run['error']}")
    if not run["barge_in"]["placed"] or run["reply1_turn"] is None:
        raise RuntimeError(f"{run['name']}: the script did not reach its barge-in: {run}")
    return run


def test_a_conversation_without_echo_is_clean(runs: dict[str, dict[str, Any]]) -> None:
    # The instrument itself: with no echo the script gives exactly its three user turns (no
    # VAD start off its speech), the first reply whole, one Interruption and it is the
    # barge-in's.
    run = _valid(runs[CONTROL.name])
    assert run["self_interruptions"] == 0
    assert run["self_triggered_turns"] == 0
    assert run["user_turns"] == run["spoken_utterances"] == 3
    assert run["barge_in"]["detected"]
    assert run["utterance_split_interruptions"] == 0
    assert 0.9 <= run["reply_ratio"] <= 1.1


@pytest.mark.parametrize("label", list(DELAYED))
def test_no_self_interruption_at_device_delay(runs: dict[str, dict[str, Any]], label: str) -> None:
    # Issue 13: the echo of a reply at a device delay the client cannot see must neither
    # interrupt the assistant nor come back as a user turn.
    run = _valid(runs[DELAYED[label].name])
    assert (run["self_interruptions"], run["self_triggered_turns"]) == (0, 0), run["events"]
