"""``sonicwire up``: the gRPC server and the WebSocket gateway in one process.

The server takes its usual flags (``sonicwire serve --help``); the gateway's flags are
prefixed: ``--gateway-host``, ``--gateway-port``, ``--gateway-allowed-origins``, ... The
gateway talks to the server with no key of its own, so when the server requires API keys every
browser must offer one (the page has a field for it).

``--gateway-transport``: how the gateway reaches the server. ``inproc`` (the default with one
server process): a channel that calls the server's own gRPC handlers in this event loop, with
no HTTP/2 or gRPC C-core per message on either side (``docs/gateway.md``, "CPU per frame");
``grpc``: loopback gRPC, the only choice with ``--workers`` > 1 (the server processes are
others). The gRPC port serves network clients either way.

With ``--workers`` > 1 the gateway resumes upstream (``--gateway-upstream-resume``, true as
in ``sonicwire gateway``): a worker that crashes has its conversations moved to a sibling
worker without the browser noticing (with a state store the workers share,
``--state-store redis://...``; with the memory store the sibling does not know them and the
socket closes 4400, ``SESSION_NOT_FOUND``).

On SIGTERM or SIGINT the gateway first stops resuming (`Upstream.stop_resuming`, live
conversations included: every server drains together, none would take them), then the server
drains, then the gateway closes: browsers get ``going_away``, then close code 1001 (when their
conversation ends within the drain's grace, or at its end).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .app import Gateway
from .config import GatewayConfig, add_gateway_arguments, gateway_config_from_args
from .upstream import Upstream

if TYPE_CHECKING:
    from sonicwire.server.config import ServerConfig

__all__ = [
    "GATEWAY_TRANSPORTS",
    "build_parser",
    "loopback_target",
    "run_up",
    "up_main",
]

GATEWAY_TRANSPORTS = ("auto", "inproc", "grpc")
"""``--gateway-transport`` values; ``auto`` is ``inproc`` with one server process, else ``grpc``."""


def build_parser() -> argparse.ArgumentParser:
    """The ``sonicwire up`` parser: the server's flags plus ``--gateway-*`` flags."""
    from sonicwire.server.config import add_server_arguments

    parser = argparse.ArgumentParser(
        prog="sonicwire-up",
        description="Run the Sonicwire gRPC server and the browser gateway together.",
    )
    add_server_arguments(parser)
    add_gateway_arguments(parser, prefix="gateway-", upstream=False)
    env_name = "SONICWIRE_GATEWAY_TRANSPORT"
    parser.add_argument(
        "--gateway-transport",
        choices=GATEWAY_TRANSPORTS,
        default=os.environ.get(env_name, "auto"),
        help="how the gateway reaches the server: inproc (in this process, no network), grpc "
        "(loopback gRPC), auto = inproc unless --workers > 1 (default: auto) "
        f"[{env_name}]",
    )
    return parser


def loopback_target(host: str, port: int) -> str:
    """The gRPC target the gateway uses to reach a server bound to ``host``."""
    if host in ("", "0.0.0.0"):
        return f"127.0.0.1:{port}"
    if host in ("::", "[::]"):
        return f"[::1]:{port}"
    if ":" in host and not host.startswith("["):
        return f"[{host}]:{port}"
    return f"{host}:{port}"


async def run_up(
    server_config: ServerConfig,
    gateway_config: GatewayConfig,
    *,
    ready: asyncio.Future[tuple[str, str]] | None = None,
    stop: asyncio.Event | None = None,
    transport: str = "auto",
) -> None:
    """Start the server and the gateway, print the URL, run until ``stop`` or a signal.

    Args:
        server_config: the gRPC server's settings.
        gateway_config: the gateway's settings (its gRPC target is filled in here).
        ready: resolved with ``(page URL, gRPC target)`` once both are serving.
        stop: set it to shut down; by default SIGTERM/SIGINT do.
        transport: the gateway's way to the server (`GATEWAY_TRANSPORTS`).

    Raises:
        ValueError: an unsafe or unsupported configuration.
        OSError: an address cannot be bound.
    """
    from dataclasses import replace

    from sonicwire.server.app import RunningServer, start_server
    from sonicwire.server.workers import WorkerPool, start_workers

    if server_config.tls_cert:
        raise ValueError(
            "sonicwire up connects the gateway to the server over loopback without TLS; "
            "with --tls-cert run `sonicwire serve` and `sonicwire gateway --grpc-ca ...` "
            "separately"
        )
    if transport not in GATEWAY_TRANSPORTS:
        raise ValueError(f"unknown gateway transport {transport!r}")
    if transport == "inproc" and server_config.workers > 1:
        raise ValueError(
            "--gateway-transport inproc needs one server process: with --workers > 1 the "
            "servers are other processes (use grpc or auto)"
        )
    server: RunningServer | WorkerPool
    if server_config.workers > 1:
        # Several server processes on the port under a supervisor (this process), which
        # also runs the gateway; the gateway's upstream connections spread over the workers.
        server = await start_workers(server_config)
        backend_name = f"{server_config.backend}, {server_config.workers} workers"
        keys_required = bool(server_config.api_keys or server_config.api_key_files)
    else:
        server = await start_server(server_config)
        backend_name = server.runtime.backend.name
        keys_required = server.runtime.authenticator.enabled
    upstream: Upstream | None = None
    try:
        target = loopback_target(server_config.host, server.port)
        config = replace(gateway_config, grpc_target=target, api_key="")
        if isinstance(server, RunningServer) and transport != "grpc":
            upstream = Upstream(
                config, channel=server.local_channel(), route="in process (no network)"
            )
        gateway = Gateway(config, upstream=upstream)
        await gateway.start()
    except BaseException:
        if upstream is not None:
            await upstream.aclose()
        await (server.close() if isinstance(server, WorkerPool) else server.stop())
        raise
    try:
        keys = " (the server requires an API key: enter it on the page)"
        print(
            f"Sonicwire is up: open {gateway.url} in a browser\n"
            f"  gRPC {target}, backend {backend_name}; the gateway reaches it "
            f"{'in process' if upstream is not None else 'over loopback gRPC'}"
            f"{keys if keys_required else ''}",
            flush=True,
        )
        if ready is not None and not ready.done():
            ready.set_result((gateway.url, target))
        if stop is None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        # Before the drain: its GoingAway must reach the browsers, not start moves that every
        # (draining) server would refuse until the retries give up.
        gateway.upstream.stop_resuming()
        await server.drain()
        await gateway.aclose()
        if upstream is not None:
            await upstream.aclose()  # an injected upstream is not the gateway's to close


def up_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``sonicwire up``.

    Args:
        argv: the flags (without the program name); ``None`` reads ``sys.argv``.

    Returns:
        The exit status: 0 after a clean stop, 2 for an unusable configuration.
    """
    from sonicwire.server.cli import setup_logging
    from sonicwire.server.config import config_from_args

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.gateway_transport not in GATEWAY_TRANSPORTS:
        # argparse checks `choices` on the command line only, not on a default taken from
        # the environment: name the variable the bad value came from.
        parser.error(
            f"SONICWIRE_GATEWAY_TRANSPORT={args.gateway_transport!r}: choose from "
            f"{', '.join(GATEWAY_TRANSPORTS)}"
        )
    server_config = config_from_args(args)
    overrides: dict[str, Any] = {"log_level": server_config.log_level}
    try:
        gateway_config = gateway_config_from_args(args, **overrides)
    except ValueError as error:
        parser.error(str(error))
    setup_logging(server_config)
    try:
        asyncio.run(run_up(server_config, gateway_config, transport=args.gateway_transport))
    except (ValueError, RuntimeError, OSError) as error:  # RuntimeError: a worker failed to start
        print(f"sonicwire up: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0
