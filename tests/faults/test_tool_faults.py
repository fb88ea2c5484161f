"""Server tools that hang, over a real loopback stream with a tool-calling test backend.

A tool that never returns gets the runner's timeout: the model (and the client) get a TIMEOUT
result, the handler is cancelled, and the conversation carries on. A tool that even ignores
its cancellation cannot hold the session open: the runner gives up on it at session end.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import grpc
import pytest

from sonicwire.server.core import events as ev
from sonicwire.server.testing.backends import ToolCallingBackend
from sonicwire.server.testing.server import running_server
from sonicwire.v1 import voice_service_pb2 as pb
from sonicwire.v1 import voice_service_pb2_grpc as pb_grpc

from . import hanging_tools
from .streams import eventually, read_to_end, read_until, released, text

TOOLS = ("tests.faults.hanging_tools:TOOLS",)


@pytest.fixture(autouse=True)
def _fresh_tools() -> Iterator[None]:
    hanging_tools.reset()
    yield
    hanging_tools.release_stubborn_tools()


def _stubborn_tasks() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if "ignore_cancel" in t.get_name() and not t.done()]


def _result(responses: list[pb.ConverseResponse]) -> pb.ToolCallResult:
    results = [r.tool_call_result for r in responses if r.HasField("tool_call_result")]
    assert len(results) == 1, responses
    return results[0]


async def test_tool_that_hangs_times_out_and_the_conversation_continues() -> None:
    backend = ToolCallingBackend()
    async with running_server(backend=backend, tools=TOOLS) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            call = pb_grpc.VoiceServiceStub(channel).Converse()
            await call.write(pb.ConverseRequest(config=pb.SessionConfig()))
            started = (await call.read()).session_started
            assert "hang_forever" in started.tools

            await call.write(text("call hang_forever {}"))
            seen = await read_until(call, "turn_complete")
            tool_call = next(r.tool_call for r in seen if r.HasField("tool_call"))
            assert (tool_call.name, tool_call.executor) == ("hang_forever", pb.TOOL_EXECUTOR_SERVER)
            result = _result(seen)
            assert (result.id, result.status) == (tool_call.id, pb.TOOL_STATUS_TIMEOUT)
            assert json.loads(result.result_json)["error"]["type"] == "timeout"
            # The runner's timeout (0.3 s) decided, not something slower.
            assert result.duration_ms >= hanging_tools.TIMEOUT_S * 1000 * 0.9
            # The model got exactly that result, and the handler was cancelled, not abandoned.
            session = backend.sessions[0]
            sent = [c for c in session.commands if isinstance(c, ev.SendToolResult)]
            assert [(c.call_id, c.status) for c in sent] == [(tool_call.id, ev.ToolStatus.TIMEOUT)]
            await eventually(lambda: hanging_tools.CANCELLED == hanging_tools.CALLS)

            # The conversation goes on.
            await call.write(text("still there?"))
            seen = await read_until(call, "turn_complete")
            assert any(r.transcript.text == "You said: still there?" for r in seen)
            await call.done_writing()
            outcome = await read_to_end(call)
            assert outcome.code == grpc.StatusCode.OK, outcome
            await eventually(lambda: released(server))


async def test_tool_that_ignores_cancellation_cannot_hold_the_session_open(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = ToolCallingBackend()
    async with running_server(backend=backend, tools=TOOLS) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            call = pb_grpc.VoiceServiceStub(channel).Converse()
            await call.write(pb.ConverseRequest(config=pb.SessionConfig()))
            await read_until(call, "session_started")
            await call.write(text("call ignore_cancel {}"))
            seen = await read_until(call, "turn_complete")
            assert _result(seen).status == pb.TOOL_STATUS_TIMEOUT
            await eventually(lambda: bool(hanging_tools.IGNORED_CANCELS))

            await call.done_writing()
            try:
                # The runner waits a bounded grace (5 s) for the handler, then leaves it behind.
                outcome = await read_to_end(call, timeout_s=20)
                assert outcome.code == grpc.StatusCode.OK, outcome
                await eventually(lambda: released(server), timeout_s=10)
                assert any("still running" in r.getMessage() for r in caplog.records)
            finally:
                # The abandoned handler still runs on this loop: let it return, or closing the
                # loop (which cancels and awaits every task) would wait for it forever.
                hanging_tools.release_stubborn_tools()
                await eventually(lambda: not _stubborn_tasks(), timeout_s=5)
