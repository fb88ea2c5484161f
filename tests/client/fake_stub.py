"""Test doubles of the generated stub and of a ``Converse`` call: SDK tests without a network.

``FakeStub`` stands in for ``VoiceServiceAsyncStub`` (and the health stub): unary methods
answer from a list of results (a response, or an ``AioRpcError`` to raise), and each
``Converse()`` returns the next prepared ``FakeCall``. A ``FakeCall`` plays a script: items
are responses to return from ``read()``, errors to raise, or ``WaitFor`` conditions on what
the client wrote. When the script runs out, ``read()`` returns ``aio.EOF``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import grpc
from grpc import aio

from sonicwire.v1 import voice_service_pb2 as pb

from .fake_server import rich_status


def rpc_error(
    code: grpc.StatusCode,
    reason: str = "",
    message: str = "boom",
    metadata: dict[str, str] | None = None,
) -> aio.AioRpcError:
    """An AioRpcError as grpc raises it, with an ErrorInfo detail (``metadata`` its map) when
    ``reason`` is given."""
    trailers = aio.Metadata()
    if reason:
        for key, value in rich_status(code, reason, message, metadata).trailing_metadata:
            trailers.add(key, value)
    return aio.AioRpcError(code, aio.Metadata(), trailers, message)


def started(session_id: str = "s-1", tools: Iterable[str] = ()) -> pb.ConverseResponse:
    return pb.ConverseResponse(
        session_started=pb.SessionStarted(
            session_id=session_id,
            backend="fake",
            tools=list(tools),
            limits=pb.SessionLimits(max_audio_chunk_bytes=65536, idle_timeout_seconds=30),
            config=pb.SessionConfig(output_format=pb.AudioFormat(sample_rate_hz=24000)),
        )
    )


@dataclass(frozen=True)
class WaitFor:
    """Block ``read()`` until ``predicate(call)`` holds (checked after every write)."""

    predicate: Callable[[FakeCall], bool]


def wrote(kind: str, count: int = 1) -> WaitFor:
    """Wait until the client has written ``count`` messages of oneof ``kind``."""
    return WaitFor(lambda call: len(call.written(kind)) >= count)


HALF_CLOSED = WaitFor(lambda call: call.half_closed)


@dataclass(frozen=True)
class Overwritten:
    """The server ends the call with ``real``, then grpc.aio overwrites it with INTERNAL
    "Internal error from Core" because a write failed at that moment (grpc/grpc#36066)."""

    real: aio.AioRpcError


@dataclass(frozen=True)
class LateStatus:
    """The rarer order of grpc/grpc#36066: the failed write's INTERNAL "Internal error from
    Core" is the call's first status (done callbacks run once, with it), and the server's
    ``real`` status replaces it ``turns`` event-loop turns later, with no callback."""

    real: aio.AioRpcError
    turns: int = 3


#: What a `FakeCall` script holds: a response to read, a status to end with, or a pause.
Step = pb.ConverseResponse | aio.AioRpcError | WaitFor | Overwritten | LateStatus

CORE_WRITE_ERROR = aio.AioRpcError(
    grpc.StatusCode.INTERNAL, aio.Metadata(), aio.Metadata(), "Internal error from Core"
)


class FakeCall:
    """A scripted stand-in for ``grpc.aio.StreamStreamCall``."""

    def __init__(
        self,
        script: Iterable[Step],
    ) -> None:
        self.script = deque(script)
        self.writes: list[pb.ConverseRequest] = []
        self.half_closed = False
        self.done_writing_calls = 0
        self.cancelled = False
        self.error: aio.AioRpcError | None = None
        self.finished = False
        self._changed = asyncio.Event()
        self._done_callbacks: list[Callable[[FakeCall], None]] = []

    def add_done_callback(self, callback: Callable[[FakeCall], None]) -> None:
        self._done_callbacks.append(callback)

    def _finish(self, error: aio.AioRpcError | None) -> None:
        self.error, self.finished = error, True
        callbacks, self._done_callbacks = self._done_callbacks, []
        for callback in callbacks:
            callback(self)

    def written(self, kind: str) -> list[Any]:
        return [getattr(w, kind) for w in self.writes if w.WhichOneof("request") == kind]

    async def write(self, request: pb.ConverseRequest) -> None:
        if self.finished or self.cancelled or self.half_closed:
            raise asyncio.InvalidStateError("RPC already finished")
        self.writes.append(request)
        self._changed.set()

    async def done_writing(self) -> None:
        self.done_writing_calls += 1
        self.half_closed = True
        self._changed.set()

    def cancel(self) -> bool:
        self.cancelled = True
        if not self.finished:
            self._finish(aio.AioRpcError(grpc.StatusCode.CANCELLED, aio.Metadata(), aio.Metadata()))
        self._changed.set()
        return True

    async def read(self) -> Any:
        while self.script:
            if self.cancelled:
                raise asyncio.CancelledError()
            item = self.script[0]
            if isinstance(item, WaitFor):
                if item.predicate(self):
                    self.script.popleft()
                    continue
                self._changed.clear()
                await self._changed.wait()
                continue
            self.script.popleft()
            if isinstance(item, Overwritten):
                self._finish(item.real)
                self.error = CORE_WRITE_ERROR
                raise CORE_WRITE_ERROR
            if isinstance(item, LateStatus):
                self._finish(CORE_WRITE_ERROR)
                self._set_error_later(item.real, item.turns)
                raise CORE_WRITE_ERROR
            if isinstance(item, aio.AioRpcError):
                self._finish(item)
                raise item
            return item
        if not self.finished:
            self._finish(None)
        return aio.EOF

    def _set_error_later(self, error: aio.AioRpcError, turns: int) -> None:
        loop = asyncio.get_running_loop()
        if turns <= 0:
            self.error = error
        else:
            loop.call_soon(self._set_error_later, error, turns - 1)

    async def code(self) -> grpc.StatusCode:
        return self.error.code() if self.error else grpc.StatusCode.OK

    async def details(self) -> str:
        return (self.error.details() or "") if self.error else ""

    async def trailing_metadata(self) -> Any:
        return self.error.trailing_metadata() if self.error else aio.Metadata()


class FakeUnary:
    """A unary method that answers from ``results`` in order (the last one repeats)."""

    def __init__(self, *results: Any) -> None:
        self.results = list(results)
        self.requests: list[tuple[Any, Any, Any]] = []

    async def __call__(self, request: Any, *, metadata: Any = None, timeout: Any = None) -> Any:
        self.requests.append((request, metadata, timeout))
        result = self.results.pop(0) if len(self.results) > 1 else self.results[0]
        if isinstance(result, BaseException):
            raise result
        return result


class FakeStub:
    """Stands in for the generated ``VoiceServiceAsyncStub`` and the health stub."""

    def __init__(self, *calls: FakeCall) -> None:
        self.calls = deque(calls)
        self.converse_requests: list[tuple[Any, Any, FakeCall]] = []
        self.ListVoices = FakeUnary(pb.ListVoicesResponse())
        self.ListTools = FakeUnary(pb.ListToolsResponse())
        self.Check = FakeUnary(None)

    def Converse(self, *, metadata: Any = None, timeout: Any = None) -> FakeCall:
        call = self.calls.popleft()
        self.converse_requests.append((metadata, timeout, call))
        return call


class Sleeps:
    """An injectable ``sleep`` that records the delays and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
