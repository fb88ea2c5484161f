"""The end of a conversation that ended normally while `outputs`' consumer was busy (a handler
parked writing to a client that stopped reading): the end gets the stall timeout to be taken,
then the stream ends CLIENT_TOO_SLOW through ``on_failure``; a drain (`terminate`) ends it at
once. A fake clock and a release clock ticked by hand: no assertion depends on wall time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from sonicwire.server.conversation import Budget, Conversation
from sonicwire.server.core import events as ev
from sonicwire.server.core.errors import ServerDraining, SonicwireError
from sonicwire.server.core.session import Session
from sonicwire.server.release_clock import ReleaseClock

from .test_conversation_sends import RecordingSession, quiet_settings
from .test_release_clock import FakeClock

STALL_S = 5.0


async def _busy_at_the_end() -> tuple[
    Conversation, AsyncIterator[ev.ClientOutput], FakeClock, ReleaseClock, list[SonicwireError]
]:
    """A conversation whose consumer holds an output (as a write parked on flow control
    would) when the client half-closes and the conversation ends normally."""
    clock = FakeClock()
    pacer = ReleaseClock(clock, period_s=None)
    conversation = Conversation(
        Session("s", quiet_settings()),
        RecordingSession(),
        clock=clock,
        budget=Budget(stall_timeout_s=STALL_S),
        release_clock=pacer,
    )
    failures: list[SonicwireError] = []
    conversation.on_failure = failures.append
    half_close = asyncio.Event()

    async def inputs() -> AsyncIterator[ev.ClientEvent]:
        await half_close.wait()
        return
        yield  # an async generator that yields nothing

    conversation.go_away("test", 1.0)  # one output queued before the end
    outputs = conversation.outputs(inputs())
    first = await anext(outputs)  # ...taken, and not given back: the consumer is busy
    assert isinstance(first, ev.GoingAwayOut)
    half_close.set()
    for _ in range(20):  # the input task sees the half-close, the session ends
        await asyncio.sleep(0)
    assert conversation.session.ended
    return conversation, outputs, clock, pacer, failures


async def test_an_end_not_taken_within_the_stall_timeout_ends_client_too_slow() -> None:
    _, outputs, clock, pacer, failures = await _busy_at_the_end()
    clock.now += STALL_S - 0.1
    pacer.tick()
    assert failures == []  # not before the stall timeout
    clock.now += 0.2
    pacer.tick()
    assert [f.reason for f in failures] == ["CLIENT_TOO_SLOW"]
    # A consumer that comes back gets the failure instead of the end.
    with pytest.raises(SonicwireError) as caught:
        await anext(outputs)
    assert caught.value.reason == "CLIENT_TOO_SLOW"
    assert len(pacer) == 0


async def test_an_end_taken_in_time_ends_the_stream_normally() -> None:
    conversation, outputs, clock, pacer, failures = await _busy_at_the_end()
    rest = [output async for output in outputs]
    assert rest == []  # the end, without a failure
    clock.now += 10 * STALL_S
    pacer.tick()
    assert failures == []
    assert len(pacer) == 0  # nothing of the stream left on the clock
    conversation.terminate(ServerDraining("SERVER_DRAINING", "drain"))
    assert failures == []  # a stream that is gone is not ended twice


async def test_a_drain_ends_a_stream_whose_end_was_not_taken() -> None:
    conversation, outputs, clock, pacer, failures = await _busy_at_the_end()
    conversation.terminate(ServerDraining("SERVER_DRAINING", "drain"))
    assert [f.reason for f in failures] == ["SERVER_DRAINING"]
    clock.now += 10 * STALL_S
    pacer.tick()
    assert len(failures) == 1  # the end's deadline does not fire on top
    with pytest.raises(SonicwireError) as caught:
        await anext(outputs)
    assert caught.value.reason == "SERVER_DRAINING"


async def test_a_stream_paused_before_its_end_keeps_its_stall_deadline() -> None:
    # Paused because the client does not read (an output queued behind the one it holds),
    # then the backend ends the session just before the stall timeout: the end must not
    # restart the clock (a stream paused for longer than the stall timeout ends
    # CLIENT_TOO_SLOW, the module's docstring). A half-close cannot end a paused stream: its
    # input is not read while paused.
    clock = FakeClock()
    pacer = ReleaseClock(clock, period_s=None)
    backend = RecordingSession()
    conversation = Conversation(
        Session("s", quiet_settings()),
        backend,
        clock=clock,
        budget=Budget(stall_timeout_s=STALL_S, pending_outputs=1),
        release_clock=pacer,
    )
    failures: list[SonicwireError] = []
    conversation.on_failure = failures.append

    async def inputs() -> AsyncIterator[ev.ClientEvent]:
        await asyncio.Event().wait()  # the client sends nothing more
        yield  # pragma: no cover

    conversation.go_away("test", 1.0)
    conversation.go_away("test", 1.0)  # two outputs queued
    outputs = conversation.outputs(inputs())
    await anext(outputs)  # one taken and held: the other is the budget's worth, paused
    paused_at = clock.now
    clock.now += STALL_S - 0.5
    backend.events_q.put_nowait(None)  # the backend ends the session
    for _ in range(20):
        await asyncio.sleep(0)
    assert failures == []
    clock.now = paused_at + STALL_S + 0.1
    pacer.tick()
    assert [f.reason for f in failures] == ["CLIENT_TOO_SLOW"]
    with pytest.raises(SonicwireError) as caught:
        await anext(outputs)
    assert caught.value.reason == "CLIENT_TOO_SLOW"
    await outputs.aclose()
    assert backend.closed
