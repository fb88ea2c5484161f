"""A drain that begins while a stream is being set up (its config read, the backend opening).

Before (found by the red-team session, s23): the drain saw no live conversation, stopped the
server after 1 s, and the stream started meanwhile (SessionStarted on a draining server, no
GoingAway) was cut by that stop with a bare UNAVAILABLE, whatever the grace; a resumed
conversation was claimed by it, so its token no longer resumed it anywhere else. Now the
drain waits for such a stream (within its grace) and it is refused like a new stream,
``UNAVAILABLE`` / ``SERVER_DRAINING``, before it claims anything. Over loopback gRPC and the
in-process channel.
"""

from __future__ import annotations

import asyncio

import grpc
import pytest

from sonicwire.server.app import RunningServer
from sonicwire.server.backends.base import BackendOptions
from sonicwire.server.testing.server import running_server
from sonicwire.v1 import voice_service_pb2 as pb
from sonicwire.v1 import voice_service_pb2_grpc as pb_grpc
from tests.server.helpers import error_reason

from .backends import ScriptedBackend, ScriptedSession

pytestmark = pytest.mark.timeout(60)

TRANSPORTS = ["grpc", "in_process"]
_GRACE_S = 5.0


class GatedOpenBackend(ScriptedBackend):
    """Sessions open at once until `hold_opens`; then each open waits for `release`."""

    def __init__(self) -> None:
        super().__init__()
        self.gate: asyncio.Event | None = None
        self.waiting = asyncio.Event()

    def hold_opens(self) -> None:
        self.gate = asyncio.Event()

    async def open(self, options: BackendOptions) -> ScriptedSession:
        if self.gate is not None:
            self.waiting.set()
            await self.gate.wait()
        return await super().open(options)


def _channel(server: RunningServer, transport: str) -> grpc.aio.Channel:
    if transport == "grpc":
        return grpc.aio.insecure_channel(server.target)
    return server.local_channel()


async def _first_or_status(call: grpc.aio.StreamStreamCall) -> str:
    try:
        response = await call.read()
    except grpc.aio.AioRpcError as error:
        return f"{error.code().name}/{error_reason(error)}"
    return "EOF" if response is grpc.aio.EOF else str(response.WhichOneof("response"))


@pytest.mark.parametrize("resume", [False, True], ids=["new", "resumed"])
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_stream_set_up_during_the_drain_is_refused_with_its_reason(
    transport: str, resume: bool
) -> None:
    backend = GatedOpenBackend()
    async with running_server(backend=backend) as server:
        channel = _channel(server, transport)
        stub = pb_grpc.VoiceServiceStub(channel)
        config = pb.SessionConfig()
        try:
            if resume:  # a conversation that ended, resumable with its token
                done = stub.Converse(iter([pb.ConverseRequest(config=config)]), timeout=10)
                responses = [r async for r in done]
                started = responses[0].session_started
                config = pb.SessionConfig(
                    resume_session_id=started.session_id, resume_token=started.resume_token
                )
            backend.hold_opens()
            hold = asyncio.Event()

            async def requests() -> object:
                yield pb.ConverseRequest(config=config)
                await hold.wait()

            call = stub.Converse(requests(), timeout=30)
            await asyncio.wait_for(backend.waiting.wait(), 10)
            drain = asyncio.create_task(server.drain(_GRACE_S))
            await asyncio.sleep(1.5)  # past the 1 s the final stop used to give
            assert not drain.done()  # it waits for the stream being set up
            assert backend.gate is not None
            backend.gate.set()
            assert await _first_or_status(call) == "UNAVAILABLE/SERVER_DRAINING"
            hold.set()
            await asyncio.wait_for(drain, _GRACE_S + 5)
        finally:
            await channel.close()
        assert not server.runtime.conversations
        assert all(session.closed.is_set() for session in backend.sessions)
        if resume:  # not claimed: the token still resumes the conversation (elsewhere)
            state = await server.runtime.resumer.load(
                config.resume_session_id, config.resume_token, "anonymous"
            )
            assert state.session_id == config.resume_session_id


class HeldStore:
    """Wraps the runtime's store: once `hold` is called, each save waits for `release` (a
    store that answers over the network, as Redis does, lets the loop run meanwhile)."""

    def __init__(self, store: object) -> None:
        self._store = store
        self.gate: asyncio.Event | None = None
        self.waiting = asyncio.Event()

    def hold(self) -> None:
        self.gate = asyncio.Event()

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)

    async def put(self, *args: object, **kwargs: object) -> object:
        if self.gate is not None:
            self.waiting.set()
            await self.gate.wait()
        return await self._store.put(*args, **kwargs)  # type: ignore[attr-defined]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_stream_whose_first_save_outlasts_the_drains_start_is_told_to_go_away(
    transport: str,
) -> None:
    # The first save claims the conversation (its token is then this stream's), so a drain
    # that begins during it can no longer refuse the stream: it must tell it, like every
    # stream live when the drain began, to move (GoingAway), not leave it unwarned until the
    # grace ends and the stream is cut.
    async with running_server(backend=ScriptedBackend()) as server:
        store = HeldStore(server.runtime.resumer.store)
        server.runtime.resumer.store = store  # type: ignore[assignment]
        channel = _channel(server, transport)
        stub = pb_grpc.VoiceServiceStub(channel)
        hold = asyncio.Event()

        async def requests() -> object:
            yield pb.ConverseRequest(config=pb.SessionConfig())
            await hold.wait()

        try:
            store.hold()
            call = stub.Converse(requests(), timeout=30)
            await asyncio.wait_for(store.waiting.wait(), 10)
            drain = asyncio.create_task(server.drain(_GRACE_S))
            await asyncio.sleep(0.5)  # the drain has told every live stream by now
            assert store.gate is not None
            store.gate.set()
            assert await _first_or_status(call) == "session_started"
            # Well within the grace: before, the next message was the status at its end.
            async with asyncio.timeout(_GRACE_S / 2):
                assert await _first_or_status(call) == "going_away"
            hold.set()
            await asyncio.wait_for(drain, _GRACE_S + 5)
        finally:
            hold.set()
            await channel.close()
        assert not server.runtime.conversations
