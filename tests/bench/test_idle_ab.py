"""bench.idle_ab never runs a "spin" step without its spinners."""

from __future__ import annotations

import pytest

from bench.idle_ab import _spinners


def test_a_spinner_that_cannot_start_stops_the_measurement() -> None:
    # taskset refuses a CPU the machine does not have: the step would be a plain one.
    with pytest.raises(SystemExit, match="did not start"):
        _spinners(["4095"])
