"""What a flood of tiny audio chunks costs a real ``sonicwire serve --backend echo`` process.

    python -m bench.audio_flood [--seconds 10] [--chunk-bytes 32] [--once]
                                [--server-arg=--audio-rate=0]

One client sends ``AudioInput`` chunks of ``--chunk-bytes`` (32 bytes = 1 ms at 16 kHz) as fast
as gRPC flow control lets it, reading every response; when the server ends a stream the client
opens the next one at once (``--once``: it stops there), until ``--seconds`` have passed (a
bounded loop, on loopback). The
server process's CPU time over that window is reported as a share of one core, with the chunks
sent, the streams used and how they ended. ``--server-arg`` passes flags to the server (e.g.
``--server-arg=--audio-rate=0`` to turn the audio message-rate limit off, as before it
existed). The machine's load average is recorded: the client shares the machine.

How a stream ended is the status the *server* sent, read as the SDK reads it: a client that
writes while the server ends the stream often sees grpc.aio's local INTERNAL "Internal error
from Core" instead (its failed write overwrites the status it had just received,
grpc/grpc#36066; about one refused flood in four here). ``status_overwritten`` counts those.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import grpc
import psutil

# The SDK's reading of a call's real status (a private module: the bench is in-tree).
from sonicwire.client._status import FirstStatus, is_core_write_error
from sonicwire.client.errors import error_from_rpc
from sonicwire.v1 import voice_service_pb2 as pb
from sonicwire.v1 import voice_service_pb2_grpc as pb_grpc

from .hardening import Server

__all__ = ["flood", "main"]


async def _one_stream(
    stub: Any, chunk: bytes, deadline: float, sent: list[int], overwritten: list[int]
) -> str:
    """Flood one stream until the server ends it or ``deadline``; returns how it ended (the
    server's status; ``overwritten[0]`` counts the streams whose client saw grpc.aio's INTERNAL
    in its place)."""
    call = stub.Converse()  # (the generated stub is typed for sync channels)
    first = FirstStatus()  # sees the server's status before a failed write can overwrite it
    call.add_done_callback(first)
    await call.write(pb.ConverseRequest(config=pb.SessionConfig()))
    request = pb.ConverseRequest(audio=pb.AudioInput(audio=chunk))

    async def write() -> None:
        while time.monotonic() < deadline:
            await call.write(request)
            sent[0] += 1
        await call.done_writing()

    async def read() -> None:
        async for _ in call:
            pass

    writer = asyncio.create_task(write())
    try:
        await read()
        return "OK"
    except grpc.aio.AioRpcError as error:
        if is_core_write_error(error.code(), error.details()):
            overwritten[0] += 1
            server = await first.settle(call)
            if server is not None and server.code is not None:
                return f"{server.code.name} {server.reason}".strip()
        return f"{error.code().name} {error_from_rpc(error).reason}".strip()
    finally:
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)


async def flood(
    target: str, pid: int, seconds: float, chunk_bytes: int, *, once: bool = False
) -> dict[str, Any]:
    """Run the flood loop against ``target`` (server process ``pid``) for ``seconds``; with
    ``once``, one stream only (then idle until ``seconds`` have passed)."""
    server = psutil.Process(pid)
    chunk = bytes(chunk_bytes)
    sent, overwritten = [0], [0]
    ends: Counter[str] = Counter()
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb_grpc.VoiceServiceStub(channel)
        before, started = server.cpu_times(), time.monotonic()
        deadline = started + seconds
        while time.monotonic() < deadline:
            ends[await _one_stream(stub, chunk, deadline, sent, overwritten)] += 1
            if once:
                await asyncio.sleep(max(0.0, deadline - time.monotonic()))
        after, wall = server.cpu_times(), time.monotonic() - started
    cpu = (after.user - before.user) + (after.system - before.system)
    return {
        "seconds": round(wall, 2),
        "chunk_bytes": chunk_bytes,
        "chunks_sent": sent[0],
        "chunks_per_s": round(sent[0] / wall),
        "streams": sum(ends.values()),
        "ends": dict(ends),
        "status_overwritten": overwritten[0],
        "server_cpu_s": round(cpu, 2),
        "server_core_share": round(cpu / wall, 3),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--chunk-bytes", type=int, default=32)
    parser.add_argument("--once", action="store_true", help="one stream, no reconnecting")
    parser.add_argument("--server-arg", action="append", default=[])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    server = Server(Path(os.environ.get("TMPDIR", "/tmp")) / "audio_flood_server.log")
    server.start(extra_args=args.server_arg)
    try:
        load_before = os.getloadavg()[0]
        assert server.proc is not None
        result = asyncio.run(
            flood(server.target, server.proc.pid, args.seconds, args.chunk_bytes, once=args.once)
        )
        result |= {
            "once": args.once,
            "server_args": args.server_arg,
            "load_before": round(load_before, 2),
            "load_after": round(os.getloadavg()[0], 2),
            "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
    finally:
        server.stop()
    text = json.dumps(result, indent=1)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
