"""The gateway server: the browser page, ``/health`` and ``WS /ws`` on one port.

::

    async with Gateway(GatewayConfig(port=0, grpc_target=target)) as gateway:
        print(gateway.url)          # http://127.0.0.1:PORT/

Routes (``GET`` only): ``/`` and the page's static files; ``/health`` (200 with
``{"status": "ok", "service": "sonicwire-gateway", "grpc": "SERVING"}`` when the gRPC server
is serving, else 503 with ``"status": "degraded"``); ``/livez`` (200 while the process runs);
``/ws`` (the WebSocket, see ``docs/gateway.md``); ``/twilio`` (Twilio Media Streams, see
``docs/telephony.md``). Everything else is 404.
"""

from __future__ import annotations

import asyncio
import logging
import re
import signal
import ssl
from http import HTTPStatus
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import InvalidHeader
from websockets.http11 import Request, Response

from .config import GatewayConfig
from .connection import Connection, GatewayStats, reject
from .guard import GuardedConnection
from .protocol import CloseCode, Reason, error_event
from .routes import (
    PAGE_METHODS,
    UPGRADE_METHODS,
    StaticFiles,
    head_response,
    json_response,
    method_not_allowed,
    offered_subprotocols,
    origin_allowed,
    select_subprotocol,
    text_response,
)
from .twilio import TWILIO_PATH, TwilioCall, TwilioStats, check_handshake, is_signed
from .upstream import Upstream

__all__ = ["SERVICE_NAME", "Gateway", "RedactKeys", "run_gateway"]

log = logging.getLogger("sonicwire.gateway")

SERVICE_NAME = "sonicwire-gateway"
"""The ``service`` reported by ``/health``."""

WS_PATH = "/ws"

_KEY_IN_TEXT = re.compile(r"key\.[!#$%&'*+.^_`|~0-9A-Za-z-]+")


class RedactKeys(logging.Filter):
    """Masks ``key.<token>`` subprotocols in log records: websockets logs handshake headers
    at DEBUG level, and API keys must never reach the logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _KEY_IN_TEXT.sub("key.<redacted>", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


# Bytes asked of the kernel per socket read on asyncio's own loop. Its transports read with
# recv(256 KiB): each read allocates (mmap), shrinks (mremap) and frees (munmap) a buffer above
# malloc's mmap threshold, ~10% of the gateway's CPU for 20 ms audio frames of ~1 KB. 64 KiB
# stays below the threshold; a larger message simply takes more reads. (uvloop, the default
# loop when installed, reads into one reused buffer and needs none of this.)
_READ_SIZE = 64 * 1024


def _shrink_reads(transport: object) -> None:
    """Make an asyncio selector transport read at most :data:`_READ_SIZE` bytes at a time."""
    if isinstance(getattr(type(transport), "max_size", None), int):
        transport.max_size = _READ_SIZE  # type: ignore[attr-defined]


_ws_log = logging.getLogger("sonicwire.gateway.websockets")
_ws_log.addFilter(RedactKeys())


class Gateway:
    """A running WebSocket gateway. Use ``async with`` or :meth:`start` / :meth:`aclose`."""

    def __init__(self, config: GatewayConfig, *, upstream: Upstream | None = None) -> None:
        """Prepare the gateway; nothing is bound until :meth:`start`.

        Args:
            config: the settings.
            upstream: the gRPC side to use; by default one is made from ``config`` (and
                closed with the gateway).
        """
        self.config = config
        self.stats = GatewayStats()
        self.twilio_stats = TwilioStats()
        self._upstream = upstream
        self._owns_upstream = upstream is None
        self._server: Server | None = None
        self._static: StaticFiles | None = None
        self.port = config.port

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def upstream(self) -> Upstream:
        """The gRPC side (available after :meth:`start`)."""
        if self._upstream is None:
            raise RuntimeError("the gateway has not started")
        return self._upstream

    @property
    def url(self) -> str:
        """The page's URL."""
        scheme = "https" if self.config.tls_cert else "http"
        host = self.config.host
        host = f"[{host}]" if ":" in host else host
        return f"{scheme}://{host}:{self.port}/"

    @property
    def ws_url(self) -> str:
        """The WebSocket's URL."""
        return self.url.replace("http", "ws", 1) + WS_PATH.lstrip("/")

    async def start(self) -> None:
        """Bind and start serving.

        Raises:
            OSError: the address cannot be bound or a file cannot be read.
        """
        config = self.config
        self._static = StaticFiles(config.static_dir)
        if self._upstream is None:
            self._upstream = Upstream(config)
        context = None
        if config.tls_cert:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(config.tls_cert, config.tls_key)
        ping = config.ping_interval_s or None
        self._server = await serve(
            self._handle,
            config.host,
            config.port,
            process_request=self._process_request,
            create_connection=GuardedConnection,  # a pinging client that never reads
            select_subprotocol=select_subprotocol,
            # Audio does not compress; deflate would only cost CPU and memory per socket.
            compression=None,
            max_size=config.max_message_bytes,
            ping_interval=ping,
            ping_timeout=ping,
            close_timeout=2.0,
            server_header=SERVICE_NAME,
            logger=_ws_log,
            ssl=context,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        log.info(
            "gateway on %s (to the server: %s, event loop %s)",
            self.url,
            self._upstream.route,
            type(asyncio.get_running_loop()).__module__,
        )

    async def aclose(self) -> None:
        """Stop: close every socket with 1001 (going away), then the gRPC channel."""
        if self._server is not None:
            self._server.close(close_connections=True)
            await self._server.wait_closed()
            self._server = None
        if self._upstream is not None and self._owns_upstream:
            await self._upstream.aclose()
            self._upstream = None

    # -- HTTP --------------------------------------------------------------------------------

    async def _process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        path = urlsplit(request.path).path
        allowed = UPGRADE_METHODS if path in (WS_PATH, TWILIO_PATH) else PAGE_METHODS
        if request.method not in allowed:
            return method_not_allowed(allowed)
        response = await self._route(request, path)
        if response is not None and request.method == "HEAD":
            return head_response(response)
        return response

    async def _route(self, request: Request, path: str) -> Response | None:
        if path == TWILIO_PATH:
            return check_handshake(request, self.config)
        if path == WS_PATH:
            origin = request.headers.get("Origin")
            if not origin_allowed(origin, request.headers.get("Host"), self.config.allowed_origins):
                log.info("refused a WebSocket from origin %r", origin)
                return text_response(HTTPStatus.FORBIDDEN, "origin not allowed")
            try:
                offered_subprotocols(request.headers)
            except InvalidHeader:
                # Checked here so that websockets' own 400 page, which quotes the header
                # (and so the key), is never sent.
                return text_response(
                    HTTPStatus.BAD_REQUEST,
                    "malformed Sec-WebSocket-Protocol header: offer 'sonicwire.v1' and "
                    "'key.<token>' (API keys must be token characters, e.g. base64url)",
                )
            return None
        if path == "/health":
            grpc_status = await self.upstream.health()
            ok = grpc_status == "SERVING"
            return json_response(
                HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE,
                {
                    "status": "ok" if ok else "degraded",
                    "service": SERVICE_NAME,
                    "grpc": grpc_status,
                    "connections": self.stats.connections_active,
                },
            )
        if path == "/livez":
            return json_response(HTTPStatus.OK, {"status": "ok", "service": SERVICE_NAME})
        assert self._static is not None
        found = self._static.response(path)
        return found or text_response(HTTPStatus.NOT_FOUND, "not found")

    # -- WebSocket ---------------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        stats = self.stats
        stats.connections_total += 1
        if stats.connections_active >= self.config.max_connections:
            stats.closes[CloseCode.TRY_AGAIN_LATER] += 1
            stats.errors[Reason.GATEWAY_CONNECTION_LIMIT] += 1
            await reject(
                ws,
                CloseCode.TRY_AGAIN_LATER,
                error_event(
                    "RESOURCE_EXHAUSTED",
                    Reason.GATEWAY_CONNECTION_LIMIT,
                    "the gateway is at its connection limit; try again later",
                    fatal=True,
                ),
            )
            return
        stats.connections_active += 1
        _shrink_reads(ws.transport)
        log.info("ws %s: opened from %s", ws.id, ws.remote_address)
        try:
            request = ws.request
            if request is not None and urlsplit(request.path).path == TWILIO_PATH:
                signed = is_signed(request, self.config)
                call = TwilioCall(
                    ws,
                    upstream=self.upstream,
                    config=self.config,
                    stats=self.twilio_stats,
                    signed=signed,
                )
                stats.closes[await call.run()] += 1
                return
            await Connection(ws, upstream=self.upstream, config=self.config, stats=stats).run()
        finally:
            stats.connections_active -= 1


async def run_gateway(config: GatewayConfig) -> None:
    """Run a gateway until SIGTERM or SIGINT, printing the page's URL."""
    async with Gateway(config) as gateway:
        print(f"sonicwire gateway: open {gateway.url} (gRPC {config.grpc_target})", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("signal received: closing sockets")
