"""The gap to the floor from paired measurements: kernels, bare echo and Sonicwire, interleaved.

    python -m bench.paired_floor [--n 45] [--rounds 4] [--duration 8]
        [--priority realtime|nice] [--out FILE]

The target "driver + core <= 1.0 ms per stream-second above the floor" compares Sonicwire's CPU
per stream-second with the floor: the DSP kernels plus a bare grpc.aio echo. On this VM the floor
drifts by up to 1.8x within minutes (docs/server_cpu.md, "An idle core is not why the floor
moves"), so a floor measured once per run and a Sonicwire step measured minutes later give a
difference that is mostly drift (an A/A of identical code read +0.2).

So in each round the three are measured back to back at one N: the kernels (``bench.kernels``
in a child pinned to the server's core, in the servers' scheduling class: they drift too, 3.3 to
4.5 ms between runs), a bare-echo step and a Sonicwire step (``bench.steps.run_step``), the order
reversed every other round (``bench.interleave``) so that a drift falls on both sides. Each
round gives one difference, Sonicwire - (kernels + bare echo); the target is judged on the
median of the rounds' differences, shown with their range, when every planned round ran: a
phase the run's time budget cut short is shown, not judged (``judged_median``; the same rule as
an N of the like-for-like walk, ``bench.interleave.cut_short``). ``bench.run`` runs this as its
``paired_floor`` phase at the search's largest passing N.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.cpu_ab import step_try
from bench.interleave import Arm, cut_short, interleave, spread, try_line
from bench.procs import PYTHON, Children
from bench.steps import SERVER_CPU, StepConfig, run_step

__all__ = ["PAIRED_STEP", "judged_median", "measure", "paired_rounds", "short", "summarise_paired"]

#: The paired steps' window: cpu_ab's (8 s), so 4 rounds of 2 steps fit in ~2.5 minutes.
PAIRED_STEP = StepConfig(duration_s=8.0, warmup_s=2.0, ramp_s=1.0, drain_s=0.5, quiet_wait_s=1.0)
#: The arms of a round, in the first round's order.
LABELS = ("kernels", "bare-echo", "sonicwire")


def _kernels_arm(children: Children, scratch: Path, frames: int) -> Callable[[float], Any]:
    def measure(load: float) -> dict[str, Any]:
        out = scratch / "paired-kernels.json"
        out.unlink(missing_ok=True)
        argv = ["taskset", "-c", SERVER_CPU, PYTHON, "-m", "bench.kernels"]
        argv += ["--frames", str(frames), "--out", str(out)]
        try:
            k = children.run_json("paired-kernels", argv, out, timeout_s=120.0)
        except Exception as error:  # one failed try must not lose the others
            return {"cpu_ms_per_stream_s": None, "pass": False, "error": str(error)[:500]}
        return {"cpu_ms_per_stream_s": k["cpu_ms_per_stream_s"], "pass": True, "error": None}

    return measure


def measure(
    children: Children,
    scratch: Path,
    n: int,
    config: StepConfig = PAIRED_STEP,
    rounds: int = 4,
    *,
    kernel_frames: int = 3000,
    keep_going: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """``rounds`` rounds of kernels, bare echo and Sonicwire at ``n``; every try is kept."""

    def step(target: str) -> Callable[[float], dict[str, Any]]:
        return lambda load: step_try(run_step(children, scratch, target, n, replace(config)), load)

    arms: list[Arm] = [
        ("kernels", _kernels_arm(children, scratch, kernel_frames)),
        ("bare-echo", step("bare-echo")),
        ("sonicwire", step("sonicwire")),
    ]
    tries = interleave(
        rounds, arms, keep_going=keep_going, show=lambda e: print(try_line(e), flush=True)
    )
    return {
        "n": n,
        "rounds_planned": rounds,
        "step_config": {"duration_s": config.duration_s, "warmup_s": config.warmup_s},
        "kernel_frames": kernel_frames,
        "tries": tries,
    }


def _void(t: dict[str, Any]) -> str | None:
    """Why a step's CPU figure cannot stand for N streams: it errored, streams failed, or the
    load generator fell behind (less load than N). Failed p99 or late frames do not void it."""
    if t.get("error"):
        return f"{t['label']} errored"
    if t.get("streams_failed"):
        return f"{t['label']}: {t['streams_failed']} streams failed"
    if t.get("client_bound"):
        return f"{t['label']}: load generator saturated"
    return None


def paired_rounds(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per round with all three figures: the floor and Sonicwire's distance above it,
    each step's verdict, and ``void``: why the round cannot count (None when it counts)."""
    rows = []
    for i in sorted({t["round"] for t in result.get("tries", [])}):
        got = {t["label"]: t for t in result["tries"] if t["round"] == i}
        if set(got) != set(LABELS):
            continue  # a round cut short (an error out of a step): nothing to pair
        kernels, bare, ours = (got[x].get("cpu_ms_per_stream_s") for x in LABELS)
        voids = [v for v in (_void(got[x]) for x in LABELS) if v]
        if kernels is None or bare is None or ours is None:
            voids.append("a figure is missing")
        floor = kernels + bare if kernels is not None and bare is not None else None
        rows.append(
            {
                "round": i,
                "order": [t["label"] for t in result["tries"] if t["round"] == i],
                "kernels_cpu_ms_per_stream_s": kernels,
                "bare_echo_cpu_ms_per_stream_s": bare,
                "floor_cpu_ms_per_stream_s": floor,
                "sonicwire_cpu_ms_per_stream_s": ours,
                "above_floor_ms_per_stream_s": ours - floor if floor and ours else None,
                "bare_echo_pass": bool(got["bare-echo"].get("pass")),
                "sonicwire_pass": bool(got["sonicwire"].get("pass")),
                "loadavg_1m": [got[x]["loadavg_1m"] for x in LABELS],
                "void": "; ".join(voids) or None,
            }
        )
    return rows


def summarise_paired(result: dict[str, Any] | None) -> dict[str, Any] | None:
    """The paired figure: median and range of the counted rounds' differences, and the floor's
    range across them (how far it drifted within the phase); the figures are None when no round
    counts. None when the run has no paired tries (it predates the phase, or the phase failed)."""
    if not result or not result.get("tries"):
        return None
    every = paired_rounds(result)
    rows = [r for r in every if r["void"] is None]
    out: dict[str, Any] = {
        "n": result["n"],
        "rounds": len(rows),
        "rounds_planned": result.get("rounds_planned"),
        "per_round": every,
    }
    for key, name in (
        ("above_floor_ms_per_stream_s", "above_floor"),
        ("floor_cpu_ms_per_stream_s", "floor"),
        ("sonicwire_cpu_ms_per_stream_s", "sonicwire"),
    ):
        got = spread([r[key] for r in rows])
        for i, stat in enumerate(("median", "min", "max")):
            out[f"{name}_{stat}_ms_per_stream_s"] = got[i] if got else None
    return out


def short(p: dict[str, Any]) -> str | None:
    """``cut short (k of R rounds)`` when fewer rounds ran than planned (``summarise_paired``'s
    output); None when every planned round ran."""
    return cut_short(len(p["per_round"]), p.get("rounds_planned"))


def judged_median(p: dict[str, Any] | None) -> float | None:
    """The figure the target is judged on: the median of the counted rounds, when every
    planned round ran; None (not measured) otherwise."""
    if not p or short(p) is not None:
        return None
    median: float | None = p["above_floor_median_ms_per_stream_s"]
    return median


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.paired_floor")
    parser.add_argument("--n", type=int, default=45)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--duration", type=float, default=PAIRED_STEP.duration_s)
    parser.add_argument("--priority", choices=("realtime", "nice"), default="realtime")
    parser.add_argument("--out", type=Path, help="write the tries and the summary as JSON here")
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="sonicwire-paired-"))
    children = Children(scratch, realtime=args.priority == "realtime")
    config = replace(PAIRED_STEP, duration_s=args.duration)
    try:
        result = measure(children, scratch, args.n, config, args.rounds)
    finally:
        children.stop_all()
    summary = summarise_paired(result)
    for r in paired_rounds(result):
        if r["void"]:
            print(f"round {r['round']}: not counted ({r['void']})")
            continue
        print(
            f"round {r['round']}: kernels {r['kernels_cpu_ms_per_stream_s']:.2f} + bare echo "
            f"{r['bare_echo_cpu_ms_per_stream_s']:.2f} = floor "
            f"{r['floor_cpu_ms_per_stream_s']:.2f}; sonicwire "
            f"{r['sonicwire_cpu_ms_per_stream_s']:.2f}: "
            f"{r['above_floor_ms_per_stream_s']:+.2f} above"
        )
    if summary and summary["rounds"]:
        cut = short(summary)
        print(
            (f"not judged, {cut}: " if cut else "")
            + f"N={args.n}: {summary['above_floor_median_ms_per_stream_s']:+.2f} ms/stream-s above "
            f"the floor, median of {summary['rounds']} rounds (range "
            f"{summary['above_floor_min_ms_per_stream_s']:+.2f} to "
            f"{summary['above_floor_max_ms_per_stream_s']:+.2f}); floor "
            f"{summary['floor_min_ms_per_stream_s']:.2f}-{summary['floor_max_ms_per_stream_s']:.2f}"
        )
    if args.out:
        args.out.write_text(json.dumps({**result, "summary": summary}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
