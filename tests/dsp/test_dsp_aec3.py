"""The AEC3 echo stage (dsp/aec3.py): cancels behind our alignment, selected by the settings.

Needs the ``aec3`` extra (``livekit``), which ``.[dev]`` installs.
"""

from __future__ import annotations

import numpy as np
import pytest

from sonicwire.server.dsp.aec import EchoStage
from sonicwire.server.dsp.aec3 import Aec3Stage, aec3_available
from sonicwire.server.dsp.pipeline import FrontEnd, FrontEndSettings
from sonicwire.server.dsp.timeline import FarEndTimeline, SampleLog
from sonicwire.server.dsp.vad import SpeechStarted

from .test_dsp_pipeline import N, drive, erle, scene

pytestmark = pytest.mark.skipif(
    not aec3_available(), reason="the aec3 extra (livekit) is not installed"
)

AEC3 = FrontEndSettings(echo_engine="aec3")


def _stage_run(stage: Aec3Stage, timeline: FarEndTimeline, mic: np.ndarray) -> np.ndarray:
    out = np.zeros_like(mic)
    for pos in range(0, len(mic) - N + 1, N):
        cleaned = stage.process(mic[pos : pos + N].tobytes(), pos)
        out[pos : pos + N] = np.frombuffer(cleaned, dtype=np.int16)
    return out


def _db(mic: np.ndarray, out: np.ndarray) -> float:
    m, o = mic.astype(float), out.astype(float)
    return float(10 * np.log10(np.sum(m**2) / (np.sum(o**2) + 1e-9)))


def test_stage_cancels_an_aligned_echo_beyond_aec3s_own_reach() -> None:
    # 1 s bulk delay: given the raw reference AEC3 does not find it (its estimator covers a
    # few hundred ms), given our alignment it cancels it
    delay = 1000 * 16
    sc = scene(delay, seconds=6.0, seed=3)
    timeline = FarEndTimeline(10 * 16000)
    timeline.push(sc.far.tobytes(), 0)
    a = 3 * 16000
    aligned = Aec3Stage(timeline, SampleLog(16000), noise_suppression=False)
    raw = Aec3Stage(timeline, SampleLog(16000), noise_suppression=False)
    try:
        assert aligned.set_delay(delay, 0)
        assert aligned.offset == delay - 160  # the echo trails the reference by the 10 ms lead
        assert aligned.latency == 0
        out = _stage_run(aligned, timeline, sc.mic)
        unaligned = _stage_run(raw, timeline, sc.mic)
    finally:
        aligned.close()
        raw.close()
    assert _db(sc.mic[a:], out[a:]) > 30.0
    assert _db(sc.mic[a:], unaligned[a:]) < 20.0  # its suppressor alone, no linear filter
    assert aligned.converged
    assert aligned.realignments == 1


def test_stage_realigns_only_outside_its_zone() -> None:
    timeline = FarEndTimeline(16000)
    stage = Aec3Stage(timeline, SampleLog(16000))
    try:
        assert stage.set_delay(6400, 0)
        # a confirmation 40 ms later (a report that missed the device latency) stays inside
        # AEC3's reach: the reference does not move under the filter
        assert not stage.set_delay(6400 + 640, 320, exact=True)
        assert stage.offset == 6400 - 160
        assert stage.set_delay(6400 + 16 * 300, 640)  # 300 ms later: out of reach, realign
        assert stage.offset == 6400 + 16 * 300 - 160
        assert stage.set_delay(1600, 960)  # earlier than the reference: realign at once
        assert stage.offset == 1600 - 160
        assert stage.realignments == 3
        # each realignment trained a fresh AudioProcessing on the frames buffered before it
        assert stage.retrained_frames == 0 + 2 + 3
    finally:
        stage.close()


def test_close_is_idempotent_and_final() -> None:
    stage = Aec3Stage(FarEndTimeline(16000), SampleLog(16000))
    stage.close()
    stage.close()
    with pytest.raises(ValueError, match="closed"):
        stage.process(bytes(2 * N), 0)
    fe = FrontEnd(AEC3)
    fe.close()
    fe.close()


def test_nothing_enabled_passes_audio_through() -> None:
    stage = Aec3Stage(
        FarEndTimeline(16000), SampleLog(16000), echo_cancellation=False, noise_suppression=False
    )
    frame = np.arange(N, dtype=np.int16).tobytes()
    assert stage.process(frame, 0) == frame
    assert not stage.set_delay(3200, 0)
    stage.close()


def test_pipeline_selects_the_engine() -> None:
    with FrontEnd(AEC3) as fe:
        assert isinstance(fe._echo, Aec3Stage)
        assert fe.latency == 0
    with FrontEnd() as fe:
        assert isinstance(fe._echo, EchoStage)
    with pytest.raises(ValueError, match="echo engine"):
        FrontEndSettings(echo_engine="nlms")  # type: ignore[arg-type]


def test_pipeline_with_aec3_aligns_without_reports() -> None:
    sc = scene(8000 + 6400)  # 900 ms bulk delay
    with FrontEnd(AEC3) as fe:
        frames = drive(fe, sc, [N])
        assert fe.delay_locked
        assert fe.echo_delay is not None and abs(fe.echo_delay - sc.delay) <= 16
        assert fe.alignment_offset == fe.echo_delay - 160
    offsets = [f.offset for f in frames]
    assert offsets == list(range(0, len(offsets) * N, N))  # no output delay
    assert erle(sc, frames, 3.0) > 30.0
    assert not any(isinstance(e, SpeechStarted) for f in frames for e in f.events)


def test_pipeline_with_aec3_and_playback_reports() -> None:
    sc = scene(9600, seconds=4.0)
    with FrontEnd(AEC3) as fe:
        frames = drive(fe, sc, [N], reports=9600 - 640)  # reports miss 40 ms of device latency
    assert erle(sc, frames, 2.0) > 30.0
    assert not any(isinstance(e, SpeechStarted) for f in frames for e in f.events)
