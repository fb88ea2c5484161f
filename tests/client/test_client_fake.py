"""The async client against a fake stub: no network, fully deterministic."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import grpc
import pytest

from sonicwire.client import (
    AutoResume,
    Client,
    ConversationClosedError,
    DeadlineExceededError,
    HealthStatus,
    InvalidArgumentError,
    ProtocolError,
    ResourceExhaustedError,
    Resumed,
    ResumeFailedError,
    RetryPolicy,
    ServerError,
    SessionStarted,
    TlsOptions,
    ToolCall,
    Transcript,
    UnauthenticatedError,
    UnavailableError,
    Usage,
    session_config,
)
from sonicwire.v1 import voice_service_pb2 as pb

from .fake_stub import (
    CORE_WRITE_ERROR,
    HALF_CLOSED,
    FakeCall,
    FakeStub,
    FakeUnary,
    LateStatus,
    Overwritten,
    Sleeps,
    WaitFor,
    rpc_error,
    started,
    wrote,
)

NO_JITTER = RetryPolicy(max_attempts=3, initial_backoff=0.25, multiplier=2.0, jitter=0)


def client_for(stub: FakeStub, **kwargs: Any) -> tuple[Client, Sleeps]:
    sleeps = Sleeps()
    kwargs.setdefault("retry", NO_JITTER)
    return Client(stub=stub, health_stub=stub, sleep=sleeps, **kwargs), sleeps


def say(text: str, turn: str = "t1") -> pb.ConverseResponse:
    return pb.ConverseResponse(
        transcript=pb.Transcript(role=pb.ROLE_ASSISTANT, text=text, final=True, turn_id=turn)
    )


def tool_call(name: str, call_id: str = "c1", args: str = '{"x": 1}') -> pb.ConverseResponse:
    return pb.ConverseResponse(
        tool_call=pb.ToolCall(
            id=call_id, name=name, arguments_json=args, executor=pb.TOOL_EXECUTOR_CLIENT
        )
    )


async def collect(conversation: Any) -> list[Any]:
    return [event async for event in conversation]


# -- unary calls ------------------------------------------------------------------------------


async def test_unary_calls_send_the_key_and_deadline_and_return_typed_values() -> None:
    stub = FakeStub()
    stub.ListVoices = FakeUnary(
        pb.ListVoicesResponse(voices=[pb.Voice(id="joe", language_code="en-US", default=True)])
    )
    stub.ListTools = FakeUnary(
        pb.ListToolsResponse(tools=[pb.Tool(name="t", parameters_json_schema='{"type":"object"}')])
    )
    client, _ = client_for(stub, api_key="secret", timeout=5.0, metadata=[("x-trace", "1")])
    voices = await client.list_voices("local")
    assert voices[0].id == "joe" and voices[0].default
    request, metadata, timeout = stub.ListVoices.requests[0]
    assert request.backend == "local"
    assert metadata == (("x-trace", "1"), ("x-api-key", "secret"))
    assert 0 < timeout <= 5.0
    tools = await client.list_tools()
    assert tools[0].parameters == {"type": "object"}


async def test_health_maps_the_status() -> None:
    stub = FakeStub()
    stub.Check = FakeUnary(type("R", (), {"status": 2})())
    client, _ = client_for(stub)
    assert await client.health("sonicwire.v1.VoiceService") is HealthStatus.NOT_SERVING
    assert stub.Check.requests[0][0].service == "sonicwire.v1.VoiceService"


async def test_unary_retries_unavailable_with_backoff_then_succeeds() -> None:
    stub = FakeStub()
    unavailable = rpc_error(grpc.StatusCode.UNAVAILABLE, message="connection refused")
    stub.ListTools = FakeUnary(unavailable, unavailable, pb.ListToolsResponse())
    client, sleeps = client_for(stub)
    assert await client.list_tools() == []
    assert len(stub.ListTools.requests) == 3
    assert sleeps.delays == [0.25, 0.5]


async def test_unary_gives_up_after_max_attempts() -> None:
    stub = FakeStub()
    stub.ListTools = FakeUnary(rpc_error(grpc.StatusCode.UNAVAILABLE))
    client, sleeps = client_for(stub)
    with pytest.raises(UnavailableError):
        await client.list_tools()
    assert len(stub.ListTools.requests) == 3 and len(sleeps.delays) == 2


async def test_other_errors_are_not_retried() -> None:
    stub = FakeStub()
    stub.ListVoices = FakeUnary(
        rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "UNKNOWN_BACKEND", "no backend 'x'")
    )
    client, sleeps = client_for(stub)
    with pytest.raises(InvalidArgumentError) as info:
        await client.list_voices("x")
    assert info.value.reason == "UNKNOWN_BACKEND"
    assert len(stub.ListVoices.requests) == 1 and sleeps.delays == []


async def test_retry_policy_none_disables_retries() -> None:
    stub = FakeStub()
    stub.ListTools = FakeUnary(rpc_error(grpc.StatusCode.UNAVAILABLE))
    client, _ = client_for(stub, retry=RetryPolicy.none())
    with pytest.raises(UnavailableError):
        await client.list_tools()
    assert len(stub.ListTools.requests) == 1


def test_retry_policy_backoff_is_capped_and_jittered_within_bounds() -> None:
    policy = RetryPolicy(initial_backoff=1.0, max_backoff=3.0, multiplier=2.0, jitter=0.2)
    assert all(0.8 <= policy.delay(1) <= 1.2 for _ in range(50))
    assert all(2.4 <= policy.delay(5) <= 3.6 for _ in range(50))
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


def test_tls_and_insecure_defaults() -> None:
    assert Client("127.0.0.1:50051").insecure
    assert Client("localhost:1").insecure and Client("[::1]:1").insecure
    assert Client("unix:/tmp/s.sock").insecure
    assert not Client("voice.example.com:443").insecure
    assert Client("voice.example.com:443", insecure=True).insecure
    with pytest.raises(ValueError):
        Client("x:1", insecure=True, tls=TlsOptions())
    with pytest.raises(ValueError, match="both"):
        TlsOptions(certificate_chain=b"cert")


# -- conversations ----------------------------------------------------------------------------


async def test_conversation_sends_config_first_and_yields_typed_events() -> None:
    call = FakeCall([started(), wrote("text"), say("hello"), HALF_CLOSED])
    stub = FakeStub(call)
    client, _ = client_for(stub, api_key="k")
    config = session_config(voice="joe")
    async with client.converse(config) as conversation:
        assert conversation.session_id == "s-1"
        await conversation.send_text("hi")
        await conversation.end_input()
        events = await collect(conversation)
    assert isinstance(events[0], SessionStarted)
    assert events[1] == Transcript(role=events[1].role, text="hello", final=True, turn_id="t1")
    assert [w.WhichOneof("request") for w in call.writes] == ["config", "text"]
    assert call.writes[0].config.voice == "joe"
    assert stub.converse_requests[0][0] == (("x-api-key", "k"),)
    assert stub.converse_requests[0][1] is None  # no deadline on the stream by default


async def test_all_sends_map_to_their_messages() -> None:
    call = FakeCall([started(), WaitFor(lambda c: len(c.writes) >= 5)])
    async with client_for(FakeStub(call))[0].converse() as conversation:
        await conversation.send_audio(b"\x00\x00" * 160)
        await conversation.report_playback("t1", 240)
        await conversation.send_tool_result("c9", '{"ok": true}', is_error=True)
        await conversation.send_text("typed")
        assert await conversation.receive() is conversation.session
        assert await conversation.receive() is None
    kinds = [w.WhichOneof("request") for w in call.writes]
    assert kinds == ["config", "audio", "playback", "tool_result", "text"]
    assert call.writes[2].playback.played_ms == 240
    assert call.writes[3].tool_result.is_error


async def test_connect_retries_unavailable_before_session_started() -> None:
    first = FakeCall([rpc_error(grpc.StatusCode.UNAVAILABLE, "SERVER_DRAINING", "draining")])
    second = FakeCall([started("s-2")])
    stub = FakeStub(first, second)
    client, sleeps = client_for(stub)
    async with client.converse() as conversation:
        assert conversation.session_id == "s-2"
        assert conversation.attempts == 2
    assert sleeps.delays == [0.25]
    assert second.writes[0].WhichOneof("request") == "config"


async def test_unavailable_mid_stream_ends_it_when_auto_resume_is_off() -> None:
    call = FakeCall(
        [
            started(),
            say("partial"),
            rpc_error(grpc.StatusCode.UNAVAILABLE, "BACKEND_UNAVAILABLE", "nova down"),
        ]
    )
    stub = FakeStub(call, FakeCall([started("never")]))
    client, sleeps = client_for(stub, auto_resume=AutoResume.off())
    seen: list[Any] = []
    with pytest.raises(UnavailableError) as info:
        async with client.converse() as conversation:
            async for event in conversation:
                seen.append(event)
    assert info.value.reason == "BACKEND_UNAVAILABLE"
    assert len(seen) == 2 and len(stub.converse_requests) == 1 and sleeps.delays == []


def started_with(session_id: str, token: str) -> pb.ConverseResponse:
    response = started(session_id)
    response.session_started.resume_token = token
    return response


async def test_unavailable_mid_stream_resumes_and_resends_the_audio() -> None:
    first = FakeCall(
        [
            started_with("s-1", "tok-1"),
            wrote("audio", 3),
            rpc_error(grpc.StatusCode.UNAVAILABLE, "SERVER_DRAINING", "gone"),
        ]
    )
    refused = FakeCall([rpc_error(grpc.StatusCode.UNAVAILABLE, "SERVER_DRAINING", "draining")])
    masked = FakeCall([CORE_WRITE_ERROR])  # a refusal grpc.aio overwrote (grpc/grpc#36066)
    second = FakeCall([started_with("s-1", "tok-2"), wrote("audio", 3), say("answer", "t2")])
    stub = FakeStub(first, refused, masked, second)
    client, sleeps = client_for(stub, auto_resume=AutoResume(retry=NO_JITTER))
    async with client.converse() as conversation:
        for chunk in (b"\x01\x00" * 160, b"\x02\x00" * 160, b"\x03\x00" * 160):
            await conversation.send_audio(chunk)  # 10 ms each: within the 1 s lookback
        events = await collect(conversation)
    resumed = [e for e in events if isinstance(e, Resumed)]
    assert len(resumed) == 1
    assert resumed[0].session_id == "s-1" and resumed[0].attempt == 3
    assert resumed[0].reason == "SERVER_DRAINING"
    assert (resumed[0].audio_resent_ms, resumed[0].audio_lost_ms) == (30, 0)
    assert conversation.session.resume_token == "tok-2" and conversation.resumes == 1
    assert sleeps.delays == [0.25, 0.5]
    config = second.writes[0].config
    assert (config.resume_session_id, config.resume_token) == ("s-1", "tok-1")
    resent = [w.audio[:2] for w in second.written("audio")]
    assert resent == [b"\x01\x00", b"\x02\x00", b"\x03\x00"]
    assert isinstance(events[-1], Transcript) and events[-1].text == "answer"


async def test_a_refused_resume_is_a_typed_error() -> None:
    first = FakeCall(
        [started_with("s-1", "tok-1"), rpc_error(grpc.StatusCode.UNAVAILABLE, "", "reset")]
    )
    refused = FakeCall([rpc_error(grpc.StatusCode.NOT_FOUND, "SESSION_NOT_FOUND", "expired")])
    client, sleeps = client_for(FakeStub(first, refused), auto_resume=AutoResume(retry=NO_JITTER))
    async with client.converse() as conversation:
        with pytest.raises(ResumeFailedError) as info:
            await collect(conversation)
        # The conversation is over: sends say why.
        with pytest.raises(ResumeFailedError):
            await conversation.send_audio(b"\x00\x00")
    error = info.value
    assert error.code == grpc.StatusCode.NOT_FOUND and error.reason == "SESSION_NOT_FOUND"
    assert error.session_id == "s-1" and error.attempts == 1 and sleeps.delays == []
    assert isinstance(error.interrupted_by, UnavailableError)


async def test_a_resume_that_starts_another_conversation_is_refused() -> None:
    first = FakeCall(
        [started_with("s-1", "tok-1"), rpc_error(grpc.StatusCode.UNAVAILABLE, "", "reset")]
    )
    client, _ = client_for(
        FakeStub(first, FakeCall([started_with("s-9", "x")])),
        auto_resume=AutoResume(retry=NO_JITTER),
    )
    with pytest.raises(ResumeFailedError) as info:
        async with client.converse() as conversation:
            await collect(conversation)
    assert isinstance(info.value.refusal, ProtocolError)


async def test_going_away_moves_at_the_next_safe_point() -> None:
    # GoingAway while the user's turn is outstanding: the old stream keeps the input until
    # the turn is answered, then it is half-closed and read to its end, then the move.
    first = FakeCall(
        [
            started_with("s-1", "tok-1"),
            pb.ConverseResponse(going_away=pb.GoingAway(reason="draining", grace_ms=5000)),
            wrote("text"),
            say("answer"),
            pb.ConverseResponse(turn_complete=pb.TurnComplete(turn_id="t1")),
            HALF_CLOSED,
            pb.ConverseResponse(usage=pb.Usage(total_tokens=7)),
        ]
    )
    second = FakeCall([started_with("s-1", "tok-2"), wrote("text"), say("again", "t2")])
    stub = FakeStub(first, second)
    client, _ = client_for(stub, auto_resume=AutoResume(retry=NO_JITTER))
    async with client.converse() as conversation:
        kinds = []
        async for event in conversation:
            kinds.append(type(event).__name__)
            if kinds[-1] == "GoingAway":
                await conversation.send_text("question")
            if kinds[-1] == "Resumed":
                await conversation.send_text("follow-up")
    assert kinds == ["SessionStarted", "GoingAway", "Transcript", "TurnComplete", "Usage",
                     "Resumed", "Transcript"]  # fmt: skip
    assert [w.text for w in first.written("text")] == ["question"]
    assert [w.text for w in second.written("text")] == ["follow-up"]


@pytest.mark.parametrize("when", ["before", "on GoingAway"])
async def test_stop_auto_resume_leaves_going_away_to_the_application(when: str) -> None:
    # `sonicwire up` on SIGTERM: every replica drains, so nothing moves; GoingAway is the
    # application's, and the drain's status ends the conversation (no second stream opened).
    first = FakeCall(
        [
            started_with("s-1", "tok-1"),
            pb.ConverseResponse(going_away=pb.GoingAway(reason="draining", grace_ms=1000)),
            say("answer"),
            pb.ConverseResponse(turn_complete=pb.TurnComplete(turn_id="t1")),
            rpc_error(grpc.StatusCode.UNAVAILABLE, "SERVER_DRAINING", "draining"),
        ]
    )
    stub = FakeStub(first, FakeCall([started_with("s-1", "tok-2")]))
    client, sleeps = client_for(stub, auto_resume=AutoResume(retry=NO_JITTER))
    kinds: list[str] = []
    with pytest.raises(UnavailableError) as info:
        async with client.converse() as conversation:
            if when == "before":
                conversation.stop_auto_resume()
            async for event in conversation:
                kinds.append(type(event).__name__)
                if kinds[-1] == "GoingAway" and when != "before":
                    conversation.stop_auto_resume()
    assert kinds == ["SessionStarted", "GoingAway", "Transcript", "TurnComplete"]
    assert info.value.reason == "SERVER_DRAINING"
    assert len(stub.converse_requests) == 1 and sleeps.delays == []
    assert not first.half_closed  # the old stream was not wound down for a move


async def test_config_rejected_raises_typed_error_from_enter() -> None:
    call = FakeCall(
        [rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "AUDIO_FORMAT_UNSUPPORTED", "bad rate")]
    )
    client, sleeps = client_for(FakeStub(call))
    with pytest.raises(InvalidArgumentError) as info:
        async with client.converse():
            pytest.fail("must not enter")
    assert info.value.reason == "AUDIO_FORMAT_UNSUPPORTED" and sleeps.delays == []


async def test_first_message_must_be_session_started() -> None:
    call = FakeCall([say("too early")])
    client, _ = client_for(FakeStub(call))
    with pytest.raises(ProtocolError, match="got transcript"):
        async with client.converse():
            pass
    assert call.cancelled


async def test_stream_ending_before_session_started_is_a_protocol_error() -> None:
    client, _ = client_for(FakeStub(FakeCall([])))
    with pytest.raises(ProtocolError, match="before SessionStarted"):
        async with client.converse():
            pass


async def test_no_session_started_within_the_timeout() -> None:
    never = FakeCall([WaitFor(lambda c: False)])
    client, _ = client_for(FakeStub(never), timeout=0.05)
    with pytest.raises(DeadlineExceededError, match=r"no SessionStarted within 0\.05s"):
        async with client.converse():
            pass
    assert never.cancelled


async def test_sends_after_end_input_are_refused_and_end_input_is_idempotent() -> None:
    call = FakeCall([started(), HALF_CLOSED])
    async with client_for(FakeStub(call))[0].converse() as conversation:
        await conversation.end_input()
        await conversation.end_input()
        with pytest.raises(ConversationClosedError, match="end_input"):
            await conversation.send_audio(b"\x00\x00")
        await collect(conversation)
    assert call.done_writing_calls == 1


async def test_a_send_after_the_server_failed_raises_the_servers_error() -> None:
    call = FakeCall(
        [
            started(),
            rpc_error(grpc.StatusCode.RESOURCE_EXHAUSTED, "SESSION_LIMIT_REACHED", "too long"),
        ]
    )
    async with client_for(FakeStub(call))[0].converse() as conversation:
        with pytest.raises(ResourceExhaustedError):
            await collect(conversation)
        with pytest.raises(ResourceExhaustedError) as info:
            await conversation.send_text("still there?")
    assert info.value.reason == "SESSION_LIMIT_REACHED"


async def test_a_send_after_a_clean_end_raises_conversation_closed() -> None:
    call = FakeCall([started()])
    async with client_for(FakeStub(call))[0].converse() as conversation:
        await collect(conversation)
        with pytest.raises(ConversationClosedError, match="already ended"):
            await conversation.send_text("hello?")


async def test_leaving_the_block_cancels_an_open_stream() -> None:
    call = FakeCall([started(), WaitFor(lambda c: False)])
    async with client_for(FakeStub(call))[0].converse() as conversation:
        await conversation.receive()
    assert call.cancelled and conversation.done
    assert await conversation.receive() is None


async def test_aclose_from_another_task_ends_the_iteration_quietly() -> None:
    call = FakeCall([started(), WaitFor(lambda c: False)])
    async with client_for(FakeStub(call))[0].converse() as conversation:
        reader = asyncio.create_task(collect(conversation))
        await asyncio.sleep(0)
        await conversation.aclose()
        events = await asyncio.wait_for(reader, 5)
    assert len(events) == 1


async def test_unknown_message_kinds_are_skipped() -> None:
    call = FakeCall([started(), pb.ConverseResponse(), say("after")])
    async with client_for(FakeStub(call))[0].converse() as conversation:
        events = await collect(conversation)
    assert [type(e).__name__ for e in events] == ["SessionStarted", "Transcript"]


async def test_client_tools_are_declared_and_answered_automatically() -> None:
    calls: list[dict[str, Any]] = []

    async def lookup(args: dict[str, Any]) -> dict[str, Any]:
        calls.append(args)
        return {"status": "shipped"}

    def explode(args: dict[str, Any]) -> None:
        raise RuntimeError("db down")

    call = FakeCall(
        [
            started(tools=["lookup", "explode"]),
            tool_call("lookup", "c1"),
            tool_call("explode", "c2"),
            tool_call("manual", "c3"),  # declared by hand: not answered automatically
            wrote("tool_result", 2),
            pb.ConverseResponse(usage=pb.Usage(total_tokens=1)),
        ]
    )
    config = session_config()
    config.client_tools.add(name="manual")
    client, _ = client_for(FakeStub(call))
    async with client.converse(
        config, tools={"lookup": lookup, "explode": explode}
    ) as conversation:
        events = await collect(conversation)
    declared = [d.name for d in call.writes[0].config.client_tools]
    assert declared == ["manual", "lookup", "explode"]
    assert calls == [{"x": 1}]
    results = {r.tool_call_id: r for r in call.written("tool_result")}
    assert set(results) == {"c1", "c2"}
    assert json.loads(results["c1"].content) == {"status": "shipped"} and not results["c1"].is_error
    assert results["c2"].is_error and "db down" in results["c2"].content
    assert sum(isinstance(e, ToolCall) for e in events) == 3
    assert isinstance(events[-1], Usage)


async def test_end_input_waits_for_running_tool_handlers() -> None:
    release = asyncio.Event()

    async def slow(args: dict[str, Any]) -> str:
        await release.wait()
        return "done"

    call = FakeCall([started(), tool_call("slow"), HALF_CLOSED])
    async with client_for(FakeStub(call))[0].converse(tools={"slow": slow}) as conversation:
        assert isinstance(await conversation.receive(), SessionStarted)
        assert isinstance(await conversation.receive(), ToolCall)
        closing = asyncio.create_task(conversation.end_input())
        await asyncio.sleep(0)
        assert not call.half_closed
        release.set()
        await asyncio.wait_for(closing, 5)
        await collect(conversation)
    assert [w.WhichOneof("request") for w in call.writes] == ["config", "tool_result"]
    assert call.half_closed


async def test_session_before_start_is_an_error() -> None:
    conversation = client_for(FakeStub())[0].converse()
    with pytest.raises(RuntimeError, match="async with"):
        _ = conversation.session
    with pytest.raises(RuntimeError):
        await conversation.send_text("x")


async def test_the_servers_status_survives_grpcs_internal_overwrite() -> None:
    # grpc/grpc#36066: a write failing as the server ends the stream turns its status into
    # INTERNAL "Internal error from Core"; the client reports the server's own status.
    real = rpc_error(grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED", "bad key")
    client, _ = client_for(FakeStub(FakeCall([Overwritten(real)])))
    with pytest.raises(UnauthenticatedError) as info:
        async with client.converse():
            pass
    assert info.value.reason == "UNAUTHENTICATED"

    midway = rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "AUDIO_CHUNK_TOO_LARGE", "too big")
    call = FakeCall([started(), Overwritten(midway)])
    async with client_for(FakeStub(call))[0].converse() as conversation:
        with pytest.raises(InvalidArgumentError) as too_big:
            await collect(conversation)
        with pytest.raises(InvalidArgumentError):
            await conversation.send_audio(b"\x00\x00")
    assert too_big.value.reason == "AUDIO_CHUNK_TOO_LARGE"


async def test_the_servers_status_survives_grpcs_internal_coming_first() -> None:
    # grpc/grpc#36066, the rarer order (about 1 early rejection in 5,000 on loopback): the
    # INTERNAL is the first status and the server's follows a few loop turns later, unannounced.
    real = rpc_error(grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED", "bad key")
    client, _ = client_for(FakeStub(FakeCall([LateStatus(real)])))
    with pytest.raises(UnauthenticatedError) as info:
        async with client.converse():
            pass
    assert info.value.reason == "UNAUTHENTICATED"

    midway = rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "AUDIO_CHUNK_TOO_LARGE", "too big")
    call = FakeCall([started(), LateStatus(midway)])
    async with client_for(FakeStub(call))[0].converse() as conversation:
        with pytest.raises(InvalidArgumentError) as too_big:
            await collect(conversation)
    assert too_big.value.reason == "AUDIO_CHUNK_TOO_LARGE"


async def test_an_internal_no_server_status_follows_stays_internal() -> None:
    # Core itself refused the write: no server status comes; after a bounded wait the
    # INTERNAL is what the caller gets, not a hang.
    client, _ = client_for(FakeStub(FakeCall([CORE_WRITE_ERROR])))
    with pytest.raises(ServerError) as info:
        async with client.converse():
            pass
    assert info.value.code == grpc.StatusCode.INTERNAL
