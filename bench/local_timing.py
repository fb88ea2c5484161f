"""Per-turn timing of the local engine for `bench.local_eval`: wall-clock marks and CPU time.

A turn's marks (``time.perf_counter``): the end of the user's speech (the frame that holds it
is sent), the VAD's stop marker (sent), the engine's early end of turn (`UserTurnEnded`
received, if any) and the first assistant audio (received). The user's turn ends at the early
end or at the marker, whichever comes first; the engine's latency is counted from there.

CPU time: the machine is shared, so wall-clock figures grow with its load; the CPU time the
engine spends on a turn is much less sensitive to it. `engine_cpu_s` sums this process's CPU
(the event loop, the synthesis threads; the bench's own feeding is a small part) and that of
its child processes (the recogniser's worker processes), read from /proc (Linux).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["TurnMarks", "engine_cpu_s", "latency_summary", "percentiles"]

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _children_cpu_s() -> float:
    me = os.getpid()
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended meanwhile
        # after the command: state ppid ... utime (11th) stime (12th), in clock ticks
        if int(fields[1]) == me:
            total += int(fields[11]) + int(fields[12])
    return total / _TICK


def engine_cpu_s() -> float:
    """CPU seconds used so far by this process and its children (see the module docstring)."""
    return time.process_time() + _children_cpu_s()


@dataclass
class TurnMarks:
    """One turn's marks (perf_counter seconds; None: did not happen) and CPU seconds."""

    end: float | None = None
    stop: float | None = None
    turn_end: float | None = None
    audio: float | None = None
    cpu_start: float = 0.0
    cpu_end: float = 0.0
    #: the early end came while the last frame sent was voiced (the core would refuse it)
    early_while_voiced: bool = False

    @property
    def ended(self) -> float | None:
        """When the user's turn ended: the early end or the stop marker, the first."""
        marks = [m for m in (self.turn_end, self.stop) if m is not None]
        return min(marks) if marks else None

    @property
    def early(self) -> bool:
        """The engine ended the turn before the stop marker."""
        return self.turn_end is not None and (self.stop is None or self.turn_end < self.stop)

    def _ms(self, start: float | None, end: float | None) -> float | None:
        return None if start is None or end is None else (end - start) * 1000

    @property
    def engine_ms(self) -> float | None:
        """End of the user's turn -> first assistant audio."""
        return self._ms(self.ended, self.audio)

    @property
    def end_to_end_ms(self) -> float | None:
        """End of speech -> first assistant audio (the issue's target)."""
        return self._ms(self.end, self.audio)

    @property
    def turn_end_ms(self) -> float | None:
        """End of speech -> end of the user's turn."""
        return self._ms(self.end, self.ended)

    @property
    def stop_wait_ms(self) -> float | None:
        """End of speech -> the VAD's stop marker."""
        return self._ms(self.end, self.stop)

    @property
    def cpu_ms(self) -> float:
        return (self.cpu_end - self.cpu_start) * 1000


def percentiles(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]

    return {
        "p50": round(pick(0.5), 1),
        "p95": round(pick(0.95), 1),
        "mean": round(statistics.fmean(ordered), 1),
        "max": round(ordered[-1], 1),
        "n": len(ordered),
    }


def latency_summary(timed: Sequence[tuple[str, TurnMarks]]) -> dict[str, Any]:
    """Percentiles of the turns' timing (`local_timing.TurnMarks`), overall and by intent;
    "engine" counts from the end of the user's turn (early end or stop marker)."""

    def stats(values: Sequence[float | None]) -> dict[str, float]:
        return percentiles([v for v in values if v is not None])

    intents = dict.fromkeys(intent for intent, _ in timed)
    of = {i: [m for k, m in timed if k == i] for i in intents}
    marks = [m for _, m in timed]
    return {
        "engine": stats([m.engine_ms for m in marks]),
        "end_to_end": stats([m.end_to_end_ms for m in marks]),
        "stop_wait": stats([m.stop_wait_ms for m in marks]),
        "turn_end": stats([m.turn_end_ms for m in marks]),
        "engine_cpu": stats([m.cpu_ms for m in marks]),
        "early_end_turns": sum(m.early for m in marks),
        "early_end_while_voiced": sum(m.early and m.early_while_voiced for m in marks),
        "engine_by_intent": {i: stats([m.engine_ms for m in ms]) for i, ms in of.items()},
        "end_to_end_by_intent": {i: stats([m.end_to_end_ms for m in ms]) for i, ms in of.items()},
        "cpu_by_intent": {i: stats([m.cpu_ms for m in ms]) for i, ms in of.items()},
        "early_end_by_intent": {i: sum(m.early for m in ms) for i, ms in of.items()},
    }
