"""A benchmark server process: Sonicwire (echo backend) or the bare grpc.aio echo, with probes.

Run by the benchmark, never in production::

    python -m bench.probe_server --kind sonicwire --port 0 --probe-out /tmp/p.npz [--reuseport]

It prints ``bench-server: READY 127.0.0.1:PORT`` once serving and runs until SIGTERM/SIGINT,
then writes the probe data and exits. ``--kind up`` is ``sonicwire up`` (what ``make run``
starts): the server and the WebSocket gateway in this one process and event loop, built by
``sonicwire.gateway.up`` from the flags ``sonicwire-up`` parses; the port printed is then the
gateway's, and ``SONICWIRE_GATEWAY_*`` variables set the gateway's limits.

The server code is not modified; the probes are wrappers installed in this process only:

* ``Session.receive_client`` is wrapped: for every `AudioReceived` it records when the call
  began and when it returned (the cleaned frame has come out of the front end and is queued
  for the backend). With the client's send times (same machine, same monotonic clock) this
  gives the server-added latency of every frame, queueing on the event loop included.
* an event-loop lag probe: a task that sleeps 20 ms and records how late it wakes up.
* ``--reuseport`` wraps ``grpc.aio.server`` to set ``grpc.so_reuseport`` to 1 (the server's
  own default is 0), so several processes can serve one port.

The probe file is an ``.npz`` with ``start:<session_id>`` / ``end:<session_id>`` arrays of
``time.monotonic()`` seconds per audio frame, and ``loop_lag`` (seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from array import array
from collections.abc import Callable
from typing import Any

import grpc
import numpy as np

__all__ = ["FrameProbe", "enable_reuseport", "main"]


class FrameProbe:
    """Per-session arrays of (start, end) monotonic times of every processed audio frame."""

    def __init__(self) -> None:
        self.starts: dict[str, array[float]] = {}
        self.ends: dict[str, array[float]] = {}
        self.loop_lag: array[float] = array("d")

    def record(self, session_id: str, start: float, end: float) -> None:
        starts = self.starts.get(session_id)
        if starts is None:
            starts = self.starts[session_id] = array("d")
            self.ends[session_id] = array("d")
        starts.append(start)
        self.ends[session_id].append(end)

    def save(self, path: str) -> None:
        data: dict[str, Any] = {"loop_lag": np.frombuffer(self.loop_lag, dtype=np.float64)}
        for sid, starts in self.starts.items():
            data[f"start:{sid}"] = np.frombuffer(starts, dtype=np.float64)
            data[f"end:{sid}"] = np.frombuffer(self.ends[sid], dtype=np.float64)
        tmp = path + ".part.npz"
        np.savez(tmp, **data)
        os.replace(tmp, path)

    async def watch_loop(self, period: float = 0.02) -> None:
        clock = time.monotonic
        lag = self.loop_lag
        while True:
            before = clock()
            await asyncio.sleep(period)
            lag.append(max(0.0, clock() - before - period))


def enable_reuseport() -> None:
    """Make every ``grpc.aio.server(...)`` built from now on set ``grpc.so_reuseport`` to 1."""
    original: Callable[..., grpc.aio.Server] = grpc.aio.server

    def server(*args: Any, options: Any = None, **kwargs: Any) -> grpc.aio.Server:
        kept = [(k, v) for k, v in (options or ()) if k != "grpc.so_reuseport"]
        return original(*args, options=[*kept, ("grpc.so_reuseport", 1)], **kwargs)

    grpc.aio.server = server


def install_session_probe(probe: FrameProbe) -> None:
    """Wrap ``Session.receive_client`` to time every audio frame (see the module docstring)."""
    from sonicwire.server.core import events as ev
    from sonicwire.server.core.session import Session

    original = Session.receive_client
    clock = time.monotonic
    audio_type = ev.AudioReceived

    def receive_client(self: Session, event: ev.ClientEvent, now: float) -> None:
        if type(event) is not audio_type:
            original(self, event, now)
            return
        start = clock()
        original(self, event, now)
        probe.record(self.session_id, start, clock())

    Session.receive_client = receive_client  # type: ignore[method-assign]


async def _serve_sonicwire(port: int, stop: asyncio.Event, backend: str) -> int:
    from sonicwire.server.app import start_server
    from sonicwire.server.config import ServerConfig

    config = ServerConfig(
        host="127.0.0.1",
        port=port,
        backend=backend,
        max_streams=0,
        idle_timeout_s=0.0,
        log_level="WARNING",
    )
    running = await start_server(config)
    _ready(running.port)
    try:
        await stop.wait()
    finally:
        await running.stop()
    return running.port


async def _serve_up(stop: asyncio.Event, backend: str, transport: str) -> None:
    """``sonicwire up``'s own wiring (``run_up``), with ``sonicwire-up``'s flag parsing."""
    from urllib.parse import urlsplit

    from sonicwire.gateway.config import gateway_config_from_args
    from sonicwire.gateway.up import build_parser, run_up
    from sonicwire.server.config import config_from_args

    flags = ["--host", "127.0.0.1", "--port", "0", "--backend", backend, "--max-streams", "0"]
    flags += ["--idle-timeout-seconds", "0", "--log-level", "WARNING", "--gateway-port", "0"]
    flags += ["--gateway-transport", transport]
    args = build_parser().parse_args(flags)
    server_config = config_from_args(args)
    gateway_config = gateway_config_from_args(args, log_level=server_config.log_level)
    ready: asyncio.Future[tuple[str, str]] = asyncio.get_running_loop().create_future()
    # `sonicwire up --gateway-transport`: in process (what it ships) or loopback gRPC.
    up = asyncio.create_task(
        run_up(
            server_config,
            gateway_config,
            ready=ready,
            stop=stop,
            transport=args.gateway_transport,
        )
    )
    either: set[asyncio.Future[Any]] = {up, ready}
    await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
    if ready.done():
        _ready(urlsplit(ready.result()[0]).port or 0)
    await up


async def _serve_bare_echo(
    port: int, stop: asyncio.Event, probe: FrameProbe, every: int = 1
) -> int:
    from bench.bare_echo import BareEchoServicer
    from sonicwire.v1 import voice_service_pb2_grpc as pb_grpc

    clock = time.monotonic

    def on_frame(session_id: str) -> None:
        now = clock()
        probe.record(session_id, now, now)

    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    pb_grpc.add_VoiceServiceServicer_to_server(BareEchoServicer(on_frame, every), server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    _ready(bound)
    try:
        await stop.wait()
    finally:
        await server.stop(None)
    return bound


def _ready(port: int) -> None:
    print(f"bench-server: READY 127.0.0.1:{port}", flush=True)


async def _main(args: argparse.Namespace) -> None:
    probe = FrameProbe()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    watcher = asyncio.create_task(probe.watch_loop())
    try:
        if args.kind == "bare-echo":
            await _serve_bare_echo(args.port, stop, probe, args.echo_every)
        elif args.kind == "up":
            install_session_probe(probe)
            await _serve_up(stop, args.backend, args.gateway_transport)
        else:
            install_session_probe(probe)
            await _serve_sonicwire(args.port, stop, args.backend)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        if args.probe_out:
            probe.save(args.probe_out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.probe_server")
    parser.add_argument("--kind", choices=("sonicwire", "bare-echo", "up"), default="sonicwire")
    parser.add_argument("--backend", default="echo")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--reuseport", action="store_true")
    parser.add_argument(
        "--echo-every", type=int, default=1, help="bare echo: one output per this many inputs"
    )
    parser.add_argument("--probe-out", default="")
    parser.add_argument("--cpus", default="", help="comma-separated CPU ids to pin to")
    parser.add_argument(
        "--event-loop",
        choices=("asyncio", "uvloop"),
        # a flag only, no environment variable: a value left in a shell would otherwise move
        # every probe server of a run onto it (bench.steps passes the step's loop to each)
        default="asyncio",
        help="the process's event loop (`sonicwire serve` and `sonicwire up` run asyncio's)",
    )
    parser.add_argument(
        "--gateway-transport",
        choices=("inproc", "grpc"),
        default="inproc",  # a flag only, like --event-loop
        help="--kind up: how the gateway reaches the server (`sonicwire up --gateway-transport`)",
    )
    args = parser.parse_args(argv)
    if args.cpus:
        os.sched_setaffinity(0, {int(c) for c in args.cpus.split(",")})
    logging.basicConfig(level=logging.WARNING)
    if args.reuseport:
        enable_reuseport()
    factory = None
    if args.event_loop == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    asyncio.run(_main(args), loop_factory=factory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
