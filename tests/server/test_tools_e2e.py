"""Tool calls over a real gRPC stream: server tools, client tools, a client that never answers."""

from __future__ import annotations

import asyncio
import json

import grpc
import pytest

from sonicwire.server.testing.backends import ToolCallingBackend
from sonicwire.server.testing.server import running_server
from sonicwire.v1 import voice_service_pb2 as pb
from sonicwire.v1 import voice_service_pb2_grpc as pb_grpc

from .helpers import error_reason

WEATHER = pb.ToolDefinition(
    name="get_weather",
    description="Weather for a city.",
    parameters_json_schema=json.dumps(
        {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    ),
)
NEVER = pb.ToolDefinition(name="never_answers", description="A client that hangs.", timeout_ms=50)


def text(value: str) -> pb.ConverseRequest:
    return pb.ConverseRequest(text=pb.TextInput(text=value))


async def _read_until(call: object, kind: str) -> list[pb.ConverseResponse]:
    seen = []
    while True:
        response = await call.read()  # type: ignore[attr-defined]
        assert response is not grpc.aio.EOF, f"stream ended before {kind}: {seen}"
        seen.append(response)
        if response.WhichOneof("response") == kind:
            return seen


async def test_client_tool_round_trip_and_timeout() -> None:
    async with running_server(backend=ToolCallingBackend()) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            stub = pb_grpc.VoiceServiceStub(channel)
            call = stub.Converse()
            await call.write(
                pb.ConverseRequest(config=pb.SessionConfig(client_tools=[WEATHER, NEVER]))
            )
            started = (await call.read()).session_started
            assert {"get_weather", "never_answers", "get_date_time", "track_order"} <= set(
                started.tools
            )

            # 1. The client runs get_weather and answers on the same stream.
            await call.write(text('call get_weather {"city": "Lisbon"}'))
            seen = await _read_until(call, "tool_call")
            tool_call = seen[-1].tool_call
            assert tool_call.executor == pb.TOOL_EXECUTOR_CLIENT
            assert json.loads(tool_call.arguments_json) == {"city": "Lisbon"}
            result = pb.ToolResult(tool_call_id=tool_call.id, content='{"sky": "clear"}')
            await call.write(pb.ConverseRequest(tool_result=result))
            seen = await _read_until(call, "turn_complete")
            outcome = next(r.tool_call_result for r in seen if r.HasField("tool_call_result"))
            assert outcome.status == pb.TOOL_STATUS_OK
            assert json.loads(outcome.result_json) == {"sky": "clear"}

            # 2. Invalid arguments never reach the client: the model gets the error instead.
            await call.write(text('call get_weather {"town": 3}'))
            seen = await _read_until(call, "turn_complete")
            assert not any(r.HasField("tool_call") for r in seen)
            outcome = next(r.tool_call_result for r in seen if r.HasField("tool_call_result"))
            assert outcome.status == pb.TOOL_STATUS_INVALID_ARGUMENTS

            # 3. A client that never answers: TIMEOUT result, and the stream keeps working.
            await call.write(text("call never_answers {}"))
            seen = await _read_until(call, "turn_complete")
            outcome = next(r.tool_call_result for r in seen if r.HasField("tool_call_result"))
            assert outcome.status == pb.TOOL_STATUS_TIMEOUT
            assert "error" in json.loads(outcome.result_json)
            await call.write(text("still here?"))
            seen = await _read_until(call, "turn_complete")
            assert any(r.transcript.text == "You said: still here?" for r in seen)

            # 4. A late or unknown result is a warning, not an error.
            await call.write(pb.ConverseRequest(tool_result=pb.ToolResult(tool_call_id="nope")))
            seen = await _read_until(call, "warning")
            assert seen[-1].warning.reason == "TOOL_RESULT_UNEXPECTED"
            await call.done_writing()
            assert await call.code() == grpc.StatusCode.OK


async def test_server_tool_runs_on_the_server(tmp_path: object, monkeypatch: object) -> None:
    monkeypatch.setenv("SONICWIRE_ORDERS_DB", str(tmp_path) + "/orders.db")  # type: ignore[attr-defined]
    async with running_server(backend=ToolCallingBackend()) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            stub = pb_grpc.VoiceServiceStub(channel)
            call = stub.Converse()
            await call.write(pb.ConverseRequest(config=pb.SessionConfig()))
            await call.read()
            await call.write(text('call track_order {"order_id": "1001"}'))
            seen = await _read_until(call, "turn_complete")
            tool_call = next(r.tool_call for r in seen if r.HasField("tool_call"))
            assert tool_call.executor == pb.TOOL_EXECUTOR_SERVER
            outcome = next(r.tool_call_result for r in seen if r.HasField("tool_call_result"))
            assert outcome.status == pb.TOOL_STATUS_OK
            assert json.loads(outcome.result_json)["order_id"] == "1001"
            await call.write(text('call get_date_time {"timezone": "Mars/Olympus"}'))
            seen = await _read_until(call, "turn_complete")
            outcome = next(r.tool_call_result for r in seen if r.HasField("tool_call_result"))
            assert outcome.status == pb.TOOL_STATUS_ERROR
            call.cancel()


async def test_list_tools_returns_builtins() -> None:
    async with running_server(backend=ToolCallingBackend()) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            reply = await pb_grpc.VoiceServiceStub(channel).ListTools(pb.ListToolsRequest())
    names = {t.name for t in reply.tools}
    assert {"get_date_time", "track_order"} <= names
    for tool in reply.tools:
        assert json.loads(tool.parameters_json_schema)["type"] == "object"
    clock = next(t for t in reply.tools if t.name == "get_date_time")
    assert "what time is it in {timezone}" in clock.examples
    assert clock.answer_template.startswith("It's {time}.")


async def test_session_time_zone_is_the_tools_default_zone() -> None:
    """`SessionConfig.time_zone` (the browser page sends the user's) is get_date_time's zone
    when the model names none; a zone the model names still wins."""
    async with running_server(backend=ToolCallingBackend()) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            call = pb_grpc.VoiceServiceStub(channel).Converse()
            await call.write(pb.ConverseRequest(config=pb.SessionConfig(time_zone="asia/tokyo")))
            started = (await call.read()).session_started
            assert started.config.time_zone == "Asia/Tokyo"  # canonical, as the tools use it
            zones = []
            for arguments in ("{}", '{"timezone": "Europe/Paris"}'):
                await call.write(text(f"call get_date_time {arguments}"))
                seen = await _read_until(call, "turn_complete")
                outcome = next(r.tool_call_result for r in seen if r.HasField("tool_call_result"))
                assert outcome.status == pb.TOOL_STATUS_OK
                zones.append(json.loads(outcome.result_json)["timezone"])
            assert zones == ["Asia/Tokyo", "Europe/Paris"]
            await call.done_writing()


async def test_unknown_time_zone_is_invalid_argument() -> None:
    async with running_server(backend=ToolCallingBackend()) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            for zone in ("Mars/Olympus_Mons", "../../etc/passwd", "x" * 5000):
                call = pb_grpc.VoiceServiceStub(channel).Converse()
                await call.write(pb.ConverseRequest(config=pb.SessionConfig(time_zone=zone)))
                try:
                    await call.read()
                except grpc.aio.AioRpcError as error:
                    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
                    assert "TIME_ZONE_INVALID" in str(error.trailing_metadata())
                    assert len(error.details() or "") < 200  # the input is not echoed whole
                else:
                    raise AssertionError(f"time_zone {zone[:20]!r} was accepted")


async def test_half_close_with_a_client_call_pending_ends_the_call_at_once() -> None:
    # Found by the red-team session (s36). Before: the server waited for the client's result,
    # which a half-closed stream can never send, until the tool's timeout (here 60 s, the cap),
    # and the stream ended DEADLINE_EXCEEDED / BACKEND_TIMEOUT after --backend-timeout-seconds,
    # blaming the backend. The call deadline below fails that without timing anything.
    slow = pb.ToolDefinition(name="slow_client", description="Takes a while.", timeout_ms=60_000)
    async with running_server(backend=ToolCallingBackend(), backend_timeout_s=30) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            call = pb_grpc.VoiceServiceStub(channel).Converse(timeout=20)
            await call.write(pb.ConverseRequest(config=pb.SessionConfig(client_tools=[slow])))
            await call.read()
            await call.write(text("call slow_client {}"))
            await _read_until(call, "tool_call")
            await call.done_writing()
            seen = await _read_until(call, "turn_complete")
            outcome = next(r.tool_call_result for r in seen if r.HasField("tool_call_result"))
            assert outcome.status == pb.TOOL_STATUS_CANCELLED
            assert "ended its input" in json.loads(outcome.result_json)["error"]["message"]
            assert await call.read() == grpc.aio.EOF
            assert await call.code() == grpc.StatusCode.OK
        assert not server.runtime.conversations


async def test_a_client_running_its_tool_longer_than_the_idle_timeout_is_not_idle() -> None:
    # Found by the red-team session (s36): a text-only client whose tool (a confirmation
    # dialog, say) took longer than --idle-timeout-seconds was cut with IDLE_TIMEOUT while the
    # server waited on it. The idle clock now stops while a client call is open.
    confirm = pb.ToolDefinition(name="confirm", description="Asks the user.", timeout_ms=30_000)
    async with running_server(backend=ToolCallingBackend(), idle_timeout_s=0.5) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            call = pb_grpc.VoiceServiceStub(channel).Converse(timeout=20)
            await call.write(pb.ConverseRequest(config=pb.SessionConfig(client_tools=[confirm])))
            await call.read()
            await call.write(text("call confirm {}"))
            seen = await _read_until(call, "tool_call")
            await asyncio.sleep(2.0)  # the user takes four idle timeouts to click OK
            result = pb.ToolResult(tool_call_id=seen[-1].tool_call.id, content='{"ok": true}')
            await call.write(pb.ConverseRequest(tool_result=result))
            seen = await _read_until(call, "turn_complete")
            outcome = next(r.tool_call_result for r in seen if r.HasField("tool_call_result"))
            assert outcome.status == pb.TOOL_STATUS_OK
            # Silence after the call counts again: the idle timeout still ends the stream.
            with pytest.raises(grpc.aio.AioRpcError) as ended:
                while await call.read() is not grpc.aio.EOF:
                    pass
            assert ended.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            assert error_reason(ended.value) == "IDLE_TIMEOUT"
        assert not server.runtime.conversations
