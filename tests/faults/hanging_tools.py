"""Server tools that misbehave, loaded by reference (``tests.faults.hanging_tools:TOOLS``).

`hang_forever` awaits forever but honours cancellation; `ignore_cancel` swallows every
cancellation and keeps waiting (a plugin written badly). Both record what happened to them in
module-level lists the tests read.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sonicwire.server.tools import ToolContext, tool

__all__ = [
    "CALLS",
    "CANCELLED",
    "IGNORED_CANCELS",
    "TOOLS",
    "hang_forever",
    "ignore_cancel",
    "release_stubborn_tools",
    "reset",
]

TIMEOUT_S = 0.3

CALLS: list[str] = []
CANCELLED: list[str] = []
IGNORED_CANCELS: list[str] = []
_RELEASE = {"ignore_cancel": False}


@tool(description="Never returns.", parameters={"type": "object"}, timeout_s=TIMEOUT_S)
async def hang_forever(args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    CALLS.append(ctx.call_id)
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        CANCELLED.append(ctx.call_id)
        raise
    raise AssertionError("unreachable")


@tool(description="Ignores cancellation.", parameters={"type": "object"}, timeout_s=TIMEOUT_S)
async def ignore_cancel(args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    CALLS.append(ctx.call_id)
    while not _RELEASE["ignore_cancel"]:
        try:
            await asyncio.sleep(0.05)
        except asyncio.CancelledError:  # the very thing a tool must not do
            IGNORED_CANCELS.append(ctx.call_id)
    return {"late": True}


def release_stubborn_tools() -> None:
    """Let `ignore_cancel` handlers return (test clean-up)."""
    _RELEASE["ignore_cancel"] = True


def reset() -> None:
    CALLS.clear()
    CANCELLED.clear()
    IGNORED_CANCELS.clear()
    _RELEASE["ignore_cancel"] = False


TOOLS = [hang_forever, ignore_cancel]
