"""A real Sonicwire gRPC server on 127.0.0.1 (a free port) whose backend calls client tools.

The offline local engine only calls its two built-in tools (issue 16 teaches it client tools),
so the SDK tests drive client-tool round trips through `ToolCallingBackend`: a typed turn
``call NAME {json}`` becomes a tool call, and the tool's result is spoken back as JSON.

    python -m tests.sdks.tool_server      # prints "gRPC on 127.0.0.1:PORT", runs until killed
"""

from __future__ import annotations

import asyncio

from sonicwire.server.testing.backends import ToolCallingBackend
from sonicwire.server.testing.server import running_server

__all__ = ["main"]


async def main() -> None:
    async with running_server(backend=ToolCallingBackend()) as server:
        print(f"sonicwire: gRPC on {server.target} (backend tool-calling)", flush=True)
        await asyncio.Event().wait()  # until the test kills the process


if __name__ == "__main__":
    asyncio.run(main())
