"""Server tools that keep running through a barge-in (Nova 2 asynchronous tools; pipecat's
``cancel_on_interruption=False``), end to end: gRPC client -> Sonicwire server on loopback
(the tools loaded as a ``--tools`` plugin) -> nova-sonic backend -> real SDK -> local Bedrock
endpoint. A tool declared ``continue_on_interruption`` finishes after the user barged in and
Nova gets its real result, which it answers in a new turn; any other server tool is cancelled
(its handler too) and Nova gets a CANCELLED result for its toolUse. The offline engine
(``--backend local``) does the same: the surviving result is spoken as a turn of its own."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import grpc
import pytest

from sonicwire.server.backends.nova_sonic.backend import NovaSonicBackend
from sonicwire.server.testing.fake_bedrock import FakeBedrock
from sonicwire.server.testing.fake_scenario import Scenario
from sonicwire.server.testing.fake_stream import FakeStream
from sonicwire.server.testing.server import running_server
from sonicwire.v1 import voice_service_pb2 as pb
from sonicwire.v1 import voice_service_pb2_grpc as pb_grpc

from . import nova_async_tools
from .test_nova_e2e import RAW_AUDIO, read_until
from .test_nova_features import tool_results

PLUGIN = "tests.server.nova_async_tools:TOOLS"


def order_lookup(tool: str) -> Callable[[FakeStream], Awaitable[None]]:
    async def script(stream: FakeStream) -> None:
        """Nova 2: a long spoken preamble, then the tool call; the answer to the result
        comes whenever the result does (after the barge-in if the call survived it)."""
        await stream.wait_audio(100, timeout=3600)
        await stream.user_transcript("where is my order")
        await stream.text("ASSISTANT", "SPECULATIVE", "Let me check.", "PARTIAL_TURN")
        await stream.audio_block(
            bytes(24_000 * 2 * 3), sample_rate=24_000, stop_reason="PARTIAL_TURN"
        )
        await stream.tool_use(tool, {"order_id": "A1"}, "tool-1")
        result = json.loads(await stream.wait_tool_result("tool-1", timeout=3600))
        if "status" in result:
            await stream.speak([f"Your order is {result['status']}."], audio_ms=100)

    return script


@asynccontextmanager
async def server_with_plugin(
    tool: str,
) -> AsyncIterator[tuple[FakeBedrock, pb_grpc.VoiceServiceStub]]:
    nova_async_tools.reset()
    async with FakeBedrock(Scenario.each_stream(order_lookup(tool))) as fake:
        backend = NovaSonicBackend.from_options(retry_backoff_s="0.01", **fake.backend_options())
        async with running_server(backend=backend, tools=(PLUGIN,)) as server:
            async with grpc.aio.insecure_channel(server.target) as channel:
                yield fake, pb_grpc.VoiceServiceStub(channel)
        await fake.wait_for_disconnect()


async def talk_over_the_answer(call: object, speech_16k: bytes) -> None:
    for i in range(0, len(speech_16k) - 639, 640):
        await call.write(pb.ConverseRequest(audio=pb.AudioInput(audio=speech_16k[i : i + 640])))  # type: ignore[attr-defined]
        await asyncio.sleep(0.002)


@pytest.mark.parametrize(
    ("tool", "survives"),
    [("track_order_async", True), ("track_order_sync", False)],
    ids=["continue_on_interruption", "default-cancel"],
)
async def test_a_server_tool_can_keep_running_through_a_barge_in(
    speech_16k: bytes, tool: str, survives: bool
) -> None:
    async with server_with_plugin(tool) as (fake, stub):
        call = stub.Converse()
        await call.write(pb.ConverseRequest(config=RAW_AUDIO))
        seen: list[pb.ConverseResponse] = []
        await read_until(call, "session_started", seen)
        assert {"track_order_async", "track_order_sync"} <= set(seen[0].session_started.tools)
        for _ in range(10):
            await call.write(pb.ConverseRequest(audio=pb.AudioInput(audio=bytes(640))))
        await read_until(call, "tool_call", seen)
        assert seen[-1].tool_call.executor == pb.TOOL_EXECUTOR_SERVER
        assert seen[-1].tool_call.name == tool
        await talk_over_the_answer(call, speech_16k)
        await read_until(call, "interruption", seen)
        assert seen[-1].interruption.source == pb.INTERRUPTION_SOURCE_BARGE_IN
        stream = fake.streams[0]
        if survives:
            # Still running after the barge-in: the result is Nova's to answer.
            assert nova_async_tools.outcomes == []
            nova_async_tools.gate["open"] = True
            await read_until(call, "tool_call_result", seen)
            assert seen[-1].tool_call_result.status == pb.TOOL_STATUS_OK
            await read_until(call, "turn_complete", seen)
            said = [r.transcript.text for r in seen if r.HasField("transcript")]
            assert "Your order is shipped." in said
            assert seen[-1].turn_complete.stop_reason == pb.STOP_REASON_END_TURN
            assert json.loads(tool_results(stream)[0])["status"] == "shipped"
            assert nova_async_tools.outcomes == [(tool, "finished")]
        else:
            await read_until(call, "tool_call_result", seen)
            assert seen[-1].tool_call_result.status == pb.TOOL_STATUS_CANCELLED
            await stream.wait_for(lambda: bool(tool_results(stream)))
            assert "error" in json.loads(tool_results(stream)[0])
            await asyncio.sleep(0)
            assert nova_async_tools.outcomes == [(tool, "cancelled")]
        # Exactly one toolResult for the one toolUse, either way.
        assert len(tool_results(stream)) == 1
        call.cancel()


async def test_the_local_engine_answers_a_result_that_outlived_its_turn() -> None:
    """The same tool on the offline engine: a typed turn interrupts the answer while the call
    runs; the call survives, and its result is spoken as a turn of its own."""
    nova_async_tools.reset()
    async with running_server(backend="local", tools=(PLUGIN,)) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            call = pb_grpc.VoiceServiceStub(channel).Converse()
            await call.write(pb.ConverseRequest(config=RAW_AUDIO))
            seen: list[pb.ConverseResponse] = []
            await read_until(call, "session_started", seen)
            await call.write(pb.ConverseRequest(text=pb.TextInput(text="check my delivery status")))
            await read_until(call, "tool_call", seen)
            assert seen[-1].tool_call.name == "track_order_async"
            await call.write(pb.ConverseRequest(text=pb.TextInput(text="hello")))
            await read_until(call, "interruption", seen)
            assert seen[-1].interruption.source == pb.INTERRUPTION_SOURCE_TEXT_INPUT
            # The cut turn ends (INTERRUPTED), then "hello" is answered while the call runs.
            while True:
                await read_until(call, "turn_complete", seen)
                if seen[-1].turn_complete.stop_reason == pb.STOP_REASON_END_TURN:
                    break
            assert assistant_said(seen)[-1] == "Hello! How can I help?"
            assert nova_async_tools.outcomes == []  # still running
            nova_async_tools.gate["open"] = True
            await read_until(call, "tool_call_result", seen)
            assert seen[-1].tool_call_result.status == pb.TOOL_STATUS_OK
            await read_until(call, "turn_complete", seen)
            assert seen[-1].turn_complete.stop_reason == pb.STOP_REASON_END_TURN
            assert assistant_said(seen)[-1] == "Your delivery is shipped."
            assert nova_async_tools.outcomes == [("track_order_async", "finished")]
            call.cancel()


def assistant_said(seen: list[pb.ConverseResponse]) -> list[str]:
    return [
        r.transcript.text
        for r in seen
        if r.HasField("transcript") and r.transcript.role == pb.ROLE_ASSISTANT
    ]
