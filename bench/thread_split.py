"""CPU per stream-second of one server process, split by thread, at one N.

    python -m bench.thread_split --kind sonicwire|bare-echo [--echo-every 5] [--n 60]
        [--window 6] [--json]

Starts ``bench.probe_server`` pinned to CPU 1, drives it with ``bench.loadgen`` pinned to CPU 0
and reads every thread's user and system CPU from ``/proc/<pid>/task`` at the start and the
end of a window inside the measured part of the run: the asyncio loop's thread ("main") and
gRPC C-core's threads (``event_engine``, and the poller, a thread named after the process).
No real-time class and no quiet wait (``bench.cpu_ab`` has those): run the kinds interleaved
and compare within one run. ``--kind bare-echo --echo-every 5`` is the bare echo with
Sonicwire's message pattern (one write per five reads, the same bytes): docs/server_cpu.md,
"Server minus in process".
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["main", "thread_times"]

ROOT = Path(__file__).resolve().parent.parent
_TICK = os.sysconf("SC_CLK_TCK")


def thread_times(pid: int) -> dict[str, tuple[str, float, float]]:
    """Per thread id: (name, user seconds, system seconds) so far."""
    times = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except OSError:
            continue  # the thread ended meanwhile
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        times[tid] = (name, int(fields[11]) / _TICK, int(fields[12]) / _TICK)
    return times


def measure(kind: str, n: int, window_s: float, every: int) -> dict[str, Any]:
    scratch = Path(tempfile.mkdtemp(prefix="sonicwire-split-"))
    server_argv = [sys.executable, "-m", "bench.probe_server", "--kind", kind, "--port", "0"]
    server_argv += ["--probe-out", str(scratch / "probe.npz"), "--echo-every", str(every)]
    server = subprocess.Popen(
        ["taskset", "-c", "1", *server_argv],
        stdout=subprocess.PIPE,
        stderr=(scratch / "server.log").open("w"),
        cwd=ROOT,
        text=True,
        start_new_session=True,
    )
    load: subprocess.Popen[bytes] | None = None
    try:
        port = None
        assert server.stdout is not None
        for line in server.stdout:
            if match := re.search(r"READY 127\.0\.0\.1:(\d+)", line):
                port = match.group(1)
                break
        if port is None:
            raise RuntimeError(f"server did not start: {(scratch / 'server.log').read_text()}")
        ramp_s, warmup_s = 1.0, 2.0
        load_argv = [sys.executable, "-m", "bench.loadgen", "--mode", "grpc"]
        load_argv += ["--target", f"127.0.0.1:{port}", "--n", str(n)]
        load_argv += ["--duration", str(window_s + 4.0), "--warmup", str(warmup_s)]
        load_argv += ["--ramp", str(ramp_s), "--drain", "0.5", "--out", str(scratch / "l.json")]
        load_argv += ["--times-out", str(scratch / "t.npz"), "--cpus", "0"]
        load_argv += ["--server-pid", str(server.pid)]
        load = subprocess.Popen(
            load_argv,
            cwd=ROOT,
            stdout=(scratch / "load.log").open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        time.sleep(ramp_s + warmup_s + 2.0)  # + the generator's start-up
        before, t0 = thread_times(server.pid), time.monotonic()
        time.sleep(window_s)
        after, t1 = thread_times(server.pid), time.monotonic()
        load.wait(window_s + 60)
    finally:
        for proc in (load, server):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)
    stream_s = (t1 - t0) * n
    threads: dict[str, dict[str, float]] = {}
    for tid, (name, user, system) in after.items():
        _, user0, system0 = before.get(tid, (name, 0.0, 0.0))
        key = "main" if tid == str(server.pid) else name
        row = threads.setdefault(key, {"user": 0.0, "system": 0.0})
        row["user"] += 1000 * (user - user0) / stream_s
        row["system"] += 1000 * (system - system0) / stream_s
    total = sum(r["user"] + r["system"] for r in threads.values())
    return {
        "kind": kind if every == 1 else f"{kind} every {every}",
        "n": n,
        "window_s": t1 - t0,
        "ms_per_stream_s": total,
        "threads_ms_per_stream_s": threads,
        "loadavg_1m": os.getloadavg()[0],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.thread_split")
    parser.add_argument("--kind", choices=("sonicwire", "bare-echo"), default="sonicwire")
    parser.add_argument("--echo-every", type=int, default=1)
    parser.add_argument("--n", type=int, default=60)
    parser.add_argument("--window", type=float, default=6.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    r = measure(args.kind, args.n, args.window, args.echo_every)
    if args.json:
        print(json.dumps(r))
        return 0
    parts = ", ".join(
        f"{name} {t['user'] + t['system']:.2f} (user {t['user']:.2f})"
        for name, t in sorted(r["threads_ms_per_stream_s"].items())
        if t["user"] + t["system"] >= 0.005
    )
    print(
        f"{r['kind']} N={r['n']}: {r['ms_per_stream_s']:.2f} ms/stream-s; {parts}; "
        f"load1 {r['loadavg_1m']:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
