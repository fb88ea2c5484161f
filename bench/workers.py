"""`sonicwire serve --workers 2` against one process, on this machine, in one command.

    python -m bench.workers [--ladder 20,40,...] [--duration 6] [--out bench/results/workers.json]

For each worker count (1: one plain server process; 2: the supervisor and two workers on one
port) the real server is started by ``bench.worker_probe`` (the bench's per-frame probe in
every serving process) and measured by ``bench.steps.run_step`` with the ordinary load
generator (``bench.loadgen``: N real-time speech streams, one TCP connection each, so
``SO_REUSEPORT`` spreads them). Nothing is pinned: on a 2-core machine two workers need both
cores, and the load generator shares them; its CPU is reported. N climbs the ladder until a
step fails its criteria (``bench.steps.CRITERIA["workers"]``: p99 added latency <= 10 ms, no
late, dropped or unprocessed frame, no failed stream, generator not saturated).

Figures per worker count: server CPU per stream-second (supervisor and workers together,
over the measurement window) at every N, and the largest N that passed divided by the server
cores used at that N ("streams per core"). The machine is shared: every step records the load
average and the CPU that other processes used meanwhile (``foreign_cores_used``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.procs import Children
from bench.steps import StepConfig, run_step

__all__ = ["main", "measure"]

ROOT = Path(__file__).resolve().parent.parent
KEYS = (
    "processes", "n", "pass", "fail_reasons", "latency_p50_ms", "latency_p99_ms",
    "cores_used", "cpu_ms_per_stream_s", "client_cores_used", "foreign_cores_used",
    "late_frames", "gap_frames", "frames_unprocessed", "streams_failed", "replies",
    "latency_frames", "window_s", "machine_busy_cores_before", "server_cpu_s",
    "server_cpu_s_by_pid", "error",
)  # fmt: skip


def measure(
    ladder: list[int], workers: tuple[int, ...], config: StepConfig, realtime: bool
) -> dict[str, Any]:
    scratch = Path(tempfile.mkdtemp(prefix="sonicwire-workers-bench-"))
    children = Children(scratch, realtime=realtime)
    steps: list[dict[str, Any]] = []
    failed: set[int] = set()
    try:
        # Interleaved (1 then 2 workers at each N): the machine's other load changes over
        # minutes, and each pair of steps compared at one N should see the same load.
        for n in ladder:
            for count in workers:
                if count in failed:
                    continue
                load_before = os.getloadavg()
                result = run_step(children, scratch, "workers", n, config, processes=count,
                                  pin=False)  # fmt: skip
                step = {k: result.get(k) for k in KEYS}
                step.update(loadavg_before=load_before, loadavg_after=os.getloadavg())
                steps.append(step)
                print(json.dumps(step), flush=True)
                if not result["pass"]:
                    failed.add(count)
            if failed >= set(workers):
                break
    finally:
        children.stop_all()
    return {"steps": steps, "summary": summarise(steps, workers)}


#: Control runs at one N (``--controls N``): what the extra CPU of two workers comes from.
CONTROLS = (
    # (label, bench target, processes, multiprocess metrics in a single process)
    ("1 worker", "workers", 1, False),
    ("2 workers", "workers", 2, False),
    ("2 plain processes", "sonicwire", 2, False),
    ("1 worker, multiprocess metrics", "workers", 1, True),
)


def controls(n: int, repeats: int, config: StepConfig, realtime: bool) -> list[dict[str, Any]]:
    """``--workers 2`` against two plain server processes sharing the port with SO_REUSEPORT
    (``bench.probe_server --reuseport``: no supervisor, no multiprocess metrics), and one
    process with and without prometheus_client's multiprocess mode, interleaved."""
    scratch = Path(tempfile.mkdtemp(prefix="sonicwire-workers-controls-"))
    children = Children(scratch, realtime=realtime)
    metrics_dir = scratch / "metrics"
    metrics_dir.mkdir()
    rows: list[dict[str, Any]] = []
    try:
        for repeat in range(repeats):
            for label, target, processes, multiproc in CONTROLS:
                for old in metrics_dir.iterdir():
                    old.unlink()
                if multiproc:  # inherited by the server process started next
                    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
                load_before = os.getloadavg()
                try:
                    result = run_step(children, scratch, target, n, config,
                                      processes=processes, pin=False)  # fmt: skip
                finally:
                    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
                row = {k: result.get(k) for k in KEYS}
                row.update(label=label, repeat=repeat, loadavg_before=load_before)
                rows.append(row)
                print(json.dumps(row), flush=True)
    finally:
        children.stop_all()
    return rows


def summarise(steps: list[dict[str, Any]], workers: tuple[int, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for count in workers:
        mine = [s for s in steps if s["processes"] == count]
        passed = [s for s in mine if s["pass"]]
        best = max(passed, key=lambda s: s["n"]) if passed else None
        out[str(count)] = {
            "largest_n_passed": best["n"] if best else 0,
            "cores_used_at_largest_n": best["cores_used"] if best else None,
            "streams_per_core": best["n"] / best["cores_used"] if best else None,
            "first_failure": next(
                ({"n": s["n"], "reasons": s["fail_reasons"]} for s in mine if not s["pass"]), None
            ),
        }
    if len(workers) == 2:
        one, two = (str(w) for w in workers)
        by_n = {
            n: {str(s["processes"]): s for s in steps if s["n"] == n}
            for n in sorted({s["n"] for s in steps})
        }
        # At every N both measured (CPU time is CPU time whether or not the step passed).
        out["cpu_per_stream_s_ratio_by_n"] = {
            str(n): pair[two]["cpu_ms_per_stream_s"] / pair[one]["cpu_ms_per_stream_s"]
            for n, pair in by_n.items()
            if one in pair and two in pair and not pair[one]["error"] and not pair[two]["error"]
        }
        a, b = out[one]["streams_per_core"], out[two]["streams_per_core"]
        out["streams_per_core_ratio"] = b / a if a and b else None
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.workers")
    parser.add_argument("--ladder", default="20,30,40,50,60,70,80,90,100,110,120")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--duration", type=float, default=6.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument(
        "--realtime",
        action="store_true",
        help="measured processes in SCHED_RR (root): other work waits for them",
    )
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "workers.json"))
    parser.add_argument(
        "--controls",
        type=int,
        default=0,
        metavar="N",
        help="instead of the ladder: the control runs at N streams (bench/results/"
        "workers_controls.json unless --out)",
    )
    parser.add_argument("--repeats", type=int, default=2, help="control runs: repetitions")
    args = parser.parse_args(argv)
    command = " ".join(["python -m bench.workers", *(argv if argv is not None else sys.argv[1:])])
    ladder = [int(n) for n in args.ladder.split(",")]
    workers = tuple(int(w) for w in args.workers.split(","))
    config = StepConfig(duration_s=args.duration, warmup_s=args.warmup, ramp_s=1.0, drain_s=3.0,
                        quiet_wait_s=0.0)  # fmt: skip
    if args.controls:
        out = args.out
        if out == parser.get_default("out"):
            out = str(ROOT / "bench" / "results" / "workers_controls.json")
        rows = controls(args.controls, args.repeats, config, args.realtime)
        settings = {
            "n": args.controls, "repeats": args.repeats, "duration_s": args.duration,
            "warmup_s": args.warmup, "realtime": args.realtime, "command": command,
        }  # fmt: skip
        Path(out).write_text(json.dumps({"settings": settings, "rows": rows}, indent=1) + "\n")
        return 0
    report = measure(ladder, workers, config, args.realtime)
    report["settings"] = {
        "ladder": ladder, "workers": workers, "duration_s": args.duration,
        "warmup_s": args.warmup, "realtime": args.realtime, "cpu_count": os.cpu_count(),
    }  # fmt: skip
    report["settings"]["command"] = command
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report["summary"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
