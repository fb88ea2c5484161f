"""Sampling profiles of a server under load with py-spy, reduced to the top hot spots."""

from __future__ import annotations

import re
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Any

__all__ = ["py_spy_argv", "py_spy_path", "summarise_raw"]

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]+)(?::\d+)?\)$")


def py_spy_path() -> str | None:
    """The py-spy binary next to this interpreter, or on PATH."""
    local = Path(sys.executable).with_name("py-spy")
    if local.exists():
        return str(local)
    return shutil.which("py-spy")


def py_spy_argv(binary: str, pid: int, duration_s: float, out: Path, rate: int = 200) -> list[str]:
    # --nonblocking reads the target's memory without pausing it, so the profile barely
    # disturbs the load it measures; --native would add C frames but pauses the process.
    return [
        binary,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(1, round(duration_s))),
        "--rate",
        str(rate),
        "--format",
        "raw",
        "--output",
        str(out),
        "--nonblocking",
    ]


def _short(frame: str, root: str) -> str:
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match.group("file")
    for marker in ("/site-packages/", root + "/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    else:
        path = Path(path).name
    return f"{match.group('func')} ({path})"


def summarise_raw(raw: Path, root: str, top: int = 15) -> dict[str, Any]:
    """Top functions by self and by inclusive samples from py-spy's collapsed-stack output."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(f, root) for f in stack.split(";") if f.strip()]
        # the first entry is the thread ("process ... thread ..."); skip non-frames
        frames = [f for f in frames if "(" in f]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count

    def table(counter: Counter[str]) -> list[dict[str, Any]]:
        return [
            {"function": name, "samples": n, "percent": 100.0 * n / total}
            for name, n in counter.most_common(top)
        ]

    return {"samples": total, "self": table(own), "inclusive": table(inclusive)}
