"""Paced release in batches (issue 21, the gap to the floor): every message out costs a gRPC
write, so after a turn's first release the audio goes at least ``batch_ms`` at a time, still
never beyond real time plus the lead, and a turn's short last rest is not held back."""

from __future__ import annotations

import pytest

from sonicwire.server.core import events as ev
from sonicwire.server.core.playout import RELEASE_STEP_MS, AssistantTurn, release_batch_ms

LEAD = 120
RATE = 16_000
MS = 32  # bytes per ms at 16 kHz s16le


def turn_with(ms: int, *, ended: bool = False) -> AssistantTurn:
    turn = AssistantTurn("t1", 0)
    audio = bytes(ms * MS)
    turn.queue(audio, audio, ms, now=10.0)
    if ended:
        turn.generation_ended = ev.StopReason.END_TURN
    return turn


def released(turn: AssistantTurn, now: float, batch: int) -> int:
    due = turn.take_due(now, LEAD, RATE, batch)
    return 0 if due is None else len(due[1]) // MS


def test_batch_is_whole_steps_within_the_lead() -> None:
    assert release_batch_ms(40, 120) == 40
    assert release_batch_ms(50, 120) == 40  # whole steps
    assert release_batch_ms(200, 120) == 120  # never more than the lead could allow
    assert release_batch_ms(0, 120) == RELEASE_STEP_MS
    assert release_batch_ms(40, 10) == RELEASE_STEP_MS  # at least one step


@pytest.mark.parametrize("batch", [20, 40, 60])
def test_after_the_lead_audio_goes_a_batch_at_a_time_never_early_never_late(batch: int) -> None:
    turn = turn_with(1000)
    assert released(turn, 10.0, batch) == LEAD  # the first release: the whole lead
    out_ms = LEAD
    now = 10.0
    while out_ms < 1000:
        deadline = turn.next_due(LEAD, batch)
        assert deadline is not None
        assert released(turn, deadline - 0.002, batch) == 0  # not before it is due
        now = deadline + 0.0001
        got = released(turn, now, batch)
        assert got == min(batch, 1000 - out_ms)  # a batch, or what is left
        out_ms += got
        # never beyond real time plus the lead; the first audio not yet out still has
        # lead - batch to go before it plays
        assert out_ms <= (now - 10.0) * 1000 + LEAD + 1e-6
        assert out_ms - got - (now - 10.0) * 1000 >= LEAD - batch - 1
    assert turn.next_due(LEAD, batch) is None


def test_a_short_last_rest_goes_as_soon_as_it_fits() -> None:
    turn = turn_with(150, ended=True)
    assert released(turn, 10.0, 40) == LEAD
    # 30 ms left (less than a batch): due once two steps fit, at 10.04, not held for more
    deadline = turn.next_due(LEAD, 40)
    assert deadline == pytest.approx(10.04)
    assert released(turn, 10.0195, 40) == 0  # one step fits, not all of the rest
    assert released(turn, 10.0401, 40) == 30
    assert not turn.ref_queue and turn.next_due(LEAD, 40) is None


def test_a_rest_longer_than_a_batch_still_goes_in_batches() -> None:
    turn = turn_with(200, ended=True)
    assert released(turn, 10.0, 40) == LEAD
    assert released(turn, 10.021, 40) == 0  # 20 ms fit, 80 ms left: wait for the batch
    assert released(turn, 10.0401, 40) == 40
    assert turn.next_due(LEAD, 40) == pytest.approx(10.08)
    assert released(turn, 10.0801, 40) == 40
