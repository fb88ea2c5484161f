"""The WebSocket gateway's CPU per audio message in ``sonicwire up``'s shape, without sockets.

    python -m bench.gateway_path [--frames 20000] [--repeats 5] [--warmup 2000]
        [--transport inproc|grpc] [--channel-arg K=V ...] [--server-arg K=V ...]

Drives the gateway's real per-socket driver (``Connection._handle``) with the load
generator's 20 ms ``audiostream`` message (JSON, base64 PCM), through the SDK conversation and
the in-process channel (``LocalChannel``, the channel ``sonicwire up`` gives the gateway) to a
``Converse`` handler that reads every request and answers one 40 ms ``AudioOutput`` per two
requests (the server's ratio once a reply plays), back through the gateway's pump, the
``media`` rendering and the WebSocket library's framing (a real ``ServerProtocol``; the bytes
are counted and dropped). No sockets and no server front end: what is measured is the gateway's,
the SDK's and the channel's Python per message and the event loop's hops between their tasks.
What it leaves out (the socket reads and writes, the library's parsing of inbound frames, the
server) is the same for any change to those three.

``--transport grpc`` measures the two-process deployment's hop instead: the same handler served
by a real ``grpc.aio`` server on 127.0.0.1 (port 0) with the server's own channel arguments
(``sonicwire.server.app.grpc_server_options``), reached by the gateway's real ``Upstream``
channel (its own arguments), both in this process and loop: both sides of the hop, C-core's
threads included (the CPU is then the process's, not the thread's). ``--channel-arg`` and
``--server-arg`` add a channel argument to one side (an integer if it parses as one), to try
one without editing the code.

It prints the thread CPU time per inbound message (min and median of ``repeats`` runs). For
instruction counts, run it under ``valgrind --tool=callgrind`` with two ``--frames`` and
``--repeats 1``: the difference of the totals over the difference of the frames is the
instructions per message, start-up and warm-up cancelled (docs/gateway.md, "One process, per
message").
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
from websockets.protocol import State
from websockets.server import ServerProtocol

from sonicwire.gateway.config import GatewayConfig
from sonicwire.gateway.connection import Connection, GatewayStats
from sonicwire.gateway.protocol import Configure
from sonicwire.gateway.state import Phase
from sonicwire.gateway.upstream import Upstream
from sonicwire.server.app import grpc_server_options
from sonicwire.server.config import ServerConfig
from sonicwire.server.local_channel import LocalChannel
from sonicwire.server.local_rpc import HandlerRegistry, LocalServer
from sonicwire.v1 import voice_service_pb2 as pb

__all__ = ["PathRun", "main", "measure"]

_FRAME_BYTES = 640  # 20 ms of 16 kHz PCM s16le, as bench.loadgen sends
_REPLY_BYTES = 1280  # 40 ms: the server's playback batch
_REPLY_EVERY = 2


@dataclass(frozen=True)
class PathRun:
    """One run: CPU per inbound message, and what crossed."""

    us_per_message: float
    requests_handled: int
    """Audio requests the handler read (warm-up included)."""
    media_bytes: int
    """WebSocket bytes framed for the client during the timed messages."""


class _Handler:
    """A ``Converse`` handler: SessionStarted, then one AudioOutput per two requests."""

    def __init__(self) -> None:
        self.requests = 0

    async def converse(self, requests: AsyncIterator[pb.ConverseRequest], context: Any) -> None:
        first = await anext(requests)
        started = pb.SessionStarted(
            session_id="bench",
            config=first.config,
            limits=pb.SessionLimits(max_audio_chunk_bytes=65536),
        )
        await context.write(pb.ConverseResponse(session_started=started))
        reply = os.urandom(_REPLY_BYTES)
        offset = 0
        async for _ in requests:
            self.requests += 1
            if self.requests % _REPLY_EVERY == 0:
                offset += 40
                out = pb.ConverseResponse()
                out.audio.audio = reply
                out.audio.turn_id = "t1"
                out.audio.offset_ms = offset
                await context.write(out)


class _Transport:
    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0


class _Socket:
    """What `Connection` uses of a ``ServerConnection`` on its send-now path: an open
    protocol (real framing) whose output is counted, never waiting."""

    def __init__(self) -> None:
        self.protocol = ServerProtocol()
        self.protocol.state = State.OPEN
        self.send_in_progress = None
        self.transport = _Transport()
        self.id = "bench"
        self.framed = 0

    def send_data(self) -> None:
        for data in self.protocol.data_to_send():
            self.framed += len(data)

    async def send(self, message: str | bytes) -> None:
        raise AssertionError("a send had to wait: the path measured is the send-now one")

    async def wait_closed(self) -> None:
        """The client never leaves (the conversation's start waits on this: guard.until_closed)."""
        await asyncio.get_running_loop().create_future()


Args = list[tuple[str, Any]]


@dataclass(frozen=True)
class Hop:
    """How the gateway reaches the handler: the in-process channel, or loopback gRPC with
    extra channel arguments on either side."""

    transport: str = "inproc"
    channel_args: tuple[tuple[str, Any], ...] = ()
    server_args: tuple[tuple[str, Any], ...] = ()


async def _upstream(hop: Hop, method: Any) -> tuple[Upstream, grpc.aio.Server | None]:
    if hop.transport == "inproc":
        registry = HandlerRegistry()
        registry.add_registered_method_handlers("sonicwire.v1.VoiceService", {"Converse": method})
        channel = LocalChannel(LocalServer(registry))
        return Upstream(GatewayConfig(), channel=channel, route="bench"), None
    server = grpc.aio.server(options=grpc_server_options(ServerConfig()) + list(hop.server_args))
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("sonicwire.v1.VoiceService", {"Converse": method}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    config = GatewayConfig(grpc_target=f"127.0.0.1:{port}")
    if not hop.channel_args:
        return Upstream(config), server
    made = grpc.aio.insecure_channel

    def with_args(target: str, options: Args | None = None, **kwargs: Any) -> Any:
        return made(target, options=list(options or ()) + list(hop.channel_args), **kwargs)

    # Upstream's own arguments, then the extra ones.
    grpc.aio.insecure_channel = with_args  # type: ignore[assignment]
    try:
        return Upstream(config), server
    finally:
        grpc.aio.insecure_channel = made


async def _caught_up(handler: _Handler, expected: int) -> None:
    # Over gRPC a write completes before the handler has read it: wait for the last one.
    # Polled, not an Event the handler sets: the handler's per-message work stays as measured.
    while handler.requests < expected:  # noqa: ASYNC110
        await asyncio.sleep(0.001)


async def _run(frames: int, warmup: int, hop: Hop = Hop()) -> PathRun:
    handler = _Handler()
    method = grpc.stream_stream_rpc_method_handler(
        handler.converse,
        request_deserializer=pb.ConverseRequest.FromString,
        response_serializer=pb.ConverseResponse.SerializeToString,
    )
    config = GatewayConfig()
    upstream, server = await _upstream(hop, method)
    clock = time.thread_time if server is None else time.process_time
    socket = _Socket()
    ws: Any = socket  # what Connection uses of a ServerConnection, no more
    connection = Connection(ws, upstream=upstream, config=config, stats=GatewayStats())
    if not await connection._open(Configure(), None):
        raise RuntimeError("the conversation did not start")
    connection._flow.phase = Phase.OPEN
    pcm = os.urandom(_FRAME_BYTES)
    message = json.dumps({"action": "audiostream", "audioData": base64.b64encode(pcm).decode()})
    handle = connection._handle
    for _ in range(warmup):
        await handle(message, None)
        await asyncio.sleep(0)
    await _caught_up(handler, warmup)
    await asyncio.sleep(0.01)
    framed = socket.framed
    began = clock()
    for _ in range(frames):
        await handle(message, None)
        # One turn of the loop per message, as between two socket reads: the handler's and
        # the pump's tasks run.
        await asyncio.sleep(0)
    await asyncio.sleep(0)
    await _caught_up(handler, warmup + frames)
    spent = clock() - began
    run = PathRun(spent / frames * 1e6, handler.requests, socket.framed - framed)
    await upstream.aclose()
    if server is not None:
        await server.stop(None)
    return run


def measure(frames: int, warmup: int = 2000, hop: Hop = Hop()) -> PathRun:
    """One run in a fresh event loop."""
    return asyncio.run(_run(frames, warmup, hop))


def _channel_arg(text: str) -> tuple[str, Any]:
    key, _, value = text.partition("=")
    try:
        return key, int(value)
    except ValueError:
        return key, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gateway_path")
    parser.add_argument("--frames", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2000)
    parser.add_argument("--transport", choices=("inproc", "grpc"), default="inproc")
    parser.add_argument("--channel-arg", type=_channel_arg, action="append", default=[])
    parser.add_argument("--server-arg", type=_channel_arg, action="append", default=[])
    args = parser.parse_args(argv)
    if args.transport == "inproc" and (args.channel_arg or args.server_arg):
        parser.error("--channel-arg and --server-arg need --transport grpc")
    hop = Hop(args.transport, tuple(args.channel_arg), tuple(args.server_arg))
    runs = [measure(args.frames, args.warmup, hop) for _ in range(args.repeats)]
    us = [r.us_per_message for r in runs]
    last = runs[-1]
    where = "in process" if hop.transport == "inproc" else "over loopback gRPC, both sides"
    print(
        f"gateway path, {where}: {min(us):.2f} us CPU per audio message (min), "
        f"{statistics.median(us):.2f} (median of {args.repeats} x {args.frames}); "
        f"{last.media_bytes / args.frames:.0f} bytes framed per message; load1 "
        f"{os.getloadavg()[0]:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
