"""The simulated callers of the load generator (`bench.loadgen`): one coroutine a stream.

A stream opens its connection at its staggered start, sends real speech on an absolute 20 ms
schedule (`_Pacer`: how late each send is, the generator's own slip, is recorded too) and
records what comes back in its `StreamStats`. Kept apart from the run (`bench.loadgen`) and
its summary (`bench.loadgen_measure`) because this is the part that must stay cheap per frame.

* ``grpc``: `VoiceService.Converse` streams; requests are serialised once up front.
* ``ws``: WebSocket streams speaking the seed protocol (``{"action": "audiostream",
  "audioData": <base64>}`` in, ``{"event": "media", "data": <base64>}`` out).

Late frames (playback underruns): a client starts playing a reply when its first audio chunk
arrives; a chunk is late when it arrives after the moment it should start playing. For gRPC
the schedule is the chunk's ``offset_ms`` in its turn; for WebSocket streams, which carry no
offsets, it is the audio received so far in the reply (a reply ends when its audio has been
played out and 250 ms more pass without audio). Dropped frames: gaps in a turn's offsets,
audio the server never answered, and frames the generator itself could not send on time.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from array import array
from dataclasses import dataclass, field
from typing import Any

from bench.speech import FRAME_S, SpeechCorpus, StreamProgram

__all__ = [
    "CONVERSE_METHOD",
    "LoadSettings",
    "StreamStats",
    "grpc_payloads",
    "grpc_stream",
    "ws_payloads",
    "ws_stream",
]

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

    def audio_arrived(self, now: float, size: int, play_at: float, due: float) -> None:
        """A reply's audio chunk of ``size`` bytes arrived at ``now``: it should start playing
        at ``play_at`` and the server's pacing released it at ``due`` (both transports keep
        the same books, each with its own schedule)."""
        self.audio_bytes += size
        self.audio_arrivals.append(now)
        if now > play_at + _LATE_TOLERANCE_S:
            self.late_arrivals.append(now)
            if now > play_at + _JITTER_BUFFER_S:
                self.late_jb_arrivals.append(now)
        self.delivery_lag.append(max(0.0, now - due))


async def _sleep_until(moment: float) -> None:
    """Sleep until ``moment`` (time.monotonic); at once when it has passed."""
    delay = moment - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


class _Pacer:
    """Absolute schedule (one message per ``step``, 20 ms by default); records how late each
    send is (the generator's own slip)."""

    def __init__(self, start: float, step: float = FRAME_S) -> None:
        self.next = start
        self.step = step

    async def wait(self) -> float:
        await _sleep_until(self.next)
        due = self.next
        self.next += self.step
        return due


# --- gRPC --------------------------------------------------------------------------------


def _joined_payload(corpus: SpeechCorpus, indices: tuple[int, ...]) -> bytes:
    """One AudioInput message carrying several consecutive 20 ms frames."""
    from sonicwire.v1 import voice_service_pb2 as pb

    audio = b"".join(corpus.frames[i] for i in indices)
    return pb.ConverseRequest(audio=pb.AudioInput(audio=audio)).SerializeToString()


def grpc_payloads(corpus: SpeechCorpus) -> tuple[bytes, list[bytes]]:
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


async def grpc_stream(
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

    await _sleep_until(start_at)
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
                if audio.turn_id != turn_id:
                    turn_id = audio.turn_id
                    stats.turns += 1
                    t0 = now - audio.offset_ms / 1000
                    expected_ms = audio.offset_ms
                if audio.offset_ms > expected_ms:
                    stats.gap_frames += round((audio.offset_ms - expected_ms) / 20)
                expected_ms = audio.offset_ms + size // 32
                play_at = t0 + audio.offset_ms / 1000
                # The server releases a chunk once real time plus the lead covers its end.
                due = t0 + max(0.0, (audio.offset_ms + size / 32) / 1000 - lead_s)
                stats.audio_arrived(now, size, play_at, due)
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


def ws_payloads(corpus: SpeechCorpus) -> list[str]:
    return [
        json.dumps({"action": "audiostream", "audioData": base64.b64encode(f).decode()})
        for f in corpus.frames
    ]


async def ws_stream(
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

    await _sleep_until(start_at)
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
                        if stats.turns == 0 or now - last > _WS_REPLY_GAP_S:
                            stats.turns += 1
                            t0, played_s = now, 0.0
                        last = now
                        play_at = t0 + played_s
                        played_s += size / 32000
                        due = t0 + max(0.0, played_s - lead_s)
                        stats.audio_arrived(now, size, play_at, due)
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
