"""bench.loop_counts: the event-loop counters see each callback once, by kind, and go away."""

from __future__ import annotations

import asyncio

from bench.loop_counts import LoopCounter


def test_counts_task_wakeups_and_callbacks_by_kind_then_uninstalls() -> None:
    original_run = asyncio.events.Handle._run
    calls: list[int] = []

    async def waiter(future: asyncio.Future[None]) -> None:
        await future

    async def main() -> None:
        loop = asyncio.get_running_loop()
        counter.watch_call_soon(loop)
        futures = [loop.create_future() for _ in range(3)]
        tasks = [asyncio.create_task(waiter(f)) for f in futures]
        await asyncio.sleep(0)  # every waiter is now suspended on its future
        counter.counting = True
        scheduled = counter.scheduled
        for future in futures:
            future.set_result(None)  # one wake-up callback per waiting task
        loop.call_soon(calls.append, 1)  # and one plain callback
        await asyncio.gather(*tasks)
        counter.counting = False
        # The futures' wake-ups go through the loop's call_soon too (C futures look it up).
        assert counter.scheduled - scheduled >= 4

    with LoopCounter().installed() as counter:
        asyncio.run(main())
        by_kind = dict(counter.handles)
    waiter_kind = f"task wakeup: {waiter.__qualname__}"
    assert by_kind[waiter_kind] == 3
    assert by_kind["list.append"] == 1 and calls == [1]
    assert counter.iterations >= 2
    assert asyncio.events.Handle._run is original_run
