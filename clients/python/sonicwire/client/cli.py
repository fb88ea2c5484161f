"""The ``sonicwire`` command.

Client commands (need only ``pip install sonicwire``)::

    sonicwire talk FILE.wav [--text TEXT] [--out reply.wav] [--json]   one spoken exchange
    sonicwire health [--service NAME]                                  grpc.health.v1 check
    sonicwire voices                                                   list voices
    sonicwire tools                                                    list server tools

Server commands are separate programs of the same package, with their own entry points:
``sonicwire-server`` (``pip install sonicwire[server]``), ``sonicwire-gateway`` and
``sonicwire-up`` (server + gateway, ``sonicwire[server,gateway]``). ``sonicwire serve``, ``up``
and ``gateway`` run them (the process becomes that program); this module never imports server
or gateway code, so the client does not depend on them.

Exit codes (stable; scripts may rely on them):

    0    success (for ``health``: the service is SERVING)
    1    the server ended the call with an error status not listed below
         (INVALID_ARGUMENT, INTERNAL, NOT_FOUND, ...), or broke the protocol
    2    usage error: bad arguments, unreadable or unsupported WAV file, missing extra
    3    unavailable: cannot connect, or the server/backend is unavailable or draining
    4    unauthenticated or permission denied (check --api-key / SONICWIRE_API_KEY)
    5    resource exhausted: a server limit was hit (concurrent sessions, sizes)
    6    deadline exceeded (--timeout)
    7    ``health`` only: the server answered but the service is not SERVING
    130  interrupted (Ctrl-C)

How events, tables and JSON lines look is :mod:`._cli_output`'s business; this module parses
the arguments, runs the commands and maps errors to exit codes.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from typing import Any

import grpc

from ._cli_output import Output, print_table
from .audio import read_wav, write_wav
from .client import DEFAULT_TARGET, Client, HealthStatus, TlsOptions, is_loopback
from .config import SUPPORTED_SAMPLE_RATES, session_config
from .errors import (
    AudioFormatError,
    DeadlineExceededError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    SonicwireError,
    UnauthenticatedError,
    UnavailableError,
)
from .exchange import talk
from .resume import AutoResume
from .retry import RetryPolicy

__all__ = [
    "EXIT_DEADLINE",
    "EXIT_INTERRUPTED",
    "EXIT_NOT_SERVING",
    "EXIT_OK",
    "EXIT_RESOURCE_EXHAUSTED",
    "EXIT_SERVER_ERROR",
    "EXIT_UNAUTHENTICATED",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "exit_code_for",
    "main",
]

EXIT_OK = 0
EXIT_SERVER_ERROR = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_UNAUTHENTICATED = 4
EXIT_RESOURCE_EXHAUSTED = 5
EXIT_DEADLINE = 6
EXIT_NOT_SERVING = 7
EXIT_INTERRUPTED = 130

# Server-side commands: (program, extra). Each is its own console script; the client runs it
# in place of itself (exec), so it never imports server or gateway code.
_DELEGATED: dict[str, tuple[str, str]] = {
    "serve": ("sonicwire-server", "server"),
    "up": ("sonicwire-up", "server,gateway"),
    "gateway": ("sonicwire-gateway", "gateway"),
}


def exit_code_for(error: SonicwireError) -> int:
    """The process exit code for an error (the one place errors map to exit codes)."""
    match error:
        case AudioFormatError():
            return EXIT_USAGE
        case UnavailableError():
            return EXIT_UNAVAILABLE
        case UnauthenticatedError() | PermissionDeniedError():
            return EXIT_UNAUTHENTICATED
        case ResourceExhaustedError():
            return EXIT_RESOURCE_EXHAUSTED
        case DeadlineExceededError():
            return EXIT_DEADLINE
        case _:
            return EXIT_SERVER_ERROR


# -- arguments ---------------------------------------------------------------------------------


def _connection_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("connection")
    g.add_argument(
        "--target",
        default=os.environ.get("SONICWIRE_TARGET", DEFAULT_TARGET),
        help="server address host:port (env SONICWIRE_TARGET; default %(default)s)",
    )
    g.add_argument(
        "--api-key",
        default=os.environ.get("SONICWIRE_API_KEY"),
        help="API key sent as x-api-key (env SONICWIRE_API_KEY)",
    )
    mode = g.add_mutually_exclusive_group()
    mode.add_argument(
        "--insecure",
        "--plaintext",
        action="store_true",
        help="plaintext, no TLS (the default for loopback targets)",
    )
    mode.add_argument(
        "--tls", action="store_true", help="use TLS (the default for non-loopback targets)"
    )
    g.add_argument("--ca", metavar="PEM", help="CA bundle to verify the server (implies --tls)")
    g.add_argument("--cert", metavar="PEM", help="client certificate for mutual TLS")
    g.add_argument("--key", metavar="PEM", help="client private key for mutual TLS")
    g.add_argument("--server-name", help="expected TLS server name, if not the target's host")
    g.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="deadline of unary calls and of session start (default %(default)s)",
    )
    g.add_argument(
        "--connect-retries",
        type=int,
        default=3,
        metavar="N",
        help="retries when the server is unavailable at connect (default %(default)s)",
    )
    g.add_argument(
        "--no-auto-resume",
        action="store_true",
        help="end the conversation when its server replica goes away, instead of resuming "
        "it on another one through the same target",
    )
    p.add_argument("--json", action="store_true", help="print machine-readable JSON lines")
    return p


def _build_parser() -> argparse.ArgumentParser:
    common = _connection_parser()
    parser = argparse.ArgumentParser(
        prog="sonicwire",
        description="Talk to a Sonicwire voice server.",
        epilog=(
            "exit codes: 0 ok, 1 server error status, 2 usage error, 3 unavailable, "
            "4 unauthenticated, 5 resource exhausted, 6 deadline exceeded, "
            "7 health not serving, 130 interrupted"
        ),
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    t = sub.add_parser(
        "talk",
        parents=[common],
        help="stream a WAV file (and/or text) and print what comes back",
        description="Stream a WAV file at real time (and/or a typed turn), print transcripts "
        "and events as they arrive, and write the assistant's reply to a WAV file.",
    )
    t.add_argument("file", nargs="?", metavar="FILE.wav", help="16-bit PCM WAV, 8/16/24/48 kHz")
    t.add_argument("--text", help="a typed user turn (sent before the audio)")
    t.add_argument("--out", default="reply.wav", help="reply WAV file (default %(default)s)")
    t.add_argument("--no-save", action="store_true", help="do not write the reply WAV")
    t.add_argument("--voice", default="", help="voice id (see `sonicwire voices`)")
    t.add_argument("--system-prompt", default="", help="system prompt for the assistant")
    t.add_argument(
        "--output-rate",
        type=int,
        choices=SUPPORTED_SAMPLE_RATES,
        help="reply sample rate (default: the input's)",
    )
    t.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="1 streams at real time, 2 twice as fast, 0 without pacing (default %(default)s)",
    )
    t.add_argument(
        "--trailing-silence",
        type=int,
        default=1000,
        metavar="MS",
        help="silence sent after the file so speech end is detected (default %(default)s)",
    )
    t.add_argument(
        "--reply-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="longest wait for an answer before hanging up (default %(default)s)",
    )

    h = sub.add_parser("health", parents=[common], help="check grpc.health.v1 status")
    h.add_argument(
        "--service", default="", help='service name, e.g. sonicwire.v1.VoiceService (default "")'
    )
    v = sub.add_parser("voices", parents=[common], help="list the voices")
    v.add_argument("--backend", default="", help="only voices of this backend")
    sub.add_parser("tools", parents=[common], help="list the server-side tools")
    for name, (program, extra) in _DELEGATED.items():
        sub.add_parser(name, add_help=False, help=f"runs {program} (needs sonicwire[{extra}])")
    return parser


def _client(args: argparse.Namespace) -> Client:
    tls: TlsOptions | None = None
    if args.tls or args.ca or args.cert or args.key or args.server_name:
        tls = TlsOptions.from_files(
            ca=args.ca, cert=args.cert, key=args.key, server_name=args.server_name
        )
    retries = max(args.connect_retries, 0)
    return Client(
        args.target,
        api_key=args.api_key or None,
        tls=tls,
        insecure=True if args.insecure else (False if tls is not None else None),
        timeout=args.timeout if args.timeout > 0 else None,
        retry=RetryPolicy(max_attempts=retries + 1),
        auto_resume=AutoResume.off() if args.no_auto_resume else None,
    )


# -- commands ----------------------------------------------------------------------------------


async def _cmd_talk(args: argparse.Namespace, out: Output) -> int:
    if args.file is None and args.text is None:
        raise _UsageError("talk needs FILE.wav, --text, or both")
    audio = read_wav(args.file) if args.file is not None else None
    rate = audio.sample_rate_hz if audio is not None else 16000
    config = session_config(
        sample_rate_hz=rate,
        output_sample_rate_hz=args.output_rate or rate,
        voice=args.voice,
        system_prompt=args.system_prompt,
    )
    async with _client(args) as client:
        try:
            result = await talk(
                client,
                audio,
                text=args.text,
                config=config,
                speed=args.speed,
                trailing_silence_ms=max(args.trailing_silence, 0),
                reply_timeout=args.reply_timeout,
                on_event=out.event,
                on_progress=out.progress,
            )
        finally:
            out.finish()
    saved = None
    if not args.no_save:
        write_wav(args.out, result.reply.pcm, result.reply.sample_rate_hz)
        saved = args.out
    if out.json_mode:
        out.record(
            {
                "type": "done",
                "session_id": result.session.session_id,
                "sent_ms": result.sent_ms,
                "reply_ms": result.reply.duration_ms,
                "reply_path": saved,
            }
        )
    else:
        where = f" written to {saved}" if saved else ""
        out.line(f"done: reply {result.reply.duration_ms / 1000:.2f} s of audio{where}")
    return EXIT_OK


async def _cmd_health(args: argparse.Namespace, out: Output) -> int:
    async with _client(args) as client:
        status = await client.health(args.service)
    if out.json_mode:
        print(json.dumps({"service": args.service, "status": status.name}), file=out.stream)
    else:
        print(status.name, file=out.stream)
    return EXIT_OK if status is HealthStatus.SERVING else EXIT_NOT_SERVING


async def _cmd_voices(args: argparse.Namespace, out: Output) -> int:
    async with _client(args) as client:
        voices = await client.list_voices(args.backend)
    if out.json_mode:
        for v in voices:
            print(json.dumps(dataclasses.asdict(v)), file=out.stream)
        return EXIT_OK
    rows = [("ID", "LANGUAGE", "BACKEND", "DEFAULT")] + [
        (v.id, v.language_code, v.backend, "yes" if v.default else "") for v in voices
    ]
    print_table(rows, out.stream)
    return EXIT_OK


async def _cmd_tools(args: argparse.Namespace, out: Output) -> int:
    async with _client(args) as client:
        tools = await client.list_tools()
    if out.json_mode:
        for t in tools:
            record = {"name": t.name, "description": t.description, "parameters": t.parameters}
            print(json.dumps(record), file=out.stream)
        return EXIT_OK
    print_table([("NAME", "DESCRIPTION")] + [(t.name, t.description) for t in tools], out.stream)
    return EXIT_OK


_COMMANDS: dict[str, Callable[[argparse.Namespace, Output], Any]] = {
    "talk": _cmd_talk,
    "health": _cmd_health,
    "voices": _cmd_voices,
    "tools": _cmd_tools,
}


class _UsageError(Exception):
    pass


def _find_program(program: str) -> str | None:
    """The console script next to this interpreter (same environment), else on PATH."""
    here = os.path.dirname(sys.executable)
    return shutil.which(program, path=os.pathsep.join([here, os.environ.get("PATH", "")]))


#: Replaces this process with the program (a seam for tests).
_exec: Callable[[str, list[str]], object] = os.execv


def _delegate(command: str, argv: list[str]) -> int:
    program, extra = _DELEGATED[command]
    path = _find_program(program)
    if path is None:
        print(
            f"sonicwire {command}: runs {program}, which is not installed: "
            f"`pip install sonicwire[{extra}]`",
            file=sys.stderr,
        )
        return EXIT_USAGE
    sys.stdout.flush()
    sys.stderr.flush()
    _exec(path, [path, *argv])  # does not return, except from a test's stand-in
    return EXIT_OK


def _report(error: SonicwireError, args: argparse.Namespace, out: Output) -> int:
    code = exit_code_for(error)
    hint = ""
    if isinstance(error, UnavailableError) and not (args.tls or args.insecure or args.ca):
        mode = "plaintext" if is_loopback(args.target) else "TLS"
        other = "--tls" if mode == "plaintext" else "--insecure"
        hint = f" (connected to {args.target} with {mode}; try {other} if that is wrong)"
    if isinstance(error, UnauthenticatedError) and not args.api_key:
        hint = " (pass --api-key or set SONICWIRE_API_KEY)"
    if isinstance(error, NotFoundError) and args.command == "health":
        hint = f" (the server has no health status for service {args.service!r})"
    if out.json_mode:
        out.record(
            {
                "type": "error",
                "code": error.code.name if isinstance(error.code, grpc.StatusCode) else None,
                "reason": error.reason,
                "message": error.message,
                "exit_code": code,
            }
        )
    print(f"sonicwire: error: {error}{hint}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``sonicwire`` command.

    Args:
        argv: the arguments without the program name; ``None`` for ``sys.argv[1:]``.

    Returns:
        The exit code (see the module docstring); never raises ``SystemExit``.
    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments and arguments[0] in _DELEGATED:
        return _delegate(arguments[0], arguments[1:])
    parser = _build_parser()
    try:
        args = parser.parse_args(arguments)
    except SystemExit as exc:  # --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    out = Output(json_mode=args.json)
    try:
        code: int = asyncio.run(_COMMANDS[args.command](args, out))
        return code
    except SonicwireError as error:
        return _report(error, args, out)
    except (_UsageError, OSError, ValueError) as exc:
        print(f"sonicwire {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        out.finish()
        print("sonicwire: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
