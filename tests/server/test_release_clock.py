"""The loop's shared release clock (issue 21, the gap to the floor): one periodic callback
instead of a timer per stream. Flowing client input releases the paced audio; the clock is the
backstop for a client that stops sending, and for the limits. Every test runs on a fake clock
ticked by hand (``period_s=None``): no assertion depends on wall-clock time."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import AsyncIterator

import pytest

from sonicwire.server.conversation import Conversation
from sonicwire.server.core import events as ev
from sonicwire.server.core.errors import SonicwireError
from sonicwire.server.core.playout import RELEASE_STEP_MS
from sonicwire.server.core.session import Session
from sonicwire.server.core.settings import SessionSettings
from sonicwire.server.dsp.pipeline import FrontEndSettings
from sonicwire.server.release_clock import PERIOD_S, RELEASE_GRACE_S, ReleaseClock, release_grace_s

FRAME = 640  # 20 ms of 16 kHz input
REPLY_MS = 1000
LEAD_MS = SessionSettings().playback_lead_ms


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Member:
    def __init__(self, deadline: float) -> None:
        self.clock_deadline = deadline
        self.ticked: list[float] = []

    def on_clock(self, now: float) -> None:
        self.ticked.append(now)
        self.clock_deadline = float("inf")


def test_only_due_members_are_ticked_and_cancel_is_idempotent() -> None:
    clock = FakeClock()
    pacer = ReleaseClock(clock, period_s=None)
    early, late = Member(1000.01), Member(1000.05)
    pacer.schedule(early)
    pacer.schedule(late)
    pacer.schedule(early)  # repeating is harmless
    assert len(pacer) == 2
    assert pacer.tick() == 0
    clock.now = 1000.02
    assert pacer.tick() == 1
    assert early.ticked == [1000.02] and late.ticked == []
    pacer.cancel(late)
    pacer.cancel(late)
    clock.now = 1001.0
    assert pacer.tick() == 0
    assert late.ticked == []
    assert not pacer.running  # no loop callback without a period


async def test_the_loop_callback_runs_only_while_someone_is_scheduled() -> None:
    clock = FakeClock()
    pacer = ReleaseClock(clock)
    member = Member(float("inf"))
    pacer.schedule(member)
    assert pacer.running
    pacer._on_period()  # one period passes: still a member, so the callback re-arms
    assert pacer.running
    pacer.cancel(member)
    pacer._on_period()
    assert not pacer.running
    pacer.schedule(member)  # a new member starts it again
    assert pacer.running
    pacer.cancel(member)
    pacer._on_period()


async def test_a_failing_member_does_not_stop_the_clock() -> None:
    clock = FakeClock()
    pacer = ReleaseClock(clock)

    class Broken(Member):
        def on_clock(self, now: float) -> None:
            raise RuntimeError("bug")

    pacer.schedule(Broken(0.0))
    with pytest.raises(RuntimeError):
        pacer._on_period()
    assert pacer.running


def test_shared_clock_needs_a_running_loop_and_is_one_per_loop_and_time_source() -> None:
    with pytest.raises(RuntimeError):
        ReleaseClock.shared()

    async def pair() -> tuple[ReleaseClock, ReleaseClock, ReleaseClock]:
        other = FakeClock()
        return ReleaseClock.shared(), ReleaseClock.shared(), ReleaseClock.shared(other)

    first, again, other = asyncio.run(pair())
    assert first is again
    assert other is not first


def test_a_closed_loop_takes_its_shared_clock_with_it() -> None:
    """The shared clocks are held by weak keys so that a finished loop (every asyncio.run, every
    test) is freed: the clock must not hold its loop, armed or not."""
    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []

    async def use_the_clock(keep_armed: bool) -> None:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        pacer = ReleaseClock.shared()
        member = Member(float("inf"))
        pacer.schedule(member)
        await asyncio.sleep(2 * PERIOD_S)  # it ticked and re-armed
        if not keep_armed:
            pacer.cancel(member)
            await asyncio.sleep(2 * PERIOD_S)  # its last tick found no one
            assert not pacer.running

    asyncio.run(use_the_clock(keep_armed=False))
    asyncio.run(use_the_clock(keep_armed=True))  # the loop ends with the clock armed
    gc.collect()
    assert [ref() for ref in loops] == [None, None]


# --- the conversation on the clock ---------------------------------------------------------


class ReplyingBackend:
    """Answers the first audio it gets with ``REPLY_MS`` of assistant audio, all at once (as
    the echo backend does), then ends the turn."""

    def __init__(self) -> None:
        self.events_q: asyncio.Queue[ev.BackendEvent | None] = asyncio.Queue()
        self.replied = False

    async def send(self, command: ev.BackendCommand) -> None:
        if isinstance(command, ev.SendAudio) and not self.replied:
            self.replied = True
            pcm = bytes(range(256)) * (REPLY_MS * 32 // 256)
            self.events_q.put_nowait(ev.AssistantAudio(pcm, 16000))
            self.events_q.put_nowait(ev.AssistantTurnEnded(ev.StopReason.END_TURN))
        if isinstance(command, ev.EndSession):
            self.events_q.put_nowait(None)

    async def events(self) -> AsyncIterator[ev.BackendEvent]:
        while (event := await self.events_q.get()) is not None:
            yield event

    async def aclose(self) -> None:
        self.events_q.put_nowait(None)


def quiet_settings() -> SessionSettings:
    front = FrontEndSettings(echo_cancellation=False, noise_suppression=False)
    return SessionSettings(front_end=front, barge_in=False)


class Stream:
    """One conversation on a fake clock: the test feeds input and steps time."""

    def __init__(self, **limits: float) -> None:
        self.clock = FakeClock()
        self.pacer = ReleaseClock(self.clock, period_s=None)
        self.inputs: asyncio.Queue[ev.ClientEvent] = asyncio.Queue()
        self.conversation = Conversation(
            Session("s", quiet_settings()),
            ReplyingBackend(),  # type: ignore[arg-type]
            clock=self.clock,
            release_clock=self.pacer,
            **limits,  # type: ignore[arg-type]
        )
        self.received: list[tuple[float, ev.ClientOutput]] = []
        self.error: SonicwireError | None = None
        self.clock_ticks = 0
        self.task = asyncio.create_task(self._consume())

    async def _client(self) -> AsyncIterator[ev.ClientEvent]:
        while True:
            yield await self.inputs.get()

    async def _consume(self) -> None:
        try:
            async for output in self.conversation.outputs(self._client()):
                self.received.append((self.clock.now, output))
        except SonicwireError as error:
            self.error = error

    async def step(self, *, send: bool) -> None:
        """One 20 ms period: time passes, the client's frame (if it sends), the clock's tick."""
        self.clock.now += PERIOD_S
        if send:
            self.inputs.put_nowait(ev.AudioReceived(bytes(FRAME)))
        await settle()
        self.clock_ticks += self.pacer.tick()
        await settle()

    def audio(self) -> list[tuple[float, ev.AudioOut]]:
        return [(t, o) for t, o in self.received if isinstance(o, ev.AudioOut)]

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def assert_paced(audio: list[tuple[float, ev.AudioOut]]) -> None:
    """Every chunk arrives before the client must play it (its play time: the first chunk's
    arrival plus its offset, as the load generator counts late frames) and no earlier than
    the lead ahead of real time."""
    t0 = audio[0][0]
    for t, out in audio:
        play_at = t0 + out.offset_ms / 1000
        assert t <= play_at + 1e-9, f"chunk at {out.offset_ms} ms late by {t - play_at:.3f} s"
        end_ms = out.offset_ms + len(out.audio) // 32
        assert end_ms <= (t - t0) * 1000 + LEAD_MS + 1e-6, f"chunk at {out.offset_ms} ms early"


async def test_a_client_that_stops_sending_mid_reply_still_gets_its_audio_on_time() -> None:
    stream = Stream()
    try:
        for _ in range(5):  # the reply starts during these
            await stream.step(send=True)
        assert stream.audio(), "the reply did not start"
        for _ in range(REPLY_MS // RELEASE_STEP_MS + 20):  # the client goes silent, not closed
            await stream.step(send=False)
        audio = stream.audio()
        assert sum(len(o.audio) for _, o in audio) == REPLY_MS * 32  # all of it, once
        offsets = [o.offset_ms for _, o in audio]
        assert offsets == sorted(set(offsets))
        assert_paced(audio)
        # The clock released it, in steps, none later than the grace plus one period.
        assert stream.clock_ticks > 5
        done = [o for _, o in stream.received if isinstance(o, ev.TurnCompleteOut)]
        assert [d.stop_reason for d in done] == [ev.StopReason.END_TURN]
        assert stream.error is None
    finally:
        await stream.close()


async def test_while_input_flows_the_input_releases_the_audio_and_the_clock_stays_idle() -> None:
    stream = Stream()
    try:
        for _ in range(REPLY_MS // RELEASE_STEP_MS + 20):
            await stream.step(send=True)
        audio = stream.audio()
        assert sum(len(o.audio) for _, o in audio) == REPLY_MS * 32
        assert_paced(audio)
        # The clock never had to act; after the lead, one message per batch (not per step).
        assert stream.clock_ticks == 0
        batch = SessionSettings().playback_batch_ms
        assert len(audio) == 1 + (REPLY_MS - LEAD_MS) // batch
        assert {len(o.audio) for _, o in audio[1:]} == {batch * 32}
    finally:
        await stream.close()


async def test_idle_timeout_fires_from_the_shared_clock_on_the_fake_clock() -> None:
    # Idle means no message either way (red-team session s36): it counts from the reply's end.
    stream = Stream(idle_timeout_s=0.5)
    try:
        await stream.step(send=True)
        for _ in range(5 * REPLY_MS // 20):  # bounded: the reply lasts REPLY_MS
            if any(isinstance(o, ev.TurnCompleteOut) for _, o in stream.received):
                break
            await stream.step(send=False)
        else:
            pytest.fail("the reply never completed")
        for _ in range(int(0.5 / PERIOD_S) - 2):
            await stream.step(send=False)
        assert stream.error is None  # not yet
        for _ in range(3):
            await stream.step(send=False)
        assert stream.error is not None and stream.error.reason == "IDLE_TIMEOUT"
        assert len(stream.pacer) == 0  # the ended stream left the clock
    finally:
        await stream.close()


@pytest.mark.parametrize("batch", [20, 40, 60, 120])
def test_the_grace_leaves_the_release_before_play_time_for_any_lead(batch: int) -> None:
    assert release_grace_s(LEAD_MS, RELEASE_STEP_MS) == RELEASE_GRACE_S
    for lead in (0, 20, 40, 60, 80, 100, 120, 200):
        grace = release_grace_s(lead, batch)
        assert 0.0 <= grace <= RELEASE_GRACE_S
        if grace:  # the latest release still leaves the margin before play time
            assert grace + PERIOD_S + batch / 1000 <= lead / 1000 - 0.04 + 1e-9
