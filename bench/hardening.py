"""Issue 14's attacks against a real ``sonicwire serve --backend echo`` process, measured.

    python -m bench.hardening [--seconds 20] [--out bench/results/hardening.json]

1. **Freeze case**: four clients at once, in a loop, send the heaviest config the server still
   accepts (64 client tools, 64 KiB of schemas) and the hostile one of the issue (20,000 tools);
   meanwhile a health probe runs every 0.5 s. Reported: the worst and median probe latency
   (target: worst < 100 ms; the kubelet's probe timeout is 1 s).
2. **Flood case**: three streams send speech (barge-in off, so every utterance is echoed back)
   as fast as HTTP/2 flow control lets them; two read their replies, one never reads. Reported:
   the server's RSS growth (target: < 50 MB), the audio each stream got through, and the
   status the non-reading stream ended with.

The machine's load average is recorded with the numbers. Nothing here asserts: the numbers go
to the JSON file and to docs/robustness.md ("Hardening figures"); tests/hardening checks the
behaviour.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import time
import wave
from pathlib import Path
from typing import Any

import grpc
import psutil
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sonicwire.v1 import voice_service_pb2 as pb
from sonicwire.v1 import voice_service_pb2_grpc as pb_grpc

__all__ = ["main", "run"]

ROOT = Path(__file__).resolve().parent.parent
SPEECH_WAV = Path("/usr/share/sounds/alsa/Front_Center.wav")
FRAME = 640


def _speech() -> bytes:
    """Recorded speech at 16 kHz mono (alsa-utils' sample, resampled if needed)."""
    import numpy as np
    import soxr

    with wave.open(str(SPEECH_WAV), "rb") as w:
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        channels, rate = w.getnchannels(), w.getframerate()
    if channels > 1:
        data = data.reshape(-1, channels).mean(axis=1)
    pcm = soxr.resample(data.astype(np.float32), rate, 16_000)
    speech: bytes = np.clip(np.round(pcm), -32768, 32767).astype("<i2").tobytes()
    silence = bytes(16_000 * 2)  # 1 s: lets the VAD end the utterance, so it is echoed
    return speech + silence


def _heavy_config() -> pb.ConverseRequest:
    # The most schema work one config may ask for: 64 tools, 64 KiB of schemas together.
    properties = {f"p{i}": {"type": "string", "description": "x" * 40} for i in range(11)}
    schema = json.dumps({"type": "object", "properties": properties})
    assert 64 * len(schema) <= 64 * 1024
    tools = [pb.ToolDefinition(name=f"t{i}", parameters_json_schema=schema) for i in range(64)]
    return pb.ConverseRequest(config=pb.SessionConfig(client_tools=tools))


def _hostile_config() -> pb.ConverseRequest:
    tools = [pb.ToolDefinition(name=f"t{i}") for i in range(20_000)]
    return pb.ConverseRequest(config=pb.SessionConfig(client_tools=tools))


class Server:
    """``sonicwire serve --backend echo`` on a free port; stopped by pid in `stop`."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.target = ""

    def start(self, extra_args: list[str] | tuple[str, ...] = ()) -> None:
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sonicwire.server",
                "--backend",
                "echo",
                "--port",
                "0",
                *extra_args,
            ],
            stdout=subprocess.PIPE,
            stderr=log,
            cwd=ROOT,
            env={**os.environ, "SONICWIRE_MAX_MESSAGE_BYTES": str(4 << 20)},
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        found = re.search(r"gRPC on (\S+)", line)
        if not found:
            self.stop()
            raise RuntimeError(f"server did not start: {line!r} (log: {self.log_path})")
        self.target = found.group(1)

    def rss_mb(self) -> float:
        assert self.proc is not None
        return float(psutil.Process(self.proc.pid).memory_info().rss) / 2**20

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


async def _probe_health(target: str, stop: asyncio.Event) -> list[float]:
    latencies: list[float] = []
    async with grpc.aio.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while not stop.is_set():
            started = time.perf_counter()
            try:
                await stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
                latencies.append((time.perf_counter() - started) * 1000)
            except grpc.aio.AioRpcError:
                latencies.append(5000.0)  # a failed probe counts as the timeout
            await asyncio.sleep(0.5)
    return latencies


async def _freeze_client(
    target: str, request: pb.ConverseRequest, stop: asyncio.Event
) -> dict[str, int]:
    outcomes: dict[str, int] = {}
    async with grpc.aio.insecure_channel(
        target, options=[("grpc.max_send_message_length", 4 << 20)]
    ) as channel:
        stub = pb_grpc.VoiceServiceStub(channel)
        while not stop.is_set():

            async def one() -> Any:
                yield request

            try:
                async for response in stub.Converse(one()):
                    if response.HasField("session_started"):
                        outcomes["started"] = outcomes.get("started", 0) + 1
                        break
            except grpc.aio.AioRpcError as error:
                key = error.code().name
                outcomes[key] = outcomes.get(key, 0) + 1
    return outcomes


async def freeze_case(target: str, seconds: float) -> dict[str, Any]:
    stop = asyncio.Event()
    probe = asyncio.create_task(_probe_health(target, stop))
    await asyncio.sleep(1.0)  # a baseline probe or two
    heavy, hostile = _heavy_config(), _hostile_config()
    clients = [
        asyncio.create_task(_freeze_client(target, heavy if i % 2 else hostile, stop))
        for i in range(4)
    ]
    await asyncio.sleep(seconds)
    stop.set()
    outcomes = await asyncio.gather(*clients)
    latencies = await probe
    return {
        "seconds": seconds,
        "probes": len(latencies),
        "worst_probe_ms": round(max(latencies), 1),
        "median_probe_ms": round(statistics.median(latencies), 1),
        "hostile_outcomes": {k: v for o in outcomes[0::2] for k, v in o.items()},
        "heavy_outcomes": {k: v for o in outcomes[1::2] for k, v in o.items()},
    }


async def _flood_stream(
    target: str, speech: bytes, stop: asyncio.Event, read: bool
) -> dict[str, Any]:
    sent = received = 0
    status = "OK"
    config = pb.ConverseRequest(
        config=pb.SessionConfig(
            barge_in=pb.BargeInSettings(disabled=True),
            echo_cancellation=pb.EchoCancellationSettings(disabled=True),
        )
    )
    async with grpc.aio.insecure_channel(target) as channel:
        call = pb_grpc.VoiceServiceStub(channel).Converse()
        await call.write(config)

        async def write() -> None:
            nonlocal sent
            chunk = 3200  # 100 ms per message
            while not stop.is_set():
                for i in range(0, len(speech), chunk):
                    await call.write(
                        pb.ConverseRequest(audio=pb.AudioInput(audio=speech[i : i + chunk]))
                    )
                    sent += len(speech[i : i + chunk])
                    if stop.is_set():
                        break
            await call.done_writing()

        writer = asyncio.create_task(write())
        try:
            if read:
                async for response in call:
                    if response.HasField("audio"):
                        received += len(response.audio.audio)
                    if stop.is_set():
                        break
            else:
                await stop.wait()
        except grpc.aio.AioRpcError as error:
            status = error.code().name + " " + (error.details() or "")
        finally:
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
            call.cancel()
    return {
        "read": read,
        "sent_s": round(sent / 32_000, 1),
        "received_s": round(received / 32_000, 1),
        "status": status,
    }


async def flood_case(server: Server, seconds: float) -> dict[str, Any]:
    speech = _speech()
    stop = asyncio.Event()
    rss_before = server.rss_mb()
    streams = [
        asyncio.create_task(_flood_stream(server.target, speech, stop, read))
        for read in (True, True, False)
    ]
    peak = rss_before
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        await asyncio.sleep(0.5)
        peak = max(peak, server.rss_mb())
    stop.set()
    results = await asyncio.gather(*streams)
    return {
        "seconds": seconds,
        "rss_before_mb": round(rss_before, 1),
        "rss_peak_mb": round(peak, 1),
        "rss_growth_mb": round(peak - rss_before, 1),
        "streams": results,
    }


async def run(seconds: float, scratch: Path) -> dict[str, Any]:
    server = Server(scratch / "hardening-server.log")
    server.start()
    try:
        load_before = os.getloadavg()
        freeze = await freeze_case(server.target, seconds)
        flood = await flood_case(server, seconds)
        return {
            "freeze": freeze,
            "flood": flood,
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
            "cpus": os.cpu_count(),
        }
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="per case")
    parser.add_argument("--out", default="bench/results/hardening.json")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result = asyncio.run(run(args.seconds, out.parent))
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
