"""Health ``Watch`` and reflection streams need no API key and stay open as long as the
client likes: past ``--max-side-streams`` open ones, more are refused.

Found by the red-team session of 2026-12-07 (s36): 20,000 ``Watch`` streams on one connection
to a server with an API key grew it by 200 MB in 9 s; nothing bounded them.
"""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from sonicwire.server.testing.server import running_server
from tests.server.helpers import error_reason

pytestmark = pytest.mark.timeout(60)

_LIMIT = 5
_KEY = "k" * 32


def _reflection_request() -> reflection_pb2.ServerReflectionRequest:
    return reflection_pb2.ServerReflectionRequest(list_services="")


async def test_watch_and_reflection_streams_past_the_limit_are_refused() -> None:
    async with running_server(max_side_streams=_LIMIT, api_keys=(_KEY,)) as server:
        channel = grpc.aio.insecure_channel(server.target)
        try:
            health = health_pb2_grpc.HealthStub(channel)
            held = [health.Watch(health_pb2.HealthCheckRequest()) for _ in range(_LIMIT - 1)]
            reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
            info = reflection.ServerReflectionInfo()
            await info.write(_reflection_request())
            held.append(info)
            for call in held:  # each one is open and answered: the limit is not yet reached
                assert await call.read() != grpc.aio.EOF

            over = health.Watch(health_pb2.HealthCheckRequest())
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await over.read()
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert error_reason(refused.value) == "SIDE_STREAM_LIMIT_REACHED"

            another = reflection.ServerReflectionInfo()
            await another.write(_reflection_request())
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await another.read()
            assert error_reason(refused.value) == "SIDE_STREAM_LIMIT_REACHED"

            # Probes still answer; a closed stream frees its place.
            check = await health.Check(health_pb2.HealthCheckRequest(), timeout=10)
            assert check.status == health_pb2.HealthCheckResponse.SERVING
            held.pop(0).cancel()
            # The server sees the cancel a moment later (later still on a loaded machine):
            # up to 200 tries, 50 ms apart, not a burst that a busy server could outlast.
            for _ in range(200):
                again = health.Watch(health_pb2.HealthCheckRequest())
                try:
                    assert (await again.read()).status == health_pb2.HealthCheckResponse.SERVING
                    break
                except grpc.aio.AioRpcError as error:
                    assert error_reason(error) == "SIDE_STREAM_LIMIT_REACHED"
                await asyncio.sleep(0.05)
            else:
                pytest.fail("a cancelled Watch never freed its place")
            again.cancel()
            for call in held:
                call.cancel()
        finally:
            await channel.close()
    assert server.side_streams is not None
    assert server.side_streams.open == 0


async def test_a_watch_naming_a_huge_service_is_refused() -> None:
    # Before: each such stream held its 200 KB name while open (1,000 of them: +650 MB).
    async with running_server() as server:
        channel = grpc.aio.insecure_channel(server.target)
        try:
            health = health_pb2_grpc.HealthStub(channel)
            huge = health.Watch(health_pb2.HealthCheckRequest(service="x" * 200_000))
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await huge.read()
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert error_reason(refused.value) == "HEALTH_SERVICE_NAME_TOO_LONG"
            unknown = health.Watch(health_pb2.HealthCheckRequest(service="x" * 256))
            first = await unknown.read()
            assert first.status == health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
            unknown.cancel()
        finally:
            await channel.close()
