"""A real Sonicwire server on loopback for tests and examples.

    async with running_server(backend=EchoBackend()) as server:
        channel = grpc.aio.insecure_channel(server.target)

Binds 127.0.0.1 port 0 (a free port), never reuses ports, and stops the server on exit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sonicwire.server.app import RunningServer, start_server
from sonicwire.server.backends.base import Backend
from sonicwire.server.config import ServerConfig

__all__ = ["running_server"]


@asynccontextmanager
async def running_server(
    backend: Backend | str | None = None, **config: Any
) -> AsyncIterator[RunningServer]:
    """Start a server with ``ServerConfig(host="127.0.0.1", port=0, **config)``.

    ``backend`` is a backend object, or a backend name ("echo", "local", "nova-sonic") that the
    server creates itself as ``sonicwire serve --backend NAME`` would; default "echo".
    """
    name = backend if isinstance(backend, str) else "echo"
    settings = dataclasses.replace(ServerConfig(host="127.0.0.1", port=0, backend=name), **config)
    server = await start_server(settings, None if isinstance(backend, str) else backend)
    try:
        yield server
    finally:
        await server.stop()
