"""Issue 14, item 8: a stream that never sent its config is told why it ends on SIGTERM, and
the server logs no CancelledError traceback for it."""

from __future__ import annotations

import asyncio
import logging

import grpc
import pytest

from sonicwire.server.backends.echo import EchoBackend
from sonicwire.server.testing.server import running_server
from sonicwire.v1 import voice_service_pb2_grpc as pb_grpc
from tests.server.helpers import error_reason


async def test_stream_without_config_gets_server_draining(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with running_server(backend=EchoBackend()) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            call = pb_grpc.VoiceServiceStub(channel).Converse()  # opened, nothing sent
            await call.wait_for_connection()
            await asyncio.sleep(0.2)  # the handler is now waiting for the config
            drain = asyncio.create_task(server.drain(0.5))
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                async for _ in call:
                    pass
            await drain
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert error_reason(caught.value) == "SERVER_DRAINING"
    assert not [r for r in caplog.records if r.exc_info and r.name.startswith("sonicwire")]
