"""Child processes of the benchmark: start, wait until ready, measure, and always stop.

Every process is started through a `Children` registry, in its own session, with its output in
a log file under the run's scratch directory. `Children.stop_all` (also run at interpreter exit
and on SIGTERM/SIGINT by ``bench.run``) ends each one it started, by pid: SIGTERM, a grace, then
SIGKILL.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

__all__ = [
    "Child",
    "ChildFailed",
    "Children",
    "busy_cores",
    "other_realtime_processes",
    "wait_no_other_realtime",
    "wait_quiet",
]

ROOT = Path(__file__).resolve().parent.parent
_READY = re.compile(
    r"(?:bench-server: READY |sonicwire: gRPC on |sonicwire gateway: open https?://)"
    r"([\w.\[\]:-]+?):(\d+)\b"
)
PYTHON = sys.executable


def busy_cores(interval_s: float = 0.5) -> float:
    """Cores' worth of CPU the whole machine used over ``interval_s`` (a blocking sample)."""
    return float(psutil.cpu_percent(interval=interval_s)) / 100.0 * (psutil.cpu_count() or 1)


def other_realtime_processes() -> list[str]:
    """User processes outside this benchmark in a real-time class (SCHED_RR/FIFO), e.g. another
    benchmark on a shared machine: they compete with the measured processes on equal terms,
    which the real-time class (``--priority realtime``) cannot shield them from."""
    ours = {os.getpid()} | {p.pid for p in psutil.Process().children(recursive=True)}
    found = []
    for proc in psutil.process_iter(["pid", "ppid", "name", "cmdline"]):
        info = proc.info
        if info["pid"] in ours or info["ppid"] in (0, 2) or not info["cmdline"]:
            continue  # ours, or a kernel thread (migration/N and the like are FIFO)
        with contextlib.suppress(OSError):
            if os.sched_getscheduler(info["pid"]) in (os.SCHED_RR, os.SCHED_FIFO):
                found.append(f"{info['pid']}:{info['name']}")
    return found


def wait_quiet(max_wait_s: float, threshold_cores: float = 0.5) -> float:
    """Wait (at most ``max_wait_s``) for the machine to be nearly idle; return the last load."""
    deadline = time.monotonic() + max_wait_s
    load = busy_cores()
    while load > threshold_cores and time.monotonic() < deadline:
        load = busy_cores()
    return load


def wait_no_other_realtime(max_wait_s: float) -> list[str]:
    """Wait (at most ``max_wait_s``) until no other process runs in a real-time class; return
    the ones still running."""
    deadline = time.monotonic() + max_wait_s
    others = other_realtime_processes()
    while others and time.monotonic() < deadline:
        time.sleep(0.5)
        others = other_realtime_processes()
    return others


class ChildFailed(RuntimeError):
    """A child did not become ready, or exited with an error; the message has its log tail."""


@dataclass
class Child:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    host: str = ""
    port: int = 0

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def target(self) -> str:
        return f"{self.host}:{self.port}"

    def rss(self) -> int:
        return int(psutil.Process(self.pid).memory_info().rss)

    def cpu_seconds(self) -> float:
        t = psutil.Process(self.pid).cpu_times()
        return float(t.user + t.system)

    def log_tail(self, lines: int = 15) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""


class Children:
    """Registry of the benchmark's child processes."""

    def __init__(self, scratch: Path, *, realtime: bool = False) -> None:
        self.scratch = scratch
        self.realtime = realtime
        self._live: list[Child] = []
        self._count = 0

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        ready_timeout_s: float = 60.0,
        wait_ready: bool = True,
        nice: int = -10,
        measured: bool = True,
    ) -> Child:
        """Start ``argv``; if ``wait_ready``, wait for its READY line (raises `ChildFailed`).

        ``measured`` processes (servers, load generator) run at nice ``nice``, or in the
        round-robin real-time class when the registry is ``realtime``.
        """
        self._count += 1
        log = self.scratch / f"{self._count:03d}-{name}.log"
        full_env = dict(os.environ)
        full_env.update(env or {})
        full_env.setdefault("PYTHONUNBUFFERED", "1")
        with open(log, "wb") as out:
            popen = subprocess.Popen(
                list(argv),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=full_env,
                cwd=ROOT,
                start_new_session=True,
            )
        child = Child(name, popen, log)
        self._live.append(child)
        # Other work may share this machine: a higher priority keeps it from disturbing the
        # measured processes as much (it changes no CPU time, only who waits). Threads the
        # child starts later inherit the setting.
        with contextlib.suppress(psutil.Error, OSError):
            if measured and self.realtime:
                os.sched_setscheduler(popen.pid, os.SCHED_RR, os.sched_param(1))
            else:
                psutil.Process(popen.pid).nice(nice if measured else 0)
        if wait_ready:
            self._wait_ready(child, ready_timeout_s)
        return child

    def _wait_ready(self, child: Child, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                match = _READY.search(child.log.read_text(errors="replace"))
                if match:
                    child.host, child.port = match.group(1), int(match.group(2))
                    return
            if child.popen.poll() is not None:
                raise ChildFailed(
                    f"{child.name} exited with {child.popen.returncode}:\n{child.log_tail()}"
                )
            time.sleep(0.05)
        self.stop(child)
        raise ChildFailed(f"{child.name} not ready after {timeout_s:.0f} s:\n{child.log_tail()}")

    def stop(self, child: Child, grace_s: float = 8.0) -> int | None:
        """SIGTERM, wait up to ``grace_s``, then SIGKILL. Returns the exit code."""
        if child.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                child.popen.send_signal(signal.SIGTERM)
            try:
                child.popen.wait(grace_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    child.popen.kill()
                child.popen.wait(5)
        with contextlib.suppress(ValueError):
            self._live.remove(child)
        return child.popen.returncode

    def stop_all(self) -> None:
        for child in list(self._live):
            self.stop(child, grace_s=3.0)

    def run_json(
        self, name: str, argv: Sequence[str], out: Path, timeout_s: float
    ) -> dict[str, Any]:
        """Run ``argv`` to completion (bounded) and return the JSON it wrote to ``out``."""
        child = self.start(name, argv, wait_ready=False)
        try:
            code = child.popen.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.stop(child, grace_s=2.0)
            raise ChildFailed(
                f"{name} did not finish in {timeout_s:.0f} s:\n{child.log_tail()}"
            ) from None
        self.stop(child)
        if code != 0 or not out.exists():
            raise ChildFailed(f"{name} exited with {code}:\n{child.log_tail()}")
        result: dict[str, Any] = json.loads(out.read_text())
        return result
