"""bench.driver_costs runs its four cases to the end (the figures themselves are not checked:
they are CPU times of this machine)."""

from __future__ import annotations

from bench.driver_costs import measure


def test_every_case_runs_and_is_timed_per_item() -> None:
    us = measure(messages=300, repeats=1)
    assert set(us) == {"direct", "hop", "decode", "driver"}
    assert all(value > 0 for value in us.values())
