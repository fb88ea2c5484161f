"""The load generator: N concurrent conversations pacing real speech at real time in 20 ms frames.

Run as its own process by the benchmark (so its CPU never counts as the server's)::

    python -m bench.loadgen --mode grpc --target 127.0.0.1:PORT --n 50 --duration 10 \\
        --server-pid PID --out result.json --times-out times.npz

Modes:

* ``grpc``: `VoiceService.Converse` streams (Sonicwire or the bare echo), one connection per
  stream as independent callers would open. Requests are serialised once up front.
* ``ws``: WebSocket streams speaking the seed protocol (``{"action": "audiostream",
  "audioData": <base64>}`` in, ``{"event": "media", "data": <base64>}`` out): the gateway and
  the pipecat peer.

Every stream starts at a staggered moment within ``--ramp`` seconds; the measurement window is
``--duration`` seconds after a further ``--warmup``. The generator samples the server
processes' CPU times at the window's edges and their RSS at its end, and stops every stream
shortly after the window (a bounded wait for the last replies, then cancel). Everything
happens within a hard deadline.

Late frames (playback underruns): a client starts playing a reply when its first audio chunk
arrives; a chunk is late when it arrives after the moment it should start playing. For gRPC
the schedule is the chunk's ``offset_ms`` in its turn; for WebSocket streams, which carry no
offsets, it is the audio received so far in the reply (a reply ends when its audio has been
played out and 250 ms more pass without audio). Dropped frames: gaps in a turn's offsets,
audio the server never answered, and frames the generator itself could not send on time.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gc
import json
import math
import os
import sys
import time
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psutil

from bench.speech import FRAME_S, SpeechCorpus, StreamProgram, load_corpus

__all__ = ["LoadSettings", "StreamStats", "main", "run_load"]

CONVERSE_METHOD = "/sonicwire.v1.VoiceService/Converse"
_LATE_TOLERANCE_S = 0.001
_JITTER_BUFFER_S = 0.060
_WS_REPLY_GAP_S = 0.3


@dataclass(frozen=True)
class LoadSettings:
    mode: str  # "grpc" | "ws"
    targets: tuple[str, ...]  # host:port for grpc, ws:// URLs for ws
    n: int
    duration_s: float
    warmup_s: float = 2.0
    ramp_s: float = 1.0
    drain_s: float = 4.0
    server_pids: tuple[int, ...] = ()
    seed: int = 1
    lead_ms: int = 120
    ws_subprotocol: str = ""
    #: A JSON text sent first on every WebSocket (e.g. the gateway's ``config`` message:
    #: another VAD engine, echo cancellation off); empty sends only audio, as the seed client.
    ws_first_message: str = ""
    #: 20 ms frames per AudioInput message (gRPC only): 2 = 40 ms, 5 = 100 ms messages.
    frames_per_message: int = 1

    @property
    def message_s(self) -> float:
        return FRAME_S * self.frames_per_message

    @property
    def window_start(self) -> float:
        return self.ramp_s + self.warmup_s

    @property
    def hard_deadline_s(self) -> float:
        return self.window_start + self.duration_s + self.drain_s + 15.0


@dataclass
class StreamStats:
    index: int
    session_id: str = ""
    backend: str = ""
    error: str = ""
    send_times: array[float] = field(default_factory=lambda: array("d"))
    send_slip: array[float] = field(default_factory=lambda: array("d"))
    audio_arrivals: array[float] = field(default_factory=lambda: array("d"))
    late_arrivals: array[float] = field(default_factory=lambda: array("d"))
    late_jb_arrivals: array[float] = field(default_factory=lambda: array("d"))
    delivery_lag: array[float] = field(default_factory=lambda: array("d"))
    gap_frames: int = 0
    audio_bytes: int = 0
    turns: int = 0
    turn_completes: int = 0
    interruptions: int = 0
    speech_started: int = 0
    speech_stopped: int = 0
    clips: int = 0


class _Pacer:
    """Absolute schedule (one message per ``step``, 20 ms by default); records how late each
    send is (the generator's own slip)."""

    def __init__(self, start: float, step: float = FRAME_S) -> None:
        self.next = start
        self.step = step

    async def wait(self) -> float:
        delay = self.next - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        due = self.next
        self.next += self.step
        return due


# --- gRPC --------------------------------------------------------------------------------


def _joined_payload(corpus: SpeechCorpus, indices: tuple[int, ...]) -> bytes:
    """One AudioInput message carrying several consecutive 20 ms frames."""
    from sonicwire.v1 import voice_service_pb2 as pb

    audio = b"".join(corpus.frames[i] for i in indices)
    return pb.ConverseRequest(audio=pb.AudioInput(audio=audio)).SerializeToString()


def _grpc_payloads(corpus: SpeechCorpus) -> tuple[bytes, list[bytes]]:
    from sonicwire.v1 import voice_service_pb2 as pb

    fmt = pb.AudioFormat(encoding=pb.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=16000, channels=1)
    config = pb.ConverseRequest(
        config=pb.SessionConfig(input_format=fmt, output_format=fmt)
    ).SerializeToString()
    frames = [
        pb.ConverseRequest(audio=pb.AudioInput(audio=frame)).SerializeToString()
        for frame in corpus.frames
    ]
    return config, frames


async def _grpc_stream(
    stats: StreamStats,
    channel: Any,
    program: StreamProgram,
    payloads: tuple[bytes, list[bytes]],
    start_at: float,
    stop_at: float,
    settings: LoadSettings,
) -> None:
    import grpc

    from sonicwire.v1 import voice_service_pb2 as pb

    delay = start_at - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)
    method = channel.stream_stream(
        CONVERSE_METHOD,
        request_serializer=None,
        response_deserializer=pb.ConverseResponse.FromString,
    )
    call = method()
    config, frames = payloads
    lead_s = settings.lead_ms / 1000
    clock = time.monotonic

    async def reader() -> None:
        turn_id = ""
        t0 = 0.0
        expected_ms = 0
        while True:
            response = await call.read()
            if response is None or response is grpc.aio.EOF:
                return
            now = clock()
            kind = response.WhichOneof("response")
            if kind == "audio":
                audio = response.audio
                size = len(audio.audio)
                stats.audio_bytes += size
                stats.audio_arrivals.append(now)
                if audio.turn_id != turn_id:
                    turn_id = audio.turn_id
                    stats.turns += 1
                    t0 = now - audio.offset_ms / 1000
                    expected_ms = audio.offset_ms
                if audio.offset_ms > expected_ms:
                    stats.gap_frames += round((audio.offset_ms - expected_ms) / 20)
                expected_ms = audio.offset_ms + size // 32
                play_at = t0 + audio.offset_ms / 1000
                if now > play_at + _LATE_TOLERANCE_S:
                    stats.late_arrivals.append(now)
                    if now > play_at + _JITTER_BUFFER_S:
                        stats.late_jb_arrivals.append(now)
                # The server releases a chunk once real time plus the lead covers its end.
                due = t0 + max(0.0, (audio.offset_ms + size / 32) / 1000 - lead_s)
                stats.delivery_lag.append(max(0.0, now - due))
            elif kind == "session_started":
                stats.session_id = response.session_started.session_id
                stats.backend = response.session_started.backend
            elif kind == "turn_complete":
                stats.turn_completes += 1
            elif kind == "speech_activity":
                if response.speech_activity.kind == pb.SPEECH_ACTIVITY_KIND_STARTED:
                    stats.speech_started += 1
                else:
                    stats.speech_stopped += 1
            elif kind == "interruption":
                stats.interruptions += 1

    read_task = asyncio.create_task(reader())
    k = settings.frames_per_message
    joined: dict[tuple[int, ...], bytes] = {}  # serialized multi-frame messages, built once
    try:
        await call.write(config)
        pacer = _Pacer(clock(), settings.message_s)
        while clock() < stop_at and not read_task.done():
            due = await pacer.wait()
            if k == 1:
                payload = frames[program.next_index()]
            else:
                indices = tuple(program.next_index() for _ in range(k))
                payload = joined.get(indices) or joined.setdefault(
                    indices, _joined_payload(program.corpus, indices)
                )
            sent = clock()
            stats.send_times.append(sent)
            stats.send_slip.append(sent - due)
            await call.write(payload)
        stats.clips = program.clips_started
        await call.done_writing()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(read_task), settings.drain_s)
        if read_task.done() and read_task.exception() is not None:
            raise read_task.exception()  # type: ignore[misc]
    except Exception as error:  # record, never crash the run
        stats.error = _describe(error)
    finally:
        read_task.cancel()
        call.cancel()
        with contextlib.suppress(BaseException):
            await read_task


def _describe(error: BaseException) -> str:
    code = getattr(error, "code", None)
    if callable(code):
        with contextlib.suppress(Exception):
            return f"{code().name}: {error.details()}"  # type: ignore[attr-defined]
    return f"{type(error).__name__}: {error}"


# --- WebSocket ---------------------------------------------------------------------------


def _ws_payloads(corpus: SpeechCorpus) -> list[str]:
    return [
        json.dumps({"action": "audiostream", "audioData": base64.b64encode(f).decode()})
        for f in corpus.frames
    ]


async def _ws_stream(
    stats: StreamStats,
    url: str,
    program: StreamProgram,
    payloads: list[str],
    start_at: float,
    stop_at: float,
    settings: LoadSettings,
) -> None:
    import websockets
    from websockets.typing import Subprotocol

    delay = start_at - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)
    clock = time.monotonic
    protocols = [Subprotocol(settings.ws_subprotocol)] if settings.ws_subprotocol else None
    try:
        async with websockets.connect(
            url,
            subprotocols=protocols,
            max_size=None,
            compression=None,
        ) as ws:

            async def reader() -> None:
                t0 = 0.0
                last = 0.0
                played_s = 0.0  # audio received in the current reply, in seconds
                lead_s = settings.lead_ms / 1000
                async for message in ws:
                    now = clock()
                    event = json.loads(message)
                    name = event.get("event") or event.get("type")
                    if name == "media":
                        size = len(base64.b64decode(event.get("data", "")))
                        stats.audio_bytes += size
                        stats.audio_arrivals.append(now)
                        if stats.turns == 0 or now - last > _WS_REPLY_GAP_S:
                            stats.turns += 1
                            t0, played_s = now, 0.0
                        last = now
                        if now > t0 + played_s + _LATE_TOLERANCE_S:
                            stats.late_arrivals.append(now)
                            if now > t0 + played_s + _JITTER_BUFFER_S:
                                stats.late_jb_arrivals.append(now)
                        played_s += size / 32000
                        due = t0 + max(0.0, played_s - lead_s)
                        stats.delivery_lag.append(max(0.0, now - due))
                    elif name in ("session_started", "ready", "started"):
                        stats.session_id = str(event.get("session_id", ""))
                    elif name in ("turn_complete", "turn_completed"):
                        stats.turn_completes += 1
                    elif name in ("interruption", "interrupted"):
                        stats.interruptions += 1
                    elif name in ("speech_started", "user_speech_started"):
                        stats.speech_started += 1
                    elif name in ("speech_stopped", "user_speech_stopped"):
                        stats.speech_stopped += 1
                    elif name == "speech_activity":
                        if event.get("kind", event.get("state")) in ("started", "start", True):
                            stats.speech_started += 1
                        else:
                            stats.speech_stopped += 1
                    elif name == "error":
                        stats.error = f"server error event: {str(message)[:200]}"

            if settings.ws_first_message:
                await ws.send(settings.ws_first_message)
            read_task = asyncio.create_task(reader())
            try:
                pacer = _Pacer(clock())
                while clock() < stop_at and not read_task.done():
                    due = await pacer.wait()
                    sent = clock()
                    stats.send_times.append(sent)
                    stats.send_slip.append(sent - due)
                    await ws.send(payloads[program.next_index()])
                stats.clips = program.clips_started
                # Let the last reply play out, then close.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(read_task), min(settings.drain_s, 3.0))
            finally:
                read_task.cancel()
                with contextlib.suppress(BaseException):
                    await read_task
    except Exception as error:
        if not stats.error:
            stats.error = _describe(error)


# --- the run -----------------------------------------------------------------------------


def _cpu(pids: Sequence[int]) -> dict[int, float]:
    out = {}
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            t = psutil.Process(pid).cpu_times()
            out[pid] = t.user + t.system
    return out


def _main_thread_cpu(pids: Sequence[int]) -> dict[int, float]:
    """CPU seconds of each process's main thread (the asyncio loop); the rest is C-core's."""
    out = {}
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            for thread in psutil.Process(pid).threads():
                if thread.id == pid:
                    out[pid] = thread.user_time + thread.system_time
    return out


def _busy() -> float:
    """CPU seconds all processes on the machine have used (every core), for contention."""
    t = psutil.cpu_times()
    return float(t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0))


def _rss(pids: Sequence[int]) -> dict[int, int]:
    out = {}
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            out[pid] = psutil.Process(pid).memory_info().rss
    return out


def _pct(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else 0.0


async def run_load(settings: LoadSettings) -> tuple[dict[str, Any], list[StreamStats]]:
    """Run the load and return (summary, per-stream stats)."""
    corpus = load_corpus()
    # The generator's own full collections would stall its sends (a 10-100 ms pause reads as
    # server latency): what it has built so far lives until it exits (see sonicwire.server.heap).
    gc.collect()
    gc.freeze()
    begin = time.monotonic()
    window_start = begin + settings.window_start
    window_end = window_start + settings.duration_s
    stats = [StreamStats(i) for i in range(settings.n)]
    programs = [StreamProgram(corpus, settings.seed * 100_003 + i) for i in range(settings.n)]
    starts = [begin + settings.ramp_s * i / max(1, settings.n) for i in range(settings.n)]
    channels: list[Any] = []
    tasks: list[asyncio.Task[None]] = []
    if settings.mode == "grpc":
        import grpc

        payloads = _grpc_payloads(corpus)
        for i in range(settings.n):
            target = settings.targets[i % len(settings.targets)]
            # A local subchannel pool: every channel is its own TCP connection, as independent
            # callers' would be (and so SO_REUSEPORT can spread them over processes).
            channel = grpc.aio.insecure_channel(
                target, options=[("grpc.use_local_subchannel_pool", 1)]
            )
            channels.append(channel)
            tasks.append(
                asyncio.create_task(
                    _grpc_stream(
                        stats[i], channel, programs[i], payloads, starts[i], window_end, settings
                    )
                )
            )
    else:
        ws_payloads = _ws_payloads(corpus)
        for i in range(settings.n):
            url = settings.targets[i % len(settings.targets)]
            tasks.append(
                asyncio.create_task(
                    _ws_stream(
                        stats[i], url, programs[i], ws_payloads, starts[i], window_end, settings
                    )
                )
            )

    me = psutil.Process()
    await asyncio.sleep(max(0.0, window_start - time.monotonic()))
    cpu0, me0, t0 = _cpu(settings.server_pids), me.cpu_times(), time.monotonic()
    main0 = _main_thread_cpu(settings.server_pids)
    sys0 = _busy()
    await asyncio.sleep(max(0.0, window_end - time.monotonic()))
    cpu1, me1, t1 = _cpu(settings.server_pids), me.cpu_times(), time.monotonic()
    main1 = _main_thread_cpu(settings.server_pids)
    sys1 = _busy()
    rss = _rss(settings.server_pids)
    try:
        async with asyncio.timeout(max(1.0, begin + settings.hard_deadline_s - time.monotonic())):
            await asyncio.gather(*tasks, return_exceptions=True)
    except TimeoutError:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        for channel in channels:
            with contextlib.suppress(Exception):
                await channel.close(None)

    window = t1 - t0
    server_cpu = {pid: cpu1[pid] - cpu0[pid] for pid in cpu1 if pid in cpu0}
    summary = _summarise(settings, stats, window_start, window_end, window)
    summary.update(
        server_cpu_s=server_cpu,
        server_rss=rss,
        client_cpu_s=(me1.user + me1.system) - (me0.user + me0.system),
        system_busy_cpu_s=sys1 - sys0,
        server_main_thread_cpu_s=sum(main1[p] - main0[p] for p in main1 if p in main0),
        clip_seconds_mean=corpus.mean_clip_s,
    )
    return summary, stats


def _summarise(
    settings: LoadSettings,
    stats: list[StreamStats],
    window_start: float,
    window_end: float,
    window: float,
) -> dict[str, Any]:
    def in_window(values: array[float]) -> np.ndarray:
        arr = np.frombuffer(values, dtype=np.float64) if len(values) else np.zeros(0)
        return arr[(arr >= window_start) & (arr < window_end)]

    sent = 0
    slips: list[np.ndarray] = []
    lags: list[np.ndarray] = []
    late = 0
    late_jb = 0
    audio_frames = 0
    for s in stats:
        send = np.frombuffer(s.send_times, dtype=np.float64) if len(s.send_times) else np.zeros(0)
        mask = (send >= window_start) & (send < window_end)
        sent += int(mask.sum())
        slip = np.frombuffer(s.send_slip, dtype=np.float64) if len(s.send_slip) else np.zeros(0)
        slips.append(slip[mask])
        arrivals = in_window(s.audio_arrivals)
        audio_frames += len(arrivals)
        late += len(in_window(s.late_arrivals))
        late_jb += len(in_window(s.late_jb_arrivals))
        lag = np.frombuffer(s.delivery_lag, dtype=np.float64) if len(s.delivery_lag) else None
        if lag is not None:
            arr = np.frombuffer(s.audio_arrivals, dtype=np.float64)
            lags.append(lag[(arr >= window_start) & (arr < window_end)])
    slip_all = np.concatenate(slips) if slips else np.zeros(0)
    lag_all = np.concatenate(lags) if lags else np.zeros(0)
    errors: dict[str, int] = {}
    for s in stats:
        if s.error:
            errors[s.error[:160]] = errors.get(s.error[:160], 0) + 1
    return {
        "mode": settings.mode,
        "n": settings.n,
        "window_s": window,
        "streams_failed": sum(1 for s in stats if s.error),
        "errors": errors,
        "frames_sent": sent,
        "send_slip_p50_ms": _pct(slip_all, 50) * 1000,
        "send_slip_p99_ms": _pct(slip_all, 99) * 1000,
        "send_slip_max_ms": float(slip_all.max() * 1000) if len(slip_all) else 0.0,
        "frames_sent_late": int((slip_all > settings.message_s).sum()),
        "frames_per_message": settings.frames_per_message,
        "audio_frames_received": audio_frames,
        "late_frames": late,
        "late_frames_jb60": late_jb,
        "delivery_lag_p50_ms": _pct(lag_all, 50) * 1000,
        "delivery_lag_p99_ms": _pct(lag_all, 99) * 1000,
        "delivery_lag_max_ms": float(lag_all.max() * 1000) if len(lag_all) else 0.0,
        "gap_frames": sum(s.gap_frames for s in stats),
        "turns": sum(s.turns for s in stats),
        "turn_completes": sum(s.turn_completes for s in stats),
        "interruptions": sum(s.interruptions for s in stats),
        "speech_started": sum(s.speech_started for s in stats),
        "speech_stopped": sum(s.speech_stopped for s in stats),
        "clips": sum(s.clips for s in stats),
        "audio_out_s": sum(s.audio_bytes for s in stats) / 32000,
        "window_start": window_start,
        "window_end": window_end,
    }


def save_times(path: str, stats: list[StreamStats]) -> None:
    """Per-stream send times keyed by session id (for the server-side latency probe)."""
    data = {
        f"send:{s.session_id}": np.frombuffer(s.send_times, dtype=np.float64)
        for s in stats
        if s.session_id and len(s.send_times)
    }
    np.savez(path, **data)  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen")
    parser.add_argument("--mode", choices=("grpc", "ws"), default="grpc")
    parser.add_argument("--target", action="append", required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--ramp", type=float, default=1.0)
    parser.add_argument("--drain", type=float, default=4.0)
    parser.add_argument("--server-pid", type=int, action="append", default=[])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--ws-subprotocol", default="")
    parser.add_argument("--lead-ms", type=int, default=120, help="the server's pacing lead")
    parser.add_argument(
        "--ws-first-message",
        default="",
        help='JSON text sent first on each WebSocket, e.g. \'{"action": "config", ...}\'',
    )
    parser.add_argument(
        "--frames-per-message",
        type=int,
        default=1,
        choices=range(1, 11),
        metavar="K",
        help="20 ms frames per AudioInput message (gRPC): 2 = 40 ms, 5 = 100 ms client frames",
    )
    parser.add_argument("--cpus", default="")
    parser.add_argument("--out", required=True)
    parser.add_argument("--times-out", default="")
    args = parser.parse_args(argv)
    if args.cpus:
        os.sched_setaffinity(0, {int(c) for c in args.cpus.split(",")})
    settings = LoadSettings(
        mode=args.mode,
        targets=tuple(args.target),
        n=args.n,
        duration_s=args.duration,
        warmup_s=args.warmup,
        ramp_s=args.ramp,
        drain_s=args.drain,
        server_pids=tuple(args.server_pid),
        seed=args.seed,
        ws_subprotocol=args.ws_subprotocol,
        lead_ms=args.lead_ms,
        ws_first_message=args.ws_first_message,
        frames_per_message=args.frames_per_message,
    )
    if settings.mode != "grpc" and settings.frames_per_message != 1:
        parser.error("--frames-per-message is for --mode grpc only")
    if settings.ws_first_message:
        if settings.mode != "ws":
            parser.error("--ws-first-message is for --mode ws only")
        try:
            json.loads(settings.ws_first_message)
        except ValueError as error:
            parser.error(f"--ws-first-message is not JSON: {error}")
    summary, stats = asyncio.run(run_load(settings))
    summary = {
        k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in summary.items()
    }
    summary["server_cpu_s"] = {str(k): v for k, v in summary["server_cpu_s"].items()}
    summary["server_rss"] = {str(k): v for k, v in summary["server_rss"].items()}
    with open(args.out, "w") as f:
        json.dump(summary, f, indent=1)
    if args.times_out:
        save_times(args.times_out, stats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
