"""Before/after of the echo path's delay estimator: quality cases and how often it estimates.

    python -m bench.estimator_ab --base /path/to/other/checkout [--cases erle,jump,...]

Runs the cases of ``bench.frontend_eval`` that the estimator's cadence and its confirmation
rule can change (ERLE and t20 at 0/400/800 ms, clock skew, the delay jump, false starts on
the hard echo-only set, barge-in latency), three long ones the 12 s clips cannot show (a
delay jump after 60 s of a settled line, a 60 s line without echo, the load generator's
echo-backend traffic), for the base tree and for this one, each in its own process with its
own source roots first on ``PYTHONPATH`` (same interpreter and packages, only the code
differs). Counts ``DelayEstimator.update`` calls and the blocks that added evidence, and the
process CPU time of each case. Prints one JSON line per case and tree.
"""

from __future__ import annotations

import argparse
import importlib.machinery
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CASES = ("erle", "drift", "jump", "hard", "barge_in", "long_jump", "no_echo", "echo_backend")


def _roots(tree: Path) -> str:
    return os.pathsep.join(str(tree / p) for p in ("server", "clients/python", "gateway_ws", ""))


def _run_cases(cases: list[str]) -> None:
    from bench import frontend_signals as sig
    from bench.frontend_cases import (
        evaluate_drift,
        evaluate_erle,
        evaluate_hard_echo,
        evaluate_jump,
        evaluate_vad_latency,
    )
    from bench.frontend_harness import (
        ECHO_DBFS,
        FS,
        NEAR_DBFS,
        NOISE_DBFS,
        Reports,
        erle_metrics,
        run_frontend,
        settings_full,
    )
    from sonicwire.server.dsp import delay
    from sonicwire.server.dsp.pipeline import FrontEnd

    if delay.__file__ and delay.__file__.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)):
        # the front end would call its own update, never this patch: every count would be 0
        raise SystemExit(
            "bench.estimator_ab counts DelayEstimator.update by patching it, which a compiled "
            "front end does not see: run it on pure Python (SONICWIRE_COMPILE=0 make setup "
            "after `make clean`, or a source copy without the .so files first on PYTHONPATH)"
        )

    counts = {"updates": 0, "blocks": 0}
    update = delay.DelayEstimator.update

    def counted_update(self: Any, *args: Any, **kwargs: Any) -> Any:
        counts["updates"] += 1
        blocks = self.blocks
        out = update(self, *args, **kwargs)
        counts["blocks"] += self.blocks != blocks
        return out

    delay.DelayEstimator.update = counted_update  # type: ignore[method-assign]
    far = sig.far_speech().signal
    near = sig.near_speech().signal

    def long_far(seconds: float) -> Any:
        n = int(seconds * FS)
        return np.tile(far, -(-n // len(far)))[:n]

    def emit(name: str, fn: Callable[[], Any]) -> None:
        counts.update(updates=0, blocks=0)
        start = time.process_time()
        result = fn()
        cpu = time.process_time() - start
        line = {"case": name, "result": result, "estimator": dict(counts), "cpu_s": round(cpu, 2)}
        line["loadavg"] = [round(x, 2) for x in os.getloadavg()]
        print(json.dumps(line, default=float), flush=True)

    def erle() -> Any:
        rows = evaluate_erle(far, [0, 400, 800], 12.0, baselines=False, nlms_delays=[])["rows"]
        keys = ("no_reports", "reports")
        return [
            {"delay_ms": r["delay_ms"]}
            | {
                k: {
                    "mean_db": r[k]["frontend"]["mean_db"],
                    "t20_s": r[k]["frontend"]["t20_s"],
                    "starts": r[k]["speech_started"],
                }
                for k in keys
            }
            for r in rows
        ]

    def drift() -> Any:
        rows = evaluate_drift(far, [20.0, 100.0], 12.0)
        return [
            {"ppm": r["skew_ppm"]} | {k: r[k]["frontend"] for k in ("no_reports", "reports")}
            for r in rows
        ]

    def jump() -> Any:
        r = evaluate_jump(far, 14.0, 200, 350, 6.0)
        return {
            k: r[k]["frontend_after"] | {"starts": r[k]["speech_started"]}
            for k in ("no_reports", "reports")
        }

    def hard() -> Any:
        r = evaluate_hard_echo(far, 12.0, [0, 800])
        return {"false_starts": r["speech_started_total"], "erle": [c["erle"] for c in r["cases"]]}

    def barge_in() -> Any:
        r = evaluate_vad_latency(far, (sig.alsa_clips() or [near])[:4], [400])
        return {e: {k: r[e][k] for k in ("barge_in_ms", "barge_in_missed")} for e in r}

    def long_jump() -> Any:
        # 90 s of assistant speech echoed at 300 ms; the client's buffer grows to 450 ms at 60 s
        seconds, at, before, after = 90.0, 60 * FS, 300, 450
        n = int(seconds * FS)
        x = long_far(seconds)
        rir = sig.room_ir(70)
        e1 = sig.echo_path(x, rir, delay=before * 16, level_dbfs=ECHO_DBFS, length=n)
        e2 = sig.echo_path(x, rir, delay=after * 16, level_dbfs=ECHO_DBFS, length=n)
        gap = (after - before) * 16
        echo = np.concatenate([e1[:at], np.zeros(gap), e2[at + gap :]])[:n]
        mic = sig.to_int16(echo + sig.noise(n, 70, "pink") * 10 ** (NOISE_DBFS / 20))
        far16 = sig.to_int16(x)
        out = {}
        for with_reports in (False, True):
            rep = Reports(delay=before * 16, jump=(at + gap, after * 16)) if with_reports else None
            r = run_frontend(mic, far16, settings_full(), reports=rep)
            out["reports" if with_reports else "no_reports"] = {
                "before": erle_metrics(mic[:at], r.out[:at], 0, from_s=3.0),
                "after": erle_metrics(mic[at:], r.out[at:], 0, from_s=2.0),
                "starts": sum(1 for e in r.events if e[2] == "start"),
            }
        return out

    def no_echo() -> Any:
        # 60 s: the assistant plays throughout, no echo reaches the mic (a headset), the user
        # talks for 2 s every 7 s
        seconds = 60.0
        n = int(seconds * FS)
        talk = np.zeros(n)
        for k, s in enumerate(range(3 * FS, n - 3 * FS, 7 * FS)):
            piece = near[(k * 2 * FS) % (len(near) - 2 * FS) :][: 2 * FS]
            talk[s : s + len(piece)] = sig.set_level(piece, NEAR_DBFS)
        mic = sig.to_int16(talk + sig.noise(n, 5, "pink") * 10 ** (NOISE_DBFS / 20))
        r = run_frontend(mic, sig.to_int16(long_far(seconds)), settings_full())
        return {"starts": sum(1 for e in r.events if e[2] == "start"), "delay": r.delay}

    def echo_backend() -> Any:
        # the load generator's traffic with the echo backend (bench/speech.py), no acoustic
        # echo: each utterance is played back after the VAD ends it; 8 lines of 40 s
        clips = [sig.to_int16(c * 0.5) for c in sig.alsa_clips()]
        locked = realignments = 0
        for seed in range(8):
            rng = random.Random(seed)
            n = 40 * FS
            mic = sig.to_int16(np.random.default_rng(seed).standard_normal(n) * 30 / 32768)
            replies = []
            t = int(rng.uniform(0.2, 2.0) * FS)
            pad = int(0.3 * FS)
            while True:
                clip = rng.choice(clips)
                if t + len(clip) >= n:
                    break
                mic[t : t + len(clip)] += clip
                reply = mic[max(0, t - pad) : t + len(clip) + pad].copy()
                replies.append((t + len(clip) + int(0.8 * FS), reply))
                t += 2 * len(clip) + int((1.6 + rng.uniform(0.0, 0.4)) * FS)
            with FrontEnd() as fe:
                k = 0
                for pos in range(0, n - 319, 320):
                    while k < len(replies) and replies[k][0] <= pos:
                        fe.push_far_end(replies[k][1].tobytes())
                        k += 1
                    fe.process(mic[pos : pos + 320].tobytes())
                locked += fe.delay_locked
                realignments += fe.stats.realignments
        return {"lines": 8, "locked": locked, "realignments": realignments}

    table: dict[str, Callable[[], Any]] = {
        "erle": erle,
        "drift": drift,
        "jump": jump,
        "hard": hard,
        "barge_in": barge_in,
        "long_jump": long_jump,
        "no_echo": no_echo,
        "echo_backend": echo_backend,
    }
    try:
        for name in cases:
            emit(name, table[name])
    finally:
        delay.DelayEstimator.update = update  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.estimator_ab")
    parser.add_argument("--base", type=Path, help="the 'before' source tree")
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    cases = [c for c in args.cases.split(",") if c]
    unknown = sorted(set(cases) - set(CASES))
    if unknown:
        parser.error(f"unknown cases {unknown}; known: {', '.join(CASES)}")
    if args.worker:
        _run_cases(cases)
        return 0
    trees = {"before": args.base.resolve(), "after": ROOT} if args.base else {"after": ROOT}
    for label, tree in trees.items():
        env = dict(os.environ, PYTHONPATH=_roots(tree))
        # this file runs in the other tree too: it imports only what both trees have
        cmd = [sys.executable, str(Path(__file__)), "--worker", "--cases", ",".join(cases)]
        proc = subprocess.run(cmd, env=env, cwd=tree, capture_output=True, text=True)
        for line in proc.stdout.splitlines():
            if line.startswith("{"):
                print(json.dumps({"tree": label} | json.loads(line)), flush=True)
        if proc.returncode:
            print(proc.stderr[-2000:], file=sys.stderr)
            return proc.returncode
    return 0


if __name__ == "__main__":
    if "--worker" in sys.argv:
        # run as a file in the other tree's environment: its roots come first
        sys.path[:0] = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    sys.exit(main())
