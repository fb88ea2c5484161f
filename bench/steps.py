"""One measurement step: fresh server process(es) + the load generator at one N.

`run_step` starts the target (Sonicwire with probes, the bare echo, the pipecat peer, the
gateway in front of Sonicwire, or both in one process as `sonicwire up` runs them), records its
idle RSS, runs ``bench.loadgen`` as a separate process, stops the servers (which writes the probe
data), and returns one flat dict of figures.
Servers and load generator are pinned to different cores when ``pin`` is set, so "one server
process" means "one core" and the generator never steals the server's CPU.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from bench.procs import (
    PYTHON,
    Child,
    Children,
    other_realtime_processes,
    wait_no_other_realtime,
    wait_quiet,
)

__all__ = [
    "CRITERIA",
    "PROBED_TARGETS",
    "StepConfig",
    "latency_from_probe",
    "loop_lag_from_probe",
    "run_step",
    "step_passes",
]

SERVER_CPU = "1"
CLIENT_CPU = "0"
LATENCY_P99_LIMIT_MS = 10.0


@dataclass(frozen=True)
class StepConfig:
    duration_s: float
    warmup_s: float
    ramp_s: float
    drain_s: float
    seed: int = 1
    quiet_wait_s: float = 10.0
    #: Client audio per AudioInput message, a multiple of 20 ms (gRPC targets only).
    frame_ms: int = 20
    #: In the real-time class: how long to wait for other real-time processes to end first.
    realtime_wait_s: float = 30.0
    #: WebSocket targets: a JSON text each stream sends first (``bench.loadgen
    #: --ws-first-message``, e.g. the gateway's config); empty = audio only, as the seed client.
    ws_first_message: str = ""
    #: The probe server's event loop (``bench.probe_server --event-loop``), passed to every
    #: probe server the step starts: ``"asyncio"`` (what `sonicwire serve` and `sonicwire up`
    #: run) or ``"uvloop"`` (a bench lever).
    event_loop: str = "asyncio"
    #: The ``up`` target's gateway transport (``sonicwire up --gateway-transport``):
    #: ``"inproc"`` (what it ships with one server process) or ``"grpc"`` (loopback gRPC).
    up_transport: str = "inproc"


def latency_from_probe(
    probe_file: Path, times_file: Path, window: tuple[float, float]
) -> dict[str, Any]:
    """Correlate client send times with the server's per-frame probe (same monotonic clock)."""
    probe = np.load(probe_file)
    sends = np.load(times_file)
    latency: list[np.ndarray] = []
    processing: list[np.ndarray] = []
    unprocessed = 0
    matched = 0
    for key in sends.files:
        sid = key.split(":", 1)[1]
        sent = sends[key]
        in_window = (sent >= window[0]) & (sent < window[1])
        if f"end:{sid}" not in probe.files:
            unprocessed += int(in_window.sum())
            continue
        matched += 1
        end = probe[f"end:{sid}"]
        start = probe[f"start:{sid}"]
        m = min(len(sent), len(end))
        unprocessed += int(in_window[m:].sum())
        mask = in_window[:m]
        latency.append((end[:m] - sent[:m])[mask])
        processing.append((end[:m] - start[:m])[mask])
    lat = np.concatenate(latency) * 1000 if latency else np.zeros(0)
    proc = np.concatenate(processing) * 1000 if processing else np.zeros(0)

    def pct(a: np.ndarray, q: float) -> float | None:
        return float(np.percentile(a, q)) if len(a) else None

    return {
        "latency_frames": len(lat),
        "latency_p50_ms": pct(lat, 50),
        "latency_p99_ms": pct(lat, 99),
        "latency_max_ms": float(lat.max()) if len(lat) else None,
        "processing_p50_ms": pct(proc, 50),
        "processing_p99_ms": pct(proc, 99),
        "processing_mean_ms": float(proc.mean()) if len(proc) else None,
        **loop_lag_from_probe(probe_file),
        "frames_unprocessed": unprocessed,
        "streams_probed": matched,
    }


def loop_lag_from_probe(probe_file: Path) -> dict[str, float | None]:
    """p50 and p99 of the server's event-loop lag probe (how late a 20 ms sleep woke up)."""
    with np.load(probe_file) as probe:
        lag = probe["loop_lag"] * 1000 if "loop_lag" in probe.files else np.zeros(0)
    if not len(lag):
        return {"loop_lag_p50_ms": None, "loop_lag_p99_ms": None}
    return {
        "loop_lag_p50_ms": float(np.percentile(lag, 50)),
        "loop_lag_p99_ms": float(np.percentile(lag, 99)),
    }


def _start_servers(
    children: Children,
    target: str,
    processes: int,
    pin: bool,
    step_dir: Path,
    *,
    event_loop: str = "asyncio",
    up_transport: str = "inproc",
) -> tuple[list[Child], list[Path], str, str]:
    """Start the target's server(s); return (children, probe files, mode, url/target)."""
    servers: list[Child] = []
    probes: list[Path] = []
    cpus = ["--cpus", SERVER_CPU] if pin else []
    loop = ["--event-loop", event_loop]  # every probe server: explicit, never inherited
    if target == "workers":
        # The real `sonicwire serve --workers N` (N = processes; 1 = one plain server process),
        # the probe in every serving process (bench/worker_probe.py).
        argv = [PYTHON, "-m", "bench.worker_probe", "--port", "0", "--workers", str(processes)]
        argv += ["--backend", "echo", "--max-streams", "0", "--idle-timeout-seconds", "0"]
        argv += ["--drain-grace-seconds", "2", "--log-level", "WARNING"]
        if pin:
            argv = ["taskset", "-c", SERVER_CPU, *argv]
        child = children.start(
            f"workers-{processes}", argv, env={"SONICWIRE_BENCH_PROBE_DIR": str(step_dir)}
        )
        serving = [p.pid for p in _workers_of(child.pid)] if processes > 1 else [child.pid]
        probes = [step_dir / f"probe-{pid}.npz" for pid in serving]
        return [child], probes, "grpc", f"127.0.0.1:{child.port}"
    if target in ("sonicwire", "bare-echo"):
        port = 0
        for i in range(processes):
            probe = step_dir / f"probe-{i}.npz"
            argv = [PYTHON, "-m", "bench.probe_server", "--kind", target, "--port", str(port)]
            argv += ["--probe-out", str(probe), *loop, *cpus]
            if processes > 1:
                argv.append("--reuseport")
            child = children.start(f"{target}-{i}", argv)
            port = child.port
            servers.append(child)
            probes.append(probe)
        return servers, probes, "grpc", f"127.0.0.1:{port}"
    if target == "gateway":
        probe = step_dir / "probe-0.npz"
        server = children.start(
            "sonicwire-for-gateway",
            [PYTHON, "-m", "bench.probe_server", "--probe-out", str(probe), *loop, *cpus],
        )
        argv = [
            PYTHON,
            "-m",
            "sonicwire.gateway",
            "--port",
            "0",
            "--grpc-target",
            server.target,
            "--log-level",
            "WARNING",
        ]
        if pin:
            argv = ["taskset", "-c", SERVER_CPU, *argv]
        gateway = children.start(
            "gateway",
            argv,
            env={"SONICWIRE_GATEWAY_MAX_MESSAGES_PER_SECOND": "1000"},
        )
        return [server, gateway], [probe], "ws", f"ws://127.0.0.1:{gateway.port}/ws"
    if target == "up":
        # `make run`'s shape: server and gateway in one process and event loop (the gateway
        # reaches the server in process, or over loopback gRPC with up_transport "grpc");
        # the same probe as "gateway"'s server.
        probe = step_dir / "probe-0.npz"
        argv = [PYTHON, "-m", "bench.probe_server", "--kind", "up", "--probe-out", str(probe)]
        argv += ["--gateway-transport", up_transport]  # explicit, never inherited
        child = children.start(
            "sonicwire-up",
            [*argv, *loop, *cpus],
            env={"SONICWIRE_GATEWAY_MAX_MESSAGES_PER_SECOND": "1000"},
        )
        return [child], [probe], "ws", f"ws://127.0.0.1:{child.port}/ws"
    if target == "pipecat":
        from bench.peer_env import ensure_peer_env

        python = str(ensure_peer_env())
        script = str(Path(__file__).with_name("pipecat_peer.py"))
        probe = step_dir / "probe-0.npz"  # the loop-lag probe only (see pipecat_peer.py)
        argv = [python, script, "--port", "0", "--probe-out", str(probe)]
        if pin:
            argv = ["taskset", "-c", SERVER_CPU, *argv]
        child = children.start("pipecat", argv, env={"PYTHONWARNINGS": "ignore"})
        return [child], [probe], "ws", f"ws://127.0.0.1:{child.port}/ws"
    raise ValueError(f"unknown target {target!r}")


def _workers_of(pid: int) -> list[psutil.Process]:
    """The worker processes a `--workers` supervisor spawned (not its resource tracker)."""
    return [p for p in psutil.Process(pid).children() if "spawn_main" in " ".join(p.cmdline())]


def server_pids(servers: list[Child]) -> list[int]:
    """Every process of the servers: a `--workers` supervisor's workers included."""
    pids = []
    for s in servers:
        pids.append(s.pid)
        pids.extend(p.pid for p in _workers_of(s.pid))
    return pids


def run_step(
    children: Children,
    scratch: Path,
    target: str,
    n: int,
    config: StepConfig,
    *,
    processes: int = 1,
    pin: bool = True,
    profile_out: Path | None = None,
) -> dict[str, Any]:
    """Measure ``target`` at ``n`` streams. Never raises for a failed step: see ``error``.

    With ``profile_out``, py-spy samples the first server process during the window and its
    collapsed stacks are written there.
    """
    if target == "pipecat":
        # pipecat builds a Silero ONNX session per connection (~0.14 s, blocking its loop):
        # connect slower than that and give the backlog time to clear before measuring.
        config = replace(config, ramp_s=max(config.ramp_s, 0.2 * n), warmup_s=config.warmup_s + 2)
    step_dir = scratch / f"{target}-p{processes}-n{n}-{time.monotonic_ns()}"
    step_dir.mkdir(parents=True)
    result: dict[str, Any] = {
        "target": target,
        "n": n,
        "processes": processes,
        "pinned": pin,
        "ramp_s": config.ramp_s,
        "warmup_s": config.warmup_s,
        "frame_ms": config.frame_ms,
    }
    servers: list[Child] = []
    result["machine_busy_cores_before"] = wait_quiet(config.quiet_wait_s)
    if children.realtime:
        # Another real-time benchmark would share the cores on equal terms: wait for it.
        others = wait_no_other_realtime(config.realtime_wait_s)
        result["other_realtime_before"] = len(others)
    try:
        servers, probes, mode, url = _start_servers(
            children,
            target,
            processes,
            pin,
            step_dir,
            event_loop=config.event_loop,
            up_transport=config.up_transport,
        )
        time.sleep(0.5)
        pids = server_pids(servers)
        idle_rss = sum(psutil.Process(pid).memory_info().rss for pid in pids)
        out = step_dir / "load.json"
        times = step_dir / "times.npz"
        argv = [
            PYTHON,
            "-m",
            "bench.loadgen",
            "--mode",
            mode,
            "--target",
            url,
            "--n",
            str(n),
            "--duration",
            str(config.duration_s),
            "--warmup",
            str(config.warmup_s),
            "--ramp",
            str(config.ramp_s),
            "--drain",
            str(config.drain_s),
            "--seed",
            str(config.seed),
            "--out",
            str(out),
            "--times-out",
            str(times),
            "--lead-ms",
            "0" if target == "pipecat" else "120",
        ]
        if config.frame_ms != 20:
            if mode != "grpc" or config.frame_ms % 20:
                raise ValueError(f"{config.frame_ms} ms client frames: gRPC targets, 20 ms steps")
            argv += ["--frames-per-message", str(config.frame_ms // 20)]
        if config.ws_first_message:
            if mode != "ws":
                raise ValueError("a first WebSocket message needs a WebSocket target")
            argv += ["--ws-first-message", config.ws_first_message]
        for pid in pids:
            argv += ["--server-pid", str(pid)]
        if pin:
            argv += ["--cpus", CLIENT_CPU]
        budget = config.ramp_s + config.warmup_s + config.duration_s + config.drain_s + 40
        if profile_out is not None:
            load = _run_profiled(children, argv, out, budget, servers[0], config, profile_out)
        else:
            load = children.run_json(f"loadgen-{target}-{n}", argv, out, budget)
        # Real-time processes of others still running at the end of the window (a proxy for
        # "during": the report counts the steps that had any, at the start or the end).
        result["other_realtime_after"] = len(other_realtime_processes())
        for s in servers:
            children.stop(s)
        servers = []
        window = load["window_s"]
        cpu = sum(load["server_cpu_s"].values())
        rss = sum(load["server_rss"].values())
        result.update(
            window_s=window,
            server_cpu_s=cpu,
            # Per process, in `server_pids` order (a `--workers` supervisor first).
            server_pids=pids,
            server_cpu_s_by_pid=[load["server_cpu_s"].get(str(pid)) for pid in pids],
            cores_used=cpu / window,
            cpu_ms_per_stream_s=cpu / window / n * 1000,
            # the asyncio loop's thread; the rest is gRPC C-core's poller and other threads
            main_thread_share=load.get("server_main_thread_cpu_s", 0.0) / cpu if cpu else None,
            idle_rss_mb=idle_rss / 1e6,
            rss_mb=rss / 1e6,
            rss_per_stream_mb=(rss - idle_rss) / n / 1e6,
            client_cores_used=load["client_cpu_s"] / window,
            # CPU the rest of the machine used meanwhile (other work sharing the cores).
            foreign_cores_used=max(
                0.0, (load["system_busy_cpu_s"] - cpu - load["client_cpu_s"]) / window
            ),
            client_send_slip_p99_ms=load["send_slip_p99_ms"],
            client_frames_sent_late=load["frames_sent_late"],
            frames_sent=load["frames_sent"],
            audio_frames_received=load["audio_frames_received"],
            late_frames=load["late_frames"],
            late_frames_jb60=load["late_frames_jb60"],
            delivery_lag_p50_ms=load["delivery_lag_p50_ms"],
            delivery_lag_p99_ms=load["delivery_lag_p99_ms"],
            gap_frames=load["gap_frames"],
            streams_failed=load["streams_failed"],
            errors=load["errors"],
            replies=load["turns"],
            utterances=load["speech_stopped"],
            interruptions=load["interruptions"],
            clips=load["clips"],
            audio_out_s=load["audio_out_s"],
        )
        if probes and all(p.exists() for p in probes):
            merged = _merge_probes(probes, step_dir / "probe.npz")
            if target in PROBED_TARGETS:
                window = (load["window_start"], load["window_end"])
                result.update(latency_from_probe(merged, times, window))
            else:  # pipecat: no per-frame probe inside it, only the loop's lag
                result.update(loop_lag_from_probe(merged))
        result["client_bound"] = bool(
            result["client_cores_used"] > 0.9 or result["client_send_slip_p99_ms"] > 5.0
        )
    except Exception as error:  # a failed step is a result, not a crash
        result["error"] = f"{type(error).__name__}: {error}"[:2000]
    finally:
        for s in servers:
            with contextlib.suppress(Exception):
                children.stop(s)
    result["pass"], result["fail_reasons"] = step_passes(result)
    return result


def _run_profiled(
    children: Children,
    argv: list[str],
    out: Path,
    budget: float,
    server: Child,
    config: StepConfig,
    profile_out: Path,
) -> dict[str, Any]:
    from bench.profile import py_spy_argv, py_spy_path

    binary = py_spy_path()
    if binary is None:
        raise RuntimeError("py-spy is not installed")
    loadgen = children.start("loadgen-profiled", argv, wait_ready=False)
    spy: Child | None = None
    try:
        time.sleep(config.ramp_s + config.warmup_s + 0.7)  # ~ the generator's start-up
        spy = children.start(
            "py-spy",
            py_spy_argv(binary, server.pid, config.duration_s - 0.5, profile_out),
            wait_ready=False,
        )
        loadgen.popen.wait(budget)
        spy.popen.wait(30)
    finally:
        children.stop(loadgen)
        if spy is not None:
            children.stop(spy)
    if loadgen.popen.returncode != 0 or not out.exists():
        raise RuntimeError(f"load generator failed:\n{loadgen.log_tail()}")
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def _merge_probes(files: list[Path], out: Path) -> Path:
    if len(files) == 1:
        return files[0]
    data: dict[str, np.ndarray] = {}
    lags = []
    for f in files:
        with np.load(f) as probe:
            for key in probe.files:
                if key == "loop_lag":
                    lags.append(probe[key])
                else:
                    data[key] = probe[key]
    data["loop_lag"] = np.concatenate(lags) if lags else np.zeros(0)
    np.savez(out, **data)  # type: ignore[arg-type]
    return out


#: Targets whose server runs the bench probe (``bench/probe_server.py``): their added latency is
#: measured, so p99 is a criterion and a missing p99 is a failure, never a pass.
PROBED_TARGETS = frozenset({"sonicwire", "bare-echo", "gateway", "up", "workers"})

#: The pass criteria of each target, as the report states them. pipecat has no per-frame probe
#: (its latency cannot be measured at the same point; it runs only the loop-lag probe), so its
#: largest N rests on the other criteria.
CRITERIA: dict[str, tuple[str, ...]] = {
    "sonicwire": (
        "p99 added latency (client write -> front-end output) measured and <= 10 ms",
        "no late assistant frames (client plays from the first frame)",
        "no dropped output frames, no unprocessed input frames, no failed stream",
        "at least one reply (the VAD ended an utterance)",
        "load generator not saturated",
    ),
    "workers": (
        "p99 added latency (client write -> front-end output, in whichever worker) <= 10 ms",
        "no late assistant frames (client plays from the first frame)",
        "no dropped output frames, no unprocessed input frames, no failed stream",
        "at least one reply (the VAD ended an utterance)",
        "load generator not saturated",
    ),
    "bare-echo": (
        "p99 added latency (client write -> servicer) measured and <= 10 ms",
        "no dropped output frames, no unprocessed input frames, no failed stream",
        "load generator not saturated (late frames are not judged: the echo is not paced)",
    ),
    "gateway": (
        "p99 added latency measured at the gRPC server's front end and <= 10 ms",
        "no late assistant frames, no dropped or unprocessed frames, no failed stream",
        "at least one reply; gateway + server CPU below 95% of the core",
        "load generator not saturated",
    ),
    "up": (
        "p99 added latency measured at the gRPC server's front end and <= 10 ms",
        "no late assistant frames, no dropped or unprocessed frames, no failed stream",
        "at least one reply; the process's CPU (server + gateway) below 95% of the core",
        "load generator not saturated",
    ),
    "pipecat": (
        "no late assistant frames with a 60 ms client jitter buffer (pipecat sends no lead)",
        "no dropped output frames, no failed stream, at least one reply",
        "server CPU below 95% of the core; load generator not saturated",
        "latency: NOT a criterion (no per-frame probe inside pipecat; not measured)",
    ),
}


def _required(target: str) -> tuple[str, ...]:
    """The figures a step of ``target`` must have for its criteria to be judged at all."""
    keys = ["streams_failed", "gap_frames", "client_bound", "cores_used"]
    if target != "bare-echo":
        keys.append("replies")
    if target in ("sonicwire", "gateway", "up", "workers"):
        keys.append("late_frames")
    if target == "pipecat":
        keys.append("late_frames_jb60")
    if target in PROBED_TARGETS:
        keys.append("frames_unprocessed")
    return tuple(keys)


def step_passes(r: dict[str, Any]) -> tuple[bool, list[str]]:
    """Whether the step meets its target's criteria (``CRITERIA``); an unmeasured criterion
    is a failure, not a pass."""
    reasons = []
    if "error" in r:
        return False, ["step failed: " + r["error"].splitlines()[0]]
    target = r["target"]
    for key in _required(target):
        if r.get(key) is None:
            reasons.append(f"{key} not measured")
    if r.get("streams_failed"):
        reasons.append(f"{r['streams_failed']} streams failed")
    if target == "pipecat":
        # pipecat sends audio at real time with no lead: a client needs a jitter buffer.
        if r.get("late_frames_jb60"):
            reasons.append(f"{r['late_frames_jb60']} late frames (60 ms jitter buffer)")
    elif target != "bare-echo" and r.get("late_frames"):
        reasons.append(f"{r['late_frames']} late frames")
    if r.get("gap_frames"):
        reasons.append(f"{r['gap_frames']} dropped output frames")
    if r.get("frames_unprocessed"):
        reasons.append(f"{r['frames_unprocessed']} input frames never processed")
    p99 = r.get("latency_p99_ms")
    if target in PROBED_TARGETS and p99 is None:
        reasons.append("p99 added latency not measured (no probe data)")
    elif p99 is not None and p99 > LATENCY_P99_LIMIT_MS:
        reasons.append(f"p99 added latency {p99:.1f} ms > {LATENCY_P99_LIMIT_MS:g} ms")
    if target in ("pipecat", "gateway", "up") and r.get("cores_used", 0) > 0.95 * r["processes"]:
        reasons.append("server CPU saturated")
    if target != "bare-echo" and r.get("replies", 0) == 0:
        reasons.append("no replies: the VAD never ended an utterance")
    if r.get("client_bound"):
        reasons.append("load generator saturated (result bounded by the client)")
    return not reasons, reasons
