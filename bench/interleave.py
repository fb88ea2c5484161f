"""Interleaved measurements: every arm once per round, the order reversed every other round.

On a shared machine a figure from one minute is not comparable with one from the next (the
floor moved by 1.8x within minutes, docs/server_cpu.md): arms compared with each other must be
measured alternately, so that a drift in the machine's load falls on each of them alike. Used by
``bench.cpu_ab``, ``bench.idle_ab`` and the paired floor (``bench.paired_floor``).
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["Arm", "cut_short", "interleave", "spread", "try_line"]

#: (label, measure): ``measure(load1)`` takes one measurement and returns what to keep of it.
Arm = tuple[str, Callable[[float], dict[str, Any]]]


def try_line(entry: dict[str, Any]) -> str:
    """One printed line per try: its CPU, p99, other load and verdict."""
    cpu, p99 = entry.get("cpu_ms_per_stream_s"), entry.get("p99_ms")
    return (
        f"{entry['label']:6} round {entry['round']}: "
        f"{cpu if cpu is None else round(cpu, 2)} ms/stream-s"
        f"  p99 {p99 if p99 is None else round(p99, 2)} ms"
        f"  other {round(entry.get('other_load_cores') or 0.0, 2)} cores"
        f"  load1 {entry['loadavg_1m']:.2f}  {'pass' if entry.get('pass') else 'FAIL'}"
    )


def interleave(
    rounds: int,
    arms: Sequence[Arm],
    *,
    keep_going: Callable[[], bool] | None = None,
    show: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Measure each arm once per round (reversed order every other round); one entry per try
    with its ``label``, ``round`` and the 1-minute load average at its start. ``keep_going`` is
    asked before each round (a time budget): a round is never cut in half."""
    tries: list[dict[str, Any]] = []
    for i in range(rounds):
        if keep_going is not None and not keep_going():
            break
        for label, measure in arms if i % 2 == 0 else arms[::-1]:
            load = os.getloadavg()[0]
            entry = {"label": label, "round": i + 1, "loadavg_1m": load, **measure(load)}
            tries.append(entry)
            if show is not None:
                show(entry)
    return tries


def spread(values: Sequence[float | None]) -> tuple[float, float, float] | None:
    """(median, min, max) of the measured values; None when there are none."""
    got = [v for v in values if v is not None]
    return (statistics.median(got), min(got), max(got)) if got else None


def cut_short(ran: int, planned: int | None) -> str | None:
    """Why rounds cannot be judged although they were measured: fewer ran than were planned
    (the run's time budget stopped ``interleave`` between rounds). A figure over the rounds
    that ran is shown, never judged: a median of 2 rounds is not the median of 4 a rule was
    written for (it is their mean: one drifted round moves it by half its drift). None when
    every planned round ran (or the run recorded no plan: it predates ``rounds_planned``)."""
    if planned is None or ran >= planned:
        return None
    return f"cut short ({ran} of {planned} round{'' if planned == 1 else 's'})"
