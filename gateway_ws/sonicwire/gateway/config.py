"""Gateway configuration: every setting is a flag and a ``SONICWIRE_GATEWAY_*`` variable.

Precedence: command-line flag, then environment variable, then the default below.
:func:`add_gateway_arguments` can prefix the flags (``sonicwire up`` uses ``--gateway-port``
and friends next to the gRPC server's own flags); the variable names never change.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

__all__ = [
    "EVENT_LOOPS",
    "STATIC_DIR",
    "GatewayConfig",
    "add_gateway_arguments",
    "gateway_config_from_args",
    "parse_gateway_args",
]

STATIC_DIR = Path(__file__).with_name("static")
"""The browser page shipped with the package."""

EVENT_LOOPS = ("auto", "uvloop", "asyncio")
"""Accepted values of :attr:`GatewayConfig.event_loop`."""


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """Settings of the WebSocket gateway (see ``docs/gateway.md``).

    Attributes:
        host: address to bind.
        port: port to bind; 0 picks a free one.
        grpc_target: the Sonicwire gRPC server.
        api_key: key sent upstream for sockets that offer none of their own.
        grpc_insecure: plaintext to the gRPC server; ``None`` means plaintext for loopback
            targets and TLS otherwise.
        grpc_ca: PEM CA bundle to verify the gRPC server with.
        grpc_server_name: expected TLS name of the gRPC server, when it differs from the host.
        allowed_origins: accepted ``Origin`` values; empty means the page's own host only,
            ``"*"`` accepts any origin.
        max_connections: concurrent sockets; more are closed with 1013.
        max_message_bytes: largest inbound WebSocket message; larger closes with 1009.
        max_messages_per_second: sustained inbound message rate; 0 disables the limit.
        message_burst: inbound messages allowed in a burst above the rate.
        send_buffer_bytes: outbound bytes queued for one socket before it counts as a slow
            consumer (close 4507).
        send_timeout_s: longest a single send may wait for the client to read (close 4507).
        first_message_timeout_s: how long a new socket may stay silent (close 4408).
        start_timeout_s: how long a conversation may take to start, retries of an unreachable
            server included (then close 4408, or 4503 when it stayed unreachable).
        ping_interval_s: WebSocket keepalive ping interval; 0 disables keepalive.
        tls_cert: PEM certificate chain: serve https/wss.
        tls_key: PEM private key of ``tls_cert``.
        static_dir: directory of the browser page.
        log_level: logging level name.
        twilio_auth_token: the Twilio account's auth token: calls on ``/twilio`` whose
            handshake carries a valid ``X-Twilio-Signature`` are accepted without an API key.
        twilio_public_url: ``wss://host[:port]`` Twilio connects to, when a proxy or tunnel
            makes the gateway see another host (signatures cover the URL Twilio used).
        twilio_parameters: the ``customParameters`` a call may set (allow-list).
        twilio_dtmf_timeout_s: keypad entry ends after this long without a key (or on ``#``).
        upstream_resume: when a conversation's gRPC server replica goes away, resume it on
            another one through ``grpc_target`` and keep the socket open (``resumed`` event);
            False closes the socket (1001 after ``going_away``) for the client to reconnect.
        event_loop: the event loop ``sonicwire gateway`` runs on: ``uvloop`` (libuv; about a
            fifth less CPU per audio frame, measured in ``docs/gateway.md``), ``asyncio`` (the
            standard library's), or ``auto`` (uvloop when it is installed, as the ``gateway``
            extra does, else asyncio).
    """

    host: str = "127.0.0.1"
    port: int = 8000
    grpc_target: str = "127.0.0.1:50051"
    api_key: str = ""
    grpc_insecure: bool | None = None
    grpc_ca: str = ""
    grpc_server_name: str = ""
    allowed_origins: tuple[str, ...] = ()
    max_connections: int = 100
    max_message_bytes: int = 128 * 1024
    max_messages_per_second: float = 100.0
    message_burst: int = 200
    send_buffer_bytes: int = 1024 * 1024
    send_timeout_s: float = 10.0
    first_message_timeout_s: float = 30.0
    start_timeout_s: float = 30.0
    ping_interval_s: float = 20.0
    tls_cert: str = ""
    tls_key: str = ""
    static_dir: str = str(STATIC_DIR)
    log_level: str = "INFO"
    twilio_auth_token: str = ""
    twilio_public_url: str = ""
    twilio_parameters: tuple[str, ...] = (
        "voice",
        "endpointing",
        "bargeIn",
        "echoCancellation",
        "serverTools",
        "timeZone",
    )
    twilio_dtmf_timeout_s: float = 1.5
    upstream_resume: bool = True
    event_loop: str = "auto"

    def __post_init__(self) -> None:
        if self.event_loop not in EVENT_LOOPS:
            raise ValueError(f"event_loop must be one of {', '.join(EVENT_LOOPS)}")
        if self.max_message_bytes < 1024:
            raise ValueError("max_message_bytes must be at least 1024")
        if self.send_buffer_bytes < self.max_message_bytes:
            raise ValueError("send_buffer_bytes must be at least max_message_bytes")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("TLS needs both tls_cert and tls_key")


def _flag(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


def _number(convert: Callable[[str], Any], most: float = math.inf) -> Callable[[str], Any]:
    """``int`` or ``float`` for a flag: no negative or non-finite value (a limit, a duration or
    a port), none above ``most``; a value that does not parse says what was expected rather
    than argparse's "invalid parse value"."""
    kind = "a whole number" if convert is int else "a number"

    def parse(value: str) -> Any:
        try:
            number = convert(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind}, got {value!r}") from None
        if not math.isfinite(number) or number < 0:
            raise argparse.ArgumentTypeError(f"must be a finite number, 0 or more, got {value!r}")
        if number > most:
            raise argparse.ArgumentTypeError(f"must be at most {most:g}, got {value!r}")
        return number

    return parse


def _origins(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


# (field, flag name, parser of the env/flag text, help); upstream-only flags are marked.
_Option = tuple[str, str, Callable[[str], Any], str, bool]
_OPTIONS: tuple[_Option, ...] = (
    ("host", "host", str, "address to bind", False),
    ("port", "port", int, "port; 0 picks a free one", False),
    ("grpc_target", "grpc-target", str, "the Sonicwire gRPC server", True),
    ("api_key", "api-key", str, "API key for the gRPC server when a socket offers none", True),
    ("grpc_ca", "grpc-ca", str, "PEM CA bundle to verify the gRPC server", True),
    ("grpc_server_name", "grpc-server-name", str, "expected TLS name of the gRPC server", True),
    (
        "allowed_origins",
        "allowed-origins",
        _origins,
        "comma-separated Origin allow-list; empty = same host only, * = any",
        False,
    ),
    ("max_connections", "max-connections", int, "concurrent sockets", False),
    ("max_message_bytes", "max-message-bytes", int, "largest inbound message", False),
    (
        "max_messages_per_second",
        "max-messages-per-second",
        float,
        "inbound messages per second per socket; 0 = unlimited",
        False,
    ),
    ("message_burst", "message-burst", int, "inbound message burst per socket", False),
    ("send_buffer_bytes", "send-buffer-bytes", int, "outbound buffer per socket", False),
    ("send_timeout_s", "send-timeout-seconds", float, "longest wait on a slow reader", False),
    (
        "first_message_timeout_s",
        "first-message-timeout-seconds",
        float,
        "close sockets silent this long after connecting",
        False,
    ),
    (
        "start_timeout_s",
        "start-timeout-seconds",
        float,
        "longest wait for a conversation to start",
        False,
    ),
    ("ping_interval_s", "ping-interval-seconds", float, "keepalive pings; 0 = off", False),
    ("tls_cert", "tls-cert", str, "PEM certificate chain: serve https/wss", False),
    ("tls_key", "tls-key", str, "PEM private key for --tls-cert", False),
    ("static_dir", "static-dir", str, "directory of the browser page", False),
    (
        "twilio_auth_token",
        "twilio-auth-token",
        str,
        "Twilio auth token: accept calls on /twilio with a valid X-Twilio-Signature",
        False,
    ),
    (
        "twilio_public_url",
        "twilio-public-url",
        str,
        "wss://host[:port] Twilio connects to, if a proxy changes it (for signatures)",
        False,
    ),
    (
        "twilio_parameters",
        "twilio-parameters",
        _origins,
        "comma-separated customParameters a call may set",
        False,
    ),
    (
        "twilio_dtmf_timeout_s",
        "twilio-dtmf-timeout-seconds",
        float,
        "keypad entry ends after this pause (or #)",
        False,
    ),
    (
        "upstream_resume",
        "upstream-resume",
        _flag,
        "resume a conversation on another gRPC replica when its replica goes away, keeping "
        "the socket open; false closes it for the client to reconnect",
        False,
    ),
    (
        "event_loop",
        "event-loop",
        str,
        "event loop of `sonicwire gateway`: auto (uvloop if installed), uvloop or asyncio",
        False,
    ),
)


# Settings of a gateway running as its own process: `sonicwire up` runs the gateway inside the
# server's process and loop (and derives the upstream flags), so it omits these too.
_OWN_PROCESS_ONLY = frozenset({"event_loop"})


def add_gateway_arguments(
    parser: argparse.ArgumentParser,
    *,
    prefix: str = "",
    upstream: bool = True,
) -> None:
    """Add the gateway's flags (defaults from the environment) to ``parser``.

    Args:
        parser: the parser to extend.
        prefix: prepended to every flag name, e.g. ``"gateway-"`` gives ``--gateway-port``.
        upstream: include the flags naming the gRPC server (``sonicwire up`` derives them)
            and those of a gateway in its own process (``--event-loop``).
    """
    defaults = GatewayConfig()
    group = parser.add_argument_group("WebSocket gateway")
    for name, flag, convert, text, is_upstream in _OPTIONS:
        if (is_upstream or name in _OWN_PROCESS_ONLY) and not upstream:
            continue
        if convert in (int, float):
            convert = _number(convert, 65535 if name == "port" else math.inf)
        env_name = f"SONICWIRE_GATEWAY_{_env_key(name)}"
        env_value = os.environ.get(env_name)
        try:
            default = convert(env_value) if env_value is not None else getattr(defaults, name)
        except (ValueError, argparse.ArgumentTypeError) as error:
            parser.error(f"{env_name}: {error}")  # a usage error (exit 2), not a traceback
        if name == "allowed_origins":
            shown = ",".join(default) or "same host"
        elif name == "twilio_parameters":
            shown = ",".join(default) or "none"
        else:
            shown = "none" if name in ("api_key", "twilio_auth_token") else default
        help_text = f"{text} (default: {shown}) [{env_name}]"
        group.add_argument(
            f"--{prefix}{flag}",
            dest=f"gateway_{name}",
            metavar=flag.rsplit("-", 1)[-1].upper(),
            type=convert,
            default=default,
            help=help_text,
        )
    if upstream:
        env_value = os.environ.get("SONICWIRE_GATEWAY_GRPC_INSECURE")
        group.add_argument(
            f"--{prefix}grpc-insecure",
            dest="gateway_grpc_insecure",
            action="store_const",
            const=True,
            default=_flag(env_value) if env_value is not None else None,
            help="plaintext to a non-loopback gRPC server [SONICWIRE_GATEWAY_GRPC_INSECURE]",
        )


def _env_key(name: str) -> str:
    """``send_timeout_s`` -> ``SEND_TIMEOUT_SECONDS``: variables spell units out like flags."""
    flag = next(option[1] for option in _OPTIONS if option[0] == name)
    return flag.replace("-", "_").upper()


def gateway_config_from_args(args: argparse.Namespace, **overrides: Any) -> GatewayConfig:
    """Build a :class:`GatewayConfig` from parsed flags; ``overrides`` win over them.

    Raises:
        ValueError: an inconsistent configuration (e.g. a TLS cert without a key).
    """
    values: dict[str, Any] = {}
    for item in fields(GatewayConfig):
        dest = f"gateway_{item.name}"
        if hasattr(args, dest):
            values[item.name] = getattr(args, dest)
    values.update(overrides)
    return GatewayConfig(**values)


def parse_gateway_args(argv: Sequence[str] | None = None) -> GatewayConfig:
    """Parse ``sonicwire gateway`` flags.

    Raises:
        SystemExit: bad flags (argparse prints the usage).
    """
    parser = argparse.ArgumentParser(
        prog="sonicwire-gateway",
        description="Serve the browser page and bridge WebSockets to the Sonicwire gRPC server.",
    )
    add_gateway_arguments(parser)
    parser.add_argument(
        "--log-level",
        dest="gateway_log_level",
        default=os.environ.get("SONICWIRE_GATEWAY_LOG_LEVEL", "INFO"),
        help="logging level [SONICWIRE_GATEWAY_LOG_LEVEL]",
    )
    args = parser.parse_args(argv)
    try:
        return gateway_config_from_args(args)
    except ValueError as error:
        parser.error(str(error))
