"""The replay that retrains the echo filter after a realignment runs a few canceller calls per
live frame (dsp/aec.py, `AlignmentPolicy.replay_frames_per_call`): one stream's realignment
must not hold the event loop, and every other stream, for the whole replay."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from sonicwire.server.dsp import speex
from sonicwire.server.dsp.aec import EchoStage, replay_history_frames
from sonicwire.server.dsp.pipeline import FrontEnd
from sonicwire.server.dsp.settings import AlignmentPolicy
from sonicwire.server.dsp.timeline import FarEndTimeline, SampleLog

from .test_dsp_pipeline import N, drive, scene

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


def _lockstep(
    policy: AlignmentPolicy,
    events: dict[int, list[tuple[str, float]]],
    seconds: float = 6.0,
) -> tuple[EchoStage, list[bytes], list[bool]]:
    """Echo at 300 ms; a stage aligned on it from the start, driven through ``events``
    (``("delay", samples)`` with exact=True or ``("skew", samples per sample)``, applied
    before the frame at that position); without the preprocessor its output is the linear
    filter's alone, so two stages fed the same references give bit-identical frames."""
    sc = scene(DELAY, seconds=seconds, seed=7)
    timeline = FarEndTimeline(10 * 16000)
    timeline.push(sc.far.tobytes(), 0)
    mic_log = SampleLog(8 * 16000)
    stage = EchoStage(
        timeline, mic_log, noise_suppression=False, residual_echo_suppression=False, policy=policy
    )
    assert stage.set_delay(DELAY, 0, exact=True)
    frames: list[bytes] = []
    replaying: list[bool] = []
    try:
        for pos in range(0, len(sc.mic) - N + 1, N):
            for kind, value in events.get(pos, []):
                if kind == "delay":
                    stage.set_delay(int(value), pos, exact=True)
                else:
                    stage.set_skew(value, pos)
            frame = sc.mic[pos : pos + N]
            mic_log.write(pos, frame)
            frames.append(stage.process(frame.tobytes(), pos))
            replaying.append(stage.replaying)
    finally:
        stage.close()
    return stage, frames, replaying


def test_the_live_frames_keep_their_alignment_while_a_replay_catches_up() -> None:
    # realigned 50 ms earlier (the echo still inside the tail): until the replayed filter
    # takes over, the previous filter cleans the live frames with the reference it was
    # trained on, exactly as if nothing had moved
    policy = AlignmentPolicy()
    moved = {REALIGN_AT: [("delay", DELAY - 50 * 16)]}
    _, still, _ = _lockstep(policy, {})
    stage, frames, replaying = _lockstep(policy, moved)
    first = REALIGN_AT // N
    during = [i for i in range(first, len(frames)) if replaying[i]]
    assert during and during[0] == first
    assert [frames[i] for i in during] == [still[i] for i in during]
    assert stage.realignments == 2


def test_a_realignment_during_a_replay_keeps_the_live_frames_on_their_alignment() -> None:
    # the first replay is dropped for a second one; the previous filter, and the alignment it
    # was trained on, clean the live frames until the second one takes over
    policy = AlignmentPolicy()
    second = REALIGN_AT + 2 * N
    moved = {REALIGN_AT: [("delay", DELAY - 50 * 16)], second: [("delay", DELAY - 100 * 16)]}
    _, still, _ = _lockstep(policy, {})
    stage, frames, replaying = _lockstep(policy, moved)
    during = [i for i in range(REALIGN_AT // N, len(frames)) if replaying[i]]
    assert second // N + 2 in during
    assert [frames[i] for i in during] == [still[i] for i in during]
    assert stage.realignments == 3 and stage.offset == stage.target_offset(DELAY - 100 * 16)


def test_a_skew_set_during_a_replay_moves_the_live_alignment_too() -> None:
    policy = AlignmentPolicy()
    skew = 1e-3  # far more than a real clock's, so that a few frames move the reference
    at = REALIGN_AT + 2 * N
    _, still, _ = _lockstep(policy, {at: [("skew", skew)]})
    moved = {REALIGN_AT: [("delay", DELAY - 50 * 16)], at: [("skew", skew)]}
    _, frames, replaying = _lockstep(policy, moved)
    during = [i for i in range(at // N, len(frames)) if replaying[i]]
    assert during
    assert [frames[i] for i in during] == [still[i] for i in during]


@pytest.mark.parametrize("skew_at", [None, REALIGN_AT + 2 * N])
def test_a_spread_replay_leaves_the_same_filter_as_one_at_once(skew_at: int | None) -> None:
    # the replayed filter sees the same frames with the same references as one trained at
    # once that then cleaned the live frames (a skew set meanwhile moves the references from
    # its position on, not before it): once it takes over the output is bit-identical
    events: dict[int, list[tuple[str, float]]] = {REALIGN_AT: [("delay", DELAY - 50 * 16)]}
    if skew_at is not None:
        events[skew_at] = [("skew", 1e-4)]
    policy = AlignmentPolicy()
    at_once, reference, _ = _lockstep(replace(policy, replay_frames_per_call=0), events)
    spread, frames, replaying = _lockstep(policy, events)
    first = REALIGN_AT // N
    after = next(i for i in range(first, len(frames)) if not replaying[i])
    assert after > first + 2
    assert frames[after:] == reference[after:]
    assert spread.converged == at_once.converged


def test_the_front_ends_stats_count_every_replayed_frame() -> None:
    # the replay's last canceller calls run in the frame where its filter takes over (no
    # longer replaying after it): bench/frontend_harness.py reports this count
    sc = scene(8000, seconds=6.0)
    with FrontEnd() as fe:
        drive(fe, sc, [N])
        assert fe.stats.realignments >= 1
        stage = fe._echo
        assert isinstance(stage, EchoStage) and not stage.replaying
        assert stage.retrained_frames > 0
        assert fe.stats.retrained_frames == stage.retrained_frames


class _OldestRead(SampleLog):
    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self.oldest: int | None = None

    def read(self, start: int, count: int) -> np.ndarray:
        self.oldest = start if self.oldest is None else min(self.oldest, start)
        return super().read(start, count)


@pytest.mark.parametrize("passes", [1, 2, 3, 4])
@pytest.mark.parametrize("per_call", [2, 3, 5, 24])
def test_the_history_a_spread_replay_reads_is_what_the_logs_keep(
    passes: int, per_call: int
) -> None:
    # the front end's logs keep retrain_secs plus replay_history_frames behind the live
    # position (dsp/pipeline.py): a replay must never read older mic audio than that
    policy = AlignmentPolicy(retrain_passes=passes, replay_frames_per_call=per_call)
    sc = scene(DELAY, seconds=7.0, seed=3)
    timeline = FarEndTimeline(10 * 16000)
    timeline.push(sc.far.tobytes(), 0)
    mic_log = _OldestRead(8 * 16000)
    stage = EchoStage(timeline, mic_log, noise_suppression=False, policy=policy)
    keep = int(policy.retrain_secs * 16000) + replay_history_frames(policy, 200 * 16) * N
    worst = 0
    try:
        for pos in range(0, len(sc.mic) - N + 1, N):
            if pos == REALIGN_AT:
                assert stage.set_delay(DELAY, pos, exact=True)
            frame = sc.mic[pos : pos + N]
            mic_log.write(pos, frame)
            mic_log.oldest = None
            stage.process(frame.tobytes(), pos)
            if mic_log.oldest is not None:
                worst = max(worst, pos + N - mic_log.oldest)
            if pos > REALIGN_AT and not stage.replaying:
                break
    finally:
        stage.close()
    assert worst > int(policy.retrain_secs * 16000)  # the replay did read that far back
    assert worst <= keep


def test_a_closed_echo_stage_refuses_frames_and_replays() -> None:
    # its speex states are freed: a frame after close() would run the canceller and the
    # preprocessor on freed memory (a crash, or silent corruption), as the AEC3 stage refuses
    # (run in a child process so that a crash fails this test, not the test session)
    script = """
import numpy as np
from sonicwire.server.dsp.aec import EchoStage
from sonicwire.server.dsp.timeline import FarEndTimeline, SampleLog
timeline = FarEndTimeline(16000)
timeline.push(np.full(16000, 1000, dtype=np.int16).tobytes(), 0)
log = SampleLog(16000)
stage = EchoStage(timeline, log)
log.write(0, np.zeros(320, dtype=np.int16))
stage.process(bytes(640), 0)
stage.close()
stage.close()
for call in (lambda: stage.process(bytes(640), 320), lambda: stage.set_delay(3200, 640)):
    try:
        call()
    except ValueError as error:
        assert "closed" in str(error), error
    else:
        raise SystemExit("a closed stage took a call")
print("refused")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0 and done.stdout.strip() == "refused", (done.returncode, done.stderr)
