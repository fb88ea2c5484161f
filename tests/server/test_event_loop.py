"""The event loop never stalls: debug mode with a slow-callback threshold, health under load."""

from __future__ import annotations

import asyncio
import logging

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sonicwire.server.backends.echo import EchoBackend
from sonicwire.server.testing.server import running_server
from sonicwire.v1 import voice_service_pb2 as pb
from sonicwire.v1 import voice_service_pb2_grpc as pb_grpc

from .helpers import config_request

# asyncio's debug mode logs every callback that holds the loop longer than this.
SLOW_CALLBACK_S = 0.1
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


async def test_no_slow_callbacks_and_health_answers_under_load(
    speech_16k: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    loop = asyncio.get_running_loop()
    loop.set_debug(True)
    loop.slow_callback_duration = SLOW_CALLBACK_S
    caplog.set_level(logging.WARNING, logger="asyncio")
    try:
        async with running_server(backend=EchoBackend()) as server:
            async with grpc.aio.insecure_channel(server.target) as channel:
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
    finally:
        loop.set_debug(False)
    assert turns == [1] * STREAMS
    assert checks > 5
    slow = [r.getMessage() for r in caplog.records if "took" in r.getMessage()]
    assert slow == [], f"callbacks blocked the event loop: {slow}"
