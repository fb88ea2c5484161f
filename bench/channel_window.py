"""Paced audio replies of many streams on one gRPC channel, across a round trip.

    python -m bench.channel_window [--rtt-ms 100] [--streams 40] [--bdp-probe 0|1]
        [--seconds 4] [--bytes-per-s 32000]

The gateway opens one channel to its server, so every socket's replies share one HTTP/2
connection and its receive window. This serves ``--streams`` server-streaming calls, each
sending ``--bytes-per-s`` (16 kHz PCM: 32,000) in 40 ms chunks paced at real time, through a
local TCP proxy that holds each direction's bytes for half of ``--rtt-ms``, to one
``grpc.aio`` channel with ``grpc.http2.bdp_probe`` as given. It prints the throughput received
against the one needed, how long ``--seconds`` of audio took, and how late the chunks came
(each against its due time from its call's start). Without BDP probing the connection's window
stays at 64 KiB: 64 KiB per round trip for all the streams (docs/gateway.md, "The two-process
hop").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from dataclasses import dataclass

import grpc
from grpc import aio

__all__ = ["Result", "measure"]

_CHUNK_S = 0.040
_METHOD = "/bench.Window/Replies"


@dataclass(frozen=True, slots=True)
class Result:
    received_bytes: int
    needed_bytes: int
    elapsed_s: float
    lateness_s: list[float]  # per chunk, sorted


async def _relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Forward ``reader`` to ``writer``, each read held ``delay`` seconds (order kept)."""
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def send() -> None:
        while True:
            due, data = await queue.get()
            if not data:
                writer.close()
                return
            wait = due + delay - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()

    sender = asyncio.create_task(send())
    try:
        while True:
            data = await reader.read(65536)
            queue.put_nowait((time.monotonic(), data))
            if not data:
                break
        await sender
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await sender


async def measure(
    *, rtt_s: float, streams: int, bdp_probe: int, seconds: float, bytes_per_s: int
) -> Result:
    chunk = bytes(int(bytes_per_s * _CHUNK_S))
    count = round(seconds / _CHUNK_S)

    async def replies(request: bytes, context: aio.ServicerContext[bytes, bytes]) -> object:
        start = time.monotonic()
        for index in range(count):
            yield chunk
            wait = start + (index + 1) * _CHUNK_S - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)

    server = aio.server()
    handler = grpc.method_handlers_generic_handler(
        "bench.Window", {"Replies": grpc.unary_stream_rpc_method_handler(replies)}
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()

    async def connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
        # cancelled when the run ends with the connection still open: nothing to report
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(
                _relay(reader, up_writer, rtt_s / 2),
                _relay(up_reader, writer, rtt_s / 2),
                return_exceptions=True,
            )

    proxy = await asyncio.start_server(connect, "127.0.0.1", 0)
    proxy_port = proxy.sockets[0].getsockname()[1]
    received = [0]
    lateness: list[float] = []
    options = [("grpc.http2.bdp_probe", bdp_probe)]
    try:
        async with aio.insecure_channel(f"127.0.0.1:{proxy_port}", options=options) as channel:
            call: aio.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(_METHOD)

            async def one() -> None:
                start = time.monotonic()
                index = 0
                async for message in call(b""):
                    index += 1
                    received[0] += len(message)
                    lateness.append(time.monotonic() - (start + index * _CHUNK_S))

            began = time.monotonic()
            await asyncio.gather(*(one() for _ in range(streams)))
            elapsed = time.monotonic() - began
    finally:
        proxy.close()
        await server.stop(None)
    return Result(received[0], streams * count * len(chunk), elapsed, sorted(lateness))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.channel_window")
    parser.add_argument("--rtt-ms", type=float, default=100.0)
    parser.add_argument("--streams", type=int, default=40)
    parser.add_argument("--bdp-probe", type=int, choices=(0, 1), default=0)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--bytes-per-s", type=int, default=32_000)
    args = parser.parse_args(argv)
    result = asyncio.run(
        measure(
            rtt_s=args.rtt_ms / 1000,
            streams=args.streams,
            bdp_probe=args.bdp_probe,
            seconds=args.seconds,
            bytes_per_s=args.bytes_per_s,
        )
    )
    late = result.lateness_s
    print(
        f"rtt {args.rtt_ms:g} ms, {args.streams} streams, bdp_probe {args.bdp_probe}: "
        f"{result.received_bytes / result.elapsed_s / 1e6:.2f} MB/s received, "
        f"{args.streams * args.bytes_per_s / 1e6:.2f} needed; {args.seconds:g} s of audio took "
        f"{result.elapsed_s:.1f} s; lateness median {late[len(late) // 2] * 1000:.0f} ms, "
        f"max {late[-1] * 1000:.0f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
