"""bench.cpu_ab: the floor line of an interleaved A/B (arithmetic, not speed)."""

from __future__ import annotations

from bench.cpu_ab import floor_summary


def test_floor_summary_states_each_tree_above_kernels_plus_bare_echo() -> None:
    line = floor_summary({"bare": 4.0, "before": 10.25, "after": 9.5}, kernels=3.5)
    assert line.startswith("floor 3.50 (kernels) + 4.00 (bare echo) = 7.50 ms/stream-s")
    assert "before 10.25 (+2.75 above)" in line
    assert "after 9.50 (+2.00 above)" in line


def test_floor_summary_without_a_bare_echo_says_so() -> None:
    line = floor_summary({"before": 10.0, "after": None}, kernels=3.5)
    assert "no bare-echo measurement" in line
    assert "above" not in line


def test_floor_summary_skips_a_tree_without_a_measurement() -> None:
    line = floor_summary({"bare": 4.0, "before": None, "after": 8.0}, kernels=3.0)
    assert "before" not in line
    assert "after 8.00 (+1.00 above)" in line
