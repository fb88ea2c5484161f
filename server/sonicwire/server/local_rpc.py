"""In-process RPCs, server side: a server's own method handlers run without the network.

``sonicwire up`` runs the gRPC server and the WebSocket gateway in one process and one event
loop. Over loopback gRPC every audio frame costs HTTP/2 framing, a ``sendmsg``, a wake-up of
gRPC's completion-queue thread and a loop wake-up, on both sides (``docs/gateway.md``, "CPU per
frame"). Here a call is an `Exchange`: two bounded byte pipes and a status, driven by the same
method handlers the network server serves (`HandlerRegistry` records them as they are added to
it), so the two transports cannot drift apart. Messages cross as serialized bytes (the caller's
serializer on one side, the handler's own deserializer on the other): nothing mutable is
shared, and a handler sees exactly what the wire would give it.

Generic on purpose: nothing here knows Sonicwire. The client half (a ``grpc.aio.Channel``) is
:mod:`sonicwire.server.local_channel`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, NoReturn, Protocol

import grpc
from grpc import aio

__all__ = [
    "WINDOW_BYTES",
    "Exchange",
    "HandlerRegistry",
    "HandlerSink",
    "LocalServer",
    "Pipe",
    "TeeSink",
]

log = logging.getLogger(__name__)

# Bytes a writer may have in flight per call and direction before it waits for the reader:
# HTTP/2's default flow-control window (65,535 bytes, RFC 9113 section 6.9.2), which is what a
# gRPC stream starts with. ~90 audio frames of 20 ms: a peer that stops reading makes the other
# side wait within ~2 s of audio, it never grows memory.
WINDOW_BYTES = 65_535
# gRPC frames every message with a 5-byte prefix; counting it bounds a flood of empty messages.
_FRAME_OVERHEAD = 5
DEFAULT_MAX_RECEIVE_BYTES = 4 * 1024 * 1024  # grpc's default max_receive_message_length


class Pipe:
    """One direction of a call: a FIFO of serialized messages bounded by `WINDOW_BYTES`.

    ``get`` returns ``None`` once the writer half-closed or the call ended (``broken``).
    """

    __slots__ = ("_broken", "_closed", "_items", "_limit", "_reader", "_size", "_writers")

    def __init__(self, limit: int = WINDOW_BYTES) -> None:
        self._items: deque[bytes] = deque()
        self._size = 0
        self._limit = limit
        self._reader: asyncio.Future[None] | None = None
        self._writers: list[asyncio.Future[None]] = []
        self._closed = False
        self._broken = False

    @property
    def buffered_bytes(self) -> int:
        return self._size

    async def put(self, data: bytes) -> bool:
        """Queue ``data``, waiting while the window is full. False: the call ended."""
        while self._size >= self._limit and not self._broken:
            waiter = asyncio.get_running_loop().create_future()
            self._writers.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._writers:
                    self._writers.remove(waiter)
        if self._broken or self._closed:
            return False
        self.put_nowait(data)
        return True

    def try_put(self, data: bytes) -> bool:
        """Queue ``data`` if `put` would not wait: the window has room and the pipe is open.
        False: nothing was queued (call `put`). Spares the usual case a coroutine."""
        if self._size >= self._limit or self._broken or self._closed:
            return False
        self.put_nowait(data)
        return True

    def put_nowait(self, data: bytes) -> None:
        """Queue ``data`` regardless of the window (a unary call's one message)."""
        self._items.append(data)
        self._size += len(data) + _FRAME_OVERHEAD
        reader = self._reader
        if reader is not None and not reader.done():
            reader.set_result(None)

    def close(self) -> None:
        """Half-close: the reader gets what is queued, then ``None``."""
        self._closed = True
        self._wake_all()

    def break_(self, *, keep: bool) -> None:
        """The call ended: writers stop at once; ``keep`` leaves queued messages readable
        (responses sent before the status), else they are dropped."""
        self._broken = True
        if not keep:
            self._items.clear()
            self._size = 0
        self._wake_all()

    def _wake_all(self) -> None:
        for waiter in (self._reader, *self._writers):
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    async def get(self) -> bytes | None:
        while not self._items:
            if self._closed or self._broken:
                return None
            waiter = self._reader = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._reader = None
        data = self._items.popleft()
        self._size -= len(data) + _FRAME_OVERHEAD
        if self._writers and self._size < self._limit:
            for writer in self._writers:  # each re-checks the window
                if not writer.done():
                    writer.set_result(None)
        return data


class HandlerSink(Protocol):
    """Where method handlers are registered: a ``grpc.aio.Server`` or a `HandlerRegistry`."""

    def add_generic_rpc_handlers(
        self, generic_rpc_handlers: Sequence[grpc.GenericRpcHandler]
    ) -> None: ...

    def add_registered_method_handlers(
        self, service_name: str, method_handlers: Mapping[str, grpc.RpcMethodHandler[Any, Any]]
    ) -> None: ...


class TeeSink:
    """Registers every handler with several sinks (the network server and the registry)."""

    def __init__(self, *sinks: HandlerSink) -> None:
        self._sinks = sinks

    def add_generic_rpc_handlers(
        self, generic_rpc_handlers: Sequence[grpc.GenericRpcHandler]
    ) -> None:
        for sink in self._sinks:
            sink.add_generic_rpc_handlers(generic_rpc_handlers)

    def add_registered_method_handlers(
        self, service_name: str, method_handlers: Mapping[str, grpc.RpcMethodHandler[Any, Any]]
    ) -> None:
        for sink in self._sinks:
            sink.add_registered_method_handlers(service_name, method_handlers)


class _CallDetails:
    __slots__ = ("invocation_metadata", "method")

    def __init__(self, method: str, metadata: aio.Metadata) -> None:
        self.method = method
        self.invocation_metadata = tuple(metadata)


class HandlerRegistry:
    """The method handlers of a server, by full method name (``/package.Service/Method``)."""

    def __init__(self) -> None:
        self._generic: list[grpc.GenericRpcHandler] = []
        self._registered: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}

    def add_generic_rpc_handlers(
        self, generic_rpc_handlers: Sequence[grpc.GenericRpcHandler]
    ) -> None:
        self._generic.extend(generic_rpc_handlers)

    def add_registered_method_handlers(
        self, service_name: str, method_handlers: Mapping[str, grpc.RpcMethodHandler[Any, Any]]
    ) -> None:
        for name, handler in method_handlers.items():
            self._registered[f"/{service_name}/{name}"] = handler

    def lookup(self, method: str, metadata: aio.Metadata) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = self._registered.get(method)
        if handler is not None:
            return handler
        details = _CallDetails(method, metadata)
        for generic in self._generic:
            found = generic.service(details)
            if found is not None:
                return found
        return None


class _HandlerEnded(Exception):
    """Raised by ``abort``, like grpc's ``AbortError`` (an ``Exception`` there too)."""


class _Undecodable(Exception):
    pass


class Exchange:
    """One in-process call: the request and response pipes, the metadata and the status."""

    def __init__(
        self, method: str, metadata: aio.Metadata, timeout: float | None, max_receive: int
    ) -> None:
        loop = asyncio.get_running_loop()
        self.method = method
        self.metadata = metadata
        self.max_receive = max_receive
        self.requests = Pipe()
        self.responses = Pipe()
        self.initial: aio.Metadata | None = None
        self._initial_sent = loop.create_future()
        self.code: grpc.StatusCode | None = None
        self.details = ""
        self.trailing = aio.Metadata()
        self.locally_cancelled = False
        self.ended_by_handler = False
        self._ended = loop.create_future()
        self._callbacks: list[Callable[[], None]] = []
        self.task: asyncio.Task[None] | None = None
        self.deadline: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        if timeout is not None:
            self.deadline = loop.time() + timeout
            self._timer = loop.call_at(
                self.deadline, self.end, grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded"
            )

    @property
    def done(self) -> bool:
        return self.code is not None

    def time_remaining(self) -> float | None:
        if self.deadline is None:
            return None
        return max(self.deadline - asyncio.get_running_loop().time(), 0.0)

    def send_initial(self, metadata: aio.Metadata) -> None:
        if self.initial is None:
            self.initial = metadata
            self._initial_sent.set_result(None)

    async def wait_initial(self) -> aio.Metadata:
        await self._initial_sent
        assert self.initial is not None
        return self.initial

    @property
    def ended(self) -> asyncio.Future[None]:
        """Resolved when the status is set."""
        return self._ended

    def add_done_callback(self, callback: Callable[[], None]) -> None:
        if self.done:
            callback()
        else:
            self._callbacks.append(callback)

    def finish(
        self, code: grpc.StatusCode, details: str, trailing: aio.Metadata | None = None
    ) -> bool:
        """Set the status once (later ones are ignored, as on the wire). True if it was set."""
        if self.code is not None:
            return False
        self.code, self.details = code, details
        if trailing is not None:
            self.trailing = trailing
        if self._timer is not None:
            self._timer.cancel()
        self.send_initial(aio.Metadata())
        self.requests.break_(keep=False)
        self.responses.break_(keep=True)
        self._ended.set_result(None)
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            try:
                callback()
            except Exception:  # one bad callback must not keep the others from running
                log.exception("done callback of %s failed", self.method)
        return True

    def refuse_oversize(self, data: bytes) -> bool:
        """End the call as gRPC's server does for a request over ``max_receive`` (its words,
        which the caller sees as the error's message). True if it was refused."""
        if len(data) <= self.max_receive:
            return False
        self.end(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            f"SERVER: Received message larger than max ({len(data)} vs. {self.max_receive})",
        )
        return True

    def end(self, code: grpc.StatusCode, details: str, *, local: bool = False) -> bool:
        """End the call from outside its handler (cancel, deadline, size limit, shutdown):
        the handler's task is cancelled, as grpc does."""
        if self.code is not None:
            return False
        self.locally_cancelled = local  # before the done callbacks run
        self.finish(code, details)
        task = self.task
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()
        return True


def _metadata(pairs: aio.Metadata | Iterable[tuple[str, str | bytes]] | None) -> aio.Metadata:
    if pairs is None:
        return aio.Metadata()
    if isinstance(pairs, aio.Metadata):
        return pairs
    return aio.Metadata.from_tuple(tuple(pairs))


_KEY_CHARS = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789-_.")


def _wire_metadata(metadata: aio.Metadata) -> aio.Metadata | None:
    """``metadata`` as a handler would receive it over gRPC, or None where gRPC refuses to send
    it (core's ``validate_metadata``: lower-case token keys, printable ASCII values unless the
    key ends in ``-bin``). Checked so that metadata that works under ``sonicwire up`` cannot
    fail only once the gateway runs as its own process."""
    pairs: list[tuple[str, str | bytes]] = []
    for key, value in metadata:
        if not key or not _KEY_CHARS.issuperset(key.encode()):
            return None
        if key.endswith("-bin"):
            pairs.append((key, value))
            continue
        raw = value.encode() if isinstance(value, str) else value
        if not all(0x20 <= byte <= 0x7E for byte in raw):
            return None
        pairs.append((key, raw.decode("ascii")))  # bytes arrive as str, as over the wire
    return aio.Metadata.from_tuple(tuple(pairs))


class LocalContext(aio.ServicerContext[Any, Any]):
    """What a handler sees of its call: grpc.aio's ``ServicerContext`` for an `Exchange`."""

    def __init__(
        self,
        exchange: Exchange,
        serialize: Callable[[Any], bytes],
        deserialize: Callable[[bytes], Any],
    ) -> None:
        self._exchange = exchange
        self._serialize = serialize
        self._deserialize = deserialize
        self._code: grpc.StatusCode | None = None
        self._details = ""
        self._trailing = aio.Metadata()

    async def read(self) -> Any:
        """The next request (reader-style streaming handlers); ``grpc.aio.EOF`` at the end."""
        data = await self._exchange.requests.get()
        if data is None:
            return aio.EOF
        try:
            return self._deserialize(data)
        except Exception:
            raise _Undecodable from None

    async def write(self, message: Any) -> None:
        exchange = self._exchange
        data = self._serialize(message)
        if exchange.initial is None:
            exchange.send_initial(aio.Metadata())
        responses = exchange.responses
        if not responses.try_put(data):
            await responses.put(data)  # False: the call ended and this task is cancelled

    async def send_initial_metadata(self, initial_metadata: Any) -> None:
        self._exchange.send_initial(_metadata(initial_metadata))

    async def abort(
        self, code: grpc.StatusCode, details: str = "", trailing_metadata: Any = ()
    ) -> NoReturn:
        if code == grpc.StatusCode.OK:
            code, details = grpc.StatusCode.UNKNOWN, "abort() called with OK"
        self._code, self._details = code, details
        if trailing_metadata:
            self._trailing = _metadata(trailing_metadata)
        raise _HandlerEnded(details)

    async def abort_with_status(self, status: grpc.Status) -> NoReturn:
        await self.abort(status.code, status.details, status.trailing_metadata)

    def set_trailing_metadata(self, trailing_metadata: Any) -> None:
        self._trailing = _metadata(trailing_metadata)

    def invocation_metadata(self) -> aio.Metadata:
        return self._exchange.metadata

    def set_code(self, code: grpc.StatusCode) -> None:
        self._code = code

    def set_details(self, details: str) -> None:
        self._details = details

    def code(self) -> grpc.StatusCode:
        return self._code or grpc.StatusCode.OK

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> aio.Metadata:
        return self._trailing

    def set_compression(self, compression: grpc.Compression) -> None:
        pass  # nothing is compressed in process

    def disable_next_message_compression(self) -> None:
        pass

    def peer(self) -> str:
        return "inproc:local"

    def peer_identities(self) -> Iterable[bytes] | None:
        return None

    def peer_identity_key(self) -> str | None:
        return None

    def auth_context(self) -> Mapping[str, Iterable[bytes]]:
        return {}

    def time_remaining(self) -> float:
        remaining = self._exchange.time_remaining()
        return float("inf") if remaining is None else remaining

    def cancelled(self) -> bool:
        exchange = self._exchange
        return exchange.done and not exchange.ended_by_handler

    def done(self) -> bool:
        return self._exchange.done

    def status(self) -> tuple[grpc.StatusCode, str, aio.Metadata]:
        return self.code(), self._details, self._trailing


def _identity(data: Any) -> Any:
    return data


async def _requests(exchange: Exchange, deserialize: Callable[[bytes], Any]) -> AsyncIterator[Any]:
    get = exchange.requests.get
    while (data := await get()) is not None:
        try:
            message = deserialize(data)
        except Exception:
            raise _Undecodable from None
        yield message


async def _serve(exchange: Exchange, handler: grpc.RpcMethodHandler[Any, Any]) -> None:
    """Run ``handler`` for ``exchange`` the way grpc.aio's server does."""
    deserialize = handler.request_deserializer or _identity
    context = LocalContext(exchange, handler.response_serializer or _identity, deserialize)
    try:
        request: Any
        if handler.request_streaming:
            request = _requests(exchange, deserialize)
        else:
            data = await exchange.requests.get()
            if data is None:
                return  # cancelled before its request arrived
            try:
                request = deserialize(data)
            except Exception:
                raise _Undecodable from None
        behavior: Any = (
            handler.unary_unary or handler.unary_stream or handler.stream_unary
        ) or handler.stream_stream
        if handler.response_streaming:
            result = behavior(request, context)
            if hasattr(result, "__anext__"):
                async for response in result:
                    await context.write(response)
            else:
                await result  # a handler that writes with context.write
        else:
            response = await behavior(request, context)
            if response is not None:
                await context.write(response)
            elif context.code() == grpc.StatusCode.OK:
                context.set_code(grpc.StatusCode.INTERNAL)
                context.set_details("the handler returned no response")
    except _HandlerEnded:
        pass
    except _Undecodable:
        context.set_code(grpc.StatusCode.INTERNAL)
        context.set_details("Exception deserializing request!")
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if exchange.done and task is not None and task.uncancel() == 0:
            return  # the call ended from outside (cancel, deadline, shutdown): expected
        exchange.end(grpc.StatusCode.CANCELLED, "the handler was cancelled")
        raise
    except Exception as error:
        # grpc answers UNKNOWN and logs the traceback; so does this.
        log.exception("unexpected error in the handler of %s", exchange.method)
        context.set_code(grpc.StatusCode.UNKNOWN)
        context.set_details(f"Unexpected {type(error)}: {error}")
    if not exchange.done:
        exchange.ended_by_handler = True
        exchange.finish(*context.status())


class LocalServer:
    """Starts in-process calls on a `HandlerRegistry` and ends them on shutdown.

    Args:
        registry: the handlers (the same objects the network server serves).
        max_receive_message_length: the network server's limit on a request's size; a larger
            request ends the call with RESOURCE_EXHAUSTED, as gRPC does.
    """

    def __init__(
        self,
        registry: HandlerRegistry,
        *,
        max_receive_message_length: int = DEFAULT_MAX_RECEIVE_BYTES,
    ) -> None:
        self.registry = registry
        self.max_receive = max_receive_message_length
        self._live: set[Exchange] = set()
        self._stopping = False

    @property
    def live_calls(self) -> int:
        return len(self._live)

    def calls(self) -> tuple[Exchange, ...]:
        """The calls whose handlers are running (for tests and diagnostics)."""
        return tuple(self._live)

    def start_call(
        self,
        method: str,
        metadata: aio.Metadata | Iterable[tuple[str, str | bytes]] | None,
        timeout: float | None,
    ) -> Exchange:
        """A new call of ``method``; its handler runs in a task of the running loop."""
        md = _wire_metadata(_metadata(metadata))
        exchange = Exchange(method, md or aio.Metadata(), timeout, self.max_receive)
        if md is None:
            exchange.finish(grpc.StatusCode.INTERNAL, "Invalid metadata")  # grpc's words
            return exchange
        if self._stopping:
            # What grpc.aio answers while the server stops: new calls are refused.
            exchange.finish(grpc.StatusCode.UNAVAILABLE, "the server is shutting down")
            return exchange
        handler = self.registry.lookup(method, md)
        if handler is None:
            exchange.finish(grpc.StatusCode.UNIMPLEMENTED, "Method not found!")
            return exchange
        self._live.add(exchange)
        task = asyncio.get_running_loop().create_task(_serve(exchange, handler), name=method)
        exchange.task = task
        task.add_done_callback(lambda _: self._live.discard(exchange))
        return exchange

    async def stop(self, grace: float | None) -> None:
        """Refuse new calls, give live ones ``grace`` seconds, then end what is left with
        UNAVAILABLE (like ``grpc.aio.Server.stop`` for network calls) and wait for them."""
        self._stopping = True
        live = [e for e in self._live if e.task is not None]
        if grace and live:
            await asyncio.wait([e.ended for e in live], timeout=grace)
        tasks: list[Awaitable[None]] = []
        for exchange in live:
            exchange.end(grpc.StatusCode.UNAVAILABLE, "the server shut down")
            if exchange.task is not None:
                tasks.append(exchange.task)
        await asyncio.gather(*tasks, return_exceptions=True)
