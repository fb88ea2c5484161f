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
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.cpu_ab import step_try
from bench.interleave import interleave, spread, try_line
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

    def arm(target: str, variant: str) -> Callable[[float], dict[str, Any]]:
        def measure(load: float) -> dict[str, Any]:
            spinners = _spinners(args.spin_cpus.split(",")) if variant == "spin" else []
            try:
                r = run_step(children, scratch, target, args.n, replace(config))
            finally:
                for p in spinners:
                    p.kill()
                    p.wait()
            return {"variant": variant, "target": target, **step_try(r, load)}

        return measure

    # plain and spin of a target back to back, the order reversed every other round
    arms = [(f"{t} {v}", arm(t, v)) for t in targets for v in ("plain", "spin")]
    try:
        tries = interleave(args.rounds, arms, show=lambda entry: print(try_line(entry), flush=True))
    finally:
        children.stop_all()
    for label, _ in arms:
        got = spread([t["cpu_ms_per_stream_s"] for t in tries if t["label"] == label])
        if got:
            print(f"{label}: median {got[0]:.2f} ms/stream-s (range {got[1]:.2f}-{got[2]:.2f})")
    if args.out:
        args.out.write_text(json.dumps(tries, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
