"""Cancel and deadline tear the session down; no task outlives its stream."""

from __future__ import annotations

import asyncio
import gc
import weakref

import grpc

from sonicwire.server.backends.echo import EchoBackend
from sonicwire.server.testing.server import running_server
from sonicwire.v1 import voice_service_pb2 as pb
from sonicwire.v1 import voice_service_pb2_grpc as pb_grpc

from .helpers import config_request


async def _endless_audio() -> object:
    yield config_request()
    while True:
        yield pb.ConverseRequest(audio=pb.AudioInput(audio=bytes(640)))
        await asyncio.sleep(0.02)


async def _wait_until(predicate: object, attempts: int = 200) -> bool:
    for _ in range(attempts):
        if predicate():  # type: ignore[operator]
            return True
        await asyncio.sleep(0.02)
    return False


def _server_tasks() -> set[asyncio.Task[object]]:
    return {
        t for t in asyncio.all_tasks() if t.get_name() in {"inputs", "backend", "sender", "ticker"}
    }


async def test_client_cancel_tears_down_session() -> None:
    async with running_server(backend=EchoBackend()) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            stub = pb_grpc.VoiceServiceStub(channel)
            call = stub.Converse(_endless_audio())
            first = await call.read()
            assert first.HasField("session_started")
            assert len(server.runtime.conversations) == 1
            assert _server_tasks()
            call.cancel()
            assert await _wait_until(lambda: not server.runtime.conversations)
            assert await _wait_until(lambda: not _server_tasks())
            assert server.runtime.limiter.active == 0


async def test_deadline_tears_down_session() -> None:
    async with running_server(backend=EchoBackend()) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            stub = pb_grpc.VoiceServiceStub(channel)
            call = stub.Converse(timeout=1.0)
            await call.write(config_request())
            assert (await call.read()).HasField("session_started")
            # Nothing is written after this point, so no write can race the deadline (a racing
            # write can turn the status into INTERNAL on the client, grpc#36066).
            try:
                while await call.read() is not grpc.aio.EOF:
                    pass
                raise AssertionError("the deadline should have ended the call")
            except grpc.aio.AioRpcError as error:
                assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            assert await _wait_until(lambda: not server.runtime.conversations)
            assert await _wait_until(lambda: not _server_tasks())


async def test_half_close_is_not_a_cancel() -> None:
    """Half-closing mid-utterance still gets the utterance answered, then an OK status."""
    async with running_server(backend=EchoBackend()) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            stub = pb_grpc.VoiceServiceStub(channel)
            call = stub.Converse()
            await call.write(config_request())
            await call.write(pb.ConverseRequest(text=pb.TextInput(text="still there?")))
            await call.done_writing()
            responses = [r async for r in call]
            assert await call.code() == grpc.StatusCode.OK
    assert any(r.HasField("turn_complete") for r in responses)


async def test_idle_timeout() -> None:
    from .helpers import error_reason

    async with running_server(backend=EchoBackend(), idle_timeout_s=0.3) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            stub = pb_grpc.VoiceServiceStub(channel)
            call = stub.Converse()
            await call.write(config_request())
            try:
                async for _ in call:
                    pass
                raise AssertionError("the stream should have timed out")
            except grpc.aio.AioRpcError as error:
                assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
                assert error_reason(error) == "IDLE_TIMEOUT"


async def test_half_close_right_after_speech_still_gets_the_answer(speech_16k: bytes) -> None:
    """Audio sent faster than real time, then a half-close mid-utterance (no trailing silence):
    the utterance is cut at the end of input and answered, and the stream ends OK."""
    from .helpers import audio_requests, request_stream

    async with running_server(backend=EchoBackend()) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            stub = pb_grpc.VoiceServiceStub(channel)
            requests = [config_request(), *audio_requests(bytes(6400) + speech_16k, chunk=8000)]
            call = stub.Converse(request_stream(requests))
            responses = [r async for r in call]
            assert await call.code() == grpc.StatusCode.OK
    assert any(r.HasField("turn_complete") for r in responses)
    assert any(r.HasField("audio") for r in responses)


class _SlowWarmUpBackend(EchoBackend):
    """Records its warm-up; the second instance's warm-up never finishes, the third fails."""

    def __init__(self, behaviour: str) -> None:
        super().__init__()
        self.behaviour = behaviour
        self.warmed = asyncio.Event()
        self.cancelled = False

    async def warm_up(self) -> None:
        if self.behaviour == "fail":
            raise RuntimeError("no model here")
        if self.behaviour == "hang":
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled = True
                raise
        self.warmed.set()


async def test_the_backend_warms_up_in_the_background_and_stop_cancels_it() -> None:
    ready = _SlowWarmUpBackend("ok")
    async with running_server(backend=ready) as server:
        await asyncio.wait_for(ready.warmed.wait(), 5)
        assert server.warm_up is not None and server.warm_up.done()
    hanging = _SlowWarmUpBackend("hang")
    async with running_server(backend=hanging) as server:
        # Serving does not wait for the warm-up: a conversation works meanwhile.
        async with grpc.aio.insecure_channel(server.target) as channel:
            call = pb_grpc.VoiceServiceStub(channel).Converse(iter([config_request()]))
            kinds = [r.WhichOneof("response") async for r in call]
            assert kinds[:1] == ["session_started"], kinds
    assert hanging.cancelled
    failing = _SlowWarmUpBackend("fail")
    async with running_server(backend=failing) as server:
        assert server.warm_up is not None
        await asyncio.wait_for(asyncio.shield(server.warm_up), 5)  # logged, not raised


async def test_an_ended_conversation_is_freed_without_the_cyclic_gc() -> None:
    """No reference cycle may hold a conversation's state (front end, buffers, backend
    session): with the cyclic collector off, each ended conversation must be gone at once.
    A cycle through the tool callbacks once made RSS climb ~2 MB/s under load."""
    gc.collect()
    gc.disable()
    try:
        async with running_server(backend=EchoBackend()) as server:
            async with grpc.aio.insecure_channel(server.target) as channel:
                stub = pb_grpc.VoiceServiceStub(channel)
                refs: list[weakref.ref[object]] = []
                for cancel in (False, True):
                    call = stub.Converse()
                    await call.write(config_request())
                    await call.read()  # SessionStarted: the conversation exists
                    (conversation,) = server.runtime.conversations
                    refs.append(weakref.ref(conversation))
                    del conversation
                    await call.write(pb.ConverseRequest(audio=pb.AudioInput(audio=bytes(640))))
                    if cancel:
                        call.cancel()
                    else:
                        await call.done_writing()
                        while await call.read() is not grpc.aio.EOF:
                            pass
                    assert await _wait_until(lambda: not server.runtime.conversations)
                    del call
                await asyncio.sleep(0.1)
                alive = [ref() for ref in refs if ref() is not None]
                assert not alive, [gc.get_referrers(obj) for obj in alive]
    finally:
        gc.enable()


async def test_what_the_server_was_built_with_is_kept_out_of_full_collections() -> None:
    """A full collection walks every object in the collector's generations; what exists when
    the server starts (modules, the backend, the servicer) lives as long as the process, so
    start-up moves it to the permanent generation, and the per-frame work of live streams
    is not held up by a pass over it (sonicwire.server.heap). Objects made afterwards, like a
    stream's state, stay collectable."""
    built_before = [object()]  # a container: tracked by the collector
    try:
        async with running_server(backend=EchoBackend()) as server:
            made_after = [object()]
            tracked = gc.get_objects()
            assert not any(obj is built_before for obj in tracked)
            assert not any(obj is server.runtime for obj in tracked)
            assert any(obj is made_after for obj in tracked)
            assert gc.get_freeze_count() > 1000
    finally:
        gc.unfreeze()
