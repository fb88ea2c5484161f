"""The replay that retrains the echo filter after a realignment runs a few canceller calls per
live frame (dsp/aec.py, `AlignmentPolicy.replay_frames_per_call`): one stream's realignment
must not hold the event loop, and every other stream, for the whole replay."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from sonicwire.server.dsp import speex
from sonicwire.server.dsp.aec import EchoStage
from sonicwire.server.dsp.delay import FarEndTimeline, SampleLog
from sonicwire.server.dsp.settings import AlignmentPolicy

from .test_dsp_pipeline import N, scene

DELAY = 300 * 16
REALIGN_AT = 3 * 16000


class _Calls:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        original = speex.EchoCanceller.cancel_into

        def counted(canceller: speex.EchoCanceller, *args: object) -> None:
            self.count += 1
            original(canceller, *args)  # type: ignore[arg-type]

        monkeypatch.setattr(speex.EchoCanceller, "cancel_into", counted)


def _run(policy: AlignmentPolicy, calls: _Calls) -> tuple[EchoStage, list[int], np.ndarray, int]:
    """Echo at 300 ms, cancelled at offset 0 until 3 s, then aligned: per live frame the
    canceller calls it took (the realignment's own included), the cleaned audio, and the
    frame at which the replay took over."""
    sc = scene(DELAY, seconds=7.0, seed=5)
    timeline = FarEndTimeline(10 * 16000)
    timeline.push(sc.far.tobytes(), 0)
    mic_log = SampleLog(8 * 16000)
    stage = EchoStage(timeline, mic_log, noise_suppression=False, policy=policy)
    per_frame: list[int] = []
    out = np.zeros_like(sc.mic)
    took_over = -1
    for pos in range(0, len(sc.mic) - N + 1, N):
        before = calls.count
        if pos == REALIGN_AT:
            assert stage.set_delay(DELAY, pos, exact=True)
        frame = sc.mic[pos : pos + N]
        mic_log.write(pos, frame)
        out[pos : pos + N] = np.frombuffer(stage.process(frame.tobytes(), pos), dtype=np.int16)
        per_frame.append(calls.count - before)
        if pos >= REALIGN_AT and took_over < 0 and not stage.replaying:
            took_over = (pos - REALIGN_AT) // N
    stage.close()
    return stage, per_frame, out.astype(float), took_over


def _db(reference: np.ndarray, out: np.ndarray, start: int) -> float:
    m = reference[start:].astype(float)
    return float(10 * np.log10(np.sum(m**2) / (np.sum(out[start:] ** 2) + 1e-9)))


def test_a_replay_is_spread_over_the_next_frames_and_cancels_as_well(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = _Calls(monkeypatch)
    policy = AlignmentPolicy()
    assert policy.replay_frames_per_call > 1
    spread, spread_calls, spread_out, took_over = _run(policy, calls)
    at_once, at_once_calls, at_once_out, _ = _run(replace(policy, replay_frames_per_call=0), calls)
    mic = scene(DELAY, seconds=7.0, seed=5).mic
    realign = REALIGN_AT // N
    # at once: the whole replay (two passes over 1.5 s) in the realigning frame's call
    assert at_once_calls[realign] >= 150
    # spread: never more than the budget plus the live frame's own call
    assert max(spread_calls) <= policy.replay_frames_per_call + 1
    assert sum(spread_calls) >= sum(at_once_calls)  # the same replay, plus the catch-up
    # it caught up (net progress: the budget less the live frame it adds per call), and its
    # filter took over
    replayed = policy.retrain_passes * (75 + 11)  # 1.5 s of frames, a 200 ms tail's flush
    assert 0 < took_over <= -(-replayed // (policy.replay_frames_per_call - 1)) + 1
    assert spread.converged and at_once.converged
    assert spread.retrained_frames >= at_once.retrained_frames
    # once the replayed filter cleans the live frames, it removes as much as the one
    # trained at once (both over 1.5 s of echo after the takeover)
    settled = REALIGN_AT + 16000
    assert _db(mic, spread_out, settled) > 25.0
    assert abs(_db(mic, spread_out, settled) - _db(mic, at_once_out, settled)) < 3.0


def test_a_realignment_during_a_replay_starts_a_new_one(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _Calls(monkeypatch)
    sc = scene(DELAY, seconds=5.0, seed=2)
    timeline = FarEndTimeline(10 * 16000)
    timeline.push(sc.far.tobytes(), 0)
    mic_log = SampleLog(8 * 16000)
    stage = EchoStage(timeline, mic_log, noise_suppression=False)
    try:
        for pos in range(0, len(sc.mic) - N + 1, N):
            if pos == REALIGN_AT:
                assert stage.set_delay(100 * 16, pos, exact=True)
            if pos == REALIGN_AT + 2 * N:
                assert stage.replaying  # the first replay has not caught up yet
                assert stage.set_delay(DELAY, pos)  # 200 ms later: out of the zone
                assert stage.realignments == 2
            frame = sc.mic[pos : pos + N]
            mic_log.write(pos, frame)
            stage.process(frame.tobytes(), pos)
        assert not stage.replaying
        assert stage.offset == stage.target_offset(DELAY)
    finally:
        stage.close()
    assert calls.count > 0


def test_one_call_per_frame_could_never_catch_up() -> None:
    with pytest.raises(ValueError, match="replay_frames_per_call"):
        AlignmentPolicy(replay_frames_per_call=1)
