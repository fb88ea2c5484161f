"""One Bedrock ``InvokeModelWithBidirectionalStream`` call, over the real SDK.

`StreamOpener` holds what every stream of the process shares (settings, credentials) and opens
streams: ``stream = await opener.open(opening_events)``. A `NovaStream` then:

- takes input with `send` / `send_many` (never blocks: a writer task feeds the SDK in order);
- gives output with `receive` (the next Nova event as a dict; None once the stream ended after
  our own close; raises `BackendError` on a failure or an unexpected end);
- ends with `close`: graceful (``contentEnd``/``promptEnd``/``sessionEnd``, end of input, wait
  briefly for Bedrock to finish) or abrupt; both close the stream's own HTTP/2 connection, so
  nothing outlives it.

Each stream has its own SDK client and CRT transport (sharing the native event loop), so a
failed or abandoned stream can always be torn down without touching the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import warnings
from collections.abc import Sequence
from typing import Any

from aws_sdk_bedrock_runtime.client import AsyncBedrockRuntimeClient
from aws_sdk_bedrock_runtime.config import AsyncBedrockRuntimeConfig
from aws_sdk_bedrock_runtime.models import (
    BidirectionalInputPayloadPart,
    InvokeModelWithBidirectionalStreamInputChunk,
    InvokeModelWithBidirectionalStreamOperationInput,
    InvokeModelWithBidirectionalStreamOutputChunk,
)
from smithy_aws_core.identity import (
    AWSCredentialsIdentity,
    EnvironmentCredentialsResolver,
    IdentityChain,
    IMDSCredentialsResolver,
    StaticCredentialsResolver,
)
from smithy_http.aio.crt import AWSCRTHTTPClient

from sonicwire.server.backends.nova_sonic.codec import encode
from sonicwire.server.backends.nova_sonic.config import NovaSonicSettings
from sonicwire.server.backends.nova_sonic.credentials import fresh_identity, seconds_left
from sonicwire.server.backends.nova_sonic.decoder import decode_json
from sonicwire.server.backends.nova_sonic.errors import BACKEND_UNAVAILABLE, to_backend_error
from sonicwire.server.backends.nova_sonic.transport import make_transport, shared_event_loop
from sonicwire.server.core.errors import BackendError

__all__ = ["NovaStream", "StreamOpener"]

_log = logging.getLogger(__name__)
_END = object()  # end-of-output marker in a stream's queue


class StreamOpener:
    """Opens Nova streams with one process-wide credentials resolver (it caches credentials).

    Call `check_credentials` once before the first stream for a clear error, then `open`.
    """

    def __init__(self, settings: NovaSonicSettings, credentials_resolver: Any = None) -> None:
        self.settings = settings
        # An SDK identity resolver given by the embedding program (e.g. one that assumes a
        # role); None: built from the settings.
        self._credentials: Any = credentials_resolver
        self._credentials_http: AWSCRTHTTPClient | None = None
        self._lock = asyncio.Lock()

    async def _resolver(self) -> Any:
        async with self._lock:
            if self._credentials is None:
                self._credentials = await self._make_resolver()
            return self._credentials

    async def _make_resolver(self) -> Any:
        s = self.settings
        if s.aws_access_key_id and s.aws_secret_access_key:
            return StaticCredentialsResolver(
                identity=AWSCredentialsIdentity(
                    access_key_id=s.aws_access_key_id,
                    secret_access_key=s.aws_secret_access_key,
                    session_token=s.aws_session_token,
                )
            )
        if s.credentials == "environment":
            return EnvironmentCredentialsResolver()  # type: ignore[no-untyped-call]
        if s.credentials in ("container", "imds"):
            # Metadata endpoints are plain http://, so not the HTTP/2-only stream transport.
            self._credentials_http = AWSCRTHTTPClient(eventloop=shared_event_loop())
            if s.credentials == "imds":
                return IMDSCredentialsResolver(http_client=self._credentials_http)
            from smithy_aws_core.identity import ContainerCredentialsResolver

            with warnings.catch_warnings():
                # Deprecated in favour of a package that is not published for this SDK yet.
                warnings.simplefilter("ignore", DeprecationWarning)
                return ContainerCredentialsResolver(http_client=self._credentials_http)
        return await IdentityChain.create(
            AWSCredentialsIdentity,
            profile_name=s.profile,
            region_override=s.region,
            http_client=make_transport(s.ca_bundle),
        )

    async def check_credentials(self) -> None:
        """Resolve credentials now. Raises `BackendError` (``BACKEND_AUTH_FAILED``) if none."""
        resolver = await self._resolver()
        try:
            async with asyncio.timeout(self.settings.open_timeout_s):
                await resolver.get_identity(properties={})
        except Exception as exc:
            raise to_backend_error(exc, "AWS credentials") from exc

    async def open(self, opening: Sequence[dict[str, Any]], *, label: str = "") -> NovaStream:
        """Open a stream, send ``opening`` first, and wait for Bedrock's response headers.

        Raises `BackendError` (HTTP errors, connection failures, timeouts, bad config).
        """
        s = self.settings
        try:
            identity = await fresh_identity(await self._resolver(), s.credential_refresh_margin_s)
        except Exception as exc:
            raise to_backend_error(exc, "AWS credentials") from exc
        overrides: dict[str, Any] = {
            "transport": make_transport(s.ca_bundle),
            # Exactly the credentials whose expiry the session plans for (see credentials.py).
            "aws_credentials_identity_resolver": StaticCredentialsResolver(identity=identity),
        }
        if s.region:
            overrides["region"] = s.region
        if s.endpoint_url:
            overrides["endpoint_uri"] = s.endpoint_url
        stream: NovaStream | None = None
        try:
            config = await AsyncBedrockRuntimeConfig.resolve(profile=s.profile, **overrides)
            if not config.region:
                config.region = "us-east-1"
            stream = NovaStream(AsyncBedrockRuntimeClient(config=config), label)
            stream.credentials_ttl_s = seconds_left(identity)
            async with asyncio.timeout(s.open_timeout_s):
                await stream._start(s.model_id, opening)
        except BaseException as exc:
            if stream is not None:
                await asyncio.shield(stream._release())
            if isinstance(exc, Exception):
                raise to_backend_error(exc, f"opening the Nova Sonic stream{label}") from exc
            raise
        return stream

    async def aclose(self) -> None:
        if self._credentials_http is not None:
            await self._credentials_http.close()
            self._credentials_http = None


async def _close_client(client: AsyncBedrockRuntimeClient) -> None:
    with contextlib.suppress(Exception, TimeoutError):
        async with asyncio.timeout(2):
            await asyncio.shield(client.close())


# Input events waiting for the HTTP/2 writer (~5 s of 20 ms audio): past it `writable` makes the
# caller wait, so a client faster than Bedrock is slowed by backpressure, not buffered.
MAX_PENDING_INPUT = 256


class NovaStream:
    """One open stream (see the module docstring). Created by `StreamOpener.open`."""

    def __init__(self, client: AsyncBedrockRuntimeClient, label: str) -> None:
        self.label = label
        self._client = client
        self._duplex: Any = None
        self._receiver: Any = None
        self._outbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._room = asyncio.Event()  # set while the outbox is under MAX_PENDING_INPUT
        self._room.set()
        self._inbox: asyncio.Queue[Any] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._body_task: asyncio.Task[Any] | None = None
        self._input_closed = False
        self._closed = False
        self.failure: BackendError | None = None
        # Seconds the stream's credentials had left when it opened (None: they do not expire).
        self.credentials_ttl_s: float | None = None

    async def _start(self, model_id: str, opening: Sequence[dict[str, Any]]) -> None:
        before = asyncio.all_tasks()
        self._duplex = await self._client.invoke_model_with_bidirectional_stream(
            InvokeModelWithBidirectionalStreamOperationInput(model_id=model_id)
        )
        self._writer = asyncio.create_task(self._write_loop(), name=f"nova-writer{self.label}")
        # Bedrock may hold its response headers until the session starts: send first.
        self.send_many(opening)
        try:
            _, self._receiver = await self._duplex.await_output()
        finally:
            self._body_task = _body_task(asyncio.all_tasks() - before)
        self._reader = asyncio.create_task(self._read_loop(), name=f"nova-reader{self.label}")

    # --- input ---------------------------------------------------------------------------

    def send(self, event: dict[str, Any]) -> None:
        """Queue one input event; events are written in the order they were queued."""
        if not self._input_closed:
            self._outbox.put_nowait(encode(event))
            if self._outbox.qsize() >= MAX_PENDING_INPUT:
                self._room.clear()

    def send_many(self, events: Sequence[dict[str, Any]]) -> None:
        for event in events:
            self.send(event)

    def end_input(self, closing: Sequence[dict[str, Any]] = ()) -> None:
        """Queue ``closing`` events, then the end of input; later sends are dropped."""
        self.send_many(closing)
        if not self._input_closed:
            self._input_closed = True
            self._outbox.put_nowait(None)

    async def writable(self) -> None:
        """Wait while `MAX_PENDING_INPUT` events wait for the writer (returns at once once the
        stream failed or closed: nothing is written any more)."""
        await self._room.wait()

    async def _write_loop(self) -> None:
        input_stream = self._duplex.input_stream
        try:
            while (data := await self._outbox.get()) is not None:
                if self._outbox.qsize() < MAX_PENDING_INPUT:
                    self._room.set()
                await input_stream.send(
                    InvokeModelWithBidirectionalStreamInputChunk(
                        value=BidirectionalInputPayloadPart(bytes_=data)
                    )
                )
            await input_stream.close()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._fail(to_backend_error(exc, f"writing to the Nova Sonic stream{self.label}"))

    # --- output --------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        try:
            while (chunk := await self._receiver.receive()) is not None:
                if not isinstance(chunk, InvokeModelWithBidirectionalStreamOutputChunk):
                    _log.debug("nova%s: ignoring output member %r", self.label, chunk)
                    continue
                data = chunk.value.bytes_
                event = decode_json(data) if data else None
                if event is not None:
                    self._inbox.put_nowait(event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._fail(to_backend_error(exc, f"Nova Sonic stream{self.label}"))
            return
        if self._input_closed:
            self._inbox.put_nowait(_END)
        else:
            # A dropped connection or reset stream looks like a normal end to the SDK.
            self._fail(
                BackendError(
                    BACKEND_UNAVAILABLE,
                    f"Bedrock ended the Nova Sonic stream{self.label} unexpectedly",
                    retryable=True,
                )
            )

    def _fail(self, error: BackendError) -> None:
        self._room.set()  # nobody waits for a writer that is gone
        if self.failure is None:
            self.failure = error
            self._inbox.put_nowait(error)

    async def receive(self) -> dict[str, Any] | None:
        """The next output event; None after a clean end. Raises `BackendError` on failure."""
        item = await self._inbox.get()
        if item is _END:
            self._inbox.put_nowait(_END)  # stay ended for later callers
            return None
        if isinstance(item, BackendError):
            self._inbox.put_nowait(item)
            raise item
        assert isinstance(item, dict)
        return item

    # --- closing -------------------------------------------------------------------------

    async def close(self, closing: Sequence[dict[str, Any]] = (), *, timeout: float = 3.0) -> None:
        """End the stream: queue ``closing`` and the end of input, give Bedrock up to
        ``timeout`` seconds to finish its output (which is discarded), then release the
        connection and tasks. With ``timeout=0`` it is abrupt. Safe to call twice; if the
        caller is cancelled midway, the release still completes before the cancel propagates."""
        if self._closed:
            return
        self._closed = True
        try:
            if self.failure is None and timeout > 0:
                self.end_input(closing)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        while await self._drain_one():
                            pass
            else:
                await self._best_effort_end(closing)
        finally:
            release = asyncio.ensure_future(self._release())
            try:
                await asyncio.shield(release)
            except asyncio.CancelledError:
                await release  # bounded: finish freeing the connection, then propagate
                raise

    async def _best_effort_end(self, closing: Sequence[dict[str, Any]]) -> None:
        """After a failure (or an abrupt close) still offer promptEnd/sessionEnd, as the Nova
        docs recommend, if the writer still runs; waits at most 0.2 s, never for output."""
        writer = self._writer
        if not closing or writer is None or writer.done():
            return
        self.end_input(closing)
        with contextlib.suppress(TimeoutError, Exception):
            async with asyncio.timeout(0.2):
                await asyncio.shield(writer)

    async def _drain_one(self) -> bool:
        try:
            return await self.receive() is not None
        except BackendError:
            return False

    async def _release(self) -> None:
        """Free everything: request body, connection, tasks. Bounded in time."""
        self._input_closed = True
        self._room.set()
        writer, reader = self._writer, self._reader
        if writer is not None and not writer.done():
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
        if self._duplex is not None:
            # Ending the request body lets the CRT's body task finish instead of waiting
            # forever for data (it is the SDK's task, not ours, so we cannot cancel it).
            with contextlib.suppress(Exception, TimeoutError):
                async with asyncio.timeout(0.5):
                    await self._duplex.input_stream.close()
        await _close_client(self._client)
        # With the connection gone the reader's pending receive ends by itself; cancelling
        # it instead makes the CRT complain about a cancelled future.
        if reader is not None and not reader.done():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await asyncio.wait({reader})
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        await _settle(self._body_task)


async def _settle(task: asyncio.Task[Any] | None) -> None:
    """Let the CRT's request-body task end and consume its outcome: when Bedrock ended the
    stream first, writing the final empty frame fails, which is expected here and would
    otherwise be logged as an unretrieved task exception."""
    if task is None:
        return
    if not task.done():
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.5):
                await asyncio.wait({task})
    if not task.done():
        task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def _body_task(new_tasks: set[asyncio.Task[Any]]) -> asyncio.Task[Any] | None:
    """Find the CRT's request-body task among tasks created while the stream was opened."""
    for task in new_tasks:
        coro = task.get_coro()
        if getattr(coro, "__qualname__", "").endswith("_set_request_body_generator"):
            return task
    return None
