"""Does an idle core make each message dearer? Steps with and without idle-class spinners.

    python -m bench.idle_ab [--n 45] [--rounds 4] [--targets bare-echo,sonicwire]
        [--duration 8] [--spin-cpus 1] [--out FILE]

The floor (kernels + a bare grpc.aio echo) moved by up to 1.8x between full runs of the same
tree on this VM, and the cheaper runs were the ones that shared the machine (docs/server_cpu.md,
"Two full runs"). One explanation would be that a virtual CPU with nothing to run halts, and
every message that wakes it pays the hypervisor's exit and re-entry. This runs the same bench
step (`bench.steps.run_step`: the server pinned to CPU 1 in the real-time class, the load
generator on CPU 0) alternately plain and with a busy loop in the SCHED_IDLE class pinned to
each of ``--spin-cpus``: it runs only when nothing else wants that core, so the core never
idles, and its own CPU is not the server's process time. The order flips every round; it
prints every try and the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.cpu_ab import step_try
from bench.procs import Children
from bench.steps import SERVER_CPU, StepConfig, run_step

__all__ = ["main"]


def _spinners(cpus: list[str]) -> list[subprocess.Popen[bytes]]:
    spin = [sys.executable, "-c", "while True: pass"]
    procs = [subprocess.Popen(["chrt", "--idle", "0", "taskset", "-c", c, *spin]) for c in cpus]
    time.sleep(0.5)
    # A spinner that could not start (no chrt or taskset, a CPU that is not there) would make
    # the "spin" step a second plain one, silently.
    if failed := [p.args for p in procs if p.poll() is not None]:
        for p in procs:
            p.kill()
        raise SystemExit(f"a spinner did not start: {failed}")
    return procs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.idle_ab")
    parser.add_argument("--n", type=int, default=45)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--targets", default="bare-echo,sonicwire")
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--spin-cpus", default=SERVER_CPU, help="comma-separated CPUs")
    parser.add_argument("--out", type=Path, help="write every try as JSON here")
    args = parser.parse_args(argv)
    config = StepConfig(
        duration_s=args.duration, warmup_s=2.0, ramp_s=1.0, drain_s=0.5, quiet_wait_s=1.0
    )
    scratch = Path(tempfile.mkdtemp(prefix="sonicwire-idle-ab-"))
    children = Children(scratch, realtime=True)
    targets = args.targets.split(",")
    tries: list[dict[str, Any]] = []
    try:
        for i in range(args.rounds):
            variants = ("plain", "spin") if i % 2 == 0 else ("spin", "plain")
            for target in targets:
                for variant in variants:
                    spinners = _spinners(args.spin_cpus.split(",")) if variant == "spin" else []
                    try:
                        load = os.getloadavg()[0]
                        r = run_step(children, scratch, target, args.n, replace(config))
                    finally:
                        for p in spinners:
                            p.kill()
                            p.wait()
                    entry = {"variant": variant, "target": target, "round": i + 1}
                    entry |= step_try(r, load)
                    tries.append(entry)
                    cpu = entry["cpu_ms_per_stream_s"]
                    print(
                        f"{target} {variant} round {i + 1}: "
                        f"{cpu if cpu is None else round(cpu, 2)} ms/stream-s  load1 {load:.2f}  "
                        f"{'pass' if r['pass'] else 'FAIL'}",
                        flush=True,
                    )
    finally:
        children.stop_all()
    for target in targets:
        for variant in ("plain", "spin"):
            cpus = [
                t["cpu_ms_per_stream_s"]
                for t in tries
                if t["target"] == target and t["variant"] == variant and t["cpu_ms_per_stream_s"]
            ]
            if cpus:
                print(
                    f"{target} {variant}: median {statistics.median(cpus):.2f} ms/stream-s "
                    f"(range {min(cpus):.2f}-{max(cpus):.2f})"
                )
    if args.out:
        args.out.write_text(json.dumps(tries, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
