"""What a stream says back about a client's input stays small, however large the input.

A `Warning` does not end the stream, so a warning that repeated a client-chosen value would
send it back as often as the client sends it. Found by the red-team session (s23): 50
`ToolResult`s with an unknown 180 KB ``tool_call_id`` (within the 256 KiB message limit and
the tool-result burst of 50) made the server send 9 MB of `TOOL_RESULT_UNEXPECTED` warnings
back, each quoting the whole id. Over loopback gRPC and the in-process channel.
"""

from __future__ import annotations

import grpc
import pytest

from sonicwire.server.app import RunningServer
from sonicwire.server.core.input_rules import MAX_QUOTED_CHARS, quoted
from sonicwire.server.testing.server import running_server
from sonicwire.v1 import voice_service_pb2 as pb
from sonicwire.v1 import voice_service_pb2_grpc as pb_grpc
from tests.server.helpers import config_request, request_stream

pytestmark = pytest.mark.timeout(60)

TRANSPORTS = ["grpc", "in_process"]
_RESULTS = 20  # within the default tool-result burst (50): none is refused for the rate


def _channel(server: RunningServer, transport: str) -> grpc.aio.Channel:
    if transport == "grpc":
        return grpc.aio.insecure_channel(server.target)
    return server.local_channel()


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_tool_results_with_huge_unknown_ids_are_not_echoed_back(transport: str) -> None:
    call_id = "x" * 180_000
    requests = [config_request()] + [
        pb.ConverseRequest(tool_result=pb.ToolResult(tool_call_id=call_id, content="{}"))
        for _ in range(_RESULTS)
    ]
    async with running_server() as server:
        channel = _channel(server, transport)
        try:
            call = pb_grpc.VoiceServiceStub(channel).Converse(request_stream(requests), timeout=30)
            responses = [response async for response in call]
            assert await call.code() == grpc.StatusCode.OK
        finally:
            await channel.close()
    warnings = [r.warning for r in responses if r.HasField("warning")]
    assert [w.reason for w in warnings] == ["TOOL_RESULT_UNEXPECTED"] * _RESULTS
    for warning in warnings:
        assert len(warning.message) < 200, len(warning.message)
        assert "180000 characters" in warning.message  # still says what was wrong
    assert sum(r.ByteSize() for r in responses) < 10_000


def test_short_ids_are_quoted_whole_and_long_ones_cut() -> None:
    assert quoted("call-1") == "'call-1'"
    exact = "a" * MAX_QUOTED_CHARS
    assert quoted(exact) == repr(exact)
    long = quoted("b" * (MAX_QUOTED_CHARS + 1))
    assert long == f"{'b' * MAX_QUOTED_CHARS!r}... ({MAX_QUOTED_CHARS + 1} characters)"
