from __future__ import annotations

import pytest

from sonicwire.server.dsp.gate import EchoGate

LOUD = 3000.0**2


def test_no_far_end_or_quiet_mic_is_always_allowed() -> None:
    gate = EchoGate()
    assert gate.allow(0.0, 0.0, learn=False)
    assert gate.allow(50.0**2, 0.0, learn=True)


def test_starts_strict_and_opens_on_a_well_cancelled_stream() -> None:
    gate = EchoGate(floor_db=15.0, ceiling_db=25.0)
    user = LOUD / 10**2.0  # 20 dB of loss: a quiet user talking over loud echo
    assert not gate.allow(LOUD, user, learn=False)
    for _ in range(200):  # echo-only frames losing 45 dB
        gate.allow(LOUD, LOUD / 10**4.5, learn=True)
        gate.settle(False)
    assert gate.threshold_db == pytest.approx(25.0)
    assert gate.allow(LOUD, user, learn=False)
    assert not gate.allow(LOUD, LOUD / 10**3.0, learn=False)  # 30 dB: echo


def test_stays_strict_when_cancellation_is_poor() -> None:
    gate = EchoGate(floor_db=15.0)
    for _ in range(500):  # echo-only frames losing only 18 dB
        gate.allow(LOUD, LOUD / 10**1.8, learn=True)
        gate.settle(False)
    assert gate.threshold_db == pytest.approx(15.0)
    assert not gate.allow(LOUD, LOUD / 10**1.7, learn=False)


def test_rejects_inverted_limits() -> None:
    with pytest.raises(ValueError):
        EchoGate(floor_db=30.0, ceiling_db=20.0)


def opened() -> EchoGate:
    gate = EchoGate(floor_db=15.0, ceiling_db=25.0)
    for _ in range(200):
        gate.allow(LOUD, LOUD / 10**4.5, learn=True)
        gate.settle(False)
    assert gate.threshold_db == pytest.approx(25.0)
    return gate


def test_frames_offered_while_speech_may_be_starting_do_not_move_the_threshold() -> None:
    gate = opened()
    for _ in range(6):  # a barge-in's first frames: the user over the echo, 5 dB of loss
        assert gate.allow(LOUD, LOUD / 10**0.5, learn=True)
        gate.settle(None)
    assert gate.pending == 6
    assert gate.threshold_db == pytest.approx(25.0)
    # a frame where the user dips under the echo (20 dB) is still allowed
    assert gate.allow(LOUD, LOUD / 10**2.0, learn=True)
    gate.settle(True)  # it was speech: those frames are forgotten
    assert gate.pending == 0
    assert gate.threshold_db == pytest.approx(25.0)


def test_frames_settled_as_not_speech_are_learned() -> None:
    gate = opened()
    for _ in range(6):
        gate.allow(LOUD, LOUD / 10**0.5, learn=True)
    gate.settle(False)
    assert gate.pending == 0
    assert gate.threshold_db < 25.0


def test_pending_frames_are_bounded() -> None:
    gate = EchoGate(max_pending=4)
    for _ in range(10):
        gate.allow(LOUD, LOUD / 10**4.5, learn=True)
        gate.settle(None)
    assert gate.pending == 4
    assert gate.threshold_db > 15.0  # the oldest six were learned
