"""grpc.health.v1 (Check, Watch, NOT_FOUND) and server reflection via the standard stubs."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from sonicwire.server.backends.echo import EchoBackend
from sonicwire.server.testing.server import running_server

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.mark.parametrize("service", ["", "sonicwire.v1.VoiceService"])
async def test_health_check_serving(service: str) -> None:
    async with running_server(backend=EchoBackend()) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=service))
            assert reply.status == SERVING


async def test_health_unknown_service_is_not_found() -> None:
    async with running_server(backend=EchoBackend()) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.Check(health_pb2.HealthCheckRequest(service="nope.Service"))
            assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_health_watch_sees_drain() -> None:
    async with running_server(backend=EchoBackend()) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            watch = stub.Watch(health_pb2.HealthCheckRequest(service="sonicwire.v1.VoiceService"))
            first = await watch.read()
            assert first.status == SERVING
            drain = asyncio.create_task(server.drain(grace_s=0.1))
            second = await asyncio.wait_for(watch.read(), 5)
            assert second.status == NOT_SERVING
            watch.cancel()
            await drain


async def test_reflection_lists_services_and_describes_converse() -> None:
    async with running_server(backend=EchoBackend()) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            stub = reflection_pb2_grpc.ServerReflectionStub(channel)

            async def ask() -> object:
                yield reflection_pb2.ServerReflectionRequest(list_services="")
                yield reflection_pb2.ServerReflectionRequest(
                    file_containing_symbol="sonicwire.v1.VoiceService"
                )

            replies = [r async for r in stub.ServerReflectionInfo(ask())]
    names = {s.name for s in replies[0].list_services_response.service}
    assert {
        "sonicwire.v1.VoiceService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    } <= names
    assert replies[1].file_descriptor_response.file_descriptor_proto
