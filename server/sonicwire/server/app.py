"""Build, serve and drain the gRPC server.

`start_server` binds and starts everything (VoiceService, grpc.health.v1, reflection) and
returns a `RunningServer`; `RunningServer.drain` is the SIGTERM sequence:

1. health goes NOT_SERVING for every service at once (probes and load balancers stop sending);
2. new streams are refused with UNAVAILABLE (``SERVER_DRAINING``);
3. live streams get `GoingAway` and the grace period to finish;
4. what is still running is ended with UNAVAILABLE, then the server stops.

grpc.aio's ``server.stop(grace)`` alone would keep live streams running for the grace and then
cancel them without a word, which is why the steps above come first.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import signal
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from sonicwire.server import heap, native
from sonicwire.server.backends.base import Backend
from sonicwire.server.backends.registry import create_backend
from sonicwire.server.config import ServerConfig
from sonicwire.server.local_channel import LocalChannel
from sonicwire.server.local_rpc import HandlerRegistry, LocalServer, TeeSink
from sonicwire.server.metrics import serve_metrics
from sonicwire.server.runtime import ServerRuntime
from sonicwire.server.servicer import VoiceServicer, add_voice_service
from sonicwire.server.side_streams import SideStreamLimit
from sonicwire.v1 import voice_service_pb2 as pb

__all__ = ["RunningServer", "grpc_server_options", "is_loopback", "serve", "start_server"]

log = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["VoiceService"].full_name


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class RunningServer:
    server: grpc.aio.Server
    runtime: ServerRuntime
    health: health.aio.HealthServicer
    port: int
    health_server: grpc.aio.Server | None = None
    warm_up: asyncio.Task[None] | None = None
    # The same handlers, served in process (``sonicwire up``'s gateway): see `local_channel`.
    local: LocalServer | None = None
    # The open health Watch and reflection streams and their cap (`side_streams`).
    side_streams: SideStreamLimit | None = None

    def local_channel(self) -> LocalChannel:
        """A ``grpc.aio.Channel`` to this server in this event loop, with no network between."""
        if self.local is None:
            raise RuntimeError("this server serves no in-process calls")
        return LocalChannel(self.local)

    @property
    def target(self) -> str:
        host = self.runtime.config.host
        return f"{host}:{self.port}"

    async def drain(self, grace_s: float | None = None) -> None:
        """The SIGTERM sequence (see the module docstring)."""
        grace = self.runtime.config.drain_grace_s if grace_s is None else grace_s
        runtime = self.runtime
        runtime.draining = True
        runtime.drain_started.set()
        await self.health.enter_graceful_shutdown()
        # With no await between them: a stream that goes live later tells itself (`runtime`).
        runtime.drain_ends_at = asyncio.get_running_loop().time() + grace
        live = list(runtime.conversations)
        log.info("draining: %d live conversations, grace %.1f s", len(live), grace)
        for conversation in live:
            conversation.go_away("server draining", grace)
        await runtime.wait_idle(grace)
        for conversation in list(runtime.conversations):
            conversation.terminate(
                runtime.draining_error("the server shut down; reconnect elsewhere")
            )
        # Give the terminated streams a moment to send their status, then stop for good.
        await self._stop_servers(1.0)
        await self._stop_health()
        await self._stop_warm_up()
        await runtime.backend.aclose()

    async def stop(self) -> None:
        await self._stop_servers(None)
        await self._stop_health()
        await self._stop_warm_up()
        await self.runtime.backend.aclose()

    async def _stop_servers(self, grace: float | None) -> None:
        # In-process calls end like network ones: refused from now on, UNAVAILABLE after the grace.
        if self.local is None:
            await self.server.stop(grace)
            return
        await asyncio.gather(self.server.stop(grace), self.local.stop(grace))

    async def _stop_warm_up(self) -> None:
        if self.warm_up is not None and not self.warm_up.done():
            self.warm_up.cancel()
            await asyncio.gather(self.warm_up, return_exceptions=True)

    async def _stop_health(self) -> None:
        if self.health_server is not None:
            await self.health_server.stop(None)


def _credentials(config: ServerConfig) -> grpc.ServerCredentials | None:
    if not config.tls_cert:
        return None
    with open(config.tls_cert, "rb") as f:
        chain = f.read()
    with open(config.tls_key, "rb") as f:
        key = f.read()
    if config.tls_client_ca:
        with open(config.tls_client_ca, "rb") as f:
            client_ca = f.read()
        return grpc.ssl_server_credentials([(key, chain)], client_ca, require_client_auth=True)
    return grpc.ssl_server_credentials([(key, chain)])


def grpc_server_options(config: ServerConfig) -> list[tuple[str, Any]]:
    """The gRPC port's channel arguments for ``config`` (also what ``bench.gateway_path``
    serves the gateway's hop with, so a change here shows in its counts)."""
    options: list[tuple[str, Any]] = [
        # Off unless a supervisor runs several workers on the port: then the kernel spreads
        # new connections across them (see `sonicwire.server.workers`).
        ("grpc.so_reuseport", 1 if config.reuse_port else 0),
        ("grpc.max_receive_message_length", config.max_message_bytes),
        # Long streams: accept client keepalive pings every 10 s, even without data in flight.
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
        ("grpc.http2.max_ping_strikes", 0),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        # A connection must finish its TLS/HTTP/2 handshake in time: idle sockets that never
        # speak (no key was ever checked) cannot pile up to the fd limit.
        ("grpc.server_handshake_timeout_ms", max(1, int(config.handshake_timeout_s * 1000))),
        ("grpc.http2.settings_timeout", max(1, int(config.handshake_timeout_s * 1000))),
    ]
    if config.max_connections:
        # Past this many open connections grpc closes new ones at once (clients: UNAVAILABLE).
        options.append(("grpc.max_allowed_incoming_connections", config.max_connections))
    if config.max_connection_age_s:
        # Long-lived HTTP/2 connections pin clients to one replica; ageing them out (with a
        # grace for live conversations) lets clients reconnect and rebalance.
        options += [
            ("grpc.max_connection_age_ms", int(config.max_connection_age_s * 1000)),
            ("grpc.max_connection_age_grace_ms", int(config.max_connection_age_grace_s * 1000)),
        ]
    return options


async def start_server(config: ServerConfig, backend: Backend | None = None) -> RunningServer:
    """Bind and start the server. Raises `ValueError` for an unsafe configuration."""
    runtime = ServerRuntime(
        config, backend or create_backend(config.backend, **config.backend_options)
    )
    if not runtime.authenticator.enabled and not is_loopback(config.host):
        if not config.allow_unauthenticated:
            raise ValueError(
                f"refusing to listen on {config.host} with no API key: configure --api-key "
                "(SONICWIRE_API_KEYS) or pass --allow-unauthenticated"
            )
        log.warning("listening on %s WITHOUT authentication", config.host)
    side_streams = SideStreamLimit(config.max_side_streams)
    server = grpc.aio.server(options=grpc_server_options(config), interceptors=(side_streams,))
    # Every handler goes to the network server and to the registry in-process calls use.
    registry = HandlerRegistry()
    both = TeeSink(server, registry)
    add_voice_service(VoiceServicer(runtime), both)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, both)
    local = LocalServer(registry, max_receive_message_length=config.max_message_bytes)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    address = f"{config.host}:{config.port}"
    credentials = _credentials(config)
    if credentials is None:
        port = server.add_insecure_port(address)
    else:
        port = server.add_secure_port(address, credentials)
    health_server = None
    if config.health_port or config.worker_health_socket:
        # Kubelet probes speak plaintext with no client certificate: when the main port
        # requires mTLS, this port serves only grpc.health.v1 (same servicer, same status).
        # A worker answers its supervisor on a private Unix socket instead.
        health_server = grpc.aio.server(
            options=[("grpc.so_reuseport", 0)], interceptors=(side_streams,)
        )
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, health_server)
        if config.health_port:
            health_server.add_insecure_port(f"{config.host}:{config.health_port}")
        if config.worker_health_socket:
            health_server.add_insecure_port(f"unix:{config.worker_health_socket}")
    # Everything built so far lives as long as the process: out of the full collections.
    heap.settle()
    await server.start()
    if health_server is not None:
        await health_server.start()
    # Readiness means "can answer": with a backend that must warm up, health stays
    # NOT_SERVING until the warm-up succeeded (and stays so after a failure).
    needs_warm_up = getattr(runtime.backend, "warm_up", None) is not None
    await _set_health(health_servicer, serving=not needs_warm_up)
    if config.metrics_port:
        serve_metrics(config.metrics_port, config.host)
    log.info(
        "sonicwire listening on %s:%d (backend %s; per-frame code %s)",
        config.host,
        port,
        runtime.backend.name,
        native.describe(),
    )
    warm_up = asyncio.create_task(
        _warm_up(runtime.backend, health_servicer, runtime), name="backend warm-up"
    )
    return RunningServer(
        server, runtime, health_servicer, port, health_server, warm_up, local, side_streams
    )


async def _set_health(servicer: health.aio.HealthServicer, *, serving: bool) -> None:
    status = (
        health_pb2.HealthCheckResponse.SERVING
        if serving
        else health_pb2.HealthCheckResponse.NOT_SERVING
    )
    for name in ("", SERVICE_NAME):
        await servicer.set(name, status)


async def _warm_up(
    backend: Backend, servicer: health.aio.HealthServicer, runtime: ServerRuntime
) -> None:  # runtime: a drain that began meanwhile keeps NOT_SERVING
    """Load a backend's models now, in the background, so the first caller does not wait for
    them (the local engine's take 1-2 s), then report SERVING. Backends without ``warm_up``
    need none (they are SERVING from the start). A failure is logged and health stays
    NOT_SERVING: a probe must not send callers to a server that cannot answer them."""
    warm_up = getattr(backend, "warm_up", None)
    if warm_up is None:
        return
    try:
        await warm_up()
    except Exception as error:
        log.error("backend %s failed to warm up; health stays NOT_SERVING: %s", backend.name, error)
        return
    log.info("backend %s ready", backend.name)
    heap.settle()  # the models just loaded are as long-lived as the modules
    if not runtime.draining:
        await _set_health(servicer, serving=True)


async def serve(
    config: ServerConfig, *, ready: asyncio.Event | None = None, banner: bool = True
) -> None:
    """Run until SIGTERM/SIGINT, then drain. ``banner=False``: a worker, whose supervisor
    prints the one banner once every worker listens."""
    running = await start_server(config)
    if banner:
        print(
            f"sonicwire: gRPC on {running.target} (backend {running.runtime.backend.name})",
            flush=True,
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if ready is not None:
        ready.set()
    await stop.wait()
    log.info("signal received: draining")
    await running.drain()
