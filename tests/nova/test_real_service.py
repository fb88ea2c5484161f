"""Issue 15: failure modes of the real Nova Sonic service, reproduced by the local endpoint
(real SDK, real HTTP/2 + event-stream): tool results after a barge-in, double-encoded tool
arguments, transient errors on the first stream and mid-call, non-object tool results."""

from __future__ import annotations

import json

from sonicwire.server.backends.nova_sonic import codec
from sonicwire.server.backends.nova_sonic.decoder import OutputDecoder, tool_arguments
from sonicwire.server.core import events as ev
from sonicwire.server.testing.fake_bedrock import FakeBedrock
from sonicwire.server.testing.fake_scenario import (
    Scenario,
    StreamPlan,
    answer_each_utterance,
    barge_in_during_tool_call,
    system_instability,
    throttled_mid_call,
)
from sonicwire.server.testing.fake_stream import FakeStream
from tests.nova.conftest import assert_no_leaked_tasks, open_session, send_frames


async def test_barge_in_during_a_tool_call_still_answers_the_tool_use() -> None:
    async with FakeBedrock(barge_in_during_tool_call()) as fake:
        backend, session, got = await open_session(fake)
        await send_frames(session, 0, 5)
        (call,) = await got.wait_for(ev.ToolRequested)
        await session.send(ev.CancelResponse("", 0))  # our server decided a barge-in
        cancelled = json.dumps({"error": {"type": "cancelled", "message": "interrupted"}})
        await session.send(
            ev.SendToolResult(call.call_id, call.name, cancelled, ev.ToolStatus.CANCELLED)
        )
        stream = fake.streams[0]

        def results() -> list[object]:
            bodies = (e.get("event", {}).get("toolResult") for e in stream.events)
            return [b.get("content") for b in bodies if isinstance(b, dict)]

        await stream.wait_for(lambda: bool(results()))
        assert results() == [cancelled]
        await session.aclose()
        await backend.aclose()
    await assert_no_leaked_tasks()


async def test_double_encoded_tool_arguments_are_unwrapped() -> None:
    async def script(stream: FakeStream) -> None:
        await stream.wait_audio(60)
        await stream.tool_use("get_date_time", {"timezone": "UTC"}, "tool-1", double_encoded=True)

    async with FakeBedrock(script) as fake:
        backend, session, got = await open_session(fake)
        await send_frames(session, 0, 5)
        (call,) = await got.wait_for(ev.ToolRequested)
        assert json.loads(call.arguments_json) == {"timezone": "UTC"}
        await session.aclose()
        await backend.aclose()
    await assert_no_leaked_tasks()


async def test_system_instability_on_the_first_stream_is_retried() -> None:
    scenario = Scenario.sequence(system_instability(http=True), StreamPlan())
    async with FakeBedrock(scenario) as fake:
        backend, session, _got = await open_session(fake)
        assert fake.refused == [(0, 400)]
        assert session.streams_opened == 1
        await session.aclose()
        await backend.aclose()
    await assert_no_leaked_tasks()


async def test_system_instability_inside_the_first_stream_reconnects() -> None:
    scenario = Scenario.sequence(system_instability(), answer_each_utterance(after_audio_ms=40))
    async with FakeBedrock(scenario) as fake:
        backend, session, got = await open_session(fake)
        sent = 0
        while not got.of(ev.AssistantTurnEnded):
            sent = await send_frames(session, sent, 1, pace=0.005)
            assert sent < 2000 and not got.of(ev.BackendFailed)
        assert len(fake.streams) == 2
        await session.aclose()
        await backend.aclose()
    await assert_no_leaked_tasks()


async def test_throttling_mid_call_reconnects_with_backoff() -> None:
    async def answer(stream: FakeStream) -> None:
        await stream.wait_audio(40)
        await stream.reply("hello", "Hi.", audio_ms=100)

    scenario = Scenario.sequence(throttled_mid_call(audio_ms=40), answer)
    async with FakeBedrock(scenario) as fake:
        backend, session, got = await open_session(fake)
        sent = 0
        while not got.of(ev.AssistantTurnEnded):
            sent = await send_frames(session, sent, 1, pace=0.005)
            assert sent < 2000 and not got.of(ev.BackendFailed)
        assert len(fake.streams) == 2
        await session.aclose()
        await backend.aclose()
    await assert_no_leaked_tasks()


def test_tool_results_that_are_not_objects_are_wrapped() -> None:
    assert codec.tool_result_object('{"a":1}') == '{"a":1}'
    assert json.loads(codec.tool_result_object("[1,2]")) == {"result": [1, 2]}
    assert json.loads(codec.tool_result_object('"noon"')) == {"result": "noon"}
    assert json.loads(codec.tool_result_object("not json")) == {"result": "not json"}
    events = codec.tool_result("p", "c", "t", "42")
    assert json.loads(events[1]["event"]["toolResult"]["content"]) == {"result": 42}


def test_tool_arguments_normalized() -> None:
    assert tool_arguments('{"a":1}') == '{"a":1}'
    assert tool_arguments(json.dumps('{"a":1}')) == '{"a":1}'
    assert json.loads(tool_arguments({"a": 1})) == {"a": 1}
    assert tool_arguments("oops") == "oops"


def test_typed_turn_after_a_local_barge_in_lets_the_answer_through() -> None:
    decoder = OutputDecoder(16_000)
    start = {"event": {"contentStart": {"type": "TEXT", "role": "ASSISTANT", "contentId": "a"}}}
    decoder.decode(start)
    assert decoder.cancel_response() == [ev.AssistantTurnEnded(ev.StopReason.INTERRUPTED)]
    text = {"event": {"textOutput": {"content": "Sure.", "role": "ASSISTANT", "contentId": "a"}}}
    assert decoder.decode(text) == []  # leftovers of the cut answer
    decoder.user_turn_sent()
    assert decoder.decode(text) == [ev.AssistantText("Sure.", True)]


def test_history_replay_is_capped_at_40_messages() -> None:
    from sonicwire.server.core.history import Message

    roles = (ev.Role.USER, ev.Role.ASSISTANT)
    messages = [Message(roles[i % 2], f"m{i}") for i in range(100)]
    kept = codec._replayable(messages)
    assert len(kept) == codec.MAX_HISTORY_MESSAGES == 40
    assert kept[0] == Message(ev.Role.USER, "m60") and kept[-1].text == "m99"
