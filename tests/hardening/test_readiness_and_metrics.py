"""Issue 14, "also from reading the code": readiness waits for the backend's warm-up (and stays
NOT_SERVING after a failed one); metric labels never take client-declared tool names."""

from __future__ import annotations

import asyncio

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import REGISTRY

from sonicwire.server.backends.base import BackendOptions
from sonicwire.server.backends.echo import EchoBackend, EchoSession
from sonicwire.server.core import events as ev
from sonicwire.server.metrics import CLIENT_TOOL_LABEL, StreamMetrics
from sonicwire.server.testing.server import running_server

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class SlowWarmUpBackend(EchoBackend):
    """The echo backend behind a warm-up that the test releases (or fails)."""

    def __init__(self, fail: bool = False) -> None:
        self.release = asyncio.Event()
        self.fail = fail

    async def warm_up(self) -> None:
        await self.release.wait()
        if self.fail:
            raise RuntimeError("model files missing")

    async def open(self, options: BackendOptions) -> EchoSession:
        return await super().open(options)


async def health_status(target: str) -> int:
    async with grpc.aio.insecure_channel(target) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=10
        )
        return int(reply.status)


async def wait_status(target: str, want: int) -> int:
    status = -1
    for _ in range(200):
        status = await health_status(target)
        if status == want:
            break
        await asyncio.sleep(0.02)
    return status


async def test_not_serving_until_warm_up_succeeded() -> None:
    backend = SlowWarmUpBackend()
    async with running_server(backend=backend) as server:
        assert await health_status(server.target) == NOT_SERVING
        backend.release.set()
        assert await wait_status(server.target, SERVING) == SERVING


async def test_not_serving_after_a_failed_warm_up() -> None:
    backend = SlowWarmUpBackend(fail=True)
    async with running_server(backend=backend) as server:
        backend.release.set()
        assert server.warm_up is not None
        await asyncio.wait_for(asyncio.shield(server.warm_up), 10)
        assert await health_status(server.target) == NOT_SERVING


async def test_backend_without_warm_up_serves_at_once() -> None:
    async with running_server(backend=EchoBackend()) as server:
        assert await health_status(server.target) == SERVING


def test_client_tool_names_never_become_metric_labels() -> None:
    metrics = StreamMetrics(frozenset({"get_date_time"}))
    for name in ("evil_tool_0001", "get_date_time"):
        metrics.on_output(ev.ToolCallResultOut("c1", name, ev.ToolStatus.ERROR, "{}", 5))
    sample = REGISTRY.get_sample_value
    assert sample("sonicwire_tool_duration_seconds_count", {"tool": "evil_tool_0001"}) is None
    assert sample("sonicwire_tool_duration_seconds_count", {"tool": CLIENT_TOOL_LABEL}) >= 1
    assert sample("sonicwire_tool_duration_seconds_count", {"tool": "get_date_time"}) >= 1
