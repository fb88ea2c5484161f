from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from sonicwire.server.dsp.pipeline import FrontEnd, FrontEndFrame, FrontEndSettings
from sonicwire.server.dsp.vad import SpeechStarted

from .dsp_testsignals import FS, alsa_speech, bursts, room, to_int16

N = 320
LEAD = 1280  # the server releases far-end audio 80 ms ahead


@dataclass
class Scene:
    mic: np.ndarray
    far: np.ndarray
    delay: int


def scene(delay: int, seconds: float = 6.0, seed: int = 0) -> Scene:
    far = to_int16(bursts(seconds, seed=seed))
    echo = np.convolve(np.concatenate([np.zeros(delay), far / 32768]), room(seed + 1))[: len(far)]
    noise = np.random.default_rng(seed).standard_normal(len(far)) * 1e-3
    return Scene(to_int16(echo * 0.5 + noise), far, delay)


def drive(
    fe: FrontEnd,
    sc: Scene,
    sizes: list[int],
    reports: int | None = None,
) -> list[FrontEndFrame]:
    """Feed the mic in pieces of ``sizes`` (cycled), releasing far-end audio every 20 ms."""
    out: list[FrontEndFrame] = []
    released = 0
    pos = 0
    k = 0
    while pos < len(sc.mic):
        if pos % N == 0:
            while released < len(sc.far) and released - LEAD <= pos:
                fe.push_far_end(sc.far[released : released + N].tobytes())
                released += N
            if reports is not None and pos and pos % 4000 == 0:
                played = pos - reports
                if 0 <= played < released:
                    fe.report_playback(played)
        size = sizes[k % len(sizes)]
        k += 1
        stop = min(len(sc.mic), pos + size, (pos // N + 1) * N)  # never cross a 20 ms mark
        out += fe.process(sc.mic[pos:stop].tobytes())
        pos = stop
    return out


def erle(sc: Scene, frames: list[FrontEndFrame], from_s: float) -> float:
    out = np.zeros(len(sc.mic))
    for f in frames:
        out[f.offset : f.offset + N] = np.frombuffer(f.pcm, dtype=np.int16)
    a = int(from_s * FS)
    m = sc.mic[a:].astype(float)
    return float(10 * np.log10(np.sum(m**2) / (np.sum(out[a:] ** 2) + 1e-9)))


@pytest.mark.parametrize("sizes", [[1], [7, 333], [641, 2, 1001], [3], [320]])
def test_split_at_odd_boundaries_gives_identical_output(sizes: list[int]) -> None:
    sc = scene(4000, seconds=2.5)
    reference = drive(FrontEnd(), sc, [N])
    with FrontEnd() as fe:
        assert drive(fe, sc, sizes) == reference
    offsets = [f.offset for f in reference]
    assert offsets == list(range(0, len(offsets) * N, N))


def test_odd_byte_counts_are_carried_over() -> None:
    sc = scene(1000, seconds=1.0)
    pcm = sc.mic.tobytes()
    a, b = FrontEnd(), FrontEnd()
    whole = a.process(pcm)
    pieces: list[FrontEndFrame] = []
    for i in range(0, len(pcm), 331):  # odd byte counts: samples split across calls
        pieces += b.process(pcm[i : i + 331])
    assert pieces == whole
    assert b.mic_position == len(pcm) // 2


def test_alignment_without_reports() -> None:
    sc = scene(8000)  # 500 ms bulk delay: far outside the 200 ms filter tail
    with FrontEnd() as fe:
        frames = drive(fe, sc, [N])
        assert fe.delay_locked
        assert fe.echo_delay is not None and abs(fe.echo_delay - 8000) <= 16
        assert fe.alignment_offset == fe.echo_delay - 160  # the echo sits 10 ms into the tail
    assert erle(sc, frames, 3.0) > 25.0
    assert not any(isinstance(e, SpeechStarted) for f in frames for e in f.events)


def test_alignment_from_playback_reports() -> None:
    sc = scene(9600, seconds=3.0)
    with FrontEnd() as fe:
        # the client reports 40 ms less delay than the truth (its device latency)
        frames = drive(fe, sc, [N], reports=9600 - 640)
        assert fe.echo_delay is not None
        assert abs(fe.echo_delay - 9600) <= 16
    assert erle(sc, frames, 2.0) > 20.0


def test_report_pins_delay_before_the_estimator() -> None:
    with FrontEnd() as fe:
        fe.push_far_end(bytes(2 * 16000))
        fe.process(bytes(2 * 4000))
        fe.report_playback(1000)  # sample 1000 (scheduled at 1000) plays at mic 4000
        assert fe.echo_delay == 3000
        assert not fe.delay_locked
        fe.report_playback(16000)  # "everything played": no timing information, ignored
        assert fe.echo_delay == 3000


def test_truncate_far_end_cuts_the_queue() -> None:
    with FrontEnd() as fe:
        fe.push_far_end(np.full(16000, 1000, dtype=np.int16).tobytes())
        fe.process(bytes(2 * 3200))
        fe.truncate_far_end(3200)
        fe.process(bytes(2 * 320))
        fe.push_far_end(np.full(320, 7, dtype=np.int16).tobytes())  # plays right away
        log = fe._timeline.log
        assert log.read(3200, 320).tolist() == [0] * 320
        assert fe._timeline.scheduled(3200) == 3520
        assert log.read(3520, 320).tolist() == [7] * 320


def test_passthrough_when_everything_is_off() -> None:
    settings = FrontEndSettings(echo_cancellation=False, noise_suppression=False)
    sc = scene(0, seconds=0.5)
    with FrontEnd(settings) as fe:
        assert fe.latency == 0
        frames = fe.process(sc.mic.tobytes())
    assert b"".join(f.pcm for f in frames) == sc.mic[: len(frames) * N].tobytes()


def test_speech_events_on_real_speech() -> None:
    speech = alsa_speech()
    x = np.concatenate([np.zeros(FS // 2), speech / np.max(np.abs(speech)) * 0.3, np.zeros(FS)])
    with FrontEnd() as fe:
        frames = fe.process(to_int16(x).tobytes())
    starts = [e for f in frames for e in f.events if isinstance(e, SpeechStarted)]
    assert starts and abs(starts[0].offset - FS // 2) < 0.15 * FS
    assert any(f.in_speech for f in frames)


@pytest.mark.parametrize("seed", [0, 1])
def test_barge_in_onset_with_a_fricative_is_dated_at_the_fricative(seed: int) -> None:
    # "Side left" over loud echo (the user 5-10 dB under it once the canceller has converged):
    # the quiet /s/ and the dip before the vowel used to be refused by the echo gate, which
    # re-dated the onset at the vowel, 150 ms late
    far = to_int16(bursts(8.0, seed=seed))
    delay = 3200
    echo = np.convolve(np.concatenate([np.zeros(delay), far / 32768]), room(seed + 1))
    talk = alsa_speech("Side_Left")
    talk *= 0.05 / np.sqrt(np.mean(talk[np.abs(talk) > 0.01 * np.abs(talk).max()] ** 2))
    start = 5 * FS
    near = np.zeros(len(far))
    near[start : start + len(talk)] = talk[: len(far) - start]
    noise = np.random.default_rng(seed).standard_normal(len(far)) * 1e-4
    sc = Scene(to_int16(echo[: len(far)] + near + noise), far, delay)
    envelope = np.mean(near[: len(near) // 80 * 80].reshape(-1, 80) ** 2, axis=1)
    onset = int(np.nonzero(envelope > envelope.max() * 1e-3)[0][0]) * 80
    with FrontEnd() as fe:
        frames = drive(fe, sc, [N], reports=delay)
    starts = [e.offset for f in frames for e in f.events if isinstance(e, SpeechStarted)]
    assert len(starts) == 1
    assert abs(starts[0] - onset) <= 3 * N


def test_close_is_idempotent() -> None:
    fe = FrontEnd()
    fe.close()
    fe.close()
    with pytest.raises(ValueError):
        fe.process(bytes(640))


def test_settings_validation() -> None:
    with pytest.raises(ValueError):
        FrontEndSettings(echo_tail_ms=5)
    with pytest.raises(ValueError):
        FrontEndSettings(noise_suppress_db=10)


@pytest.mark.parametrize("unseen_ms", [450, 800])
def test_device_latency_no_report_shows_is_found_and_never_self_triggers(unseen_ms: int) -> None:
    # issue 13: the client reports what it handed to its output; the device adds latency on
    # top. A report is a floor, so the estimator must still find the echo above it, and the
    # echo must never start speech while the filter learns it (the first reply included).
    delay = 2400 + unseen_ms * 16
    sc = scene(delay, seconds=6.0, seed=3)
    with FrontEnd() as fe:
        frames = drive_with_latency(fe, sc, queue=delay - unseen_ms * 16, claimed=0)
        assert fe.delay_locked
        assert fe.echo_delay is not None and abs(fe.echo_delay - delay) <= 48
    assert not any(isinstance(e, SpeechStarted) for f in frames for e in f.events)
    assert erle(sc, frames, 3.0) > 20.0


def test_output_latency_is_a_prior_for_the_belief_not_a_bound() -> None:
    with FrontEnd() as fe:
        fe.push_far_end(bytes(2 * 16000))
        fe.process(bytes(2 * 4000))
        fe.report_playback(1000, output_latency=2400)  # the client claims 150 ms more
        assert fe.echo_delay == 3000 + 2400
        assert not fe.delay_locked
    sc = scene(6400, seconds=4.0, seed=4)
    with FrontEnd() as fe:
        # the claim is 100 ms short of the truth: the signals win
        frames = drive_with_latency(fe, sc, queue=4000, claimed=800)
        assert fe.delay_locked
        assert fe.echo_delay is not None and abs(fe.echo_delay - 6400) <= 48
    assert not any(isinstance(e, SpeechStarted) for f in frames for e in f.events)


def drive_with_latency(fe: FrontEnd, sc: Scene, *, queue: int, claimed: int) -> list[FrontEndFrame]:
    out: list[FrontEndFrame] = []
    released = 0
    for pos in range(0, len(sc.mic) - N + 1, N):
        while released < len(sc.far) and released - LEAD <= pos:
            fe.push_far_end(sc.far[released : released + N].tobytes())
            released += N
        if pos and pos % 1600 == 0 and 0 <= pos - queue < released:
            fe.report_playback(pos - queue, output_latency=claimed)
        out += fe.process(sc.mic[pos : pos + N].tobytes())
    return out


def test_user_on_a_line_without_echo_is_heard_at_once_during_the_first_reply() -> None:
    # headphones or a phone handset: far-end audio plays, none of it reaches the mic. The
    # echo hold must not make the user wait for a convergence that will never come.
    talk = alsa_speech()
    talk = talk / np.max(np.abs(talk)) * 0.3
    far = to_int16(bursts(5.0, seed=5))
    near = np.zeros(len(far))
    start = FS
    near[start : start + len(talk)] = talk[: len(far) - start]
    noise = np.random.default_rng(5).standard_normal(len(far)) * 1e-4
    sc = Scene(to_int16(near + noise), far, 0)
    onsets = []
    for aec in (True, False):
        with FrontEnd(FrontEndSettings(echo_cancellation=aec)) as fe:
            frames = drive(fe, sc, [N], reports=2000)
        starts = [e.offset for f in frames for e in f.events if isinstance(e, SpeechStarted)]
        assert starts
        onsets.append(starts[0])
    assert onsets[0] - onsets[1] <= 2 * N


@pytest.mark.parametrize("ppm", [100.0, -100.0])
def test_clock_skew_is_found_and_followed(ppm: float) -> None:
    import soxr

    # the loudspeaker's clock runs `ppm` off the mic's: the echo drifts 1.6 samples a second
    far = to_int16(bursts(16.0, seed=6))
    played = soxr.resample(far / 32768, FS, FS * (1 + ppm * 1e-6), quality="VHQ")[: len(far)]
    delay = 4800
    echo = np.convolve(np.concatenate([np.zeros(delay), played]), room(7))[: len(far)]
    noise = np.random.default_rng(6).standard_normal(len(far)) * 1e-4
    sc = Scene(to_int16(echo * 0.5 + noise), far, delay)
    with FrontEnd() as fe:
        frames = drive(fe, sc, [N])
        assert fe.stats.skew_ppm is not None and abs(fe.stats.skew_ppm - ppm) < 20
    assert erle(sc, frames, 8.0) > 25.0
    assert not any(isinstance(e, SpeechStarted) for f in frames for e in f.events)


def test_a_filter_that_learnt_the_user_never_adds_its_estimate_to_a_silent_mic() -> None:
    # a line without echo: the far end plays, the user talks over it (the filter adapts on
    # their voice), then the mic goes silent. Subtracting the filter's estimate from silence
    # would produce loud audio of its own, which the VAD took for the user (issue 18's
    # second Twilio clear).
    talk = alsa_speech("Rear_Right")
    talk = talk / np.max(np.abs(talk)) * 0.6
    reply = alsa_speech("Front_Center")
    far = np.zeros(6 * FS)
    for start in range(0, len(far), len(reply) + FS // 4):  # the assistant keeps talking
        far[start : start + len(reply)] = (reply / np.max(np.abs(reply)) * 0.6)[: len(far) - start]
    near = np.zeros(len(far))
    near[FS // 2 : FS // 2 + len(talk)] = talk[: len(far) - FS // 2]
    silent_from = FS // 2 + len(talk) + FS // 10
    sc = Scene(to_int16(near), to_int16(far), 0)
    with FrontEnd() as fe:
        frames = drive(fe, sc, [N], reports=2000)
    starts = [e for f in frames for e in f.events if isinstance(e, SpeechStarted)]
    assert len(starts) == 1
    after = [f for f in frames if f.offset >= silent_from + 2 * N]
    assert after
    assert max(int(np.max(np.abs(np.frombuffer(f.pcm, np.int16)))) for f in after) < 20


@pytest.mark.parametrize("start_s", [0.6, 0.8, 1.0, 1.2])
def test_a_user_on_an_echo_free_line_is_confirmed_as_soon_as_without_the_canceller(
    start_s: float,
) -> None:
    # The telephony case: the reply is one voice with pauses between its words (the echo
    # backend repeating "Front Center"), the caller's phone returns no echo, and the caller
    # says "Rear Right" over it. Within the wide delay search some lag lines the reply's
    # first word up with the caller's onset, so the echo hold cannot tell the first frames
    # from echo; once it can, the speech must be confirmed start_secs after its onset, as
    # with the canceller off, not start_secs after the verdict (that was 160 ms later).
    word = alsa_speech("Front_Center")
    far = to_int16(np.concatenate([word, np.zeros(FS // 2)] * 4) * 0.5)
    talk = alsa_speech("Rear_Right")
    near = np.zeros(len(far))
    start = int(start_s * FS)
    near[start : start + len(talk)] = talk[: len(far) - start] * 0.5
    sc = Scene(to_int16(near), far, 0)
    emitted = []
    for aec in (True, False):
        with FrontEnd(FrontEndSettings(echo_cancellation=aec)) as fe:
            frames = drive(fe, sc, [N], reports=2000)
        at = [f.offset for f in frames if any(isinstance(e, SpeechStarted) for e in f.events)]
        assert at
        emitted.append(at[0])
    assert emitted[0] - emitted[1] <= 2 * N
