"""Soak: many real-time streams, with cancels mixed in, against a server process for a while.

Run from the repository root::

    .venv/bin/python -m bench.soak                          # 100 streams, 10 minutes
    .venv/bin/python -m bench.soak --streams 50 --minutes 2

It starts ``python -m sonicwire.server --backend echo`` on a free loopback port and keeps
``--streams`` conversations open at all times. Each conversation sends recorded speech and
silence paced at real time (20 ms chunks), so the echo backend answers every utterance while
the caller may talk over it (barge-ins); it ends after 10-60 s, by half-close (the server
finishes the turn, status OK) or, for ``--cancel-ratio`` of them, by a client cancel at a
random moment. The slot then opens a new conversation.

What is measured from outside the server process, at idle before the load, when the load is
up, every ``--sample-seconds`` under load, at the end of the load, and at idle after it:
resident memory (RSS), open file descriptors (``/proc/PID/fd``), OS threads, CPU, and from the
server's own Prometheus endpoint ``sonicwire_active_streams``, ``sonicwire_event_loop_tasks``
(the asyncio tasks alive in the server's loop) and the Python GC object counts. A
grpc.health.v1 check every ``--sample-seconds`` tracks event-loop
health. Finally the server gets SIGTERM and must drain and exit 0.

Writes ``bench/results/soak.json`` (``--no-write`` to skip), prints a Markdown summary and
re-renders docs/soak.md from the JSON (``bench/soak_report.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
import wave
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import psutil
import soxr
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sonicwire.v1 import voice_service_pb2 as pb
from sonicwire.v1 import voice_service_pb2_grpc as pb_grpc

__all__ = ["Sample", "SoakResult", "main", "run"]

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "soak.json"
SPEECH_WAV = Path("/usr/share/sounds/alsa/Front_Center.wav")
RATE = 16_000


# --- audio ------------------------------------------------------------------------------------


def _speech_16k() -> bytes:
    """About 1.5 s of recorded speech at 16 kHz (a 1.5 s warble tone if the WAV is missing)."""
    if SPEECH_WAV.exists():
        with wave.open(str(SPEECH_WAV), "rb") as wav:
            rate, channels = wav.getframerate(), wav.getnchannels()
            data = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
        mono = data.reshape(-1, channels).mean(axis=1)
        out = soxr.resample(mono.astype(np.float32), rate, RATE)
        speech: bytes = np.clip(out, -32768, 32767).astype(np.int16).tobytes()
        return speech
    t = np.arange(int(1.5 * RATE)) / RATE
    tone = 8000 * np.sin(2 * np.pi * (220 + 80 * np.sin(2 * np.pi * 3 * t)) * t)
    return tone.astype(np.int16).tobytes()


def _caller_audio(speech: bytes, rng: random.Random) -> bytes:
    """A caller's loop: silence, speech, silence (1-3 s each), then it repeats."""
    silence = bytes(2 * RATE * rng.randint(1, 3))
    return silence + speech + bytes(2 * RATE * rng.randint(1, 3))


# --- the server process -----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Sample:
    """One observation of the server process from outside."""

    t_s: float
    phase: str
    rss_mb: float
    fds: int
    threads: int
    cpu_percent: float
    active_streams: float | None
    gc_collected: float | None
    client_streams: int
    health_ms: float | None
    load_avg_1m: float | None = None
    tasks: float | None = None


def _scrape(metrics_port: int) -> dict[str, float]:
    """The server's Prometheus metrics, flattened (label sets summed per name)."""
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return {}
    values: defaultdict[str, float] = defaultdict(float)
    for line in text.splitlines():
        match = re.match(r"^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)$", line)
        if match:
            values[match.group(1)] += float(match.group(3))
    return dict(values)


class ServerProcess:
    def __init__(self, args: argparse.Namespace) -> None:
        self.metrics_port = _free_port()
        self.command = [
            sys.executable,
            "-m",
            "sonicwire.server",
            "--backend",
            "echo",
            "--port",
            "0",
            "--metrics-port",
            str(self.metrics_port),
            "--max-streams",
            str(args.streams * 2),
            "--drain-grace-seconds",
            str(args.drain_grace),
        ]
        self.proc: subprocess.Popen[bytes] | None = None
        self.target = ""
        self.ps: psutil.Process | None = None

    def start(self) -> None:
        env = {**os.environ, "SONICWIRE_LOG_LEVEL": "WARNING"}
        self.proc = subprocess.Popen(self.command, stdout=subprocess.PIPE, env=env, cwd=ROOT)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        match = re.search(r"gRPC on (\S+)", line)
        if not match:
            self.proc.kill()
            raise SystemExit(f"soak: the server did not start: {line!r}")
        self.target = match.group(1)
        self.ps = psutil.Process(self.proc.pid)
        self.ps.cpu_percent(None)  # prime the CPU meter

    def sample(
        self, t_s: float, phase: str, client_streams: int, health_ms: float | None
    ) -> Sample:
        assert self.ps is not None and self.proc is not None
        # Process figures first: the metrics scrape itself opens a socket and a thread.
        rss = self.ps.memory_info().rss
        fds = len(os.listdir(f"/proc/{self.proc.pid}/fd"))
        threads = self.ps.num_threads()
        cpu = self.ps.cpu_percent(None)
        metrics = _scrape(self.metrics_port)
        return Sample(
            t_s=round(t_s, 1),
            phase=phase,
            rss_mb=round(rss / 2**20, 1),
            fds=fds,
            threads=threads,
            cpu_percent=round(cpu, 1),
            active_streams=metrics.get("sonicwire_active_streams"),
            gc_collected=metrics.get("python_gc_objects_collected_total"),
            client_streams=client_streams,
            tasks=metrics.get("sonicwire_event_loop_tasks"),
            health_ms=None if health_ms is None else round(health_ms, 1),
            load_avg_1m=round(os.getloadavg()[0], 2),
        )

    def terminate(self, timeout_s: float) -> tuple[int | None, float]:
        """SIGTERM, wait; returns (exit code or None if it had to be killed, seconds)."""
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code: int | None = self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            code = None
        return code, time.monotonic() - started


# --- the load ---------------------------------------------------------------------------------


@dataclass
class Tally:
    started: int = 0
    ok: int = 0
    cancelled: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    audio_in_s: float = 0.0
    audio_out_s: float = 0.0
    turns: int = 0
    interruptions: int = 0
    first_audio_ms: list[int] = field(default_factory=list)
    live: int = 0


async def _conversation(
    stub: pb_grpc.VoiceServiceAsyncStub,
    audio: bytes,
    length_s: float,
    cancel_at_s: float | None,
    chunk_ms: int,
    tally: Tally,
) -> None:
    """One conversation: stream ``audio`` in real time, then half-close or cancel."""
    chunk = 2 * RATE * chunk_ms // 1000
    call = stub.Converse()
    tally.started += 1
    tally.live += 1
    cancelled = False

    async def reader() -> None:
        try:
            async for response in call:
                match response.WhichOneof("response"):
                    case "audio":
                        tally.audio_out_s += len(response.audio.audio) / (2 * RATE)
                    case "turn_complete":
                        tally.turns += 1
                        first_audio = response.turn_complete.latency.first_audio_ms
                        if first_audio:
                            tally.first_audio_ms.append(first_audio)
                    case "interruption":
                        tally.interruptions += 1
        except asyncio.CancelledError:
            if not cancelled:  # grpc.aio raises CancelledError in readers of a cancelled call
                raise
        except grpc.aio.AioRpcError:
            pass  # the status is read from the call below

    read = asyncio.create_task(reader())
    try:
        await call.write(pb.ConverseRequest(config=pb.SessionConfig()))
        start = time.monotonic()
        stop_at = cancel_at_s if cancel_at_s is not None else length_s
        sent = 0
        position = 0
        while sent * chunk_ms / 1000 < stop_at and not read.done():
            piece = audio[position : position + chunk]
            if len(piece) < chunk:
                position = 0
                piece = audio[:chunk]
            position += chunk
            await call.write(pb.ConverseRequest(audio=pb.AudioInput(audio=piece)))
            sent += 1
            tally.audio_in_s += chunk_ms / 1000
            delay = start + sent * chunk_ms / 1000 - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        if cancel_at_s is not None and not read.done():
            cancelled = True
            call.cancel()
            tally.cancelled += 1
        else:
            await call.done_writing()
        # A half-closed stream ends once the server has finished the turn in progress.
        await asyncio.wait({read}, timeout=120)
    except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
        pass  # the server ended the stream while we were writing: its status says why
    finally:
        hung = not read.done()
        if hung:
            # Never expected: the server must end a half-closed stream (or report why).
            cancelled = True
            call.cancel()
            read.cancel()
            tally.errors["no status 120 s after half-close (client cancelled)"] += 1
        await asyncio.gather(read, return_exceptions=True)
        tally.live -= 1
    if not cancelled:
        code = await call.code()
        if code == grpc.StatusCode.OK:
            tally.ok += 1
        else:
            tally.errors[f"{code.name}: {await call.details()}"] += 1


async def _slot(
    stub: pb_grpc.VoiceServiceAsyncStub,
    speech: bytes,
    seed: int,
    deadline: float,
    args: argparse.Namespace,
    tally: Tally,
) -> None:
    rng = random.Random(seed)
    # Stagger the start over the ramp so streams do not move in lockstep.
    await asyncio.sleep(rng.uniform(0, args.ramp_seconds))
    while time.monotonic() < deadline:
        length = rng.uniform(10, 60)
        length = min(length, max(1.0, deadline - time.monotonic()))
        cancel_at = rng.uniform(0.5, length) if rng.random() < args.cancel_ratio else None
        await _conversation(
            stub, _caller_audio(speech, rng), length, cancel_at, args.chunk_ms, tally
        )


async def _health_ms(health: health_pb2_grpc.HealthStub) -> float | None:
    started = time.monotonic()
    try:
        await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
    except grpc.aio.AioRpcError:
        return None
    return (time.monotonic() - started) * 1000


@dataclass
class SoakResult:
    config: dict[str, Any]
    machine: dict[str, Any]
    samples: list[Sample]
    conversations: dict[str, Any]
    drain: dict[str, Any]
    summary: dict[str, Any]
    #: When the run started (UTC, ISO 8601); empty in runs recorded before it was kept.
    started_at: str = ""


WARM_UP_S = 60.0
"""Conversations last 10-60 s: before a minute has passed, turns, barge-ins and cancels have
not all happened yet and the process is still growing its steady-state working set."""


def _summary(samples: list[Sample]) -> dict[str, Any]:
    """Flatness figures: phases, and the steady state (the load after `WARM_UP_S`)."""

    def pick(phase: str) -> Sample:
        return next(s for s in samples if s.phase == phase)

    loaded = [s for s in samples if s.phase in ("load-start", "load", "load-end")]
    start = loaded[0].t_s if loaded else 0.0
    steady = [s for s in loaded if s.t_s - start >= WARM_UP_S] or loaded
    slope = 0.0
    times = [s.t_s for s in steady]
    if len(steady) >= 3 and max(times) > min(times):
        slope = float(np.polyfit(times, [s.rss_mb for s in steady], 1)[0]) * 60
    rss = [s.rss_mb for s in steady]
    health = [s.health_ms for s in loaded if s.health_ms is not None]
    rows = {}
    for phase in ("idle-before", "load-start", "load-end", "idle-after"):
        sample = pick(phase)
        rows[phase] = {
            "t_s": sample.t_s,
            "rss_mb": sample.rss_mb,
            "fds": sample.fds,
            "threads": sample.threads,
            "active_streams": sample.active_streams,
            "tasks": sample.tasks,
            "client_streams": sample.client_streams,
        }
    return {
        "phases": rows,
        "steady_state": {
            "from_t_s": steady[0].t_s if steady else None,
            "samples": len(steady),
            "rss_mb_min": min(rss) if rss else None,
            "rss_mb_median": statistics.median(rss) if rss else None,
            "rss_mb_max": max(rss) if rss else None,
            "rss_slope_mb_per_min": round(slope, 2),
            "fds_min_max": [min(s.fds for s in steady), max(s.fds for s in steady)]
            if steady
            else None,
            "threads_min_max": [min(s.threads for s in steady), max(s.threads for s in steady)]
            if steady
            else None,
        },
        "fds_idle_before_after": [pick("idle-before").fds, pick("idle-after").fds],
        "threads_idle_before_after": [pick("idle-before").threads, pick("idle-after").threads],
        "cpu_percent_under_load_median": statistics.median(s.cpu_percent for s in loaded)
        if loaded
        else 0.0,
        "health_ms_median": statistics.median(health) if health else None,
        "health_ms_max": max(health) if health else None,
        "health_failures": sum(1 for s in loaded if s.health_ms is None),
    }


async def run(args: argparse.Namespace) -> SoakResult:
    speech = _speech_16k()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    server = ServerProcess(args)
    server.start()
    samples: list[Sample] = []
    tally = Tally()
    t0 = time.monotonic()
    try:
        # Health on its own connection, as a kubelet probe would be.
        async with (
            grpc.aio.insecure_channel(server.target) as channel,
            grpc.aio.insecure_channel(server.target) as probe_channel,
        ):
            stub = pb_grpc.VoiceServiceStub(channel)
            health = health_pb2_grpc.HealthStub(probe_channel)
            await asyncio.sleep(2)
            samples.append(
                server.sample(
                    time.monotonic() - t0, "idle-before", tally.live, await _health_ms(health)
                )
            )
            deadline = time.monotonic() + args.minutes * 60
            slots = [
                asyncio.create_task(_slot(stub, speech, args.seed + i, deadline, args, tally))
                for i in range(args.streams)
            ]
            await asyncio.sleep(args.ramp_seconds + 5)
            phase = "load-start"
            while time.monotonic() < deadline - 1:
                health_ms = await _health_ms(health)
                samples.append(server.sample(time.monotonic() - t0, phase, tally.live, health_ms))
                phase = "load"
                if args.verbose:
                    print(asdict(samples[-1]), flush=True)
                await asyncio.sleep(min(args.sample_seconds, max(0.0, deadline - time.monotonic())))
            samples.append(
                server.sample(
                    time.monotonic() - t0, "load-end", tally.live, await _health_ms(health)
                )
            )
            await asyncio.gather(*slots, return_exceptions=True)
            await asyncio.sleep(5)  # let the server finish its streams' clean-up
            samples.append(
                server.sample(
                    time.monotonic() - t0, "idle-after", tally.live, await _health_ms(health)
                )
            )
    finally:
        code, drain_s = server.terminate(args.drain_grace + 15)
    first_audio = sorted(tally.first_audio_ms)
    conversations = {
        "started": tally.started,
        "ended_ok": tally.ok,
        "cancelled_by_client": tally.cancelled,
        "errors": dict(tally.errors),
        "audio_in_minutes": round(tally.audio_in_s / 60, 1),
        "audio_out_minutes": round(tally.audio_out_s / 60, 1),
        "assistant_turns": tally.turns,
        "interruptions": tally.interruptions,
        "first_audio_ms_p50": first_audio[len(first_audio) // 2] if first_audio else None,
        "first_audio_ms_p99": first_audio[int(len(first_audio) * 0.99)] if first_audio else None,
    }
    return SoakResult(
        config={
            "streams": args.streams,
            "minutes": args.minutes,
            "cancel_ratio": args.cancel_ratio,
            "chunk_ms": args.chunk_ms,
            "seed": args.seed,
            "server": " ".join(server.command[1:]),
        },
        machine={
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "grpcio": grpc.__version__,
        },
        samples=samples,
        conversations=conversations,
        drain={"exit_code": code, "seconds": round(drain_s, 2)},
        summary=_summary(samples),
        started_at=started_at,
    )


def markdown(result: SoakResult) -> str:
    s = result.summary
    steady = s["steady_state"]
    lines = [
        f"{result.config['streams']} streams, {result.config['minutes']} min, "
        f"{result.machine['cpus']} CPUs, cancel ratio {result.config['cancel_ratio']}",
        "",
        "| phase | t (s) | RSS MB | fds | threads | asyncio tasks | active streams (server) "
        "| client streams |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for phase, row in s["phases"].items():
        lines.append(
            f"| {phase} | {row['t_s']} | {row['rss_mb']} | {row['fds']} | {row['threads']} | "
            f"{row.get('tasks')} | {row['active_streams']} | {row['client_streams']} |"
        )
    c = result.conversations
    lines += [
        "",
        f"Steady state (from t = {steady['from_t_s']} s, {steady['samples']} samples): RSS "
        f"{steady['rss_mb_min']}-{steady['rss_mb_max']} MB (median {steady['rss_mb_median']}, "
        f"slope {steady['rss_slope_mb_per_min']} MB/min), fds {steady['fds_min_max']}, "
        f"threads {steady['threads_min_max']}; server CPU median "
        f"{s['cpu_percent_under_load_median']} %; health check median {s['health_ms_median']} "
        f"ms, max {s['health_ms_max']} ms, failures {s['health_failures']}.",
        f"Conversations: {c['started']} started, {c['ended_ok']} OK, "
        f"{c['cancelled_by_client']} cancelled by the client, errors {c['errors'] or 'none'}; "
        f"{c['assistant_turns']} assistant turns, {c['interruptions']} interruptions; "
        f"audio in {c['audio_in_minutes']} min, out {c['audio_out_minutes']} min; "
        f"first audio p50 {c['first_audio_ms_p50']} ms, p99 {c['first_audio_ms_p99']} ms.",
        f"SIGTERM: exit code {result.drain['exit_code']} after {result.drain['seconds']} s.",
    ]
    return "\n".join(lines)


def resummarize(path: Path) -> SoakResult:
    """Recompute the summary of a saved run (after a change to `_summary`)."""
    data = json.loads(path.read_text())
    data["samples"] = [Sample(**sample) for sample in data["samples"]]
    data["summary"] = _summary(data["samples"])
    return SoakResult(**data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=100, help="concurrent conversations")
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the load")
    parser.add_argument("--cancel-ratio", type=float, default=0.3)
    parser.add_argument("--chunk-ms", type=int, default=20, help="audio per message")
    parser.add_argument("--ramp-seconds", type=float, default=10.0)
    parser.add_argument("--sample-seconds", type=float, default=15.0)
    parser.add_argument("--drain-grace", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument(
        "--resummarize", type=Path, metavar="JSON", help="recompute a saved run's summary"
    )
    args = parser.parse_args(argv)
    if args.resummarize:
        result = resummarize(args.resummarize)
        print(markdown(result))
        if not args.no_write:
            args.resummarize.write_text(json.dumps(asdict(result), indent=2) + "\n")
        return 0
    # SIGTERM unwinds like Ctrl-C, so the server process is stopped in `run`'s finally.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    result = asyncio.run(run(args))
    print(markdown(result))
    if not args.no_write:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(asdict(result), indent=2) + "\n")
        print(f"wrote {args.output}")
        if args.output.resolve() == RESULTS:
            from bench.soak_report import main as render_doc

            render_doc()  # docs/soak.md is generated from this file
    return 0


if __name__ == "__main__":
    sys.exit(main())
