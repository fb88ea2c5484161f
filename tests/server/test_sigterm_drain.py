"""The SIGTERM sequence on a real server process: NOT_SERVING, refuse new, GoingAway, exit."""

from __future__ import annotations

import asyncio
import signal

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sonicwire.v1 import voice_service_pb2 as pb
from sonicwire.v1 import voice_service_pb2_grpc as pb_grpc

from .helpers import config_request, error_reason, server_process


async def test_sigterm_drains_then_exits() -> None:
    async with server_process("--backend", "echo", "--drain-grace-seconds", "1.5") as (
        proc,
        target,
    ):
        async with grpc.aio.insecure_channel(target) as channel:
            stub = pb_grpc.VoiceServiceStub(channel)
            health = health_pb2_grpc.HealthStub(channel)
            live = stub.Converse()
            await live.write(config_request())
            assert (await live.read()).HasField("session_started")

            proc.send_signal(signal.SIGTERM)

            going_away = await asyncio.wait_for(live.read(), 5)
            assert going_away.HasField("going_away")
            assert going_away.going_away.grace_ms == 1500
            status = await health.Check(health_pb2.HealthCheckRequest())
            assert status.status == health_pb2.HealthCheckResponse.NOT_SERVING
            refused = stub.Converse()
            try:
                # Refused before the first message is read: no write, so none can race the
                # refusal (a racing write can turn the status into INTERNAL, grpc#36066).
                await refused.read()
                raise AssertionError("a new stream must be refused while draining")
            except grpc.aio.AioRpcError as error:
                assert error.code() == grpc.StatusCode.UNAVAILABLE
                assert error_reason(error) == "SERVER_DRAINING"
            # The live stream keeps working during the grace...
            await live.write(pb.ConverseRequest(audio=pb.AudioInput(audio=bytes(640))))
            # ...and is ended with UNAVAILABLE when it runs out.
            try:
                while True:
                    await asyncio.wait_for(live.read(), 10)
            except grpc.aio.AioRpcError as error:
                assert error.code() == grpc.StatusCode.UNAVAILABLE
                assert error_reason(error) == "SERVER_DRAINING"
        assert await asyncio.wait_for(proc.wait(), 15) == 0
