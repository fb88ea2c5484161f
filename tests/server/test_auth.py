"""API keys: accepted forms, hostile values, and the no-auth loopback rule."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sonicwire.server.app import start_server
from sonicwire.server.auth import ApiKeyAuthenticator
from sonicwire.server.backends.echo import EchoBackend
from sonicwire.server.config import ServerConfig
from sonicwire.server.core.errors import AuthenticationError
from sonicwire.server.testing.server import running_server
from sonicwire.v1 import voice_service_pb2 as pb
from sonicwire.v1 import voice_service_pb2_grpc as pb_grpc

from .helpers import error_reason

KEY = "s3cret-key_A1"


@pytest.mark.parametrize(
    ("metadata", "ok"),
    [
        ((("x-api-key", KEY),), True),
        ((("authorization", f"Bearer {KEY}"),), True),
        ((("authorization", f"bearer {KEY}"),), True),
        ((), False),
        ((("x-api-key", "wrong"),), False),
        ((("x-api-key", ""),), False),
        ((("authorization", KEY),), False),
        ((("x-api-key", KEY), ("x-api-key", KEY)), False),
        ((("x-api-key", KEY), ("authorization", f"Bearer {KEY}")), False),
        ((("x-api-key", "k" * 2_000),), False),  # past our 1 KiB cap, under gRPC's 8 KiB
    ],
)
async def test_unary_auth_over_the_wire(metadata: tuple[tuple[str, str], ...], ok: bool) -> None:
    async with running_server(backend=EchoBackend(), api_keys=(KEY,)) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            stub = pb_grpc.VoiceServiceStub(channel)
            if ok:
                await stub.ListVoices(pb.ListVoicesRequest(), metadata=metadata)
            else:
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await stub.ListVoices(pb.ListVoicesRequest(), metadata=metadata)
                assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
                assert error_reason(caught.value).startswith("API_KEY_")


async def test_header_past_grpc_hard_limit_is_refused_by_the_transport() -> None:
    """Past 16 KiB, gRPC core itself refuses the metadata: never UNKNOWN, never a crash."""
    async with running_server(backend=EchoBackend(), api_keys=(KEY,)) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            stub = pb_grpc.VoiceServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.ListVoices(
                    pb.ListVoicesRequest(), metadata=(("x-api-key", "k" * 100_000),)
                )
            assert caught.value.code() in (
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                grpc.StatusCode.UNAUTHENTICATED,
            )
            # The server is unharmed.
            await stub.ListVoices(pb.ListVoicesRequest(), metadata=(("x-api-key", KEY),))


async def test_stream_needs_key_but_health_does_not() -> None:
    async with running_server(backend=EchoBackend(), api_keys=(KEY,)) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            stub = pb_grpc.VoiceServiceStub(channel)
            call = stub.Converse()
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call.read()
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
            health = health_pb2_grpc.HealthStub(channel)
            reply = await health.Check(health_pb2.HealthCheckRequest())
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            ok = stub.Converse(metadata=(("x-api-key", KEY),))
            await ok.write(pb.ConverseRequest(config=pb.SessionConfig()))
            assert (await ok.read()).HasField("session_started")
            ok.cancel()


@pytest.mark.parametrize(
    "value",
    [b"\xff\xfe", "ключ".encode(), b"\x00" + KEY.encode(), KEY.encode() + b"\n", b" " * 2000],
)
def test_hostile_values_are_unauthenticated(value: bytes) -> None:
    auth = ApiKeyAuthenticator([KEY.encode()])
    with pytest.raises(AuthenticationError):
        auth.authenticate([("x-api-key", value)])
    with pytest.raises(AuthenticationError):
        auth.authenticate([("authorization", b"Bearer " + value)])


def test_key_is_identified_by_hash_never_by_value() -> None:
    auth = ApiKeyAuthenticator([KEY.encode()])
    identity = auth.authenticate([("x-api-key", KEY)])
    assert KEY not in identity and identity.startswith("key-")


async def test_no_key_refuses_non_loopback_bind() -> None:
    with pytest.raises(ValueError, match="no API key"):
        await start_server(ServerConfig(host="0.0.0.0", port=0), EchoBackend())
