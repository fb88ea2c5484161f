"""Which event loop a benchmark's probe server runs is the step's choice, passed to each child.

``SONICWIRE_BENCH_EVENT_LOOP`` once set the probe server's default: a value left in the user's
shell moved every probe server of a run onto uvloop, so a run measured another loop than it said.
The loop is observed in the child itself: uvloop's extension is mapped into the process only
when the probe server imported it to run its loop (it is imported for nothing else).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from bench.gateway_ab import VARIANTS, step_config
from bench.procs import Children
from bench.steps import StepConfig, _start_servers

pytestmark = pytest.mark.timeout(120)

_CONFIG = StepConfig(duration_s=2.0, warmup_s=0.5, ramp_s=0.2, drain_s=0.5, quiet_wait_s=0.0)


def _runs_uvloop(pid: int) -> bool:
    return "/uvloop/" in Path(f"/proc/{pid}/maps").read_text()


@pytest.mark.parametrize("target", ["sonicwire", "gateway", "up"])
def test_an_inherited_variable_does_not_choose_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    monkeypatch.setenv("SONICWIRE_BENCH_EVENT_LOOP", "uvloop")
    children = Children(tmp_path)
    try:
        servers, _, _, _ = _start_servers(children, target, 1, False, tmp_path)
        # the first child is the probe server (for "gateway", the gRPC server behind it; the
        # gateway process picks its own loop, `--event-loop auto`)
        assert not _runs_uvloop(servers[0].pid)
    finally:
        children.stop_all()


def test_a_step_that_asks_for_uvloop_runs_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SONICWIRE_BENCH_EVENT_LOOP", raising=False)
    children = Children(tmp_path)
    try:
        servers, _, _, _ = _start_servers(children, "up", 1, False, tmp_path, event_loop="uvloop")
        assert _runs_uvloop(servers[0].pid)
    finally:
        children.stop_all()


def test_gateway_ab_sets_the_loop_of_every_variant() -> None:
    """Only ``up-uvloop`` asks for uvloop; every other variant's step says asyncio, whatever
    the configuration it starts from."""
    start = replace(_CONFIG, event_loop="uvloop")
    loops = {name: step_config(name, start).event_loop for name in VARIANTS}
    assert loops.pop("up-uvloop") == "uvloop"
    assert set(loops.values()) == {"asyncio"}
