"""bench.driver_costs runs its four cases to the end (the figures themselves are not checked:
they are CPU times of this machine), and its driver case really drives every message."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bench import driver_costs
from bench.driver_costs import measure
from sonicwire.server import servicer
from sonicwire.server.core import events as ev


def test_every_case_runs_and_is_timed_per_item() -> None:
    us = measure(messages=300, repeats=1)
    assert set(us) == {"direct", "hop", "decode", "driver"}
    assert all(value > 0 for value in us.values())


def test_the_driver_case_hands_every_message_to_the_backend(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its figure is per message: a driver that stopped reading early, or dropped messages,
    would make it look cheap."""
    sent: list[object] = []

    async def send(self: object, command: object) -> None:
        sent.append(command)

    monkeypatch.setattr(driver_costs._NullBackend, "send", send)
    asyncio.run(driver_costs._driver(200))
    assert sum(isinstance(c, ev.SendAudio) for c in sent) == 200


def test_a_conversation_that_fails_early_ends_the_driver_case(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An error, not a wait for ever for messages the conversation will never read."""
    client_events = servicer._client_events

    async def failing(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
        count = 0
        async for event in client_events(requests):
            count += 1
            if count > 3:
                raise ValueError("the stream broke")
            yield event

    monkeypatch.setattr(servicer, "_client_events", failing)

    async def bounded() -> None:
        await asyncio.wait_for(driver_costs._driver(100), 10)

    with pytest.raises(Exception) as raised:
        asyncio.run(bounded())
    assert not isinstance(raised.value, TimeoutError)
