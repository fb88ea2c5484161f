"""A real redis-server on loopback for tests of the shared conversation state store."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateway.test_gateway_http import free_port

__all__ = ["redis_server", "wait_for_redis"]


@contextlib.contextmanager
def redis_server(tmp_path: Path) -> Iterator[str]:
    """``redis://`` URL of a redis-server (no persistence) on a free port, stopped on exit."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is missing: run scripts/setup.sh (apt-get install redis-server)")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


async def wait_for_redis(url: str) -> None:
    """Wait until the server at ``url`` answers PING (it needs a moment to start)."""
    import redis.asyncio as redis

    client = redis.Redis.from_url(url)
    try:
        for _ in range(100):
            with contextlib.suppress(redis.ConnectionError):
                if await client.ping():
                    return
            await asyncio.sleep(0.05)
        raise AssertionError("redis-server did not start")
    finally:
        await client.aclose()
