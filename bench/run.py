"""The benchmark: capacity, latency and memory against the limit and a peer, in one command.

    python -m bench.run            # full mode (make bench), ~10-15 minutes
    python -m bench.run --quick    # short mode (make bench-quick), under 3 minutes

On a machine shared with other work the measured processes run in the SCHED_RR real-time class
(``--priority``; by default when running as root and the machine is busy at the start), so
the other work waits for them instead of inflating their latency.

Phases, in order (each bounded; a phase past the run's time budget is skipped and says so):

1. the DSP kernels alone (webrtcvad + speex echo cancel + speex preprocess per 20 ms frame);
2. idle RSS of the server with the nova-sonic backend configured (fake AWS credentials);
3. Sonicwire, one process pinned to one core, the load generator on the other: N searched
   upward until p99 added latency > 10 ms, a late or dropped frame, or a failed stream;
4. the bare grpc.aio echo (the transport limit) at the same N;
5. the pipecat peer (its own venv) at the same N, up to where it saturates;
6. a py-spy profile of Sonicwire under load;
7. scaling: two Sonicwire processes on one port (SO_REUSEPORT), unpinned;
8. the WebSocket gateway in front of Sonicwire, when it is importable.

Writes ``bench/results/latest.json`` and ``docs/BENCHMARKS.md`` (plots in ``docs/img/``).
Every child process is stopped at the end, also on error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import datetime as dt
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import psutil

from bench.procs import PYTHON, ChildFailed, Children
from bench.steps import CRITERIA, StepConfig, run_step

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "latest.json"
DOC = ROOT / "docs" / "BENCHMARKS.md"
IMG = ROOT / "docs" / "img"


@dataclass(frozen=True)
class Mode:
    name: str
    budget_s: float
    step: StepConfig
    ladder: tuple[int, ...]
    bisect_rounds: int
    peer_ladder: tuple[int, ...]
    gateway_ladder: tuple[int, ...]
    scaling_factors: tuple[float, ...]
    profile_s: float


QUICK = Mode(
    name="quick",
    budget_s=165.0,
    step=StepConfig(duration_s=4.0, warmup_s=2.0, ramp_s=1.0, drain_s=0.5, quiet_wait_s=1.0),
    ladder=(20, 40, 60, 80, 100),
    bisect_rounds=0,
    peer_ladder=(20,),
    gateway_ladder=(10,),
    scaling_factors=(0.75, 1.0),
    profile_s=3.0,
)
FULL = Mode(
    name="full",
    budget_s=40 * 60.0,
    step=StepConfig(duration_s=12.0, warmup_s=3.0, ramp_s=2.0, drain_s=2.0, quiet_wait_s=20.0),
    ladder=(10, 20, 30, 40, 50, 60, 70, 80, 100, 120, 150, 180, 220),
    bisect_rounds=2,
    peer_ladder=(10, 20, 30, 40, 50, 60),
    gateway_ladder=(10, 20, 30, 40),
    scaling_factors=(0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0),
    profile_s=10.0,
)


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in (
        "sonicwire",
        "grpcio",
        "protobuf",
        "numpy",
        "webrtcvad-wheels",
        "soxr",
        "websockets",
        "psutil",
        "matplotlib",
        "py-spy",
    ):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[dist] = importlib.metadata.version(dist)
    with contextlib.suppress(OSError):
        out["libspeexdsp"] = os.path.realpath("/usr/lib/x86_64-linux-gnu/libspeexdsp.so.1")
    return out


def _machine() -> dict[str, Any]:
    cpu_model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": psutil.cpu_count(),
        "cpu_model": cpu_model,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "kernel": platform.release(),
        "loadavg_at_start": list(os.getloadavg()),
    }


class Runner:
    """Runs the phases within the mode's time budget and collects the results."""

    def __init__(self, mode: Mode, children: Children, scratch: Path) -> None:
        self.mode = mode
        self.children = children
        self.scratch = scratch
        self.started = time.monotonic()
        self.results: dict[str, Any] = {
            "mode": mode.name,
            "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "machine": _machine(),
            "versions": _versions(),
            "step_config": asdict(mode.step),
            "priority": "SCHED_RR 1" if children.realtime else "nice -10",
            "criteria": {target: list(rules) for target, rules in CRITERIA.items()},
            "skipped": {},
        }

    # --- helpers ---------------------------------------------------------------------------

    def left(self) -> float:
        return self.mode.budget_s - (time.monotonic() - self.started)

    def step_cost(self) -> float:
        s = self.mode.step
        return s.ramp_s + s.warmup_s + s.duration_s + s.drain_s + 4.0

    def phase(self, name: str, fn: Callable[[], Any], *, min_left: float = 0.0) -> None:
        if self.left() < min_left:
            self.results["skipped"][name] = "time budget of the mode used up"
            print(f"bench: skipping {name} (time budget)", flush=True)
            return
        print(f"bench: {name} ...", flush=True)
        try:
            self.results[name] = fn()
        except Exception as error:  # one phase failing must not lose the others
            self.results[name] = {"error": f"{type(error).__name__}: {error}"[:2000]}
            print(f"bench: {name} failed: {error}", flush=True)

    def step(self, target: str, n: int, **kwargs: Any) -> dict[str, Any]:
        r = run_step(self.children, self.scratch, target, n, self.mode.step, **kwargs)
        cpu = r.get("cpu_ms_per_stream_s")
        p99 = r.get("latency_p99_ms")
        print(
            f"bench:   {target} x{r['processes']} N={n}: "
            f"cpu {cpu if cpu is None else round(cpu, 2)} ms/stream-s, "
            f"p99 {p99 if p99 is None else round(p99, 2)} ms, late {r.get('late_frames')}, "
            f"foreign {round(r.get('foreign_cores_used', 0.0), 2)} cores -> "
            f"{'PASS' if r['pass'] else 'FAIL ' + '; '.join(r['fail_reasons'])}",
            flush=True,
        )
        return r

    # --- phases ----------------------------------------------------------------------------

    def kernels(self) -> dict[str, Any]:
        from bench.kernels import measure_kernels

        return measure_kernels(frames=1500 if self.mode.name == "quick" else 5000)

    def nova_idle(self) -> dict[str, Any]:
        env = {
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "x",
            "AWS_SECRET_ACCESS_KEY": "y",
            "SONICWIRE_LOG_LEVEL": "WARNING",
        }
        out: dict[str, Any] = {}
        for backend in ("nova-sonic", "echo"):
            argv = [PYTHON, "-m", "sonicwire.server", "--backend", backend, "--port", "0"]
            try:
                child = self.children.start(f"idle-{backend}", argv, env=env, ready_timeout_s=60)
            except ChildFailed as error:
                out[backend] = {"error": str(error)[:1500]}
                continue
            try:
                time.sleep(1.5)
                maps = Path(f"/proc/{child.pid}/maps").read_text(errors="replace")
                out[backend] = {
                    "rss_mb": child.rss() / 1e6,
                    "aws_crt_loaded": "_awscrt" in maps,
                    "onnxruntime_loaded": "onnxruntime" in maps,
                }
            finally:
                self.children.stop(child)
        return out

    def search(self) -> dict[str, Any]:
        """Largest N one pinned process sustains (p99 <= 10 ms, no late/dropped frames)."""
        steps: list[dict[str, Any]] = []
        best = 0
        first_fail: int | None = None
        for n in self.mode.ladder:
            if self.left() < self.step_cost():
                self.results["skipped"]["search_above"] = f"N > {n - 1}: time budget"
                break
            r = self.step("sonicwire", n)
            if (
                not r["pass"]
                and r.get("foreign_cores_used", 0) > 0.3
                and self.left() > 3 * self.step_cost()
            ):
                # Other work on the machine may have caused the failure: measure once more, and
                # keep both tries in the results (the report shows each), so a pass on the
                # second try never reads as a first-try pass.
                r.update(attempt=1, superseded_by_retry=True)
                steps.append(r)
                first = r
                r = self.step("sonicwire", n)
                r.update(
                    attempt=2,
                    first_try_fail_reasons=first["fail_reasons"],
                    first_try_foreign_cores_used=first.get("foreign_cores_used"),
                )
            steps.append(r)
            if r["pass"]:
                best = n
            else:
                first_fail = n
                break
        for _ in range(self.mode.bisect_rounds):
            if first_fail is None or first_fail - best <= 5 or self.left() < 2 * self.step_cost():
                break
            n = (best + first_fail) // 2
            r = self.step("sonicwire", n)
            steps.append(r)
            if r["pass"]:
                best = n
            else:
                first_fail = n
        steps.sort(key=lambda r: (r["n"], r.get("attempt", 1)))
        return {"steps": steps, "max_streams": best, "first_failing_n": first_fail}

    def same_n(self, ladder: list[int], target: str, stop_on_fail: bool) -> dict[str, Any]:
        steps = []
        for n in ladder:
            if self.left() < self.step_cost():
                self.results["skipped"][f"{target}_above"] = f"N >= {n}: time budget"
                break
            r = self.step(target, n)
            steps.append(r)
            if stop_on_fail and not r["pass"]:
                break
        passing = [r["n"] for r in steps if r["pass"]]
        return {"steps": steps, "max_streams": max(passing) if passing else 0}

    def bare_echo(self) -> dict[str, Any]:
        ns = self._search_ns()
        if self.mode.name == "quick":
            best = self.results.get("search", {}).get("max_streams") or ns[0]
            ns = sorted({ns[0], best})
        return self.same_n(ns, "bare-echo", stop_on_fail=False)

    def pipecat(self) -> dict[str, Any]:
        from bench.peer_env import PeerEnvError, ensure_peer_env

        try:
            python = ensure_peer_env()
        except PeerEnvError as error:
            return {"error": str(error), "steps": []}
        result = self.same_n(list(self.mode.peer_ladder), "pipecat", stop_on_fail=True)
        result["python"] = str(python)
        result["requirements"] = "bench/pipecat-requirements.txt"
        return result

    def profile(self) -> dict[str, Any]:
        from bench.profile import summarise_raw

        search = self.results.get("search", {})
        n = max(20, int(0.8 * search.get("max_streams", 0) or 40))
        config = StepConfig(
            duration_s=self.mode.profile_s + 1.0,
            warmup_s=2.0,
            ramp_s=1.0,
            drain_s=0.5,
            quiet_wait_s=self.mode.step.quiet_wait_s,
        )
        raw = self.scratch / "profile.txt"
        r = run_step(self.children, self.scratch, "sonicwire", n, config, profile_out=raw)
        if not raw.exists():
            return {"n": n, "error": r.get("error", "py-spy wrote no profile")}
        summary = summarise_raw(raw, str(ROOT))
        summary.update(
            n=n,
            cpu_ms_per_stream_s=r.get("cpu_ms_per_stream_s"),
            main_thread_share=r.get("main_thread_share"),
            step_error=r.get("error"),
        )
        return summary

    def scaling(self) -> dict[str, Any]:
        base = self.results.get("search", {}).get("max_streams", 0) or 40
        ns = [round(base * f) for f in self.mode.scaling_factors]
        steps = []
        for n in ns:
            if self.left() < self.step_cost():
                self.results["skipped"]["scaling_above"] = f"N >= {n}: time budget"
                break
            r = self.step("sonicwire", n, processes=2, pin=False)
            steps.append(r)
            if not r["pass"]:
                break
        passing = [r["n"] for r in steps if r["pass"]]
        return {
            "processes": 2,
            "port_sharing": "grpc.so_reuseport=1 (bench wrapper), one TCP connection per stream",
            "steps": steps,
            "max_streams": max(passing) if passing else 0,
        }

    def gateway(self) -> dict[str, Any]:
        if importlib.util.find_spec("sonicwire.gateway.app") is None:
            return {"error": "sonicwire.gateway is not importable", "steps": []}
        return self.same_n(list(self.mode.gateway_ladder), "gateway", stop_on_fail=True)

    def _search_ns(self) -> list[int]:
        steps = self.results.get("search", {}).get("steps", [])
        return [r["n"] for r in steps] or [20, 40]

    # --- the run ---------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        cost = self.step_cost()
        self.phase("kernels", self.kernels)
        self.phase("nova_idle", self.nova_idle)
        self.phase("search", self.search, min_left=cost)
        self.phase("bare_echo", self.bare_echo, min_left=cost)
        self.phase("pipecat", self.pipecat, min_left=cost + 5)
        self.phase("profile", self.profile, min_left=cost)
        self.phase("scaling", self.scaling, min_left=cost)
        self.phase("gateway", self.gateway, min_left=cost)
        self.results["summary"] = summarise(self.results)
        self.results["elapsed_s"] = time.monotonic() - self.started
        return self.results


def _at(steps: list[dict[str, Any]], n: int) -> dict[str, Any] | None:
    for r in steps:
        if r["n"] == n and "error" not in r:
            return r
    return None


def summarise(results: dict[str, Any]) -> dict[str, Any]:
    """The headline figures and the targets, computed from the phases' results."""
    kernels = results.get("kernels", {})
    search = results.get("search", {})
    all_tries = search.get("steps", [])
    # A step measured twice (contention retry) counts by its second try; both stay in the
    # results and the report, and the summary lists every retry.
    steps = [r for r in all_tries if not r.get("superseded_by_retry")]
    kernel_ms = kernels.get("cpu_ms_per_stream_s")
    out: dict[str, Any] = {"kernel_cpu_ms_per_stream_s": kernel_ms}
    out["retries"] = [
        {
            "n": r["n"],
            "first_try_fail_reasons": r.get("first_try_fail_reasons", []),
            "first_try_foreign_cores_used": r.get("first_try_foreign_cores_used"),
            "second_try_pass": bool(r.get("pass")),
        }
        for r in steps
        if r.get("attempt") == 2
    ]
    passing = [r for r in steps if r.get("pass")]
    ref = max(passing, key=lambda r: r["n"]) if passing else (steps[0] if steps else None)
    if ref is not None and "cpu_ms_per_stream_s" in ref:
        cpu = ref["cpu_ms_per_stream_s"]
        out["reference_n"] = ref["n"]
        out["reference_passed"] = bool(ref.get("pass"))
        out["reference_attempt"] = ref.get("attempt", 1)
        out["sonicwire_cpu_ms_per_stream_s"] = cpu
        out["sonicwire_latency_p99_ms"] = ref.get("latency_p99_ms")
        out["sonicwire_processing_mean_ms"] = ref.get("processing_mean_ms")
        out["cpu_bound_streams_per_core"] = 1000.0 / cpu if cpu else None
        if kernel_ms:
            out["ratio_to_kernels"] = cpu / kernel_ms
        echo_steps = [r for r in results.get("bare_echo", {}).get("steps", []) if "error" not in r]
        echo = min(echo_steps, key=lambda r: abs(r["n"] - ref["n"]), default=None)
        if echo is not None:
            out["bare_echo_n"] = echo["n"]
            out["bare_echo_cpu_ms_per_stream_s"] = echo["cpu_ms_per_stream_s"]
            out["ratio_to_bare_echo"] = cpu / echo["cpu_ms_per_stream_s"]
    out["max_streams_one_process"] = search.get("max_streams")
    # pipecat: compare at every N both ran
    peer_steps = results.get("pipecat", {}).get("steps", [])
    comparisons = []
    for p in peer_steps:
        s = _at(steps, p["n"])
        if s is not None and "cpu_ms_per_stream_s" in p and "cpu_ms_per_stream_s" in s:
            comparisons.append(
                {
                    "n": p["n"],
                    "sonicwire_cpu_ms_per_stream_s": s["cpu_ms_per_stream_s"],
                    "pipecat_cpu_ms_per_stream_s": p["cpu_ms_per_stream_s"],
                    "ratio": s["cpu_ms_per_stream_s"] / p["cpu_ms_per_stream_s"],
                    "sonicwire_rss_per_stream_mb": s.get("rss_per_stream_mb"),
                    "pipecat_rss_per_stream_mb": p.get("rss_per_stream_mb"),
                }
            )
    out["vs_pipecat"] = comparisons
    out["pipecat_max_streams"] = results.get("pipecat", {}).get("max_streams")
    out["like_for_like"] = _like_for_like(results)
    ratios = [c["ratio"] for c in out["like_for_like"]]
    out["like_for_like_worst_ratio"] = max(ratios) if ratios else None
    bare = out.get("bare_echo_cpu_ms_per_stream_s")
    if kernel_ms and bare and out.get("sonicwire_cpu_ms_per_stream_s"):
        out["floor_cpu_ms_per_stream_s"] = kernel_ms + bare
        out["above_floor_ms_per_stream_s"] = out["sonicwire_cpu_ms_per_stream_s"] - (
            kernel_ms + bare
        )
    rss = [r["rss_per_stream_mb"] for r in steps if r.get("rss_per_stream_mb") is not None]
    out["rss_per_stream_mb_max"] = max(rss) if rss else None
    out["rss_per_stream_mb_at_reference"] = ref.get("rss_per_stream_mb") if ref else None
    points = [(r["n"], r["rss_mb"]) for r in steps if r.get("rss_mb") is not None]
    if len({n for n, _ in points}) >= 2:
        # the slope of RSS against N: what one more stream costs, without one-time costs
        xs, ys = zip(*points, strict=True)
        mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
        var = sum((x - mean_x) ** 2 for x in xs)
        cov = sum((x - mean_x) * (y - mean_y) for x, y in points)
        out["rss_marginal_mb_per_stream"] = cov / var if var else None
    nova = results.get("nova_idle", {}).get("nova-sonic", {})
    out["idle_rss_nova_mb"] = nova.get("rss_mb")
    scaling = results.get("scaling", {})
    out["max_streams_two_processes"] = scaling.get("max_streams")
    best2 = [r for r in scaling.get("steps", []) if r.get("pass")]
    if best2:
        top = max(best2, key=lambda r: r["n"])
        out["two_process_n"] = top["n"]
        out["two_process_cpu_ms_per_stream_s"] = top["cpu_ms_per_stream_s"]
        out["two_process_client_cores"] = top["client_cores_used"]
        # A projection, not a measurement: streams the two servers' CPU would carry on two
        # whole cores at the measured cost per stream. The report labels it so.
        out["two_cores_cpu_bound_streams_projection"] = 2000.0 / top["cpu_ms_per_stream_s"]
    foreign = [r.get("foreign_cores_used", 0.0) for r in steps]
    out["max_foreign_cores_during_search"] = max(foreign) if foreign else None
    out["targets"] = {
        "cpu_le_2x_kernels": _check(out.get("ratio_to_kernels"), lambda v: v <= 2.0),
        "streams_per_core_ge_150": _check(out.get("max_streams_one_process"), lambda v: v >= 150),
        "rss_per_stream_lt_1mb": _check(
            out.get("rss_per_stream_mb_at_reference"), lambda v: v < 1.0
        ),
        "idle_nova_lt_150mb": _check(out.get("idle_rss_nova_mb"), lambda v: v < 150.0),
        "above_floor_le_1ms": _check(out.get("above_floor_ms_per_stream_s"), lambda v: v <= 1.0),
        "like_for_like_le_half_pipecat": _check(
            out.get("like_for_like_worst_ratio"), lambda v: v <= 0.5
        ),
    }
    return out


def _like_for_like(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Sonicwire behind its WebSocket gateway vs pipecat, at every N both ran: the same JSON/
    base64 protocol over WebSocket from the same load generator (the gRPC figures are not)."""
    gateway = [r for r in results.get("gateway", {}).get("steps", []) if "error" not in r]
    pipecat = [r for r in results.get("pipecat", {}).get("steps", []) if "error" not in r]
    rows = []
    for g in gateway:
        p = _at(pipecat, g["n"])
        if p is None or not g.get("cpu_ms_per_stream_s") or not p.get("cpu_ms_per_stream_s"):
            continue
        rows.append(
            {
                "n": g["n"],
                "gateway_cpu_ms_per_stream_s": g["cpu_ms_per_stream_s"],
                "pipecat_cpu_ms_per_stream_s": p["cpu_ms_per_stream_s"],
                "ratio": g["cpu_ms_per_stream_s"] / p["cpu_ms_per_stream_s"],
                "gateway_rss_per_stream_mb": g.get("rss_per_stream_mb"),
                "pipecat_rss_per_stream_mb": p.get("rss_per_stream_mb"),
                "gateway_pass": bool(g.get("pass")),
                "pipecat_pass": bool(p.get("pass")),
            }
        )
    return rows


def _check(value: Any, ok: Callable[[Any], bool]) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "not measured"
    return "met" if ok(value) else "missed"


def rejudge(results: dict[str, Any]) -> list[str]:
    """Apply today's pass criteria (``bench.steps.step_passes``) to every recorded step and
    recompute the summary; returns one line per step whose verdict changed (kept in the JSON)."""
    from bench.steps import step_passes

    changed = []
    for phase in ("search", "bare_echo", "pipecat", "scaling", "gateway"):
        for r in (
            results.get(phase, {}).get("steps", []) if isinstance(results.get(phase), dict) else []
        ):
            ok, reasons = step_passes(r)
            if ok != r.get("pass"):
                changed.append(
                    f"{phase} N={r['n']}: {r.get('pass')} -> {ok} ({'; '.join(reasons)})"
                )
            r["pass"], r["fail_reasons"] = ok, reasons
    results["criteria"] = {target: list(rules) for target, rules in CRITERIA.items()}
    results["summary"] = summarise(results)
    return changed


def render_only(results_path: Path, doc: Path, img: Path) -> int:
    """Re-render the doc from recorded results (no measurement; the run's date stays)."""
    from bench.report import write_report

    results = json.loads(results_path.read_text())
    changed = rejudge(results)
    if changed:
        results.setdefault("rejudged", []).extend(changed)
    results_path.write_text(json.dumps(results, indent=1, default=str) + "\n")
    write_report(results, doc, img)
    print(f"bench: re-rendered {doc} from {results_path}; verdicts changed: {changed or 'none'}")
    return 0


def _use_realtime(priority: str) -> bool:
    if priority != "auto":
        return priority == "realtime"
    if os.geteuid() != 0:
        return False
    from bench.procs import busy_cores

    return busy_cores(1.0) > 0.3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run")
    parser.add_argument("--quick", action="store_true", help="short mode (under 3 minutes)")
    parser.add_argument("--no-write", action="store_true", help="print, do not write files")
    parser.add_argument(
        "--priority",
        choices=("auto", "realtime", "nice"),
        default="auto",
        help="realtime: servers and load generator in the SCHED_RR class (root), so other "
        "work on a shared machine waits for them; nice: nice -10; auto (default): realtime "
        "when running as root on a machine that is busy at the start, else nice",
    )
    parser.add_argument("--realtime", action="store_const", const="realtime", dest="priority")
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="measure nothing: re-judge the steps of bench/results/latest.json by today's "
        "criteria, recompute its summary and re-render docs/BENCHMARKS.md from it",
    )
    args = parser.parse_args(argv)
    if args.render_only:
        return render_only(RESULTS, DOC, IMG)
    mode = QUICK if args.quick else FULL
    realtime = _use_realtime(args.priority)
    if realtime:
        # other work cannot delay the measured processes, so do not wait for it to stop
        mode = replace(mode, step=replace(mode.step, quiet_wait_s=min(2.0, mode.step.quiet_wait_s)))
    scratch = Path(tempfile.mkdtemp(prefix="sonicwire-bench-"))
    children = Children(scratch, realtime=realtime)
    atexit.register(children.stop_all)

    def on_signal(signum: int, _frame: object) -> None:
        children.stop_all()
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    print(f"bench: {mode.name} mode, scratch {scratch}", flush=True)
    try:
        results = Runner(mode, children, scratch).run()
    finally:
        children.stop_all()
    if args.no_write:
        print(json.dumps(results.get("summary"), indent=1))
        return 0
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1, default=str) + "\n")
    from bench.report import write_report

    write_report(results, DOC, IMG)
    print(f"bench: wrote {RESULTS.relative_to(ROOT)} and {DOC.relative_to(ROOT)}", flush=True)
    print(json.dumps(results["summary"], indent=1, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
