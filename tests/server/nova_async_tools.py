"""Server tools for the barge-in tests (`test_nova_async_tools.py`), loaded as the plugin
``tests.server.nova_async_tools:TOOLS`` exactly as ``--tools`` loads one.

Both look an order up slowly: the handler waits until the test opens `gate` (bounded), so a
barge-in finds the call still running. ``track_order_async`` is declared to keep running
through a barge-in; ``track_order_sync`` is not. `outcomes` records how each handler ended.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sonicwire.server.tools import ToolContext, tool

__all__ = ["TOOLS", "gate", "outcomes", "reset"]

gate = {"open": False}
outcomes: list[tuple[str, str]] = []  # (tool name, "finished" | "cancelled")

_SCHEMA = {"type": "object", "properties": {"order_id": {"type": "string"}}}


def reset() -> None:
    gate["open"] = False
    outcomes.clear()


async def _slow_lookup(name: str, args: dict[str, Any]) -> dict[str, Any]:
    try:
        for _ in range(2000):  # at most ~20 s, then answer anyway
            if gate["open"]:
                break
            await asyncio.sleep(0.01)
    except asyncio.CancelledError:
        outcomes.append((name, "cancelled"))
        raise
    outcomes.append((name, "finished"))
    return {"order_id": args.get("order_id", ""), "status": "shipped"}


@tool(
    description="Look up an order (slow; keeps running if the user talks over the answer).",
    parameters=_SCHEMA,
    timeout_s=30,
    continue_on_interruption=True,
    # For the offline engine: how it is asked for, and how its result is said.
    examples=("check my delivery status",),
    answer="Your delivery is {status}.",
)
async def track_order_async(args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    return await _slow_lookup(ctx.name, args)


@tool(description="Look up an order (slow).", parameters=_SCHEMA, timeout_s=30)
async def track_order_sync(args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    return await _slow_lookup(ctx.name, args)


TOOLS = [track_order_async, track_order_sync]
