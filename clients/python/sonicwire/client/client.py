"""The async Sonicwire client.

::

    async with Client("voice.example.com:443", api_key=key) as client:
        voices = await client.list_voices()
        async with client.converse(session_config(voice=voices[0].id)) as conversation:
            ...

The generated ``sonicwire.v1`` stubs are reached only through this module.
"""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import json
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata as _metadata
from types import TracebackType
from typing import Any, Self

import grpc
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sonicwire.v1 import voice_service_pb2 as pb
from sonicwire.v1 import voice_service_pb2_grpc as pb_grpc

from .config import session_config
from .conversation import Conversation
from .errors import DeadlineExceededError, UnavailableError, error_from_rpc
from .resume import AutoResume
from .retry import RetryPolicy
from .tools import ClientTool, ToolHandler, declare_tools

__all__ = [
    "DEFAULT_TARGET",
    "Client",
    "HealthStatus",
    "ServerTool",
    "TlsOptions",
    "Voice",
    "is_loopback",
]

DEFAULT_TARGET = "127.0.0.1:50051"
"""Where a local Sonicwire server listens by default."""


def _version() -> str:
    try:
        return _metadata.version("sonicwire")
    except _metadata.PackageNotFoundError:
        return "0"


@dataclass(frozen=True, slots=True)
class TlsOptions:
    """TLS settings of the channel; all ``None`` means TLS with the system's root certificates.

    Attributes:
        root_certificates: PEM CA bundle to verify the server with.
        certificate_chain: PEM client certificate, for mutual TLS.
        private_key: PEM key of the client certificate, for mutual TLS.
        server_name: expected server name when it differs from the target's host.
    """

    root_certificates: bytes | None = field(default=None, repr=False)
    certificate_chain: bytes | None = field(default=None, repr=False)
    private_key: bytes | None = field(default=None, repr=False)
    server_name: str | None = None

    def __post_init__(self) -> None:
        if (self.certificate_chain is None) != (self.private_key is None):
            raise ValueError("mutual TLS needs both certificate_chain and private_key")

    @classmethod
    def from_files(
        cls,
        *,
        ca: str | os.PathLike[str] | None = None,
        cert: str | os.PathLike[str] | None = None,
        key: str | os.PathLike[str] | None = None,
        server_name: str | None = None,
    ) -> TlsOptions:
        """Load PEM files: ``ca`` to verify the server, ``cert`` + ``key`` for mutual TLS.

        Raises:
            OSError: a file cannot be read.
            ValueError: only one of ``cert`` and ``key`` is given.
        """

        def read(path: str | os.PathLike[str] | None) -> bytes | None:
            if path is None:
                return None
            with open(path, "rb") as f:
                return f.read()

        return cls(read(ca), read(cert), read(key), server_name)


class HealthStatus(enum.IntEnum):
    """Serving status from ``grpc.health.v1``; prints as its name (``SERVING``)."""

    UNKNOWN = 0
    SERVING = 1
    NOT_SERVING = 2
    SERVICE_UNKNOWN = 3

    def __str__(self) -> str:
        return self.name

    def __format__(self, spec: str) -> str:
        return format(self.name, spec)


@dataclass(frozen=True, slots=True)
class Voice:
    """A voice a backend can speak with; put ``id`` in ``session_config(voice=...)``."""

    id: str
    language_code: str
    backend: str
    default: bool
    # Every language it speaks (``language_code`` first); empty means only that one.
    language_codes: tuple[str, ...] = ()
    # It speaks every language of its model (Nova 2's tiffany and matthew).
    polyglot: bool = False
    # The backend model it belongs to (nova-sonic: the Bedrock model id).
    model: str = ""


@dataclass(frozen=True, slots=True)
class ServerTool:
    """A tool the server runs itself."""

    name: str
    description: str
    parameters_json_schema: str

    @property
    def parameters(self) -> dict[str, Any]:
        """The JSON schema of the arguments as a dict (empty when unset or invalid)."""
        try:
            value = json.loads(self.parameters_json_schema or "{}")
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}


def is_loopback(target: str) -> bool:
    """Whether a gRPC target names this machine (loopback address, localhost, unix socket)."""
    if target.startswith(("unix:", "unix-abstract:")):
        return True
    for scheme in ("dns:///", "dns:", "ipv4:", "ipv6:"):
        if target.startswith(scheme):
            target = target[len(scheme) :]
            if scheme in ("ipv4:", "ipv6:") and "," in target:
                # An address list (client-side balancing): loopback if every address is.
                return all(is_loopback(scheme + address) for address in target.split(","))
            break
    if target.startswith("["):
        host = target[1 : target.find("]")]
    elif target.count(":") > 1:
        host = target  # a bare IPv6 address
    else:
        host = target.split(":", 1)[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Client:
    """Async client of a Sonicwire server.

    Use as ``async with Client(...) as client`` or call :meth:`close` when done. The channel is
    created on first use, inside the running event loop.
    """

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        api_key: str | None = None,
        tls: TlsOptions | None = None,
        insecure: bool | None = None,
        timeout: float | None = 10.0,
        retry: RetryPolicy | None = None,
        metadata: Sequence[tuple[str, str]] = (),
        options: Sequence[tuple[str, Any]] = (),
        channel: aio.Channel | None = None,
        stub: pb_grpc.VoiceServiceAsyncStub | None = None,
        health_stub: Any = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        auto_resume: AutoResume | None = None,
    ) -> None:
        """Configure the client.

        Args:
            target: ``host:port`` (or any gRPC target, e.g. ``unix:/run/sonicwire.sock``).
            api_key: sent as ``x-api-key`` metadata on every call.
            tls: TLS settings (CA bundle, client certificate for mTLS, server name).
            insecure: ``True`` for a plaintext channel, ``False`` for TLS. By default a
                loopback target is plaintext and any other uses TLS.
            timeout: default deadline in seconds of unary calls and of a conversation's start
                (until ``SessionStarted``), over all retries; ``None`` for no deadline.
            retry: retry policy for UNAVAILABLE at connect; ``RetryPolicy.none()`` disables it.
            metadata: extra metadata sent on every call.
            options: extra gRPC channel options.
            channel: a ready ``grpc.aio.Channel`` to use instead of creating one; the client
                does not close it.
            stub: a ``VoiceService`` stub (or a test double) to use instead of the generated
                one; no channel is needed for voice calls then.
            health_stub: a ``grpc.health.v1.Health`` stub (or a test double).
            sleep: the coroutine used for retry backoff (for tests).
            auto_resume: how conversations survive their server replica going away (resume
                on another one through this target); default ``AutoResume()`` (on, 10 s
                microphone buffer). ``AutoResume.off()`` ends them with the error instead.

        Raises:
            ValueError: ``insecure=True`` together with ``tls``.
        """
        if insecure and tls is not None:
            raise ValueError("pass either tls or insecure=True, not both")
        self.target = target
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.insecure = is_loopback(target) and tls is None if insecure is None else insecure
        self._tls = tls
        self._metadata: tuple[tuple[str, str], ...] = tuple(metadata) + (
            (("x-api-key", api_key),) if api_key else ()
        )
        self._options = tuple(options)
        self._channel = channel
        self._owns_channel = channel is None
        self._stub = stub
        self._health_stub = health_stub
        self._sleep = sleep
        self.auto_resume = auto_resume if auto_resume is not None else AutoResume()

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the channel the client created (an injected channel is left open)."""
        if self._channel is not None and self._owns_channel:
            await self._channel.close()
            self._channel = None

    def _channel_options(self) -> list[tuple[str, Any]]:
        backoff_ms = max(int(self.retry.initial_backoff * 1000 * (1 - self.retry.jitter)), 1)
        options: list[tuple[str, Any]] = [
            ("grpc.primary_user_agent", f"sonicwire-python/{_version()}"),
            # A failed connect puts the channel in a reconnect backoff during which every RPC
            # fails at once; keep it shorter than our retry waits so a retry really retries.
            ("grpc.initial_reconnect_backoff_ms", backoff_ms),
            ("grpc.min_reconnect_backoff_ms", backoff_ms),
            ("grpc.max_reconnect_backoff_ms", max(int(self.retry.max_backoff * 1000), 1)),
        ]
        if self._tls is not None and self._tls.server_name:
            options.append(("grpc.ssl_target_name_override", self._tls.server_name))
        options.extend(self._options)
        return options

    def _get_channel(self) -> aio.Channel:
        if self._channel is None:
            if self.insecure:
                self._channel = aio.insecure_channel(self.target, options=self._channel_options())
            else:
                tls = self._tls or TlsOptions()
                credentials = grpc.ssl_channel_credentials(
                    root_certificates=tls.root_certificates,
                    private_key=tls.private_key,
                    certificate_chain=tls.certificate_chain,
                )
                self._channel = aio.secure_channel(
                    self.target, credentials, options=self._channel_options()
                )
        return self._channel

    def _voice_stub(self) -> pb_grpc.VoiceServiceAsyncStub:
        if self._stub is None:
            self._stub = pb_grpc.VoiceServiceStub(self._get_channel())
        return self._stub

    def _health(self) -> Any:
        if self._health_stub is None:
            self._health_stub = health_pb2_grpc.HealthStub(self._get_channel())
        return self._health_stub

    # -- unary calls -----------------------------------------------------------------------

    async def _unary[T](self, method: Callable[..., Awaitable[T]], request: Any) -> T:
        loop = asyncio.get_running_loop()
        timeout = self.timeout
        deadline = None if timeout is None else loop.time() + timeout
        attempt = 0
        while True:
            attempt += 1
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                raise DeadlineExceededError(
                    f"deadline of {timeout:g}s exceeded", code=grpc.StatusCode.DEADLINE_EXCEEDED
                )
            try:
                return await method(request, metadata=self._metadata, timeout=remaining)
            except aio.AioRpcError as exc:
                error = error_from_rpc(exc)
            if not isinstance(error, UnavailableError) or attempt >= self.retry.max_attempts:
                raise error
            delay = self.retry.delay(attempt)
            if deadline is not None and loop.time() + delay >= deadline:
                raise error
            await self._sleep(delay)

    async def list_voices(self, backend: str = "", model: str = "") -> list[Voice]:
        """List the voices the server can speak with.

        Args:
            backend: only voices of this backend; empty for the server's configured backend.
            model: only voices of this model of the backend (nova-sonic: a Bedrock model id);
                empty for the model the server is configured with.

        Returns:
            The voices, in the server's order.

        Raises:
            SonicwireError: the typed error for a non-OK status (``UnavailableError`` once
                the retries are exhausted, ``UnauthenticatedError`` for a bad key, ...).
        """
        response: pb.ListVoicesResponse = await self._unary(
            self._voice_stub().ListVoices,
            pb.ListVoicesRequest(backend=backend, model=model),
        )
        return [
            Voice(
                id=v.id,
                language_code=v.language_code,
                backend=v.backend,
                default=v.default,
                language_codes=tuple(v.language_codes),
                polyglot=v.polyglot,
                model=v.model,
            )
            for v in response.voices
        ]

    async def list_tools(self) -> list[ServerTool]:
        """List the tools the server runs itself.

        Args:

        Returns:
            The server-side tools.

        Raises:
            SonicwireError: the typed error for a non-OK status.
        """
        response: pb.ListToolsResponse = await self._unary(
            self._voice_stub().ListTools, pb.ListToolsRequest()
        )
        return [
            ServerTool(
                name=t.name,
                description=t.description,
                parameters_json_schema=t.parameters_json_schema,
            )
            for t in response.tools
        ]

    async def health(self, service: str = "") -> HealthStatus:
        """Ask ``grpc.health.v1.Health/Check`` for a service's status.

        Args:
            service: ``""`` for the whole server, or e.g. ``"sonicwire.v1.VoiceService"``.

        Returns:
            The status; only ``HealthStatus.SERVING`` means ready.

        Raises:
            NotFoundError: the server does not know ``service``.
            SonicwireError: the typed error for any other non-OK status.
        """
        response = await self._unary(
            self._health().Check,
            health_pb2.HealthCheckRequest(service=service),
        )
        try:
            return HealthStatus(int(response.status))
        except ValueError:
            return HealthStatus.UNKNOWN

    # -- conversations ---------------------------------------------------------------------

    def converse(
        self,
        config: pb.SessionConfig | None = None,
        *,
        tools: Mapping[str, ClientTool | ToolHandler] | None = None,
        timeout: float | None = None,
        auto_resume: AutoResume | None = None,
    ) -> Conversation:
        """Prepare a conversation; enter it with ``async with``.

        Args:
            config: the session configuration (see ``session_config()``); defaults to 16 kHz
                mono PCM in and out with the server's defaults for everything else.
            tools: client-side tools by name (a handler or a ``ClientTool``); they are
                declared in ``config.client_tools`` and their calls answered automatically.
            timeout: deadline of the whole conversation in seconds; ``None`` (the default)
                for none. The wait for ``SessionStarted`` uses the client's ``timeout``.
            auto_resume: overrides the client's ``auto_resume`` for this conversation.

        Returns:
            A :class:`Conversation`, not yet started.

        Raises:
            ValueError: an invalid tool name.
        """
        config = config if config is not None else session_config()
        resolved: dict[str, ClientTool] = {}
        if tools:
            config, resolved = declare_tools(config, tools)

        def start_call() -> Any:
            return self._voice_stub().Converse(metadata=self._metadata, timeout=timeout)

        start_timeout = self.timeout
        if timeout is not None:
            start_timeout = timeout if start_timeout is None else min(timeout, start_timeout)
        return Conversation(
            start_call,
            config,
            tools=resolved,
            retry=self.retry,
            start_timeout=start_timeout,
            sleep=self._sleep,
            auto_resume=auto_resume if auto_resume is not None else self.auto_resume,
        )
