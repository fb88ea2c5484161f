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
    assert gate.threshold_db == pytest.approx(25.0)
    assert gate.allow(LOUD, user, learn=False)
    assert not gate.allow(LOUD, LOUD / 10**3.0, learn=False)  # 30 dB: echo


def test_stays_strict_when_cancellation_is_poor() -> None:
    gate = EchoGate(floor_db=15.0)
    for _ in range(500):  # echo-only frames losing only 18 dB
        gate.allow(LOUD, LOUD / 10**1.8, learn=True)
    assert gate.threshold_db == pytest.approx(15.0)
    assert not gate.allow(LOUD, LOUD / 10**1.7, learn=False)


def test_rejects_inverted_limits() -> None:
    with pytest.raises(ValueError):
        EchoGate(floor_db=30.0, ceiling_db=20.0)
