"""Server configuration: every setting is a flag and a ``SONICWIRE_*`` environment variable.

Precedence: command-line flag, then environment variable, then the default below.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = [
    "ServerConfig",
    "add_server_arguments",
    "config_from_args",
    "parse_server_args",
    "parse_workers",
]


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 50051
    backend: str = "local"
    api_keys: tuple[str, ...] = ()
    api_key_files: tuple[str, ...] = ()
    allow_unauthenticated: bool = False
    max_streams: int = 200
    max_streams_per_key: int = 0
    max_message_bytes: int = 256 * 1024
    max_session_s: float = 0.0
    idle_timeout_s: float = 60.0
    drain_grace_s: float = 10.0
    backend_timeout_s: float = 30.0
    tools: tuple[str, ...] = ()
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""
    health_port: int = 0
    max_connection_age_s: float = 0.0
    max_connection_age_grace_s: float = 30.0
    metrics_port: int = 0
    log_level: str = "INFO"
    log_json: bool = False
    backend_options: dict[str, str] = field(default_factory=dict)
    # Hardening limits (docs/operations.md "Limits"): what one client may ask of the server.
    max_client_tools: int = 64
    max_tool_schema_bytes: int = 16 * 1024
    max_tool_schema_depth: int = 32
    max_tool_schemas_total_bytes: int = 64 * 1024
    max_system_prompt_bytes: int = 40_000
    max_tool_result_bytes: int = 64 * 1024
    text_rate_per_s: float = 2.0
    text_burst: int = 10
    tool_result_rate_per_s: float = 20.0
    tool_result_burst: int = 50
    audio_rate_per_s: float = 500.0
    audio_burst: int = 4000  # limits.InputLimits says why
    max_connections: int = 1000
    max_side_streams: int = 1000
    handshake_timeout_s: float = 10.0
    # Resumable conversations: where their state lives, and for how long after the last save.
    state_store: str = "memory"
    resume_ttl_s: float = 600.0
    # Worker processes sharing the port (`sonicwire.server.workers`); 1 = this process serves.
    workers: int = 1
    # Set by the supervisor for its workers: bind the port with SO_REUSEPORT, and answer
    # grpc.health.v1 on this private Unix socket so the supervisor can ask each worker.
    reuse_port: bool = False
    worker_health_socket: str = ""


# (flag, ServerConfig field, type, help): the hardening limits, each a flag and an env var.
_LIMIT_FLAGS: tuple[tuple[str, str, type, str], ...] = (
    ("max-client-tools", "max_client_tools", int, "client tools per session"),
    ("max-tool-schema-bytes", "max_tool_schema_bytes", int, "size of one tool's JSON schema"),
    (
        "max-tool-schemas-total-bytes",
        "max_tool_schemas_total_bytes",
        int,
        "all of a session's tool schemas together",
    ),
    ("max-tool-schema-depth", "max_tool_schema_depth", int, "nesting depth of a tool's schema"),
    ("max-system-prompt-bytes", "max_system_prompt_bytes", int, "system prompt, UTF-8 bytes"),
    ("max-tool-result-bytes", "max_tool_result_bytes", int, "one ToolResult's content"),
    ("text-rate", "text_rate_per_s", float, "TextInput messages per second per stream"),
    ("text-burst", "text_burst", int, "TextInput messages allowed at once"),
    ("tool-result-rate", "tool_result_rate_per_s", float, "ToolResult messages per second"),
    ("tool-result-burst", "tool_result_burst", int, "ToolResult messages allowed at once"),
    (
        "audio-rate",
        "audio_rate_per_s",
        float,
        "AudioInput messages shorter than 10 ms per second per stream; 0 = unlimited",
    ),
    ("audio-burst", "audio_burst", int, "AudioInput messages shorter than 10 ms at once"),
    ("max-connections", "max_connections", int, "open client connections; 0 = unlimited"),
    (
        "max-side-streams",
        "max_side_streams",
        int,
        "health Watch and reflection streams open at once (they need no API key); 0 = unlimited",
    ),
    (
        "handshake-timeout-seconds",
        "handshake_timeout_s",
        float,
        "time a new connection has to finish its TLS/HTTP2 handshake",
    ),
)


def parse_workers(value: str) -> int:
    """``--workers``: a count >= 1, or ``auto`` for the CPUs this process may run on."""
    if value.strip().lower() == "auto":
        return max(1, len(os.sched_getaffinity(0)))
    try:
        count = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'auto', got {value!r}") from None
    if count < 1:
        raise argparse.ArgumentTypeError(f"needs at least 1 worker, got {count}")
    return count


def count(value: str) -> int:
    """A whole number >= 0 (limits, counts, bytes; 0 means what each flag's help says)."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {number}")
    return number


def seconds(value: str) -> float:
    """A finite number >= 0 (durations and rates; 0 means what each flag's help says)."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number, 0 or more, got {value!r}")
    return number


def port(value: str) -> int:
    """A TCP port, 0 to 65535 (0: a free one, or off, as each flag's help says)."""
    number = count(value)
    if number > 65535:
        raise argparse.ArgumentTypeError(f"must be a port, 0 to 65535, got {number}")
    return number


def _env(name: str, default: str) -> str:
    return os.environ.get(f"SONICWIRE_{name}", default)


def _env_list(name: str) -> list[str]:
    value = os.environ.get(f"SONICWIRE_{name}", "")
    return [part for part in value.split(",") if part.strip()]


def _env_flag(name: str) -> bool:
    return os.environ.get(f"SONICWIRE_{name}", "").lower() in ("1", "true", "yes", "on")


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the gRPC server's flags (defaults from the environment) to ``parser``."""
    d = ServerConfig()
    add = parser.add_argument
    add("--host", default=_env("HOST", d.host), help="address to bind [SONICWIRE_HOST]")
    add(
        "--port",
        type=port,
        default=_env("PORT", str(d.port)),
        help="port; 0 picks a free one [SONICWIRE_PORT]",
    )
    add(
        "--backend",
        default=_env("BACKEND", d.backend),
        help="local | echo | nova-sonic [SONICWIRE_BACKEND]",
    )
    add(
        "--api-key",
        dest="api_keys",
        action="append",
        default=_env_list("API_KEYS"),
        help="accepted API key; repeatable [SONICWIRE_API_KEYS, comma-separated]",
    )
    add(
        "--api-key-file",
        dest="api_key_files",
        action="append",
        default=_env_list("API_KEY_FILES"),
        help="file with one API key per line [SONICWIRE_API_KEY_FILES]",
    )
    add(
        "--allow-unauthenticated",
        action="store_true",
        default=_env_flag("ALLOW_UNAUTHENTICATED"),
        help="allow a non-loopback address with no API key [SONICWIRE_ALLOW_UNAUTHENTICATED]",
    )
    add(
        "--max-streams",
        type=count,
        default=_env("MAX_STREAMS", str(d.max_streams)),
        help="concurrent conversations; 0 = unlimited [SONICWIRE_MAX_STREAMS]",
    )
    add(
        "--max-streams-per-key",
        type=count,
        default=_env("MAX_STREAMS_PER_KEY", str(d.max_streams_per_key)),
        help="concurrent conversations per API key [SONICWIRE_MAX_STREAMS_PER_KEY]",
    )
    add(
        "--max-message-bytes",
        type=count,
        default=_env("MAX_MESSAGE_BYTES", str(d.max_message_bytes)),
        help="largest gRPC message accepted [SONICWIRE_MAX_MESSAGE_BYTES]",
    )
    add(
        "--max-session-seconds",
        dest="max_session_s",
        type=seconds,
        default=_env("MAX_SESSION_SECONDS", str(d.max_session_s)),
        help="longest conversation; 0 = unlimited [SONICWIRE_MAX_SESSION_SECONDS]",
    )
    add(
        "--idle-timeout-seconds",
        dest="idle_timeout_s",
        type=seconds,
        default=_env("IDLE_TIMEOUT_SECONDS", str(d.idle_timeout_s)),
        help="end streams silent this long; 0 = never [SONICWIRE_IDLE_TIMEOUT_SECONDS]",
    )
    add(
        "--backend-timeout-seconds",
        dest="backend_timeout_s",
        type=seconds,
        default=_env("BACKEND_TIMEOUT_SECONDS", str(d.backend_timeout_s)),
        help="limit for opening a backend session and for an answer owed after the client "
        "ended its input [SONICWIRE_BACKEND_TIMEOUT_SECONDS]",
    )
    add(
        "--state-store",
        default=_env("STATE_STORE", d.state_store),
        help="where conversation state lives for resume: 'memory' (this process) or "
        "redis://host:port/db (shared by replicas) [SONICWIRE_STATE_STORE]",
    )
    add(
        "--resume-ttl-seconds",
        dest="resume_ttl_s",
        type=seconds,
        default=_env("RESUME_TTL_SECONDS", str(d.resume_ttl_s)),
        help="how long a conversation stays resumable after its last save "
        "[SONICWIRE_RESUME_TTL_SECONDS]",
    )
    add(
        "--drain-grace-seconds",
        dest="drain_grace_s",
        type=seconds,
        default=_env("DRAIN_GRACE_SECONDS", str(d.drain_grace_s)),
        help="grace for live streams on SIGTERM [SONICWIRE_DRAIN_GRACE_SECONDS]",
    )
    add(
        "--tools",
        action="append",
        default=_env_list("TOOLS"),
        help="extra tools as module:attr; repeatable [SONICWIRE_TOOLS]",
    )
    add(
        "--tls-cert",
        default=_env("TLS_CERT", ""),
        help="PEM certificate chain: serve TLS [SONICWIRE_TLS_CERT]",
    )
    add("--tls-key", default=_env("TLS_KEY", ""), help="PEM private key [SONICWIRE_TLS_KEY]")
    add(
        "--tls-client-ca",
        default=_env("TLS_CLIENT_CA", ""),
        help="PEM CA bundle: require client certificates (mTLS) [SONICWIRE_TLS_CLIENT_CA]",
    )
    add(
        "--health-port",
        type=port,
        default=_env("HEALTH_PORT", "0"),
        help="plaintext grpc.health.v1 port for probes under mTLS [SONICWIRE_HEALTH_PORT]",
    )
    add(
        "--max-connection-age-seconds",
        dest="max_connection_age_s",
        type=seconds,
        default=_env("MAX_CONNECTION_AGE_SECONDS", "0"),
        help="close connections after this age so clients rebalance; 0 = never "
        "[SONICWIRE_MAX_CONNECTION_AGE_SECONDS]",
    )
    add(
        "--max-connection-age-grace-seconds",
        dest="max_connection_age_grace_s",
        type=seconds,
        default=_env("MAX_CONNECTION_AGE_GRACE_SECONDS", "30"),
        help="time live streams keep after the connection age is reached "
        "[SONICWIRE_MAX_CONNECTION_AGE_GRACE_SECONDS]",
    )
    add(
        "--workers",
        type=parse_workers,
        default=_env("WORKERS", "1"),
        help="server processes sharing the port (SO_REUSEPORT) under one supervisor that "
        "forwards signals; 'auto' = one per CPU [SONICWIRE_WORKERS]",
    )
    add(
        "--metrics-port",
        type=port,
        default=_env("METRICS_PORT", "0"),
        help="Prometheus metrics port; 0 = off [SONICWIRE_METRICS_PORT]",
    )
    add("--log-level", default=_env("LOG_LEVEL", d.log_level), help="[SONICWIRE_LOG_LEVEL]")
    add(
        "--log-json",
        action="store_true",
        default=_env_flag("LOG_JSON"),
        help="JSON log lines [SONICWIRE_LOG_JSON]",
    )
    add(
        "--backend-option",
        dest="backend_options",
        action="append",
        default=_env_list("BACKEND_OPTIONS"),
        metavar="KEY=VALUE",
        help="option passed to the backend, e.g. region=us-east-1 [SONICWIRE_BACKEND_OPTIONS]",
    )
    for flag, name, kind, text in _LIMIT_FLAGS:
        env = flag.upper().replace("-", "_")
        add(
            f"--{flag}",
            dest=name,
            type=count if kind is int else seconds,
            default=_env(env, str(getattr(d, name))),
            help=f"{text} [SONICWIRE_{env}, default {getattr(d, name)}]",
        )


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    options: dict[str, str] = {}
    for item in args.backend_options:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SystemExit(f"--backend-option expects KEY=VALUE, got {item!r}")
        options[key.strip().replace("-", "_")] = value.strip()
    return ServerConfig(
        host=args.host,
        port=args.port,
        backend=args.backend,
        api_keys=tuple(args.api_keys),
        api_key_files=tuple(args.api_key_files),
        allow_unauthenticated=args.allow_unauthenticated,
        max_streams=args.max_streams,
        max_streams_per_key=args.max_streams_per_key,
        max_message_bytes=args.max_message_bytes,
        max_session_s=args.max_session_s,
        idle_timeout_s=args.idle_timeout_s,
        drain_grace_s=args.drain_grace_s,
        state_store=args.state_store,
        resume_ttl_s=args.resume_ttl_s,
        backend_timeout_s=args.backend_timeout_s,
        tools=tuple(args.tools),
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tls_client_ca=args.tls_client_ca,
        health_port=args.health_port,
        max_connection_age_s=args.max_connection_age_s,
        max_connection_age_grace_s=args.max_connection_age_grace_s,
        metrics_port=args.metrics_port,
        workers=args.workers,
        log_level=args.log_level,
        log_json=args.log_json,
        backend_options=options,
        **{name: getattr(args, name) for _, name, _, _ in _LIMIT_FLAGS},
    )


def parse_server_args(argv: Sequence[str] | None = None) -> ServerConfig:
    parser = argparse.ArgumentParser(
        prog="sonicwire-server", description="Run the Sonicwire gRPC server."
    )
    add_server_arguments(parser)
    return config_from_args(parser.parse_args(argv))
