"""The event loop never stalls: the server runs with asyncio debug mode (slow-callback threshold
100 ms) under load, must log no slow callback, and health answers within the kubelet's 1 s."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sonicwire.v1 import voice_service_pb2 as pb
from sonicwire.v1 import voice_service_pb2_grpc as pb_grpc

from .helpers import config_request

STREAMS = 12


async def _paced_stream(stub: pb_grpc.VoiceServiceStub, audio: bytes) -> int:
    async def requests() -> object:
        yield config_request()
        for start in range(0, len(audio), 640):
            yield pb.ConverseRequest(audio=pb.AudioInput(audio=audio[start : start + 640]))
            await asyncio.sleep(0.02)  # real time, like a microphone

    turns = 0
    async for response in stub.Converse(requests()):
        turns += response.HasField("turn_complete")
    return turns


async def test_no_slow_callbacks_and_health_answers_under_load(speech_16k: bytes) -> None:
    # PYTHONASYNCIODEBUG turns on debug mode: asyncio then logs (at WARNING, to stderr) every
    # callback that holds the loop longer than loop.slow_callback_duration (0.1 s).
    env = {**os.environ, "PYTHONASYNCIODEBUG": "1", "SONICWIRE_LOG_LEVEL": "WARNING"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sonicwire.server", "--backend", "echo", "--port", "0",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stderr is not None
        banner = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        target = re.search(r"gRPC on (\S+)", banner)
        assert target, banner
        async with grpc.aio.insecure_channel(target.group(1)) as channel:
            stub = pb_grpc.VoiceServiceStub(channel)
            health = health_pb2_grpc.HealthStub(channel)
            audio = bytes(640) * 10 + speech_16k + bytes(640) * 40
            load = asyncio.gather(*(_paced_stream(stub, audio) for _ in range(STREAMS)))
            checks = 0
            while not load.done():
                # The kubelet's default probe timeout is 1 s: a deadline, not a measurement.
                reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                assert reply.status == health_pb2.HealthCheckResponse.SERVING
                checks += 1
                await asyncio.sleep(0.1)
            turns = await load
        proc.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert turns == [1] * STREAMS
    assert checks > 5
    slow = [line for line in stderr.decode().splitlines() if re.search(r"took \d", line)]
    assert slow == [], "callbacks blocked the server's event loop:\n" + "\n".join(slow)
