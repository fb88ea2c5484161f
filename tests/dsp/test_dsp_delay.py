from __future__ import annotations

import numpy as np
import pytest

from sonicwire.server.dsp.delay import DelayEstimate, DelayEstimator, DelayTracker
from sonicwire.server.dsp.pipeline import FrontEnd
from sonicwire.server.dsp.skew import SkewTracker
from sonicwire.server.dsp.timeline import FarEndTimeline, SampleLog

from .dsp_testsignals import FS, bursts, room, to_int16


def ramp(n: int, start: int = 1) -> np.ndarray:
    return np.arange(start, start + n, dtype=np.int16)


def test_sample_log_reads_views_and_zeros() -> None:
    log = SampleLog(8)
    log.write(0, ramp(4))
    assert list(log.read(0, 4)) == [1, 2, 3, 4]
    assert list(log.read(-2, 4)) == [0, 0, 1, 2]
    assert list(log.read(3, 3)) == [4, 0, 0]
    log.write(6, ramp(2, 10))  # gap at 4..5 reads as zeros
    assert list(log.read(2, 6)) == [3, 4, 0, 0, 10, 11]
    log.truncate(7)
    assert list(log.read(6, 2)) == [10, 0]


def test_sample_log_compacts_and_grows() -> None:
    log = SampleLog(8)
    for i in range(100):
        log.forget_before(i * 4 - 8)
        log.write(i * 4, ramp(4, i))
    assert log.capacity <= 16
    assert list(log.read(396, 4)) == list(ramp(4, 99))
    log.write(400, ramp(50))  # bigger than the buffer: grows
    assert list(log.read(400, 50)) == list(ramp(50))


def test_timeline_schedules_back_to_back() -> None:
    tl = FarEndTimeline(history=1000)
    tl.push(ramp(100).tobytes(), mic_position=50)  # plays from 50
    tl.push(ramp(100).tobytes(), mic_position=60)  # queued behind: from 150
    assert tl.queue_end == 250
    assert tl.scheduled(0) == 50 and tl.scheduled(150) == 200
    tl.push(ramp(10).tobytes(), mic_position=400)  # queue had drained: starts at 400
    assert tl.scheduled(200) == 400 and tl.far_total == 210
    assert tl.scheduled(210) is None
    assert list(tl.log.read(248, 4)) == [99, 100, 0, 0]


def test_timeline_truncate_rebases_far_index() -> None:
    tl = FarEndTimeline(history=1000)
    tl.push(ramp(300).tobytes(), mic_position=0)
    tl.truncate(120, mic_position=100)
    assert tl.far_total == 120 and tl.queue_end == 120
    assert tl.log.read(120, 10).tolist() == [0] * 10
    tl.push(ramp(10, 500).tobytes(), mic_position=130)
    assert tl.scheduled(120) == 130  # the next released sample is number 120


@pytest.mark.parametrize("delay", [0, 4800, 12000])
def test_estimator_finds_known_delay(delay: int) -> None:
    far = to_int16(bursts(3.0, seed=delay))
    path = room(1)
    mic = np.convolve(np.concatenate([np.zeros(delay), far / 32768]), path)[: len(far)] * 0.3
    mic += np.random.default_rng(1).standard_normal(len(mic)) * 1e-3
    mic16 = to_int16(mic)
    est = DelayEstimator()
    reading = None
    for t in range(est.window, len(far) + 1, 3200):
        far_win = np.concatenate([np.zeros(est.window + est.max_delay, dtype=np.int16), far])
        far_win = far_win[t : t + est.window + est.max_delay]
        reading = est.update(mic16[t - est.window : t], far_win)
    assert reading is not None
    assert abs(reading.delay - delay) <= 8
    assert reading.confidence > 15


def test_estimator_ignores_uncorrelated_mic() -> None:
    est = DelayEstimator()
    far = to_int16(bursts(3.0, seed=9))
    mic = to_int16(bursts(3.0, seed=10))
    readings = []
    for t in range(est.window + est.max_delay, len(far) + 1, 3200):
        readings.append(
            est.update(mic[t - est.window : t], far[t - est.window - est.max_delay : t])
        )
    assert all(r is None or r.confidence < 9 for r in readings)


def test_tracker_needs_agreement_and_follows_reports() -> None:
    tr = DelayTracker()
    assert not tr.on_estimate(DelayEstimate(5000, 10.0))  # one moderate reading
    assert tr.delay is None
    assert tr.on_estimate(DelayEstimate(5010, 11.0))  # a second that agrees
    assert tr.delay == 5010 and tr.locked
    assert not tr.on_estimate(DelayEstimate(9000, 5.0))  # weak: ignored
    tr2 = DelayTracker()
    tr2.on_report(4000)
    assert tr2.delay == 4000 and not tr2.locked
    # a report is a floor: unseen device latency only adds, so the window stays open above it
    assert tr2.search_range() == (3200, tr2.max_delay)
    assert tr2.on_estimate(DelayEstimate(4600, 30.0))  # strong: one reading suffices
    tr2.on_report(6000)  # the client's buffer grew by 2000 samples
    assert tr2.delay == 6600
    assert FS == 16000


def test_coherence_tells_echo_from_an_unrelated_voice() -> None:
    est = DelayEstimator(max_delay=8000, window=8000)
    far = to_int16(bursts(2.0, seed=1))[: est.window + est.max_delay]
    delay = 5000
    echo = np.convolve(far.astype(np.float64), room(2))[: len(far)]
    echo = np.concatenate([np.zeros(delay), echo])[: len(far)]
    noise = np.random.default_rng(3).standard_normal(len(far)) * 30
    mic_echo = np.clip(echo * 0.5 + noise, -32768, 32767).astype(np.int16)[-est.window :]
    other = to_int16(bursts(2.0, seed=9))[: est.window]
    explained = est.echo_coherence(mic_echo, far)
    unrelated = est.echo_coherence(other, far)
    # this synthetic room puts most of its energy in a dense tail (harder than measured
    # rooms, which stay near 0.99): still far above the front end's "not echo" bar
    assert explained is not None and explained > FrontEnd.NOT_ECHO_COHERENCE + 0.2
    assert unrelated is not None and unrelated < FrontEnd.NOT_ECHO_COHERENCE
    at_delay = est.coherence_at(mic_echo, far, delay)
    assert at_delay is not None and abs(at_delay - explained) < 0.1
    dry = np.concatenate([np.zeros(delay), far])[: len(far)][-est.window :]
    assert (est.coherence_at(dry, far, delay) or 0.0) > 0.99
    assert est.echo_coherence(np.zeros(est.window, dtype=np.int16), far) is None
    assert est.blocks == 0  # probing leaves the accumulated state alone


def _echo_block(est: DelayEstimator, delay: int = 5000) -> tuple[np.ndarray, np.ndarray]:
    far = to_int16(bursts(2.0, seed=1))[: est.window + est.max_delay]
    echo = np.convolve(far.astype(np.float64), room(2))[: len(far)]
    echo = np.concatenate([np.zeros(delay), echo])[: len(far)] * 0.5
    return np.clip(echo, -32768, 32767).astype(np.int16)[-est.window :], far


def test_calls_at_one_position_share_its_decimation_and_ffts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # an estimate, its coherence check and an echo-hold probe at the same mic position read
    # the same windows: two forward FFTs in all (it was two per call), the same numbers
    est = DelayEstimator(max_delay=8000, window=8000)
    mic, far = _echo_block(est)
    fresh = DelayEstimator(max_delay=8000, window=8000)
    expected = (
        fresh.update(mic, far, block_estimate=True),
        fresh.block_estimate,
        fresh.coherence_at(mic, far, 5000),
        fresh.echo_coherence(mic, far),
    )
    calls = {"rfft": 0}
    rfft = np.fft.rfft

    def counted(*args: object, **kwargs: object) -> np.ndarray:
        calls["rfft"] += 1
        return rfft(*args, **kwargs)  # type: ignore[no-any-return,call-overload]

    monkeypatch.setattr(np.fft, "rfft", counted)
    got = (
        est.update(mic, far, block_estimate=True, at=16000),
        est.block_estimate,
        est.coherence_at(mic, far, 5000, at=16000),
        est.echo_coherence(mic, far, at=16000),
    )
    assert got == expected
    # one call per coherence (both sides' short segments) plus one for both long spectra:
    # numpy builds its FFT plan on every call, once for all the rows of a call
    assert calls["rfft"] == 2 + 1
    est.drop_windows()
    assert est._m is None and est._spec_f is None  # no stream keeps them between frames
    calls["rfft"] = 0
    assert est.echo_coherence(mic, far, at=16320) == expected[3]  # another position: anew
    assert calls["rfft"] == 1 + 1


def test_one_call_transforms_both_windows_to_the_same_bits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # both sides in one numpy call (one FFT plan) give the bits of one call per side, which
    # is what the estimator computed before (the front end's sizes: 8192 points, 8 x 250)
    est = DelayEstimator(max_delay=24000, window=8000)
    mic, far = _echo_block(est)
    m, f = est._informative(mic, far, -1)
    assert m is not None and f is not None
    spec_f, spec_m = est._spectra(f, m)
    assert spec_f.dtype == np.complex64
    assert spec_f.tobytes() == np.fft.rfft(f, 8192).tobytes()
    assert spec_m.tobytes() == np.fft.rfft(m, 8192).tobytes()
    # a block is scaled through its float32 view: the bits of numpy's complex division
    mic_power = float(np.dot(m, m)) / len(m)
    far_power = float(np.dot(f, f)) / len(f)
    divided = spec_f * np.conj(spec_m)
    divided /= np.float32(np.sqrt(mic_power * far_power) * len(m))
    est.update(mic, far, at=0)
    assert est._last_block is not None and est._last_block.tobytes() == divided.tobytes()
    outputs: list[np.ndarray] = []
    rfft = np.fft.rfft

    def recorded(*args: object, **kwargs: object) -> np.ndarray:
        outputs.append(rfft(*args, **kwargs))  # type: ignore[call-overload]
        return outputs[-1]

    monkeypatch.setattr(np.fft, "rfft", recorded)
    assert est.coherence_at(mic, far, 5000) is not None
    assert [o.shape for o in outputs] == [(2, 8, 126)]
    lag = est._max_lag - 5000 // est.decimation
    win = np.hanning(250).astype(np.float32)
    assert outputs[0][0].tobytes() == rfft(m.reshape(8, 250) * win, axis=1).tobytes()
    mine = f[lag : lag + len(m)].reshape(8, 250) * win
    assert outputs[0][1].tobytes() == rfft(mine, axis=1).tobytes()


def test_a_front_end_keeps_no_window_between_frames() -> None:
    fe = FrontEnd()
    far = to_int16(bursts(4.0, seed=4))
    mic = to_int16(bursts(4.0, seed=5))
    for t in range(0, len(mic) - 320 + 1, 320):
        fe.push_far_end(far[t : t + 320].tobytes())
        fe.process(mic[t : t + 320].tobytes())
        assert fe._estimator._m is None and fe._estimator._spec_f is None
    assert fe.stats.estimates > 0 and fe.stats.probes > 0
    fe.close()


def test_skew_tracker_fits_the_drift_and_refuses_noise() -> None:
    sk = SkewTracker(min_span_secs=3.0, min_points=6)
    rng = np.random.default_rng(0)
    skew = None
    for k in range(12):
        position = k * 8000  # a reading every 0.5 s
        skew = sk.add(position, 6400 + 100e-6 * position + rng.normal(0, 0.5))
    assert skew is not None and abs(skew - 100e-6) < 15e-6
    sk.reset()
    assert sk.skew() is None
    for k in range(12):  # readings all over the place: no line, no skew
        sk.add(k * 8000, 6400 + rng.normal(0, 40))
    assert sk.skew() is None
