"""Resumable conversations over real gRPC streams: same process (memory store) and two
replicas sharing a real redis-server; tokens, owners, a stream still live elsewhere, a store
that is down."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from sonicwire.server.backends.base import BackendOptions
from sonicwire.server.backends.echo import EchoBackend, EchoSession
from sonicwire.server.core.events import Role
from sonicwire.server.core.history import Message
from sonicwire.server.core.snapshot import (
    ConversationState,
    SnapshotError,
    decode_state,
    encode_state,
)
from sonicwire.server.state_store import MemoryStore, Store, open_store
from sonicwire.server.testing.server import running_server
from sonicwire.v1 import voice_service_pb2 as pb
from sonicwire.v1 import voice_service_pb2_grpc as pb_grpc
from tests.faults.streams import read_until, text

from ..gateway.test_gateway_http import free_port
from .helpers import error_reason
from .redis_server import redis_server, wait_for_redis


class RecordingEcho(EchoBackend):
    """The echo backend, remembering the options of every session it opened."""

    def __init__(self) -> None:
        super().__init__()
        self.opened: list[BackendOptions] = []

    async def open(self, options: BackendOptions) -> EchoSession:
        self.opened.append(options)
        return await super().open(options)


async def one_turn(
    stub: pb_grpc.VoiceServiceStub, config: pb.SessionConfig, say: str
) -> tuple[pb.SessionStarted, list[pb.ConverseResponse]]:
    """Open a stream with ``config``, say ``say``, read the turn, half-close, drain."""
    call = stub.Converse()
    await call.write(pb.ConverseRequest(config=config))
    started = (await call.read()).session_started
    await call.write(text(say))
    seen = await read_until(call, "turn_complete")
    await call.done_writing()
    while await call.read() is not grpc.aio.EOF:
        pass
    return started, seen


def resume(started: pb.SessionStarted) -> pb.SessionConfig:
    return pb.SessionConfig(resume_session_id=started.session_id, resume_token=started.resume_token)


async def test_resume_continues_settings_history_and_turns() -> None:
    backend = RecordingEcho()
    async with running_server(backend=backend) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            stub = pb_grpc.VoiceServiceStub(channel)
            first, seen = await one_turn(
                stub, pb.SessionConfig(system_prompt="Be brief.", voice="echo"), "my name is Ada"
            )
            assert first.resume_token and first.resume_token != first.session_id
            assert seen[-1].turn_complete.turn_id == "t1"

            # A new stream continues it: same id, a fresh token, the settings it started with
            # (the new stream's other fields are ignored), the history given to the backend,
            # and the next turn is t2.
            config = resume(first)
            config.system_prompt = "ignored"
            second, seen = await one_turn(stub, config, "what is my name")
            assert second.session_id == first.session_id
            assert second.resume_token not in ("", first.resume_token)
            assert second.config.system_prompt == "Be brief."
            assert backend.opened[-1].history == (
                Message(Role.USER, "my name is Ada"),
                Message(Role.ASSISTANT, "You said: my name is Ada"),
            )
            assert seen[-1].turn_complete.turn_id == "t2"

            # The old token is spent: each start issues a new one.
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await one_turn(stub, resume(first), "again")
            assert caught.value.code() == grpc.StatusCode.NOT_FOUND
            assert error_reason(caught.value) == "SESSION_NOT_FOUND"
            await one_turn(stub, resume(second), "third")
            assert len(backend.opened[-1].history) == 4


@pytest.mark.parametrize(
    ("config", "code", "reason"),
    [
        (pb.SessionConfig(resume_session_id="sw_nope", resume_token="x"), "NOT_FOUND",
         "SESSION_NOT_FOUND"),
        (pb.SessionConfig(resume_session_id="sw_nope"), "INVALID_ARGUMENT",
         "RESUME_TOKEN_MISSING"),
        (pb.SessionConfig(resume_token="x"), "INVALID_ARGUMENT", "RESUME_TOKEN_MISSING"),
    ],
)  # fmt: skip
async def test_resume_refusals(config: pb.SessionConfig, code: str, reason: str) -> None:
    async with running_server(backend=EchoBackend()) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            call = pb_grpc.VoiceServiceStub(channel).Converse()
            await call.write(pb.ConverseRequest(config=config))
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call.read()
    assert caught.value.code().name == code
    assert error_reason(caught.value) == reason


async def test_wrong_token_and_other_key() -> None:
    async with running_server(backend=EchoBackend(), api_keys=("key-a", "key-b")) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            stub = pb_grpc.VoiceServiceStub(channel)

            async def start(config: pb.SessionConfig, key: str) -> pb.SessionStarted:
                call = stub.Converse(metadata=(("x-api-key", key),))
                await call.write(pb.ConverseRequest(config=config))
                started = (await call.read()).session_started
                call.cancel()
                return started

            first = await start(pb.SessionConfig(), "key-a")
            wrong = resume(first)
            wrong.resume_token = first.resume_token[:-2] + "xx"
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await start(wrong, "key-a")
            assert error_reason(caught.value) == "SESSION_NOT_FOUND"
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await start(resume(first), "key-b")
            assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert error_reason(caught.value) == "SESSION_OWNED_ELSEWHERE"
            again = await start(resume(first), "key-a")
            assert again.session_id == first.session_id


async def test_resuming_a_live_conversation_ends_the_old_stream() -> None:
    async with running_server(backend=EchoBackend()) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            stub = pb_grpc.VoiceServiceStub(channel)
            old = stub.Converse()
            await old.write(pb.ConverseRequest(config=pb.SessionConfig()))
            first = (await old.read()).session_started
            new = stub.Converse()
            await new.write(pb.ConverseRequest(config=resume(first)))
            assert (await new.read()).session_started.session_id == first.session_id
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                while await old.read() is not grpc.aio.EOF:
                    pass
            assert caught.value.code() == grpc.StatusCode.ABORTED
            assert error_reason(caught.value) == "SESSION_RESUMED_ELSEWHERE"
            await new.write(text("still here"))
            seen = await read_until(new, "turn_complete")
            assert any(r.transcript.text == "You said: still here" for r in seen)
            new.cancel()


async def test_resume_on_another_replica_through_redis(tmp_path: Path) -> None:
    with redis_server(tmp_path) as url:
        await wait_for_redis(url)
        backend = RecordingEcho()
        async with (
            running_server(backend=EchoBackend(), state_store=url) as one,
            running_server(backend=backend, state_store=url) as two,
        ):
            async with (
                grpc.aio.insecure_channel(one.target) as a,
                grpc.aio.insecure_channel(two.target) as b,
            ):
                first, _ = await one_turn(pb_grpc.VoiceServiceStub(a), pb.SessionConfig(), "hi")
                second, seen = await one_turn(pb_grpc.VoiceServiceStub(b), resume(first), "again")
    assert second.session_id == first.session_id
    assert [m.text for m in backend.opened[-1].history] == ["hi", "You said: hi"]
    assert seen[-1].turn_complete.turn_id == "t2"


async def test_store_down_conversations_go_on_resume_is_unavailable() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nobody listens
    async with running_server(backend=EchoBackend(), state_store=url) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            stub = pb_grpc.VoiceServiceStub(channel)
            started, seen = await one_turn(stub, pb.SessionConfig(), "hello")
            assert any(r.transcript.text == "You said: hello" for r in seen)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await one_turn(stub, resume(started), "again")
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert error_reason(caught.value) == "RESUME_UNAVAILABLE"


def test_state_round_trips_and_garbage_is_refused() -> None:
    state = ConversationState(
        session_id="sw_1",
        owner="anonymous",
        token_sha256="ab" * 32,
        config=b"\x08\x01",
        history=(Message(Role.USER, "héllo"), Message(Role.ASSISTANT, "hi")),
        turn_count=3,
        user_turn=4,
        saved_at=12.5,
    )
    assert decode_state(encode_state(state)) == state
    for garbage in (b"", b"{}", b'{"v": 99}', b"\xff", b'{"v": 1, "session_id": 1}'):
        with pytest.raises(SnapshotError):
            decode_state(garbage)


async def test_memory_store_expires_and_stays_bounded() -> None:
    now = [0.0]
    store = MemoryStore(max_entries=2, clock=lambda: now[0])
    await store.put("a", b"1", ttl_s=10)
    now[0] = 9.9
    assert await store.get("a") == b"1"
    now[0] = 10.0
    assert await store.get("a") is None
    for key in ("b", "c", "d"):
        await store.put(key, key.encode(), ttl_s=10)
    assert await store.get("b") is None  # the oldest went first
    assert await store.get("d") == b"d"


async def test_the_ended_old_stream_does_not_overwrite_the_resumed_state() -> None:
    """The stream a resume took over ends after the new one saved its state: its final save
    must not put back the old token (the new token would then be refused)."""
    async with running_server(backend=EchoBackend()) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            stub = pb_grpc.VoiceServiceStub(channel)
            old = stub.Converse()
            await old.write(pb.ConverseRequest(config=pb.SessionConfig()))
            first = (await old.read()).session_started
            new = stub.Converse()
            await new.write(pb.ConverseRequest(config=resume(first)))
            second = (await new.read()).session_started
            with pytest.raises(grpc.aio.AioRpcError):
                while await old.read() is not grpc.aio.EOF:
                    pass
            # `new` is still live: resuming it again is a takeover, which needs its token.
            third, _ = await one_turn(stub, resume(second), "after the takeover")
            new.cancel()
    assert third.session_id == first.session_id


@pytest.fixture(params=["memory", "redis"])
async def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """Each store kind: the memory store, and the Redis store on a real redis-server."""
    if request.param == "memory":
        yield MemoryStore()
        return
    with redis_server(tmp_path) as url:
        await wait_for_redis(url)
        store = open_store(url)
        try:
            yield store
        finally:
            await store.aclose()


async def test_saves_are_compare_and_set_on_the_token(any_store: Store) -> None:
    """A save with ``expect`` is written only while the entry carries that tag (or is absent):
    the old stream's save after a resume is refused and changes nothing."""
    assert await any_store.put("sw_c", b"v1", 60, tag="t1", expect="t1")  # absent: created
    assert await any_store.put("sw_c", b"v2", 60, tag="t1", expect="t1")  # still ours
    assert await any_store.put("sw_c", b"v3", 60, tag="t2", expect="t1")  # the resume's claim
    assert not await any_store.put("sw_c", b"old", 60, tag="t1", expect="t1")  # refused
    assert await any_store.get("sw_c") == b"v3"
    assert not await any_store.put("sw_c", b"rival", 60, tag="t3", expect="t1")  # lost the race
    assert await any_store.put("sw_c", b"v4", 60, tag="t2", expect="t2")
    assert await any_store.get("sw_c") == b"v4"
    assert await any_store.put("sw_c", b"any", 60, tag="t9")  # no expectation: unconditional
    assert await any_store.get("sw_c") == b"any"


async def test_an_old_stream_on_another_replica_cannot_overwrite_the_resumed_state(
    tmp_path: Path,
) -> None:
    """Replica one holds a live stream; its conversation is resumed on replica two. The old
    stream's next save (its turn) is refused and ends it with SESSION_RESUMED_ELSEWHERE, its
    final save is refused too, and the new token, with the new stream's history, still
    resumes; the old token does not."""
    with redis_server(tmp_path) as url:
        await wait_for_redis(url)
        backend = RecordingEcho()  # replica one's: the third stream opens there
        async with (
            running_server(backend=backend, state_store=url) as one,
            running_server(backend=EchoBackend(), state_store=url) as two,
            grpc.aio.insecure_channel(one.target) as a,
            grpc.aio.insecure_channel(two.target) as b,
        ):
            old = pb_grpc.VoiceServiceStub(a).Converse()
            await asyncio.wait_for(old.write(pb.ConverseRequest(config=pb.SessionConfig())), 10)
            first = (await asyncio.wait_for(old.read(), 10)).session_started
            await old.write(text("my name is Ada"))
            await asyncio.wait_for(read_until(old, "turn_complete"), 10)

            # Resumed on replica two while the old stream is still live on replica one.
            second, _ = await asyncio.wait_for(
                one_turn(pb_grpc.VoiceServiceStub(b), resume(first), "I moved"), 10
            )
            # The old stream talks on: its turn's save is refused and ends it.
            await old.write(text("stale words"))
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                async with asyncio.timeout(10):
                    while await old.read() is not grpc.aio.EOF:
                        pass
            assert caught.value.code() == grpc.StatusCode.ABORTED
            assert error_reason(caught.value) == "SESSION_RESUMED_ELSEWHERE"

            # The new token resumes with the new stream's history (not the old stream's).
            third, _ = await asyncio.wait_for(
                one_turn(pb_grpc.VoiceServiceStub(a), resume(second), "still me"), 10
            )
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await asyncio.wait_for(
                    one_turn(pb_grpc.VoiceServiceStub(b), resume(first), "x"), 10
                )
    assert third.session_id == first.session_id
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    assert error_reason(refused.value) == "SESSION_NOT_FOUND"
    history = [m.text for m in backend.opened[-1].history]
    assert history == ["my name is Ada", "You said: my name is Ada", "I moved", "You said: I moved"]


async def test_two_resumes_with_one_token_on_two_replicas_one_wins(tmp_path: Path) -> None:
    """Both load the conversation; the store lets only the first claim it."""
    with redis_server(tmp_path) as url:
        await wait_for_redis(url)
        async with (
            running_server(backend=EchoBackend(), state_store=url) as one,
            running_server(backend=EchoBackend(), state_store=url) as two,
            grpc.aio.insecure_channel(one.target) as a,
            grpc.aio.insecure_channel(two.target) as b,
        ):
            first, _ = await one_turn(pb_grpc.VoiceServiceStub(a), pb.SessionConfig(), "hi")
            results = await asyncio.wait_for(
                asyncio.gather(
                    one_turn(pb_grpc.VoiceServiceStub(a), resume(first), "from one"),
                    one_turn(pb_grpc.VoiceServiceStub(b), resume(first), "from two"),
                    return_exceptions=True,
                ),
                20,
            )
    won = [r for r in results if not isinstance(r, BaseException)]
    lost = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(won) == 1 and len(lost) == 1, results
    assert lost[0].code() == grpc.StatusCode.NOT_FOUND
    assert error_reason(lost[0]) == "SESSION_NOT_FOUND"
