from __future__ import annotations

import numpy as np
import pytest
import webrtcvad

from sonicwire.server.dsp.vad import (
    TRANSITIONS,
    SileroEngine,
    SpeechStarted,
    SpeechStopped,
    Vad,
    VadInput,
    VadSettings,
    VadState,
    find_silero_model,
    volume,
)

from .dsp_testsignals import FS, alsa_speech, to_int16

N = 320
Q, ST, SP, SO = VadState.QUIET, VadState.STARTING, VadState.SPEAKING, VadState.STOPPING


class Scripted:
    """A VAD engine that returns scripted (confidence, raw) pairs."""

    def __init__(self, script: list[float]) -> None:
        self.script = list(script)

    def analyze(self, frame: bytes) -> tuple[float, bool]:
        c = self.script.pop(0)
        return c, c >= 0.7

    def reset(self) -> None:
        pass

    def close(self) -> None:
        pass


LOUD = (np.ones(N, dtype=np.int16) * 3000).tobytes()


def run(script: list[float], **kw: float) -> tuple[list[VadState], list[list[object]]]:
    settings = VadSettings(start_secs=kw.get("start", 0.06), stop_secs=kw.get("stop", 0.06))
    vad = Vad(settings, engine=Scripted(script))
    states, events = [], []
    for _ in script:
        events.append(list(vad.process(LOUD)))
        states.append(vad.state)
    return states, events


def test_table_is_total() -> None:
    for state in VadState:
        assert set(TRANSITIONS[state]) == set(VadInput)


# (confidences per frame, expected state after each frame); start/stop = 3 frames (60 ms)
CASES = [
    ([0, 0, 0], [Q, Q, Q]),
    ([1, 0, 1, 0], [ST, Q, ST, Q]),  # blips never reach SPEAKING
    ([1, 1, 1, 1], [ST, ST, SP, SP]),
    ([1, 1, 1, 0, 1], [ST, ST, SP, SO, SP]),  # a short gap resumes speaking
    ([1, 1, 1, 0, 0, 0, 0], [ST, ST, SP, SO, SO, Q, Q]),
    ([0.5, 0.9, 0.9, 0.9, 0.2, 0.2, 0.2], [Q, ST, ST, SP, SO, SO, Q]),
]


@pytest.mark.parametrize(("script", "expected"), CASES)
def test_transitions(script: list[float], expected: list[VadState]) -> None:
    states, _ = run(script)
    assert states == expected


def test_event_offsets_are_onset_and_end() -> None:
    _states, events = run([0, 0, 1, 1, 1, 1, 0, 0, 0, 0])
    flat = [(i, e) for i, evs in enumerate(events) for e in evs]
    assert flat == [(4, SpeechStarted(2 * N)), (8, SpeechStopped(6 * N))]


def test_quiet_frames_are_not_speech() -> None:
    vad = Vad(VadSettings(start_secs=0.0), engine=Scripted([1.0] * 3))
    quiet = (np.ones(N, dtype=np.int16) * 3).tobytes()  # far below min_volume
    assert vad.process(quiet) == []
    assert vad.process(LOUD, allow_speech=False) == []
    assert vad.process(LOUD) == [SpeechStarted(2 * N)]


def test_volume_scale() -> None:
    assert volume(0.0) == 0.0
    assert volume((32767 / 10**0.5) ** 2) == pytest.approx(1.0, abs=0.01)  # -10 dBFS
    full_scale_db = 20 * np.log10(32768)
    ms_at = 10 ** ((0.6 * 100 - 20) / 10)
    assert 20 * np.log10(np.sqrt(ms_at)) - full_scale_db == pytest.approx(-50.3, abs=0.1)
    assert volume(ms_at) == pytest.approx(0.6)


def test_settings_validation() -> None:
    with pytest.raises(ValueError):
        VadSettings(confidence=1.5)
    with pytest.raises(ValueError):
        VadSettings(engine="nope")  # type: ignore[arg-type]
    assert VadSettings(speech_pad_ms=300).pad_samples == 4800


def speech_then_noise() -> tuple[bytes, int, int]:
    speech = alsa_speech()
    speech = speech / np.sqrt(np.mean(speech**2)) * 0.05
    rng = np.random.default_rng(2)
    lead = np.zeros(FS)
    x = np.concatenate([lead, speech, np.zeros(FS)])
    x += rng.standard_normal(len(x)) * 0.001
    return to_int16(x).tobytes(), FS, FS + len(speech)


@pytest.mark.parametrize("engine", ["webrtc", "silero"])
def test_real_speech_vs_noise(engine: str) -> None:
    if engine == "silero":
        try:
            find_silero_model()
        except FileNotFoundError:
            pytest.skip("no silero model package")
    pcm, start, end = speech_then_noise()
    vad = Vad(VadSettings(engine=engine))  # type: ignore[arg-type]
    events = []
    for i in range(0, len(pcm) - 2 * N + 1, 2 * N):
        for ev in vad.process(pcm[i : i + 2 * N]):
            events.append((i // 2 + N, ev))
    starts = [(t, e) for t, e in events if isinstance(e, SpeechStarted)]
    stops = [(t, e) for t, e in events if isinstance(e, SpeechStopped)]
    # "Front ... Center": two words about 0.5 s apart, so one or two utterances
    assert 1 <= len(starts) <= 2 and len(stops) == len(starts)
    emitted, started = starts[0]
    assert abs(started.offset - start) < 0.15 * FS  # onset, within the clip's leading silence
    assert emitted - started.offset >= 0.2 * FS  # start_secs holds
    assert emitted - start < 0.35 * FS
    assert stops[-1][1].offset <= end + 0.2 * FS
    assert all(e.offset >= start - 0.15 * FS for _, e in events)


def test_silero_engine_chunks() -> None:
    try:
        engine = SileroEngine(0.5)
    except FileNotFoundError:
        pytest.skip("no silero model package")
    for _ in range(8):
        engine.analyze(bytes(2 * N))
    assert engine.chunks == 5  # 8 * 320 samples = 5 chunks of 512


class Pairs:
    """A VAD engine that returns scripted (confidence, raw verdict) pairs."""

    def __init__(self, script: list[tuple[float, bool]]) -> None:
        self.script = list(script)

    def analyze(self, frame: bytes) -> tuple[float, bool]:
        return self.script.pop(0)

    def reset(self) -> None:
        pass

    def close(self) -> None:
        pass


# an unvoiced onset: 4 frames only the lenient verdict calls speech, then confident speech
ONSET = [(0.0, True)] * 4 + [(1.0, True)] * 10


def first_start(script: list[tuple[float, bool]], refused: set[int]) -> SpeechStarted:
    vad = Vad(VadSettings(start_secs=0.2), engine=Pairs(script))
    for i in range(len(script)):
        for e in vad.process(LOUD, allow_speech=i not in refused):
            if isinstance(e, SpeechStarted):
                return e
    raise AssertionError("no SpeechStarted")


def test_onset_is_dated_at_the_first_lenient_frame() -> None:
    assert first_start(ONSET, set()).offset == 0


def test_a_refused_frame_does_not_end_the_onset_run() -> None:
    # e.g. the echo gate refuses a frame where the user dips under the echo: not speech,
    # but the onset stays where the speech began instead of moving to the vowel
    assert first_start(ONSET, {2}).offset == 0
    assert first_start(ONSET, {1, 3}).offset == 0


def test_refused_frames_in_a_row_or_too_many_end_the_run() -> None:
    assert first_start(ONSET, {1, 2}).offset == 3 * N
    script = [(0.0, True)] * 6 + [(1.0, True)] * 10
    assert first_start(script, {1, 3, 5}).offset == 6 * N


def test_a_refused_frame_is_not_speech() -> None:
    vad = Vad(VadSettings(start_secs=0.0), engine=Pairs([(1.0, True)]))
    assert vad.process(LOUD, allow_speech=False) == []
    assert vad.state is Q and not vad.last_speech


def test_onset_pending() -> None:
    vad = Vad(VadSettings(start_secs=0.2), engine=Pairs([(0.0, False), (0.0, True), (1.0, True)]))
    vad.process(LOUD)
    assert not vad.onset_pending
    vad.process(LOUD)
    assert vad.onset_pending and vad.state is Q  # a lenient run is open
    vad.process(LOUD)
    assert vad.onset_pending and vad.state is ST


def start_with_undecided(
    script: list[tuple[float, bool]], undecided: set[int]
) -> tuple[int, SpeechStarted] | None:
    """(frame index at which SpeechStarted came, the event), frames in ``undecided`` held."""
    vad = Vad(VadSettings(start_secs=0.2), engine=Pairs(script))
    for i in range(len(script)):
        hold = i in undecided
        for e in vad.process(LOUD, allow_speech=not hold, undecided=hold):
            if isinstance(e, SpeechStarted):
                return i, e
    return None


def test_undecided_frames_date_the_onset_and_count_towards_start_secs() -> None:
    # the echo hold could not tell the first 5 frames from echo; once it could, the speech
    # is dated from its first frame and confirmed 200 ms after it, not 200 ms after the verdict
    script = [(1.0, True)] * 20
    found = start_with_undecided(script, set(range(5)))
    assert found is not None
    index, event = found
    assert event.offset == 0
    no_hold = start_with_undecided(script, set())
    assert no_hold is not None
    assert index == no_hold[0] == 9  # 200 ms after the onset, as with no hold at all


def test_a_run_of_undecided_frames_needs_allowed_frames_before_it_counts() -> None:
    # a single verdict "not echo" after a long hold must not confirm the run at once
    script = [(1.0, True)] * 30
    undecided = set(range(12)) | {13, 14, 15}
    found = start_with_undecided(script, undecided)
    assert found is not None
    assert found[0] == 18  # allowed frames 12, 16, 17, 18: the fourth confirms


def test_undecided_frames_are_not_speech_and_the_run_is_bounded() -> None:
    vad = Vad(VadSettings(start_secs=0.0), engine=Pairs([(1.0, True)] * 40))
    for _ in range(30):
        assert vad.process(LOUD, allow_speech=False, undecided=True) == []
        assert vad.state is Q and not vad.last_speech
    # past 25 undecided frames the run was closed: the speech starts at the first allowed
    # frame after it, not 600 ms back
    events = []
    for _ in range(4):
        events += vad.process(LOUD)
    starts = [e for e in events if isinstance(e, SpeechStarted)]
    assert starts and starts[0].offset >= 25 * N


_REAL_WEBRTC_VAD = webrtcvad.Vad  # before a test replaces it


class PublicOnlyVad:
    """A `webrtcvad.Vad` as a webrtcvad without the private ``_vad`` would give it: only the
    public ``is_speech`` (counted), backed by a real one."""

    calls = 0

    def __init__(self, mode: int) -> None:
        self._real = _REAL_WEBRTC_VAD(mode)

    def is_speech(self, buf: bytes, sample_rate: int, length: int | None = None) -> bool:
        PublicOnlyVad.calls += 1
        return bool(self._real.is_speech(buf, sample_rate, length))


@pytest.mark.parametrize("missing", ["private process", "private state"])
def test_webrtc_engine_falls_back_to_the_public_api(
    missing: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without webrtcvad's private ``_webrtcvad.process`` or ``Vad._vad`` the engine decides
    with the public ``Vad.is_speech``, frame for frame the same as the direct C call."""
    from sonicwire.server.dsp import vad as vad_module

    pcm, _, _ = speech_then_noise()
    frames = [pcm[i : i + 2 * N] for i in range(0, len(pcm) - 2 * N + 1, 2 * N)]
    direct = vad_module.WebrtcEngine()
    expected = [direct.analyze(f) for f in frames]
    assert direct._process is not vad_module._public_process
    if missing == "private process":
        monkeypatch.setattr(vad_module, "_webrtcvad", None)
    else:
        monkeypatch.setattr(vad_module.webrtcvad, "Vad", PublicOnlyVad)
    PublicOnlyVad.calls = 0
    fallback = vad_module.WebrtcEngine()
    assert fallback._process is vad_module._public_process
    assert [fallback.analyze(f) for f in frames] == expected
    assert any(confidence > 0 for confidence, _ in expected)  # speech was decided, too
    if missing == "private state":
        assert PublicOnlyVad.calls >= len(frames)
