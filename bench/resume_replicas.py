"""Two Sonicwire replicas sharing a redis-server, in one child process of ``bench.resume``.

    python -m bench.resume_replicas --state-store redis://127.0.0.1:PORT/0

Both use the echo backend, wrapped to record the index of every microphone frame it was given
(the client writes the index into each frame's first two samples; echo cancellation and noise
suppression are off, so frames reach the backend unchanged). Commands, one per stdin line,
each answered by one JSON line on stdout:

* ``drain SESSION_ID GRACE_S``: drain the replica holding that live session (``GoingAway``,
  then the stream ends after the grace), then start it again on the same port;
* ``frames SESSION_ID``: the frame indices the backends received for that session;
* ``quit``.

It prints ``bench-server: READY 127.0.0.1:PORT ports P1 P2`` once both serve.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import sys
import time

from sonicwire.server.app import RunningServer, start_server
from sonicwire.server.backends.base import BackendOptions
from sonicwire.server.backends.echo import EchoBackend, EchoSession
from sonicwire.server.config import ServerConfig
from sonicwire.server.core import events as ev

__all__ = ["CountingEcho", "frame_index", "main", "mark"]


def mark(frame: bytes, index: int) -> bytes:
    """Write ``index`` (< 4096) into the first two samples (each below 64: inaudible)."""
    return bytes([index % 64, 0, index // 64, 0]) + frame[4:]


def frame_index(pcm: bytes) -> int:
    return pcm[0] + 64 * pcm[2]


class CountingEcho(EchoBackend):
    """The echo backend, recording every microphone frame's index per session."""

    def __init__(self, frames: dict[str, list[int]]) -> None:
        super().__init__()
        self.frames = frames

    async def open(self, options: BackendOptions) -> EchoSession:
        session = await super().open(options)
        send = session.send
        seen = self.frames.setdefault(options.session_id, [])

        async def counting_send(command: ev.BackendCommand) -> None:
            if isinstance(command, ev.SendAudio):
                seen.extend(
                    frame_index(command.pcm[i : i + 640]) for i in range(0, len(command.pcm), 640)
                )
            await send(command)

        session.send = counting_send  # type: ignore[method-assign]
        return session


async def _run(store: str) -> None:
    frames: dict[str, list[int]] = {}
    base = ServerConfig(host="127.0.0.1", port=0, backend="echo", state_store=store,
                        log_level="WARNING", max_streams=0)  # fmt: skip
    servers: list[RunningServer] = []
    for _ in range(2):
        servers.append(await start_server(base, CountingEcho(frames)))
    ports = [s.port for s in servers]
    print(f"bench-server: READY 127.0.0.1:{ports[0]} ports {ports[0]} {ports[1]}", flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        while line := (await reader.readline()).decode().split():
            answer: dict[str, object] = {}
            if line[0] == "drain":
                session_id, grace = line[1], float(line[2])
                held = [i for i, s in enumerate(servers) if session_id in s.runtime.live]
                if held:
                    i = held[0]
                    start = time.monotonic()
                    await servers[i].drain(grace)
                    drained = time.monotonic()
                    config = dataclasses.replace(base, port=ports[i])
                    servers[i] = await start_server(config, CountingEcho(frames))
                    answer = {"replica": i, "drain_s": drained - start,
                              "restart_s": time.monotonic() - drained}  # fmt: skip
                else:
                    answer = {"error": f"{session_id} is live on no replica"}
            elif line[0] == "frames":
                answer = {"frames": frames.pop(line[1], [])}
            elif line[0] == "quit":
                break
            print(json.dumps(answer), flush=True)
    finally:
        for server in servers:
            await server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.resume_replicas")
    parser.add_argument("--state-store", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(_run(args.state_store))
    return 0


if __name__ == "__main__":
    sys.exit(main())
