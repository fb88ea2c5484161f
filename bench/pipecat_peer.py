# mypy: ignore-errors
# (pipecat is installed only in the peer's own venv, so it cannot be type-checked from .venv)
"""The peer: a pipecat server doing comparable per-stream work (VAD + an echo of each utterance).

Runs in its own virtual environment (see ``bench/peer_env.py``: pipecat-ai pins protobuf < 7,
which the Sonicwire stubs cannot load with), so nothing else in the project imports pipecat::

    <pipecat venv>/bin/python bench/pipecat_peer.py --port 0

It prints ``bench-server: READY 127.0.0.1:PORT`` and serves ``ws://127.0.0.1:PORT/ws`` until
SIGTERM. Every WebSocket connection gets its own pipeline, the way pipecat serves many callers
(its ``WebsocketServerTransport`` serves one client at a time)::

    FastAPIWebsocketTransport.input()             seed JSON -> 16 kHz InputAudioRawFrame
    VADProcessor(SileroVADAnalyzer)               pipecat's standard VAD (onnxruntime)
    Echo                                          plays each finished utterance back
    FastAPIWebsocketTransport.output()            paced at real time in 20 ms chunks

The wire format is the seed's: ``{"action": "audiostream", "audioData": <base64>}`` in,
``{"event": "media", "data": <base64>, ...}`` out. VAD timings match Sonicwire's defaults
(start 0.2 s, stop 0.5 s) and the echo adds the same 300 ms of padding before the speech.
Extras pipecat would otherwise run per task (RTVI, turn tracking, idle watchdog) are off, and
logging is at WARNING, so the peer is measured at its leanest.

``--probe-out FILE`` runs the same event-loop lag probe as Sonicwire's benchmark server
(``bench/probe_server.py``: a task that sleeps 20 ms and records how late it wakes) and writes
``loop_lag`` (seconds) to FILE on exit: both sides of the like-for-like comparison then carry
the probe's CPU, and pipecat's steps get a loop-lag figure (not its per-frame latency: nothing
inside pipecat is wrapped).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import signal
import socket
import sys
import time
from array import array
from typing import Any

import numpy as np
import uvicorn
from fastapi import FastAPI, WebSocket
from loguru import logger
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADParams
from pipecat.frames.frames import (
    Frame,
    InputAudioRawFrame,
    OutputAudioRawFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.audio.vad_processor import VADProcessor
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.serializers.base_serializer import FrameSerializer
from pipecat.transports.websocket.fastapi import (
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)
from pipecat.workers.runner import WorkerRunner

__all__ = ["build_app", "main", "save_loop_lag", "serve", "watch_loop"]

RATE = 16000
PAD_BYTES = RATE * 2 * 300 // 1000  # 300 ms
CHUNK_BYTES = RATE * 2 * 100 // 1000  # echo replies in 100 ms chunks, as Sonicwire's backend


class SeedJsonSerializer(FrameSerializer):
    """The seed's JSON audio protocol."""

    async def serialize(self, frame: Frame) -> str | bytes | None:
        if isinstance(frame, OutputAudioRawFrame):
            return json.dumps(
                {
                    "event": "media",
                    "data": base64.b64encode(frame.audio).decode(),
                    "sample_rate": frame.sample_rate,
                    "channels": frame.num_channels,
                    "format": "pcm_s16le",
                }
            )
        return None

    async def deserialize(self, data: str | bytes) -> Frame | None:
        message = json.loads(data)
        if message.get("action") == "audiostream":
            return InputAudioRawFrame(
                audio=base64.b64decode(message["audioData"]), sample_rate=RATE, num_channels=1
            )
        return None


class Echo(FrameProcessor):
    """Collects each utterance between the VAD's start and stop and plays it back."""

    def __init__(self) -> None:
        super().__init__()
        self._recent = bytearray()  # the last moments before speech was confirmed
        self._utterance: bytearray | None = None

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            if self._utterance is not None:
                self._utterance += frame.audio
            else:
                self._recent += frame.audio
                # keep the confirmation window (start_secs 0.2 s) plus the 300 ms pad
                keep = PAD_BYTES + RATE * 2 * 200 // 1000
                if len(self._recent) > keep:
                    del self._recent[: len(self._recent) - keep]
            return  # audio in is consumed here, as Sonicwire's backend consumes it
        if isinstance(frame, VADUserStartedSpeakingFrame):
            self._utterance = bytearray(self._recent)
            self._recent.clear()
        elif isinstance(frame, VADUserStoppedSpeakingFrame) and self._utterance is not None:
            utterance, self._utterance = bytes(self._utterance), None
            for start in range(0, len(utterance), CHUNK_BYTES):
                await self.push_frame(
                    OutputAudioRawFrame(
                        audio=utterance[start : start + CHUNK_BYTES],
                        sample_rate=RATE,
                        num_channels=1,
                    )
                )
        await self.push_frame(frame, direction)


async def run_pipeline(websocket: WebSocket) -> None:
    transport = FastAPIWebsocketTransport(
        websocket=websocket,
        params=FastAPIWebsocketParams(
            audio_in_enabled=True,
            audio_in_sample_rate=RATE,
            audio_out_enabled=True,
            audio_out_sample_rate=RATE,
            audio_out_10ms_chunks=2,
            add_wav_header=False,
            serializer=SeedJsonSerializer(),
        ),
    )
    vad = VADProcessor(
        vad_analyzer=SileroVADAnalyzer(
            sample_rate=RATE, params=VADParams(start_secs=0.2, stop_secs=0.5)
        )
    )
    pipeline = Pipeline([transport.input(), vad, Echo(), transport.output()])
    worker = PipelineWorker(
        pipeline,
        params=PipelineParams(audio_in_sample_rate=RATE, audio_out_sample_rate=RATE),
        enable_rtvi=False,
        enable_turn_tracking=False,
        idle_timeout_secs=None,
        check_dangling_tasks=False,
    )

    @transport.event_handler("on_client_disconnected")
    async def on_disconnected(_transport: Any, _ws: Any) -> None:
        await worker.cancel()

    runner = WorkerRunner(handle_sigint=False, check_dangling_tasks=False)
    await runner.add_workers(worker)
    await runner.run()


def build_app() -> FastAPI:
    app = FastAPI()

    @app.websocket("/ws")
    async def ws_endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        await run_pipeline(websocket)

    return app


async def watch_loop(lag: array[float], period: float = 0.02) -> None:
    """The probe server's loop-lag probe (bench/probe_server.py ``FrameProbe.watch_loop``),
    repeated here because this script runs in pipecat's own venv, which cannot import
    bench.probe_server (grpc and the Sonicwire stubs need protobuf >= 7, pipecat pins < 7)."""
    clock = time.monotonic
    while True:
        before = clock()
        await asyncio.sleep(period)
        lag.append(max(0.0, clock() - before - period))


def save_loop_lag(lag: array[float], path: str) -> None:
    tmp = path + ".part.npz"
    np.savez(tmp, loop_lag=np.frombuffer(lag, dtype=np.float64))
    os.replace(tmp, path)


async def serve(port: int, probe_out: str = "") -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    config = uvicorn.Config(build_app(), log_level="warning", ws="websockets", lifespan="off")
    server = uvicorn.Server(config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started and not task.done():  # noqa: ASYNC110 - uvicorn has no event
        await asyncio.sleep(0.05)
    print(f"bench-server: READY 127.0.0.1:{sock.getsockname()[1]}", flush=True)
    if not probe_out:
        await task
        return
    lag: array[float] = array("d")
    probe = asyncio.create_task(watch_loop(lag))
    try:
        await task
    finally:
        probe.cancel()
        save_loop_lag(lag, probe_out)


def main() -> int:
    parser = argparse.ArgumentParser(prog="pipecat_peer.py")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--probe-out", default="", help="write the event-loop lag probe here")
    args = parser.parse_args()
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    asyncio.run(serve(args.port, args.probe_out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
