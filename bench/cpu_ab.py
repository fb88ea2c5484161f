"""Before/after CPU per stream-second of two source trees, interleaved in one run.

    python -m bench.cpu_ab --base /path/to/other/checkout [--target sonicwire] [--n 40]
        [--rounds 3] [--duration 8] [--frame-ms 20] [--priority realtime|nice] [--floor]

On a shared machine a number from one run is not comparable with a number from another: the
other work changes between them. This runs the same bench step (``bench.steps.run_step``:
the server pinned to one core, the load generator on the other) for the base tree and for this
tree alternately, ``rounds`` times each (the order flips every round so a drift in the load
falls on both), and prints each try with the machine's load, then the medians and their
difference. The base tree runs from this venv with its own source roots first on
``PYTHONPATH``: same interpreter and packages, only the code differs.

``--floor`` also measures the floor of the same run (docs/BENCHMARKS.md): a bare grpc.aio
echo step in every round, interleaved with the two trees, and the DSP kernels once at the
end (``bench.kernels``); it prints how far each tree is above kernels + bare echo, the gap
the "driver + core <= 1.0 ms above the floor" target is about.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.interleave import interleave, spread, try_line
from bench.procs import Children
from bench.steps import StepConfig, run_step

__all__ = ["floor_summary", "main", "step_try"]

ROOT = Path(__file__).resolve().parent.parent


def step_try(r: dict[str, Any], load: float) -> dict[str, Any]:
    """What an interleaved A/B keeps of one bench step: its CPU, p99, verdict and the load."""
    return {
        "cpu_ms_per_stream_s": r.get("cpu_ms_per_stream_s"),
        "p99_ms": r.get("latency_p99_ms"),
        "pass": r["pass"],
        "fail_reasons": r["fail_reasons"],
        "other_load_cores": r.get("foreign_cores_used"),
        "client_bound": r.get("client_bound"),
        "streams_failed": r.get("streams_failed"),
        "loadavg_1m": load,
        "error": r.get("error"),
    }


def floor_summary(medians: dict[str, float | None], kernels: float) -> str:
    """One line: the floor (kernels + the bare echo's median) and each tree above it."""
    bare = medians.get("bare")
    if bare is None:
        return f"floor: no bare-echo measurement (kernels {kernels:.2f} ms/stream-s)"
    floor = kernels + bare
    parts = [f"floor {kernels:.2f} (kernels) + {bare:.2f} (bare echo) = {floor:.2f} ms/stream-s"]
    for label in ("before", "after"):
        cpu = medians.get(label)
        if cpu is not None:
            parts.append(f"{label} {cpu:.2f} ({cpu - floor:+.2f} above)")
    return "; ".join(parts)


def _pythonpath(tree: Path) -> str:
    roots = [tree / "server", tree / "clients" / "python", tree / "gateway_ws", tree]
    return os.pathsep.join(str(r) for r in roots)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cpu_ab")
    parser.add_argument("--base", type=Path, required=True, help="the 'before' source tree")
    parser.add_argument("--target", default="sonicwire", help="sonicwire, bare-echo, gateway")
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--frame-ms", type=int, default=20)
    parser.add_argument("--priority", choices=("realtime", "nice"), default="realtime")
    parser.add_argument("--out", type=Path, help="write every try as JSON here")
    parser.add_argument(
        "--floor", action="store_true", help="also measure the bare echo and the kernels"
    )
    args = parser.parse_args(argv)

    config = StepConfig(
        duration_s=args.duration,
        warmup_s=2.0,
        ramp_s=1.0,
        drain_s=0.5,
        quiet_wait_s=1.0,
        frame_ms=args.frame_ms,
    )
    scratch = Path(tempfile.mkdtemp(prefix="sonicwire-ab-"))
    children = Children(scratch, realtime=args.priority == "realtime")
    trees = {"before": args.base.resolve(), "after": ROOT}
    # (label, tree, target) of each step of a round; the bare echo is the same in both trees
    steps = [("before", trees["before"], args.target), ("after", ROOT, args.target)]
    if args.floor:
        steps.insert(0, ("bare", ROOT, "bare-echo"))
    saved = os.environ.get("PYTHONPATH")

    def arm(tree: Path, target: str) -> Callable[[float], dict[str, Any]]:
        def measure(load: float) -> dict[str, Any]:
            os.environ["PYTHONPATH"] = _pythonpath(tree)
            return step_try(run_step(children, scratch, target, args.n, replace(config)), load)

        return measure

    try:
        tries = interleave(
            args.rounds,
            [(label, arm(tree, target)) for label, tree, target in steps],
            show=lambda entry: print(try_line(entry), flush=True),
        )
    finally:
        children.stop_all()
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved
    medians: dict[str, float | None] = {}
    for label, _, _ in steps:
        got = spread([t["cpu_ms_per_stream_s"] for t in tries if t["label"] == label])
        medians[label] = got[0] if got else None
        span = f"{got[1]:.2f}-{got[2]:.2f}" if got else "n/a"
        print(f"{label}: median {medians[label]} ms/stream-s (range {span})")
    if medians["before"] and medians["after"]:
        delta = medians["after"] - medians["before"]
        print(
            f"{args.target} N={args.n} {args.frame_ms} ms frames: {medians['before']:.2f} -> "
            f"{medians['after']:.2f} ms/stream-s ({delta:+.2f}, "
            f"{100 * delta / medians['before']:+.0f}%), load1 {os.getloadavg()[0]:.2f}"
        )
    kernels = None
    if args.floor:
        from bench.kernels import measure_kernels

        kernels = measure_kernels(frames=3000)["cpu_ms_per_stream_s"]
        print(f"{floor_summary(medians, kernels)}, load1 {os.getloadavg()[0]:.2f}")
    if args.out:
        record = {"tries": tries, "medians": medians, "kernels_ms_per_stream_s": kernels}
        args.out.write_text(json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
