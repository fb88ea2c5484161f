"""Issue 14, items 1, 4, 5 and 8: every hostile or careless config gets INVALID_ARGUMENT with a
reason, a bounded message and one log line, and cheap refusals happen before any heavy work."""

from __future__ import annotations

import asyncio
import json
import logging
import math

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sonicwire.server.backends.echo import EchoBackend
from sonicwire.server.testing.server import running_server
from sonicwire.v1 import voice_service_pb2 as pb
from sonicwire.v1 import voice_service_pb2_grpc as pb_grpc
from tests.server.helpers import config_request, error_reason, request_stream

CONVERSE = "/sonicwire.v1.VoiceService/Converse"


def nested_schema(depth: int) -> str:
    return '{"type": "object", "properties": {"a": ' * depth + "{}" + "}}" * depth


def wide_schema(target_bytes: int) -> str:
    """A valid schema of about ``target_bytes`` (many flat properties)."""
    properties = {}
    i = 0
    while len(json.dumps(properties)) < target_bytes - 200:
        properties[f"p{i}"] = {"type": "string", "description": "x" * 40}
        i += 1
    return json.dumps({"type": "object", "properties": properties})


def tools(n: int, schema: str = "") -> list[pb.ToolDefinition]:
    return [pb.ToolDefinition(name=f"t{i}", parameters_json_schema=schema) for i in range(n)]


async def converse_error(
    channel: grpc.aio.Channel, requests: list[pb.ConverseRequest]
) -> grpc.aio.AioRpcError:
    stub = pb_grpc.VoiceServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in stub.Converse(request_stream(requests)):
            pass
    return caught.value


CASES = [
    ("20000 tools (item 1)", config_request(client_tools=tools(20_000)), "TOO_MANY_TOOLS"),
    ("65 tools", config_request(client_tools=tools(65)), "TOO_MANY_TOOLS"),
    (
        "schema over 16 KiB",
        config_request(client_tools=tools(1, wide_schema(20_000))),
        "TOOL_SCHEMA_TOO_LARGE",
    ),
    (
        "schemas over 64 KiB together",
        config_request(client_tools=tools(8, wide_schema(10_000))),
        "TOOL_SCHEMA_TOO_LARGE",
    ),
    (
        "schema nested 100 levels (item 4)",
        config_request(client_tools=tools(1, nested_schema(100))),
        "TOOL_SCHEMA_TOO_DEEP",
    ),
    (
        "schema nested 5000 levels",
        config_request(client_tools=tools(1, "[" * 5000 + "]" * 5000)),
        "TOOL_SCHEMA_TOO_DEEP",
    ),
    (
        "10000 unknown server tools (item 5)",
        config_request(server_tools=[f"tool_{i:05d}" for i in range(10_000)]),
        "TOO_MANY_TOOLS",
    ),
    (
        "prompt too long",
        config_request(system_prompt="é" * 30_000),
        "PROMPT_TOO_LONG",
    ),
    (
        "max_tokens -1 (item 8)",
        config_request(inference=pb.InferenceSettings(max_tokens=-1)),
        "CONFIG_INVALID",
    ),
    (
        "temperature -5",
        config_request(inference=pb.InferenceSettings(temperature=-5)),
        "CONFIG_INVALID",
    ),
    (
        "top_p NaN",
        config_request(inference=pb.InferenceSettings(top_p=math.nan)),
        "CONFIG_INVALID",
    ),
    (
        "unknown VAD engine number",
        config_request(vad=pb.VadSettings(engine=9)),  # type: ignore[arg-type]
        "CONFIG_INVALID",
    ),
    (
        "resume_session_id without its token",
        config_request(resume_session_id="sw_doesnotexist"),
        "RESUME_TOKEN_MISSING",
    ),
    (
        "a long tool name",
        config_request(client_tools=[pb.ToolDefinition(name="n" * 5000)]),
        "CLIENT_TOOL_INVALID",
    ),
]


@pytest.mark.parametrize(("request_", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_config_is_refused_with_reason_and_bounded_message(
    request_: pb.ConverseRequest, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with running_server(backend=EchoBackend(), max_message_bytes=4 << 20) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            error = await converse_error(channel, [request_])
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert error_reason(error) == reason
    # The reason must arrive (not RESOURCE_EXHAUSTED "Stream removed"): the message is bounded.
    assert 0 < len(error.details() or "") <= 1024
    ended = [r for r in caplog.records if "stream ended" in r.getMessage()]
    assert len(ended) == 1
    assert not [r for r in caplog.records if r.exc_info and r.name.startswith("sonicwire")]
    assert not server.runtime.conversations


async def test_many_unknown_server_tools_under_the_cap_get_a_bounded_message() -> None:
    names = [f"unknown_tool_with_a_long_name_{i:03d}" + "x" * 20 for i in range(64)]
    async with running_server(backend=EchoBackend()) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            error = await converse_error(channel, [config_request(server_tools=names)])
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(error) == "CLIENT_TOOL_INVALID"
    assert len(error.details() or "") <= 1024


RAW_CASES = [
    # ConverseRequest.config (field 1) holding SessionConfig.voice (field 3) = b"\xff\xfe".
    ("invalid UTF-8 in a string field", b"\x0a\x04\x1a\x02\xff\xfe"),
    ("truncated message", b"\x0a\xff\xff\xff\x0f"),
    ("garbage", b"\xff" * 64),
]


@pytest.mark.parametrize("payload", [c[1] for c in RAW_CASES], ids=[c[0] for c in RAW_CASES])
async def test_undecodable_request_is_invalid_argument(
    payload: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with running_server(backend=EchoBackend()) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            call = channel.stream_stream(CONVERSE)  # no serializer: raw bytes on the wire

            async def raw() -> object:
                yield payload

            with pytest.raises(grpc.aio.AioRpcError) as caught:
                async for _ in call(raw()):
                    pass
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(caught.value) == "REQUEST_UNDECODABLE"
    assert not [r for r in caplog.records if r.exc_info and r.name.startswith("sonicwire")]


async def test_undecodable_unary_request_is_invalid_argument() -> None:
    async with running_server(backend=EchoBackend()) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            call = channel.unary_unary("/sonicwire.v1.VoiceService/ListVoices")
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call(b"\x0a\x02\xff\xfe")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(caught.value) == "REQUEST_UNDECODABLE"


async def test_undecodable_message_after_the_config() -> None:
    good = config_request().SerializeToString()
    async with running_server(backend=EchoBackend()) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            call = channel.stream_stream(CONVERSE)

            async def raw() -> object:
                yield good
                yield b"\x1a\x02\x0a\xff"  # TextInput with a truncated string

            with pytest.raises(grpc.aio.AioRpcError) as caught:
                async for _ in call(raw()):
                    pass
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(caught.value) == "REQUEST_UNDECODABLE"


async def test_largest_allowed_tools_are_accepted_and_health_answers_meanwhile() -> None:
    """Item 1: four streams with the most tool work allowed; health answers throughout."""
    schema = wide_schema(1_000)
    config = config_request(client_tools=tools(64, schema))
    hostile = config_request(client_tools=tools(20_000))
    async with running_server(backend=EchoBackend(), max_message_bytes=4 << 20) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            stub = pb_grpc.VoiceServiceStub(channel)
            health = health_pb2_grpc.HealthStub(channel)

            async def session() -> str:
                async for response in stub.Converse(request_stream([config])):
                    if response.HasField("session_started"):
                        return response.session_started.session_id
                return ""

            async def refused() -> str:
                return error_reason(await converse_error(channel, [hostile]))

            work = asyncio.gather(*(session() for _ in range(4)), *(refused() for _ in range(4)))
            answers = []
            while not work.done():
                reply = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=30)
                answers.append(reply.status)
                await asyncio.sleep(0.05)
            results = await work
    assert all(r.startswith("sw_") for r in results[:4])
    assert results[4:] == ["TOO_MANY_TOOLS"] * 4
    assert answers and set(answers) == {health_pb2.HealthCheckResponse.SERVING}


async def test_empty_audio_chunk_is_refused_as_on_the_gateway() -> None:
    """Item 8: an empty AudioInput gets the gateway's answer (AUDIO_CHUNK_INVALID)."""
    requests = [config_request(), pb.ConverseRequest(audio=pb.AudioInput(audio=b""))]
    async with running_server(backend=EchoBackend()) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            error = await converse_error(channel, requests)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(error) == "AUDIO_CHUNK_INVALID"
    assert error.details() == "empty audio chunk"
