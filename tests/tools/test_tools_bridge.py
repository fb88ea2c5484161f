"""SessionTools: the session core's ToolAction values in, ToolCompleted values out."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from sonicwire.server.core import events as ev
from sonicwire.server.testing.tools import ManualClock
from sonicwire.server.tools import ToolContext, ToolExecutor, ToolRegistry, ToolSpec, tool
from sonicwire.server.tools.bridge import SessionTools


@tool(description="Add one.", parameters={"type": "object", "required": ["n"]})
async def inc(args: dict[str, Any], ctx: ToolContext) -> int:
    return int(args["n"]) + 1


@tool(description="Never returns.")
async def hang(args: dict[str, Any], ctx: ToolContext) -> None:
    await asyncio.Event().wait()


CRM = ToolSpec(
    name="crm",
    description="CRM lookup.",
    parameters={"type": "object"},
    executor=ToolExecutor.CLIENT,
)


async def test_actions_map_to_the_runner() -> None:
    completed: list[ev.ToolCompleted] = []
    clock = ManualClock()
    tools = SessionTools(
        ToolRegistry([inc, hang]),
        [CRM],
        on_outcome=completed.append,
        clock=clock,
        session_id="s1",
    )
    assert [s.name for s in tools.specs] == ["inc", "hang", "crm"]
    tools.handle(ev.RunTool("a", "inc", '{"n": 41}', ev.ToolExecutor.SERVER))
    tools.handle(ev.RunTool("b", "hang", "{}", ev.ToolExecutor.SERVER))
    tools.handle(ev.RunTool("c", "crm", "{}", ev.ToolExecutor.CLIENT))
    tools.handle(ev.RunTool("d", "inc", "{}", ev.ToolExecutor.SERVER))  # invalid: no n
    for _ in range(10):
        await asyncio.sleep(0)
    clock.advance(0.25)
    tools.handle(ev.DeliverToolResult("c", '{"customer": "Ada"}', False))
    tools.handle(ev.DeliverToolResult("c", "{}", False))  # a duplicate: logged, ignored
    tools.handle(ev.CancelTools("interrupted"))
    await tools.aclose()
    by_id = {c.call_id: c for c in completed}
    assert len(completed) == 4
    assert by_id["a"].status is ev.ToolStatus.OK and json.loads(by_id["a"].result_json) == 42
    assert by_id["b"].status is ev.ToolStatus.CANCELLED
    assert by_id["c"] == ev.ToolCompleted("c", "crm", ev.ToolStatus.OK, '{"customer": "Ada"}', 250)
    assert by_id["d"].status is ev.ToolStatus.INVALID_ARGUMENTS
