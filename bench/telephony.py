"""Telephony benchmark: what a phone call costs, and how fast it is answered.

    python -m bench.telephony [--streams 8] [--window 12] [--rounds 2] [--calls 8]

1. **CPU, same run.** A gRPC server (echo backend) and a gateway run as child processes. In
   alternating phases (A B C D, repeated ``--rounds`` times) ``--streams`` concurrent callers
   speak real speech (the ALSA voice clips with pauses, paced at real time) as
   A: browser WebSockets (``/ws``, PCM 16 kHz), B: Twilio calls (``/twilio``, mu-law 8 kHz,
   simulated carrier echoing marks), C: gRPC streams with PCM 16 kHz, D: gRPC streams with
   mu-law 8 kHz. Each phase samples the server's and the gateway's CPU time over a window;
   the result is CPU milliseconds per stream-second. Target: a telephony stream (B vs A end to
   end, and D vs C at the server) costs at most 1.2x a 16 kHz PCM stream.
2. **Latency on the local engine.** ``--calls`` phone calls, one at a time, to the default
   local engine through ``/twilio``: a spoken question (espeak voice, 8 kHz mu-law); the time
   from the end of the caller's speech (the last speech frame's slot at the carrier) to the
   first ``media`` frame at the carrier. Target: p50 <= 550 ms.
3. **Barge-in -> clear** (echo backend): while the echo plays, another speaker talks over it;
   the time from that speech's onset (first 20 ms frame above -40 dBFS, as sent) to the
   ``clear`` at the carrier. Issue 18 asks for <= 300 ms.

The carrier and callers run in this process (their CPU is not the server's). Writes
``bench/results/telephony.json`` and ``docs/TELEPHONY_BENCH.md`` (summarised and rendered by
``bench/telephony_report.py``); records the machine's load.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import platform
import subprocess
import tempfile
import time
import wave
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import soxr
from websockets.asyncio.client import connect

from bench.procs import PYTHON, ROOT, Children, busy_cores
from bench.telephony_report import DOC, RESULT, render, summarise, with_history
from sonicwire.client import Client, SpeechActivityKind, session_config
from sonicwire.gateway.twilio.auth import expected_signature
from sonicwire.gateway.twilio.carrier import SimulatedCarrier
from sonicwire.server.codecs.g711 import pcm_to_mulaw
from sonicwire.server.dsp.settings import VadSettings
from sonicwire.v1 import voice_service_pb2 as pb

ALSA = Path("/usr/share/sounds/alsa")
TOKEN = "bench-twilio-token"
QUESTIONS = ["what time is it", "what is the date today", "where is my order one zero zero one"]
_PAUSE_S = 1.8  # after each clip: VAD stop window, the echo reply, a margin


def _clip(name: str, rate: int) -> np.ndarray:
    with wave.open(str(ALSA / name), "rb") as w:
        data = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, w.getnchannels())
        src = w.getframerate()
    mono = data.mean(axis=1).astype(np.float32)
    clip: np.ndarray = np.clip(soxr.resample(mono, src, rate), -32768, 32767).astype("<i2")
    return clip


def _program(rate: int, mulaw: bool) -> list[bytes]:
    """One caller's loop of 20 ms frames: each clip, then a pause."""
    names = ["Front_Center.wav", "Front_Left.wav", "Rear_Right.wav", "Side_Left.wav"]
    frame = rate // 50
    frames: list[bytes] = []
    for name in names:
        audio = np.concatenate([_clip(name, rate), np.zeros(int(_PAUSE_S * rate), "<i2")])
        audio = np.concatenate([audio, np.zeros((-len(audio)) % frame, "<i2")])
        for i in range(0, len(audio), frame):
            pcm = audio[i : i + frame].tobytes()
            frames.append(pcm_to_mulaw(pcm) if mulaw else pcm)
    return frames


async def _paced(
    frames: list[bytes], until: float, send: Callable[[bytes], Awaitable[None]]
) -> None:
    start = time.monotonic()
    i = 0
    while time.monotonic() < until:
        await send(frames[i % len(frames)])
        i += 1
        delay = start + i * 0.02 - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


async def _drain(receive: Callable[[], Awaitable[object]]) -> None:
    with contextlib.suppress(Exception):
        while True:
            await receive()


# -- the four kinds of caller --------------------------------------------------------------


async def _ws_caller(gateway: str, frames: list[bytes], until: float) -> None:
    async with connect(f"ws://{gateway}/ws", subprotocols=["sonicwire.v1"]) as ws:  # type: ignore[list-item]
        reader = asyncio.create_task(_drain(ws.recv))

        async def send(pcm: bytes) -> None:
            msg = {"action": "audiostream", "audioData": base64.b64encode(pcm).decode()}
            await ws.send(json.dumps(msg))

        await _paced(frames, until, send)
        reader.cancel()


async def _twilio_caller(gateway: str, frames: list[bytes], until: float, n: int) -> None:
    url = f"ws://{gateway}/twilio"
    headers = {"X-Twilio-Signature": expected_signature(TOKEN, f"wss://{gateway}/twilio")}
    async with SimulatedCarrier(url, headers=headers, call_sid=f"CA{n:032d}") as call:
        while time.monotonic() < until:
            await call.send_audio(b"".join(frames[:100]))
            frames = frames[100:] + frames[:100]


def _grpc_config(mulaw: bool) -> pb.SessionConfig:
    """A gRPC caller's session: mu-law 8 kHz both ways (the telephone band) or PCM 16 kHz."""
    config = session_config(sample_rate_hz=8000 if mulaw else 16000)
    if mulaw:
        config.input_format.encoding = pb.AUDIO_ENCODING_MULAW
        config.output_format.encoding = pb.AUDIO_ENCODING_MULAW
    return config


async def _grpc_caller(target: str, frames: list[bytes], until: float, mulaw: bool) -> None:
    config = _grpc_config(mulaw)
    async with Client(target) as client:
        async with client.converse(config) as conversation:
            reader = asyncio.create_task(_drain(conversation.__anext__))
            await _paced(frames, until, conversation.send_audio)
            reader.cancel()


async def _phase(kind: str, n: int, window_s: float, server: Any, gateway: Any) -> dict[str, Any]:
    warmup_s, ramp_s = 2.0, 1.0
    frames16, frames8 = _program(16000, False), _program(8000, True)
    until = time.monotonic() + ramp_s + warmup_s + window_s + 0.5
    callers = []
    for i in range(n):
        await asyncio.sleep(ramp_s / n)
        rotated16 = frames16[i * 37 :] + frames16[: i * 37]
        rotated8 = frames8[i * 37 :] + frames8[: i * 37]
        match kind:
            case "ws_pcm16":
                work = _ws_caller(gateway.target, rotated16, until)
            case "twilio_mulaw":
                work = _twilio_caller(gateway.target, rotated8, until, i)
            case "grpc_pcm16":
                work = _grpc_caller(server.target, rotated16, until, False)
            case _:
                work = _grpc_caller(server.target, rotated8, until, True)
        callers.append(asyncio.create_task(work))
    await asyncio.sleep(warmup_s)
    cpu0 = (server.cpu_seconds(), gateway.cpu_seconds(), time.monotonic())
    await asyncio.sleep(window_s)
    cpu1 = (server.cpu_seconds(), gateway.cpu_seconds(), time.monotonic())
    results = await asyncio.gather(*callers, return_exceptions=True)
    errors = [repr(r) for r in results if isinstance(r, BaseException)]
    stream_s = n * (cpu1[2] - cpu0[2])
    return {
        "kind": kind,
        "streams": n,
        "window_s": round(cpu1[2] - cpu0[2], 2),
        "server_ms_per_stream_s": (cpu1[0] - cpu0[0]) * 1000 / stream_s,
        "gateway_ms_per_stream_s": (cpu1[1] - cpu0[1]) * 1000 / stream_s,
        "errors": errors[:3],
        "loadavg": os.getloadavg(),
    }


# -- latency ---------------------------------------------------------------------------------


def _signed(gateway: str) -> dict[str, str]:
    return {"X-Twilio-Signature": expected_signature(TOKEN, f"wss://{gateway}/twilio")}


async def _answer_latency(gateway: str, question: bytes, n: int) -> float | None:
    """Seconds from the end of the caller's speech to the first media frame back."""
    silence = b"\xff" * 160
    async with SimulatedCarrier(
        f"ws://{gateway}/twilio", headers=_signed(gateway), call_sid=f"CB{n:032d}"
    ) as call:
        await call.send_audio(silence * 25 + question)
        speech_end = time.monotonic()  # send_audio returns at the last frame's slot end
        trailing = asyncio.create_task(call.send_audio(silence * 150))
        with contextlib.suppress(TimeoutError):
            await call.wait_answer(quiet_s=1.0, timeout_s=20)
        trailing.cancel()
        after = [m.at for m in call.events("media") if m.at >= speech_end]
    return (after[0] - speech_end) if after else None


async def _grpc_answer_latency(
    target: str, question: bytes, mulaw: bool, markers: list[float | None]
) -> float | None:
    """The same measurement over gRPC (controls: PCM 16 kHz; mu-law 8 kHz without the edge).

    Also appends to ``markers`` when the server's end-of-speech marker (``SpeechActivity``
    stopped) came, from the same end of speech: the part of the wait that is the VAD's."""
    size = 160 if mulaw else 640
    silence = b"\xff" * 160 if mulaw else bytes(640)
    frames = [silence] * 25 + [question[i : i + size] for i in range(0, len(question), size)]
    frames[-1] = frames[-1].ljust(size, silence[:1])
    first_audio: list[float] = []
    stopped: list[float] = []
    config = _grpc_config(mulaw)
    async with Client(target) as client:
        async with client.converse(config) as conversation:

            async def read() -> None:
                async for event in conversation:
                    if type(event).__name__ == "AudioOutput" and not first_audio:
                        first_audio.append(time.monotonic())
                    if getattr(event, "kind", None) == SpeechActivityKind.STOPPED:
                        stopped.append(time.monotonic())

            reader = asyncio.create_task(read())
            start = time.monotonic()
            for i, frame in enumerate(frames + [silence] * 150):
                if i == len(frames):
                    speech_end = time.monotonic()
                await conversation.send_audio(frame)
                delay = start + (i + 1) * 0.02 - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                if first_audio and i > len(frames):
                    break
            reader.cancel()
    after = [t - speech_end for t in stopped if t >= speech_end]
    markers.append(after[0] if after else None)
    return (first_audio[0] - speech_end) if first_audio else None


def _onset_frame(pcm: np.ndarray, frame: int = 160, threshold_dbfs: float = -40.0) -> int:
    level = 32768 * 10 ** (threshold_dbfs / 20)
    for i in range(0, len(pcm) - frame, frame):
        if np.sqrt(np.mean(pcm[i : i + frame].astype(np.float64) ** 2)) > level:
            return i // frame
    return 0


async def _clear_latency(gateway: str, n: int, *, echo_cancellation: bool) -> float | None:
    """Seconds from the onset of speech over the assistant to the clear at the carrier."""
    silence = b"\xff" * 160
    first = pcm_to_mulaw(_clip("Front_Center.wav", 8000).tobytes())
    barge_pcm = _clip("Rear_Right.wav", 8000)
    barge = pcm_to_mulaw(barge_pcm.tobytes())
    onset = _onset_frame(barge_pcm)
    parameters = {} if echo_cancellation else {"echoCancellation": "false"}
    async with SimulatedCarrier(
        f"ws://{gateway}/twilio",
        headers=_signed(gateway),
        call_sid=f"CC{n:032d}",
        parameters=parameters,
    ) as call:
        await call.send_audio(silence * 15 + first + silence * 40)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                while not call.events("media"):  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
        started = time.monotonic()
        talking = asyncio.create_task(call.send_audio(barge + silence * 50))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                while not call.events("clear"):  # noqa: ASYNC110
                    await asyncio.sleep(0.005)
        talking.cancel()
        clears = call.events("clear")
    return (clears[0].at - (started + onset * 0.02)) if clears else None


# -- the run -----------------------------------------------------------------------------------


def _commit() -> str | None:
    """The commit the run measures (with ``+`` when the work tree differs from it)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            [
                "git",
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                "server",
                "gateway_ws",
                "clients",
                "bench/telephony.py",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+" if dirty.strip() else "")


def _start_pair(children: Children, backend: str) -> tuple[Any, Any]:
    server = children.start(
        "server", [PYTHON, "-m", "sonicwire.server", "--port", "0", "--backend", backend,
                   "--log-level", "WARNING"],
        ready_timeout_s=120,
    )  # fmt: skip
    gateway = children.start(
        "gateway",
        [PYTHON, "-m", "sonicwire.gateway", "--port", "0", "--grpc-target", server.target,
         "--twilio-auth-token", TOKEN, "--max-messages-per-second", "0",
         "--log-level", "WARNING"],
    )  # fmt: skip
    return server, gateway


async def _run(args: argparse.Namespace, children: Children) -> dict[str, Any]:
    report: dict[str, Any] = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
            "busy_cores_at_start": round(busy_cores(1.0), 2),
        },
        "settings": vars(args),
        "commit": _commit(),
    }
    server, gateway = _start_pair(children, "echo")
    phases = []
    for _ in range(args.rounds):
        for kind in ("ws_pcm16", "twilio_mulaw", "grpc_pcm16", "grpc_mulaw"):
            phases.append(await _phase(kind, args.streams, args.window, server, gateway))
            print(json.dumps(phases[-1]), flush=True)
    report["cpu_phases"] = phases
    report["barge_in_to_clear_s"] = [
        await _clear_latency(gateway.target, i, echo_cancellation=True)
        for i in range(args.barge_ins)
    ]
    report["barge_in_to_clear_no_aec_s"] = [
        await _clear_latency(gateway.target, i, echo_cancellation=False)
        for i in range(args.barge_ins)
    ]
    children.stop(gateway)
    children.stop(server)
    server, gateway = _start_pair(children, "local")
    await asyncio.sleep(3.0)  # the server warms its models up in the background
    from sonicwire.server.testing.local_harness import speak

    latencies: list[float | None] = []
    control: list[float | None] = []
    control8: list[float | None] = []
    markers: dict[str, list[float | None]] = {"pcm16": [], "mulaw": []}
    for i in range(args.calls):
        text = QUESTIONS[i % len(QUESTIONS)]
        spoken = speak(text, "espeak:en-us")
        pcm16 = np.frombuffer(spoken, "<i2").astype(np.float32)
        pcm8 = np.clip(soxr.resample(pcm16, 16000, 8000), -32768, 32767).astype("<i2")
        mulaw = pcm_to_mulaw(pcm8.tobytes())
        # The engine caches replies and syntheses: whichever path asks a question first pays
        # for it cold. The order rotates so each path goes first equally often.
        runs: dict[str, Callable[[], Awaitable[float | None]]] = {
            "phone": partial(_answer_latency, gateway.target, mulaw, i),
            "pcm16": partial(_grpc_answer_latency, server.target, spoken, False, markers["pcm16"]),
            "mulaw": partial(_grpc_answer_latency, server.target, mulaw, True, markers["mulaw"]),
        }
        names = list(runs)
        order = names[i % 3 :] + names[: i % 3]
        measured = {name: await runs[name]() for name in order}
        latencies.append(measured["phone"])
        control.append(measured["pcm16"])
        control8.append(measured["mulaw"])
        print(f"call {i}: {text!r} ({' '.join(order)}) -> {measured}", flush=True)
    report["speech_end_to_first_media_s"] = latencies
    report["grpc_pcm16_speech_end_to_first_audio_s"] = control
    report["grpc_mulaw_speech_end_to_first_audio_s"] = control8
    report["vad_stop_secs"] = VadSettings().stop_secs
    report["grpc_pcm16_speech_end_to_stop_marker_s"] = markers["pcm16"]
    report["grpc_mulaw_speech_end_to_stop_marker_s"] = markers["mulaw"]
    report["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.telephony", description=__doc__)
    parser.add_argument("--streams", type=int, default=8)
    parser.add_argument("--window", type=float, default=12.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--calls", type=int, default=9)
    parser.add_argument("--barge-ins", type=int, default=6)
    parser.add_argument("--render-only", action="store_true", help="re-render the doc")
    args = parser.parse_args(argv)
    if args.render_only:
        # the summary is derived from the measurements: recompute it with the current rules
        report = json.loads(RESULT.read_text())
        report["summary"] = summarise(report)
        RESULT.write_text(json.dumps(report, indent=2) + "\n")
    else:
        with tempfile.TemporaryDirectory(prefix="sw-telephony-") as scratch:
            children = Children(Path(scratch))
            try:
                report = asyncio.run(asyncio.wait_for(_run(args, children), 900))
            finally:
                children.stop_all()
        report["summary"] = summarise(report)
        previous = json.loads(RESULT.read_text()) if RESULT.exists() else None
        report = with_history(report, previous)
        RESULT.write_text(json.dumps(report, indent=2) + "\n")
    DOC.write_text(render(report))
    print(DOC.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
