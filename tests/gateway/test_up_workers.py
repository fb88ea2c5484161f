"""`sonicwire up --workers 2` as a real process: a crashed worker's conversation moves to a
sibling worker without the browser noticing, and SIGTERM on `up` still gives the browser
``going_away``, then 1001.

Before, `up` turned upstream resume off altogether (so that SIGTERM reached browsers as
``going_away``): a crashed worker's conversations then closed 4503 and the page reconnected.
Now resume stays on and `up` stops it only when it drains itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import psutil
import pytest
from websockets.asyncio.client import connect

from ..server.redis_server import redis_server, wait_for_redis
from .helpers import events_until, until_closed

pytestmark = pytest.mark.timeout(180)

_UP = "import sys; from sonicwire.gateway.up import up_main; sys.exit(up_main())"


@asynccontextmanager
async def up_with_workers(*args: str) -> AsyncIterator[tuple[asyncio.subprocess.Process, str, int]]:
    """``sonicwire up --workers 2`` in its own process group: (process, page URL, gRPC port)."""
    env = {**os.environ, "SONICWIRE_LOG_LEVEL": "WARNING"}
    env.pop("SONICWIRE_GATEWAY_UPSTREAM_RESUME", None)  # the default is under test
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _UP,
        *("--host", "127.0.0.1", "--port", "0", "--backend", "echo", "--workers", "2"),
        *("--gateway-port", "0", *args),
        stdout=subprocess.PIPE,
        env=env,
        start_new_session=True,  # killed as a group at the end, workers included
    )
    try:
        assert proc.stdout is not None
        banner = ""
        while "gRPC" not in banner:
            line = (await asyncio.wait_for(proc.stdout.readline(), 90)).decode()
            assert line, f"sonicwire up exited: {banner!r}"
            banner += line
        url = re.search(r"open (\S+) in a browser", banner)
        grpc_port = re.search(r"gRPC \S+:(\d+),", banner)
        assert url and grpc_port, f"unexpected banner: {banner!r}"
        yield proc, url.group(1), int(grpc_port.group(1))
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await asyncio.wait_for(proc.wait(), 10)


def serving_worker(up_pid: int, grpc_port: int) -> psutil.Process:
    """The worker holding the gateway's gRPC connection (one HTTP/2 connection carries every
    conversation of the gateway)."""
    for child in psutil.Process(up_pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            for conn in child.net_connections(kind="tcp"):
                if conn.status == psutil.CONN_ESTABLISHED and conn.laddr.port == grpc_port:
                    return child
    raise AssertionError("no worker holds the gateway's connection")


async def test_a_crashed_worker_moves_silently_and_sigterm_still_says_going_away(
    tmp_path: Path,
) -> None:
    with redis_server(tmp_path) as store:
        await wait_for_redis(store)
        async with up_with_workers("--state-store", store, "--drain-grace-seconds", "1") as (
            proc,
            url,
            grpc_port,
        ):
            async with connect(url.replace("http", "ws") + "ws") as ws:
                await ws.send(json.dumps({"action": "text", "text": "before the crash"}))
                await events_until(ws, lambda e: e["event"] == "turn_complete")
                worker = serving_worker(proc.pid, grpc_port)
                worker.kill()  # a crash: no GoingAway, the stream just breaks
                # Moved to the sibling worker: the socket stays open, the browser hears
                # `resumed` and nothing else about it, and the conversation goes on.
                moved = await events_until(ws, lambda e: e["event"] == "resumed")
                assert [e["event"] for e in moved] == ["resumed"], moved
                await ws.send(json.dumps({"action": "text", "text": "after the crash"}))
                after = await events_until(ws, lambda e: e["event"] == "turn_complete")
                assert not [e for e in after if e["event"] in ("error", "going_away")], after
                assert serving_worker(proc.pid, grpc_port).pid != worker.pid
                proc.send_signal(signal.SIGTERM)
                closed = await until_closed(ws)
            assert await asyncio.wait_for(proc.wait(), 60) == 0
    going_away, *_ = closed.events
    assert (going_away["event"], going_away["grace_ms"]) == ("going_away", 1000), closed.events
    assert closed.code == 1001
