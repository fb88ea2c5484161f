"""Resume cost with the Python SDK: time from ``GoingAway`` to the resumed stream's first audio,
and microphone audio lost per resume, over real replicas and a real redis-server.

    python -m bench.resume [--trials 20] [--out bench/results/resume.json]

Set-up (all on loopback, started and stopped here): a ``redis-server``; two replicas sharing it
(``bench.resume_replicas``, its own process; echo backend; every microphone frame's index is
recorded by the backend); the SDK (``Client`` with auto-resume on, the default) with one target
listing both replicas and ``round_robin``, as a headless Service gives a gRPC client.

Each trial is one conversation with a live microphone (a 20 ms frame every 20 ms, each frame
carrying its index): silence, utterance 1, silence, utterance 2, silence. Utterance 1 is
answered normally: its *baseline* is the time from its last speech frame to the first audio of
its echo. ``--drain-before-end-ms`` before utterance 2 ends, the replica holding the stream is
drained with a ``--grace`` shorter than the voice activity detector's end-of-speech hangover,
so the old replica cannot answer it: the stream ends mid-utterance, the SDK reconnects, resumes
and resends the utterance from its replay buffer, and the other replica answers. Measured per
trial, on the client's clock: ``GoingAway`` -> ``Resumed`` (the new stream started and the
buffered audio was written), ``GoingAway`` -> the resumed stream's first audio, utterance 2's
last speech frame -> that audio (compare with the baseline), and microphone frames lost (sent
by the application but received by no backend) and sent twice. The replica that drained starts
again on its port before the next trial.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.resume_replicas import mark
from bench.speech import FRAME_S, load_corpus

__all__ = ["Trial", "main", "run"]

ROOT = Path(__file__).resolve().parent.parent
CLIP = "Front_Center"


@dataclass
class Trial:
    index: int
    session_id: str = ""
    error: str = ""
    frames_sent: int = 0
    frames_lost: int = 0
    frames_twice: int = 0
    resumes: int = 0
    resume_reason: str = ""
    sdk_audio_lost_ms: int = -1
    baseline_first_audio_ms: float | None = None
    going_away_to_resumed_ms: float | None = None
    going_away_to_first_audio_ms: float | None = None
    speech_end_to_first_audio_ms: float | None = None
    first_audio_after_resume: bool = False
    replica_drain_s: float | None = None
    events: list[str] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Replicas:
    """The ``bench.resume_replicas`` child, driven over its stdin/stdout."""

    def __init__(self, process: asyncio.subprocess.Process, ports: list[int]) -> None:
        self.process = process
        self.ports = ports
        self._lock = asyncio.Lock()

    @classmethod
    async def start(cls, store: str) -> Replicas:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.resume_replicas", "--state-store", store,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT, start_new_session=True,
        )  # fmt: skip
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        if "ports" not in line:
            process.kill()
            raise RuntimeError(f"replicas did not start: {line!r}")
        return cls(process, [int(p) for p in line.split("ports", 1)[1].split()])

    async def ask(self, command: str, timeout_s: float = 30.0) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        async with self._lock:
            self.process.stdin.write(command.encode() + b"\n")
            await self.process.stdin.drain()
            line = await asyncio.wait_for(self.process.stdout.readline(), timeout_s)
        answer: dict[str, Any] = json.loads(line)
        return answer

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ask("quit", 5), 5)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        await asyncio.wait_for(self.process.wait(), 10)


async def _trial(
    index: int, target: str, replicas: Replicas, clip: list[bytes], silence: list[bytes],
    grace_s: float, drain_before_end_ms: int,
) -> Trial:  # fmt: skip
    from sonicwire.client import AudioOutput, AutoResume, Client, GoingAway, Resumed
    from sonicwire.v1 import voice_service_pb2 as pb

    trial = Trial(index)
    gap = [silence[i % len(silence)] for i in range(75)]  # 1.5 s
    plan = gap[:15] + clip + gap + clip + gap + gap[:25]
    end1 = 15 + len(clip) - 1  # last speech frame of utterance 1
    end2 = end1 + len(gap) + len(clip)
    drain_at = end2 - drain_before_end_ms // 20
    times: dict[str, float] = {}
    config = pb.SessionConfig(
        input_format=pb.AudioFormat(
            encoding=pb.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=16000, channels=1
        ),
        echo_cancellation=pb.EchoCancellationSettings(disabled=True),
        noise_suppression=pb.NoiseSuppressionSettings(disabled=True),
    )
    options = [("grpc.lb_policy_name", "round_robin")]
    async with Client(target, options=options, auto_resume=AutoResume()) as client:
        async with client.converse(config) as conversation:
            trial.session_id = conversation.session_id

            async def microphone() -> None:
                loop = asyncio.get_running_loop()
                start = loop.time()
                for i, frame in enumerate(plan):
                    await conversation.send_audio(mark(frame, i))
                    trial.frames_sent += 1
                    now = time.monotonic()
                    if i == end1:
                        times["speech_end_1"] = now
                    elif i == end2:
                        times["speech_end_2"] = now
                    if i == drain_at:
                        answer = await replicas.ask(f"drain {trial.session_id} {grace_s}")
                        trial.replica_drain_s = answer.get("drain_s")
                    await asyncio.sleep(max(start + (i + 1) * FRAME_S - loop.time(), 0))
                await conversation.end_input()

            mic = asyncio.create_task(microphone())
            try:
                async for event in conversation:
                    now = time.monotonic()
                    trial.events.append(type(event).__name__)
                    if isinstance(event, GoingAway):
                        times.setdefault("going_away", now)
                    elif isinstance(event, Resumed):
                        times.setdefault("resumed", now)
                        trial.resumes += 1
                        trial.resume_reason = event.reason
                        trial.sdk_audio_lost_ms = event.audio_lost_ms
                    elif isinstance(event, AudioOutput):
                        if "speech_end_1" in times and "first_audio_1" not in times:
                            times["first_audio_1"] = now
                        elif "going_away" in times and "first_audio_2" not in times:
                            times["first_audio_2"] = now
                            trial.first_audio_after_resume = "resumed" in times
                await mic
            finally:
                mic.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await mic
    received = (await replicas.ask(f"frames {trial.session_id}"))["frames"]
    trial.frames_lost = len(set(range(trial.frames_sent)) - set(received))
    trial.frames_twice = len(received) - len(set(received))

    def ms(a: str, b: str) -> float | None:
        return (times[b] - times[a]) * 1000 if a in times and b in times else None

    trial.baseline_first_audio_ms = ms("speech_end_1", "first_audio_1")
    trial.going_away_to_resumed_ms = ms("going_away", "resumed")
    trial.going_away_to_first_audio_ms = ms("going_away", "first_audio_2")
    trial.speech_end_to_first_audio_ms = ms("speech_end_2", "first_audio_2")
    return trial


def _pct(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


async def run(trials: int, grace_s: float, drain_before_end_ms: int) -> dict[str, Any]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is missing: run scripts/setup.sh")
    scratch = tempfile.mkdtemp(prefix="sonicwire-resume-bench-")
    port = _free_port()
    redis = await asyncio.create_subprocess_exec(
        binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
        "--dir", scratch, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    load_before = os.getloadavg()
    corpus = load_corpus()
    clip = [corpus.frames[i] for i in corpus.clips[corpus.clip_names.index(CLIP)]]
    silence = [corpus.frames[i] for i in corpus.silence]
    results: list[Trial] = []
    replicas: Replicas | None = None
    try:
        await asyncio.sleep(0.3)  # redis-server's start
        replicas = await Replicas.start(f"redis://127.0.0.1:{port}/0")
        target = "ipv4:" + ",".join(f"127.0.0.1:{p}" for p in replicas.ports)
        for index in range(trials):
            try:
                async with asyncio.timeout(60):
                    trial = await _trial(
                        index, target, replicas, clip, silence, grace_s, drain_before_end_ms
                    )
            except Exception as error:  # a failed trial is a result
                trial = Trial(index, error=f"{type(error).__name__}: {error}"[:300])
            results.append(trial)
            print(json.dumps({k: v for k, v in asdict(trial).items() if k != "events"}),
                  flush=True)  # fmt: skip
    finally:
        if replicas is not None:
            await replicas.stop()
        redis.terminate()
        await asyncio.wait_for(redis.wait(), 10)
        shutil.rmtree(scratch, ignore_errors=True)
    ok = [t for t in results if not t.error]
    resumed = [t for t in ok if t.resumes == 1 and t.first_audio_after_resume]

    def col(name: str) -> list[float]:
        return [v for t in resumed if (v := getattr(t, name)) is not None]

    summary = {
        "trials": trials,
        "failed_trials": len(results) - len(ok),
        "resumed_trials": len(resumed),
        "resume_reasons": sorted({t.resume_reason for t in ok}),
        "grace_s": grace_s,
        "drain_before_end_ms": drain_before_end_ms,
        "going_away_to_first_audio_ms_p50": _pct(col("going_away_to_first_audio_ms"), 50),
        "going_away_to_first_audio_ms_p95": _pct(col("going_away_to_first_audio_ms"), 95),
        "going_away_to_first_audio_ms_max": max(col("going_away_to_first_audio_ms"), default=None),
        "going_away_to_resumed_ms_p50": _pct(col("going_away_to_resumed_ms"), 50),
        "going_away_to_resumed_ms_p95": _pct(col("going_away_to_resumed_ms"), 95),
        "speech_end_to_first_audio_ms_p50": _pct(col("speech_end_to_first_audio_ms"), 50),
        "speech_end_to_first_audio_ms_p95": _pct(col("speech_end_to_first_audio_ms"), 95),
        "baseline_first_audio_ms_p50": _pct(col("baseline_first_audio_ms"), 50),
        "baseline_first_audio_ms_p95": _pct(col("baseline_first_audio_ms"), 95),
        "mic_frames_sent": sum(t.frames_sent for t in ok),
        "mic_frames_lost": sum(t.frames_lost for t in ok),
        "mic_frames_sent_twice": sum(t.frames_twice for t in ok),
        "mic_lost_ms_per_resume": (
            sum(t.frames_lost for t in ok) * 20 / max(1, sum(t.resumes for t in ok))
        ),
        "sdk_reported_audio_lost_ms": sorted({t.sdk_audio_lost_ms for t in ok}),
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "cpu_count": os.cpu_count(),
    }
    return {"summary": summary, "trials": [asdict(t) for t in results]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.resume")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--grace", type=float, default=0.2, help="drain grace, seconds")
    parser.add_argument("--drain-before-end-ms", type=int, default=200)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "resume.json"))
    args = parser.parse_args(argv)
    report = asyncio.run(run(args.trials, args.grace, args.drain_before_end_ms))
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report["summary"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
