"""Issue 15 item 7 over gRPC (server on loopback, nova-sonic backend, real SDK, local Bedrock
endpoint): toolChoice reaches Nova's promptStart; a choice naming no offered tool is refused
before any stream opens."""

from __future__ import annotations

import grpc
import pytest

from sonicwire.server.testing.fake_scenario import Scenario
from sonicwire.v1 import voice_service_pb2 as pb

from .helpers import error_reason
from .test_nova_e2e import RAW_AUDIO, _drain, nova_server, read_until


def with_choice(mode: int, name: str = "") -> pb.SessionConfig:
    config = pb.SessionConfig()
    config.CopyFrom(RAW_AUDIO)
    config.tool_choice.mode = mode  # type: ignore[assignment]
    config.tool_choice.tool_name = name
    return config


@pytest.mark.parametrize(
    ("mode", "name", "expected"),
    [
        (pb.TOOL_CHOICE_MODE_TOOL, "get_date_time", {"tool": {"name": "get_date_time"}}),
        (pb.TOOL_CHOICE_MODE_ANY, "", {"any": {}}),
        (pb.TOOL_CHOICE_MODE_AUTO, "", {"auto": {}}),
        (pb.TOOL_CHOICE_MODE_UNSPECIFIED, "", None),
    ],
    ids=["tool", "any", "auto", "unset"],
)
async def test_tool_choice_reaches_prompt_start(
    mode: int, name: str, expected: dict[str, object] | None
) -> None:
    async with nova_server(Scenario()) as (fake, _server, stub):
        call = stub.Converse()
        await call.write(pb.ConverseRequest(config=with_choice(mode, name)))
        await read_until(call, "session_started", [])
        await fake.wait_for_streams(1)
        prompt = next(e for e in fake.streams[0].events if "promptStart" in e["event"])
        tools = prompt["event"]["promptStart"]["toolConfiguration"]
        assert tools.get("toolChoice") == expected
        call.cancel()


@pytest.mark.parametrize(
    ("mode", "name"),
    [
        (pb.TOOL_CHOICE_MODE_TOOL, "no_such_tool"),
        (pb.TOOL_CHOICE_MODE_TOOL, ""),
        (pb.TOOL_CHOICE_MODE_ANY, "get_date_time"),
    ],
    ids=["unknown-tool", "tool-without-name", "name-without-tool-mode"],
)
async def test_a_bad_tool_choice_is_refused_before_bedrock(mode: int, name: str) -> None:
    async with nova_server(Scenario()) as (fake, _server, stub):
        call = stub.Converse()
        await call.write(pb.ConverseRequest(config=with_choice(mode, name)))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _drain(call, [])
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_reason(caught.value) == "TOOL_CHOICE_INVALID"
        assert fake.streams == []
