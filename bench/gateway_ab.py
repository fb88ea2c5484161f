"""CPU of the WebSocket path, interleaved: the gateway (and its server) against the pipecat peer.

    python -m bench.gateway_ab [--n 10 20] [--rounds 3] [--duration 8] [--base TREE]
        [--variants default,silero,same-work,up,pipecat] [--priority realtime|nice] [--out FILE]

Each variant is one ``bench.steps.run_step`` (server and gateway pinned to one core, the load
generator on the other); every round runs all variants, in an order that flips every round so
a drift in the machine's load falls on all of them. For the gateway in its own process, the CPU
is split into the gateway process and the gRPC server process. Variants:

- ``before``: the gateway and server of another source tree (``--base``), default settings;
- ``up-before``: ``up`` (below) of that other tree: the A/B of a change to the one process;
- ``default``: this tree, default settings (webrtcvad, speex echo cancellation and noise
  suppression), the seed client's messages only;
- ``silero``: the same with the Silero VAD (the pipecat peer's VAD engine): each stream sends
  ``{"action": "config", "vad": {"engine": "silero"}}`` first;
- ``same-work``: Silero VAD and no echo cancellation or noise suppression: the work the
  pipecat peer does;
- ``up``: this tree's server and gateway in ONE process and event loop, as ``sonicwire up``
  (``make run``) runs them: the gateway reaches the server through the in-process channel
  (default settings; its CPU is not split: one process);
- ``up-grpc``: the same process with the gateway on loopback gRPC
  (``--gateway-transport grpc``, what ``sonicwire up`` shipped before the in-process channel);
- ``up-uvloop``: the same on uvloop (a lever, not what ships: ``sonicwire up`` runs asyncio's
  loop, the separate gateway uvloop);
- ``pipecat``: the pipecat peer (``bench/pipecat_peer.py``, Silero VAD) on the same protocol.

It prints every try with the 1-minute load average and the CPU other work used meanwhile, then
the medians and each variant's ratio to pipecat's median at the same N.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.cpu_ab import _pythonpath, step_try
from bench.procs import Children
from bench.steps import StepConfig, run_step

__all__ = ["BASE_VARIANTS", "VARIANTS", "main", "step_config"]

_SILERO = {"action": "config", "vad": {"engine": "silero"}}
VARIANTS: dict[str, tuple[str, dict[str, Any] | None]] = {
    "before": ("gateway", None),
    "default": ("gateway", None),
    "silero": ("gateway", _SILERO),
    "same-work": (
        "gateway",
        {**_SILERO, "echo_cancellation": False, "noise_suppression": False},
    ),
    "up": ("up", None),
    "up-before": ("up", None),
    "up-uvloop": ("up", None),
    "up-grpc": ("up", None),
    "pipecat": ("pipecat", None),
}
#: The probe server's event loop per variant (asyncio for any other), passed to the step.
_LOOP = {"up-uvloop": "uvloop"}
#: The variants that run the ``--base`` tree (every other one runs this tree).
BASE_VARIANTS = frozenset({"before", "up-before"})
#: The ``up`` target's gateway transport per variant (the shipped in-process one otherwise).
_UP_TRANSPORT = {"up-grpc": "grpc"}


def step_config(name: str, config: StepConfig) -> StepConfig:
    """The step of variant ``name``: its first WebSocket message and its event loop, both
    set for every variant (nothing carries over from ``config`` or the environment)."""
    first = VARIANTS[name][1]
    return replace(
        config,
        ws_first_message=json.dumps(first) if first else "",
        event_loop=_LOOP.get(name, "asyncio"),
        up_transport=_UP_TRANSPORT.get(name, "inproc"),
    )


def _ms(seconds: float | None, window: float, n: int) -> float | None:
    return None if seconds is None else seconds / window / n * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gateway_ab")
    parser.add_argument("--n", type=int, nargs="+", default=[10, 20])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--base", type=Path, help="the 'before' source tree")
    parser.add_argument("--variants", default="default,pipecat")
    parser.add_argument("--priority", choices=("realtime", "nice"), default="realtime")
    parser.add_argument("--out", type=Path, help="write every try as JSON here")
    args = parser.parse_args(argv)
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    if args.base is not None and not BASE_VARIANTS.intersection(names):
        names.insert(0, "before")
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; known: {', '.join(VARIANTS)}")
    for name in BASE_VARIANTS.intersection(names):
        if args.base is None:
            parser.error(f"the {name!r} variant needs --base")

    config = StepConfig(
        duration_s=args.duration, warmup_s=2.0, ramp_s=1.0, drain_s=0.5, quiet_wait_s=1.0
    )
    scratch = Path(tempfile.mkdtemp(prefix="sonicwire-gateway-ab-"))
    children = Children(scratch, realtime=args.priority == "realtime")
    here = Path(__file__).resolve().parent.parent
    saved = os.environ.get("PYTHONPATH")
    tries: list[dict[str, Any]] = []
    try:
        for n in args.n:
            for i in range(args.rounds):
                for name in names if i % 2 == 0 else names[::-1]:
                    target = VARIANTS[name][0]
                    tree = args.base.resolve() if name in BASE_VARIANTS else here
                    os.environ["PYTHONPATH"] = _pythonpath(tree)
                    step = step_config(name, config)
                    load = os.getloadavg()[0]
                    r = run_step(children, scratch, target, n, step)
                    window = r.get("window_s") or 0.0
                    by_pid = r.get("server_cpu_s_by_pid") or []
                    entry = {
                        "variant": name,
                        "n": n,
                        "round": i + 1,
                        **step_try(r, load),
                        # bench.steps starts the gRPC server first, then the gateway
                        "server_ms": _ms(by_pid[0], window, n) if target == "gateway" else None,
                        "gateway_ms": _ms(by_pid[1], window, n) if len(by_pid) > 1 else None,
                        "replies": r.get("replies"),
                    }
                    tries.append(entry)
                    print(_line(entry), flush=True)
    finally:
        children.stop_all()
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved
    medians = _medians(tries)
    for line in _summary(medians):
        print(line)
    print(f"load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.out:
        args.out.write_text(json.dumps({"tries": tries, "medians": medians}, indent=1) + "\n")
    return 0


def _fmt(value: float | None) -> str:
    return "  n/a" if value is None else f"{value:5.2f}"


def _line(e: dict[str, Any]) -> str:
    verdict = "pass" if e["pass"] else f"FAIL {e['fail_reasons']}"
    return (
        f"N={e['n']} round {e['round']} {e['variant']:9} total {_fmt(e['cpu_ms_per_stream_s'])}"
        f" (gateway {_fmt(e['gateway_ms'])}, server {_fmt(e['server_ms'])}) ms/stream-s"
        f"  p99 {_fmt(e['p99_ms'])} ms  other {e['other_load_cores'] or 0.0:.2f} cores"
        f"  load1 {e['loadavg_1m']:.2f}  {verdict}"
    )


def _medians(tries: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float | None]]]:
    out: dict[str, dict[str, dict[str, float | None]]] = {}
    for e in tries:
        out.setdefault(str(e["n"]), {}).setdefault(e["variant"], {})
    for n, variants in out.items():
        for name in variants:
            rows = [t for t in tries if str(t["n"]) == n and t["variant"] == name]
            for key in ("cpu_ms_per_stream_s", "gateway_ms", "server_ms"):
                values = [t[key] for t in rows if t[key] is not None]
                variants[name][key] = statistics.median(values) if values else None
    return out


def _summary(medians: dict[str, dict[str, dict[str, float | None]]]) -> list[str]:
    lines = ["medians, ms CPU per stream-second (ratio to pipecat at the same N):"]
    for n, variants in medians.items():
        peer = variants.get("pipecat", {}).get("cpu_ms_per_stream_s")
        for name, m in variants.items():
            total = m["cpu_ms_per_stream_s"]
            ratio = f"{total / peer:.2f}x" if total is not None and peer else "-"
            lines.append(
                f"  N={n} {name:9} total {_fmt(total)} (gateway {_fmt(m['gateway_ms'])},"
                f" server {_fmt(m['server_ms'])})  {ratio}"
            )
    return lines


if __name__ == "__main__":
    sys.exit(main())
