"""In-process RPCs, client side: a ``grpc.aio.Channel`` whose calls run a `LocalServer`'s
handlers in the same event loop (see :mod:`sonicwire.server.local_rpc` for why).

The call objects keep the grpc.aio semantics the Sonicwire SDK relies on: ``read`` returns
``grpc.aio.EOF`` at the end and raises ``grpc.aio.AioRpcError`` (code, details, initial and
trailing metadata) for a non-OK status after the messages sent before it; ``write`` after the
call ended or after ``done_writing`` raises ``asyncio.InvalidStateError``; ``cancel()`` ends
the call with CANCELLED, cancels the handler's task, and makes pending and later reads and
writes raise ``asyncio.CancelledError``, as does cancelling a task blocked in one; a deadline
ends it with DEADLINE_EXCEEDED; done callbacks run the moment the status is set.

Not modelled: compression, credentials, ``wait_for_ready`` (the server is always "connected"),
interceptors, and the client's own max_receive_message_length (responses come from our own
handlers; the server's limit on requests is enforced).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from types import TracebackType
from typing import Any, Self

import grpc
from grpc import aio

from sonicwire.server.local_rpc import Exchange, LocalServer

__all__ = ["LocalChannel"]

_LOCAL_CANCELLATION = "Locally cancelled by application!"  # grpc.aio's words
_CHANNEL_CLOSED = "Channel closed!"
_RPC_ALREADY_FINISHED = "RPC already finished."
_RPC_HALF_CLOSED = 'RPC is half closed after calling "done_writing".'


def _identity(value: Any) -> Any:
    return value


class _Call[Q, R]:
    """What every kind of in-process call shares (status, metadata, reads and writes)."""

    def __init__(
        self,
        channel: LocalChannel,
        exchange: Exchange,
        serialize: Callable[[Q], bytes] | None,
        deserialize: Callable[[bytes], R] | None,
    ) -> None:
        self._channel = channel
        self._exchange = exchange
        self._serialize: Callable[[Q], bytes] = serialize or _identity
        self._deserialize: Callable[[bytes], R] = deserialize or _identity
        self._done_writing_flag = False
        self._feeder: asyncio.Task[None] | None = None

    # -- status ----------------------------------------------------------------------------

    def cancelled(self) -> bool:
        return self._exchange.locally_cancelled

    def done(self) -> bool:
        return self._exchange.done

    def time_remaining(self) -> float | None:
        return self._exchange.time_remaining()

    def cancel(self) -> bool:
        return self._cancel(_LOCAL_CANCELLATION)

    def _cancel(self, details: str) -> bool:
        if self._feeder is not None:
            self._feeder.cancel()
        return self._exchange.end(grpc.StatusCode.CANCELLED, details, local=True)

    def add_done_callback(self, callback: Callable[[Any], None]) -> None:
        self._exchange.add_done_callback(lambda: callback(self))

    async def initial_metadata(self) -> aio.Metadata:
        return await self._exchange.wait_initial()

    async def trailing_metadata(self) -> aio.Metadata:
        await self._wait_status()
        return self._exchange.trailing

    async def code(self) -> grpc.StatusCode:
        await self._wait_status()
        code = self._exchange.code
        assert code is not None
        return code

    async def details(self) -> str:
        await self._wait_status()
        return self._exchange.details

    async def debug_error_string(self) -> str:
        return ""

    async def wait_for_connection(self) -> None:
        if self._exchange.done:
            await self._raise_for_status()

    async def _wait_status(self) -> None:
        # A finished call answers without suspending: the SDK reads the status of a done
        # call synchronously from its done callback (sonicwire.client._status).
        ended = self._exchange.ended
        if not ended.done():
            await asyncio.shield(ended)

    def _error(self) -> aio.AioRpcError:
        exchange = self._exchange
        code = exchange.code
        assert code is not None
        return aio.AioRpcError(
            code, exchange.initial or aio.Metadata(), exchange.trailing, exchange.details
        )

    async def _raise_for_status(self) -> None:
        await self._wait_status()
        if self._exchange.locally_cancelled:
            raise asyncio.CancelledError()
        if self._exchange.code != grpc.StatusCode.OK:
            raise self._error()

    # -- messages --------------------------------------------------------------------------

    async def _read(self) -> Any:
        exchange = self._exchange
        if exchange.locally_cancelled:
            raise asyncio.CancelledError()
        try:
            data = await exchange.responses.get()
        except asyncio.CancelledError:
            self.cancel()  # a task cancelled in read() cancels the call, as in grpc.aio
            raise
        if data is None or exchange.locally_cancelled:
            await self._raise_for_status()
            return aio.EOF
        try:
            return self._deserialize(data)
        except Exception:
            exchange.end(grpc.StatusCode.INTERNAL, "Exception deserializing response!")
            raise self._error() from None

    async def _write(self, request: Q) -> None:
        exchange = self._exchange
        if exchange.done:
            raise asyncio.InvalidStateError(_RPC_ALREADY_FINISHED)
        if self._done_writing_flag:
            raise asyncio.InvalidStateError(_RPC_HALF_CLOSED)
        data = self._serialize(request)
        if exchange.refuse_oversize(data):
            # The server refuses it before its handler sees it; the write itself succeeded
            # as far as the caller can tell, the status comes with the next read.
            return
        requests = exchange.requests
        if requests.try_put(data):
            return
        try:
            sent = await requests.put(data)
        except asyncio.CancelledError:
            self.cancel()
            raise
        if not sent:
            await self._raise_for_status()
            raise asyncio.InvalidStateError(_RPC_ALREADY_FINISHED)

    async def _done_writing(self) -> None:
        if self._exchange.done or self._done_writing_flag:
            return
        self._done_writing_flag = True
        self._exchange.requests.close()

    def _feed(self, requests: AsyncIterator[Q] | Iterator[Q]) -> None:
        async def feed() -> None:
            try:
                if isinstance(requests, AsyncIterator):
                    async for request in requests:
                        await self._write(request)
                else:
                    for request in requests:
                        await self._write(request)
                await self._done_writing()
            except (aio.AioRpcError, asyncio.InvalidStateError):
                pass  # the call ended: its status says why
            except Exception:
                self.cancel()  # grpc.aio cancels the call when the iterator raises

        self._feeder = asyncio.get_running_loop().create_task(feed())

    async def _responses(self) -> AsyncIterator[R]:
        while (message := await self._read()) is not aio.EOF:
            yield message

    async def _unary_response(self) -> R:
        try:
            message = await self._read()
        except asyncio.CancelledError:
            self.cancel()
            raise
        await self._raise_for_status()
        if message is aio.EOF:
            self._exchange.end(grpc.StatusCode.INTERNAL, "no response message")
            raise self._error()
        result: R = message
        return result


class _UnaryUnaryCall[Q, R](_Call[Q, R], aio.UnaryUnaryCall[Q, R]):
    def __await__(self) -> Generator[None, None, R]:
        return (yield from self._unary_response().__await__())


class _UnaryStreamCall[Q, R](_Call[Q, R], aio.UnaryStreamCall[Q, R]):
    def __aiter__(self) -> AsyncIterator[R]:
        return self._responses()

    async def read(self) -> Any:
        return await self._read()


class _StreamUnaryCall[Q, R](_Call[Q, R], aio.StreamUnaryCall[Q, R]):
    def __await__(self) -> Generator[None, None, R]:
        return (yield from self._unary_response().__await__())

    async def write(self, request: Q) -> None:
        await self._write(request)

    async def done_writing(self) -> None:
        await self._done_writing()


class _StreamStreamCall[Q, R](_Call[Q, R], aio.StreamStreamCall[Q, R]):
    def __aiter__(self) -> AsyncIterator[R]:
        return self._responses()

    # The shared implementations themselves, not coroutines that await them: a `Converse`
    # stream reads and writes every audio frame through these.
    read = _Call._read
    write = _Call._write
    done_writing = _Call._done_writing


class _MultiCallable[Q, R]:
    def __init__(
        self,
        channel: LocalChannel,
        method: str,
        serialize: Callable[[Q], bytes] | None,
        deserialize: Callable[[bytes], R] | None,
    ) -> None:
        self._channel = channel
        self._method = method
        self._serialize = serialize
        self._deserialize = deserialize

    def _start[C: _Call[Any, Any]](
        self, kind: type[C], metadata: Any, timeout: float | None, request: Any = None
    ) -> C:
        channel = self._channel
        if channel.closed:
            raise aio.UsageError("Channel is closed.")
        exchange = channel.server.start_call(self._method, metadata, timeout)
        call = kind(channel, exchange, self._serialize, self._deserialize)
        if request is not None and not exchange.done:
            data = call._serialize(request)
            if not exchange.refuse_oversize(data):
                exchange.requests.put_nowait(data)
                exchange.requests.close()
        channel.track(call)
        return call


class _UnaryUnary[Q, R](_MultiCallable[Q, R], aio.UnaryUnaryMultiCallable[Q, R]):
    def __call__(
        self,
        request: Q,
        *,
        timeout: float | None = None,
        metadata: Any = None,
        credentials: Any = None,
        wait_for_ready: bool | None = None,
        compression: Any = None,
    ) -> aio.UnaryUnaryCall[Q, R]:
        return self._start(_UnaryUnaryCall, metadata, timeout, request)


class _UnaryStream[Q, R](_MultiCallable[Q, R], aio.UnaryStreamMultiCallable[Q, R]):
    def __call__(
        self,
        request: Q,
        *,
        timeout: float | None = None,
        metadata: Any = None,
        credentials: Any = None,
        wait_for_ready: bool | None = None,
        compression: Any = None,
    ) -> aio.UnaryStreamCall[Q, R]:
        return self._start(_UnaryStreamCall, metadata, timeout, request)


class _StreamUnary[Q, R](_MultiCallable[Q, R], aio.StreamUnaryMultiCallable[Q, R]):
    def __call__(
        self,
        request_iterator: AsyncIterator[Q] | Iterator[Q] | None = None,
        timeout: float | None = None,
        metadata: Any = None,
        credentials: Any = None,  # no transport to secure
        wait_for_ready: bool | None = None,  # always ready
        compression: Any = None,  # nothing to compress
    ) -> aio.StreamUnaryCall[Q, R]:
        call = self._start(_StreamUnaryCall, metadata, timeout)
        if request_iterator is not None:
            call._feed(request_iterator)
        return call


class _StreamStream[Q, R](_MultiCallable[Q, R], aio.StreamStreamMultiCallable[Q, R]):
    def __call__(
        self,
        request_iterator: AsyncIterator[Q] | Iterator[Q] | None = None,
        timeout: float | None = None,
        metadata: Any = None,
        credentials: Any = None,  # no transport to secure
        wait_for_ready: bool | None = None,  # always ready
        compression: Any = None,  # nothing to compress
    ) -> aio.StreamStreamCall[Q, R]:
        call = self._start(_StreamStreamCall, metadata, timeout)
        if request_iterator is not None:
            call._feed(request_iterator)
        return call


class LocalChannel(aio.Channel):
    """A ``grpc.aio.Channel`` to a `LocalServer` in the same event loop (always READY).

    ``close()`` cancels the calls still open on it (CANCELLED, like grpc.aio's channel).
    """

    def __init__(self, server: LocalServer) -> None:
        self.server = server
        self.closed = False
        self._closed = asyncio.Event()
        self._calls: set[_Call[Any, Any]] = set()

    def track(self, call: _Call[Any, Any]) -> None:
        if not call.done():
            self._calls.add(call)
            call.add_done_callback(self._calls.discard)

    def unary_unary(
        self,
        method: str,
        request_serializer: Callable[[Any], bytes] | None = None,
        response_deserializer: Callable[[bytes], Any] | None = None,
        _registered_method: bool = False,
    ) -> aio.UnaryUnaryMultiCallable[Any, Any]:
        return _UnaryUnary(self, method, request_serializer, response_deserializer)

    def unary_stream(
        self,
        method: str,
        request_serializer: Callable[[Any], bytes] | None = None,
        response_deserializer: Callable[[bytes], Any] | None = None,
        _registered_method: bool = False,
    ) -> aio.UnaryStreamMultiCallable[Any, Any]:
        return _UnaryStream(self, method, request_serializer, response_deserializer)

    def stream_unary(
        self,
        method: str,
        request_serializer: Callable[[Any], bytes] | None = None,
        response_deserializer: Callable[[bytes], Any] | None = None,
        _registered_method: bool = False,
    ) -> aio.StreamUnaryMultiCallable[Any, Any]:
        return _StreamUnary(self, method, request_serializer, response_deserializer)

    def stream_stream(
        self,
        method: str,
        request_serializer: Callable[[Any], bytes] | None = None,
        response_deserializer: Callable[[bytes], Any] | None = None,
        _registered_method: bool = False,
    ) -> aio.StreamStreamMultiCallable[Any, Any]:
        return _StreamStream(self, method, request_serializer, response_deserializer)

    async def close(self, grace: float | None = None) -> None:
        self.closed = True
        self._closed.set()
        calls = list(self._calls)
        if grace and calls:
            await asyncio.wait([call._exchange.ended for call in calls], timeout=grace)
        for call in calls:
            call._cancel(_CHANNEL_CLOSED)
        # Let the handlers see their cancellation before the caller tears down what they use.
        tasks = [t for call in calls if (t := call._exchange.task) is not None]
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks, return_exceptions=True)

    def get_state(self, try_to_connect: bool = False) -> grpc.ChannelConnectivity:
        if self.closed:
            return grpc.ChannelConnectivity.SHUTDOWN
        return grpc.ChannelConnectivity.READY

    async def wait_for_state_change(self, last_observed_state: grpc.ChannelConnectivity) -> None:
        if self.get_state() == last_observed_state:
            await self._closed.wait()  # READY is left only by closing

    async def channel_ready(self) -> None:
        return None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        await self.close()
