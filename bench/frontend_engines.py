"""Echo engines side by side (issue 13, item 5): speex vs WebRTC AEC3, both behind our alignment.

Each engine runs as the whole front end (``FrontEndSettings(echo_engine=...)``, everything
else at its defaults: the same alignment, delay estimator, reports, echo gate and VAD) on
the same signals as the rest of the evaluation. Measured per engine:

* ERLE at every bulk delay, with and without PlaybackUpdates: at 1 s (the 0.5 s window that
  ends 1 s after the echo's first arrival: the first reply of a session, canceller fresh)
  and the mean from 3 s; time to 20 dB; false SpeechStarted on echo-only playback;
* clock drift 0 / +-50 / +-100 ppm (loudspeaker slow or fast), longer clips so the drift
  accumulates;
* double talk: correlation of the output with the near-end speech;
* CPU per 20 ms frame of the whole front end against the sum of its C kernels alone (the
  issue's "front end <= 1.5x its C kernels per frame"), with the machine load.

:mod:`bench.frontend_engines_report` turns the results into the section of
docs/FRONTEND.md, decision included: every verdict and figure in it is computed from them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import webrtcvad

from bench import frontend_signals as sig
from bench.frontend_cpu import CPU_DELAY_MS, CpuStream, SpeexKernels, cpu_stream
from bench.frontend_engines_report import TARGETS
from bench.frontend_harness import (
    ECHO_DBFS,
    FS,
    NEAR_DBFS,
    NOISE_DBFS,
    Float,
    Int16,
    N,
    Reports,
    barge_in_clip,
    erle_metrics,
    make_echo_clip,
    run_frontend,
    run_session,
)
from sonicwire.server.dsp.frames import FRAME_BYTES
from sonicwire.server.dsp.pipeline import FrontEndSettings

__all__ = ["ENGINES", "evaluate_engines"]

ENGINES = ("speex", "aec3")


def _settings(engine: str) -> FrontEndSettings:
    return FrontEndSettings(echo_engine=engine)  # type: ignore[arg-type]


def _erle_at(mic: Int16, out: Int16, onset: int, end_s: float, win_s: float = 0.5) -> float:
    """ERLE (dB) of the ``win_s`` window ending ``end_s`` after the echo onset."""
    b = onset + int(end_s * FS)
    a = b - int(win_s * FS)
    m = mic[a:b].astype(np.float64)
    o = out[a:b].astype(np.float64)
    return round(float(10 * np.log10(np.sum(m**2) / (np.sum(o**2) + 1e-9))), 1)


def _found(delay: int | None, true_ms: float) -> bool:
    """Whether the alignment's belief (samples) is the true bulk delay, within 20 ms (the
    room's first arrival comes a few ms after the bulk delay)."""
    return delay is not None and abs(delay / 16 - true_ms) <= 20.0


def _echo_run(
    mic: Int16, far16: Int16, onset: int, engine: str, rep: Reports | None, true_ms: float
) -> Any:
    r = run_frontend(mic, far16, _settings(engine), reports=rep)
    m = erle_metrics(mic, r.out, onset)
    return {
        "delay_found": _found(r.delay, true_ms),
        "erle_1s_db": _erle_at(mic, r.out, onset, 1.0),
        "mean_db": m["mean_db"],
        "t20_s": m["t20_s"],
        "t20_settled_s": m["t20_settled_s"],
        "speech_started": sum(1 for e in r.events if e[2] == "start"),
        "realignments": r.realignments,
        "us_per_frame": round(r.cpu_s / r.frames * 1e6, 1),
    }


def _erle(far: Float, delays: Sequence[int], seconds: float) -> list[dict[str, Any]]:
    rows = []
    for d in delays:
        # the same clips (seeds) as the main ERLE sweep
        mic, far16, _echo, onset = make_echo_clip(far, d, 10 + d // 100, seconds)
        row: dict[str, Any] = {"delay_ms": d}
        for engine in ENGINES:
            row[engine] = {
                "no_reports": _echo_run(mic, far16, onset, engine, None, d),
                "reports": _echo_run(mic, far16, onset, engine, Reports(delay=d * 16), d),
            }
        rows.append(row)
        print(f"  engines erle {d} ms: {row}", flush=True)
    return rows


def _drift(far: Float, skews: Sequence[float], seconds: float) -> list[dict[str, Any]]:
    rows = []
    for ppm in skews:
        mic, far16, _e, onset = make_echo_clip(far, 400, 60, seconds, drift=ppm)
        row: dict[str, Any] = {"skew_ppm": ppm}
        for engine in ENGINES:
            row[engine] = {
                # the delay at the end of the clip (it moves by the drift)
                "no_reports": _echo_run(mic, far16, onset, engine, None, 400 + ppm * seconds / 1e3),
                "reports": _echo_run(
                    mic,
                    far16,
                    onset,
                    engine,
                    Reports(delay=400 * 16, drift_ppm=ppm),
                    400 + ppm * seconds / 1e3,
                ),
            }
        rows.append(row)
        print(f"  engines drift {ppm} ppm: {row}", flush=True)
    return rows


def _best_lag_corr(
    out: Int16, near: Float, a: int, b: int, max_lag: int = 40 * 16
) -> tuple[int, int, float]:
    """(lag, polarity, correlation): ``out`` delayed by 0..``max_lag`` samples and taken with
    either sign, at its largest correlation with ``near[a:b]``.

    AudioProcessing delays its output by several milliseconds (AEC3's blocking, the noise
    suppressor's overlap) that no frame offset reports, and its high-pass filter turns the
    phase of the low frequencies: a waveform correlation at lag 0 reads both as losing the
    voice, which neither is to a listener or a recogniser. This is the most favourable
    alignment of the same comparison; speex's output needs none (lag 0, polarity +1).
    """
    ref = near[a:b]
    best, where, sign = -1.0, 0, 1
    for lag in range(0, max_lag + 1, 2):
        c = float(np.corrcoef(out[a + lag : b + lag], ref)[0, 1])
        if abs(c) > best:
            best, where, sign = abs(c), lag, 1 if c >= 0 else -1
    return where, sign, best


def _dt_run(
    mic: Int16,
    far16: Int16 | None,
    engine: str,
    rep: Reports | None,
    near: Float,
    a: int,
    b: int,
    alone: Int16 | None = None,
    true_ms: float = 0.0,
) -> tuple[dict[str, Any], Int16]:
    r = run_frontend(mic, far16, _settings(engine), reports=rep)
    lag, sign, best = _best_lag_corr(r.out, near, a, b)
    level = sig.dbfs(r.out[a + lag : b + lag] / 32768) - sig.dbfs(mic[a:b] / 32768)
    m: dict[str, Any] = {
        "delay_found": far16 is None or _found(r.delay, true_ms),
        "corr_lag0": round(float(np.corrcoef(r.out[a:b], near[a:b])[0, 1]), 3),
        "corr": round(best, 3),
        "lag_ms": round(lag / 16, 1),
        "polarity": sign,
        "level_change_db": round(level, 1),
    }
    if alone is not None:
        # against the engine's own output for the user alone: what the echo and its removal
        # cost the voice, the engine's fixed filtering (high-pass, delay) factored out
        m["corr_vs_alone"] = round(float(np.corrcoef(r.out[a:b], alone[a:b])[0, 1]), 3)
    return m, r.out


def _double_talk(far: Float, near: Float, delays: Sequence[int], seconds: float) -> dict[str, Any]:
    """As the main double-talk case: the user talks from 4 s over assistant speech. Plus the
    user alone (no far end at all): what each engine's processing leaves of the voice."""
    rows = []
    n = int(seconds * FS)
    near_start = 4 * FS
    near_alone: dict[str, Any] = {}
    for d in delays:
        seed = 20 + d // 100
        _mic, far16, echo, _onset = make_echo_clip(far, d, seed, seconds)
        talk = sig.set_level(near[: n - near_start - FS], NEAR_DBFS)
        talk = sig.set_level(np.convolve(talk, sig.room_ir(seed + 1000))[: len(talk)], NEAR_DBFS)
        near_mic = np.zeros(n)
        near_mic[near_start : near_start + len(talk)] = talk
        noise = sig.noise(n, seed, "pink") * 10 ** (NOISE_DBFS / 20)
        mic = sig.to_int16(echo + noise + near_mic)
        a, b = near_start, near_start + len(talk)
        row: dict[str, Any] = {"delay_ms": d}
        for engine in ENGINES:
            user = sig.to_int16(noise + near_mic)
            m_alone, alone = _dt_run(user, None, engine, None, near_mic, a, b)
            near_alone.setdefault(engine, m_alone)  # the first delay's room stands for all
            row[engine] = {
                "no_reports": _dt_run(mic, far16, engine, None, near_mic, a, b, alone, d)[0],
                "reports": _dt_run(
                    mic, far16, engine, Reports(delay=d * 16), near_mic, a, b, alone, d
                )[0],
            }
        rows.append(row)
        print(f"  engines double talk {d} ms: {row}", flush=True)
    return {"rows": rows, "near_alone": near_alone}


def _barge_in(far: Float, clips: list[Float], delays: Sequence[int]) -> dict[str, Any]:
    """The user barges in 3.5-4.25 s into assistant playback, through the real session core
    (as the main barge-in case, reports on): onset -> Interruption, per engine."""
    result: dict[str, Any] = {}
    for engine in ENGINES:
        reaction: list[float] = []
        levels: list[float] = []
        missed = false = 0
        for d in delays:
            for i, clip in enumerate(clips):
                c = barge_in_clip(far, clip, d, i, NEAR_DBFS)
                mic, far16, near_mic, on = c.mic, c.far16, c.near, c.onset
                rep = Reports(delay=d * 16)
                sr = run_session(mic, far16, _settings(engine), reports=rep)
                # what reaches the VAD of the user's first 300 ms, against the user alone
                out = run_frontend(mic, far16, _settings(engine), reports=rep).out
                w = slice(on, on + 300 * 16)
                levels.append(
                    10 * np.log10(np.mean(out[w].astype(np.float64) ** 2) / 32768**2 + 1e-12)
                    - sig.dbfs(near_mic[w])
                )
                false += sum(1 for t in sr.interruptions if t <= on)
                cut = [t for t in sr.interruptions if t > on]
                if cut:
                    reaction.append((cut[0] - on) / 16)
                else:
                    missed += 1
        a = np.array(reaction) if reaction else np.array([np.nan])
        result[engine] = {
            "n": len(reaction),
            "median_ms": round(float(np.median(a)), 1),
            "p95_ms": round(float(np.percentile(a, 95)), 1),
            "max_ms": round(float(np.max(a)), 1),
            "missed": missed,
            "false_interruptions": false,
            "onset_level_change_db_median": round(float(np.median(levels)), 1),
            "onset_level_change_db_min": round(float(np.min(levels)), 1),
        }
    result["delays_ms"] = list(delays)
    result["clips"] = len(clips)
    print(f"  engines barge-in: {result}", flush=True)
    return result


def _cpu(far: Float, near: Float, seconds: float, repeats: int) -> dict[str, Any]:
    """Whole front end per 20 ms frame vs its kernels, per engine (as ``evaluate_cpu``)."""
    stream = cpu_stream(far, near, seconds)
    mic, far16, frames, d = stream.mic, stream.far16, stream.frames, CPU_DELAY_MS
    kernels = _kernels(stream)
    best: dict[str, float] = {}
    replayed: dict[str, int] = {}
    load_before = os.getloadavg()
    for _ in range(repeats):
        # interleaved so that load from other processes hits every side alike
        for engine in ENGINES:
            r = run_frontend(mic, far16, _settings(engine), reports=Reports(delay=d * 16))
            us = r.cpu_s / r.frames * 1e6
            if us < best.get(engine, float("inf")):
                best[engine], replayed[engine] = us, r.replayed_frames
        for name, fn in kernels.items():
            t0 = time.process_time()
            fn()
            us = (time.process_time() - t0) / len(frames) * 1e6
            best[name] = min(best.get(name, float("inf")), us)
    result: dict[str, Any] = {
        "seconds": seconds,
        "frames": len(frames),
        "repeats": repeats,
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }
    vad = best["webrtcvad_is_speech"]
    sums = {
        "speex": best["speex_echo_cancellation_200ms"] + best["speex_preprocess_run_with_res"],
        "aec3": best["aec3_apm_livekit"],
    }
    for engine in ENGINES:
        total = sums[engine] + vad
        result[engine] = {
            "frontend_us": round(best[engine], 1),
            "replayed_frames": replayed[engine],
            "kernels_us": round(total, 1),
            "ratio": round(best[engine] / total, 2),
        }
    result["kernels_us"] = {name: round(v, 1) for name, v in best.items() if name not in ENGINES}
    print(f"  engines cpu: {result}", flush=True)
    return result


def _kernels(stream: CpuStream) -> dict[str, Callable[[], None]]:
    """Each engine's C kernels alone on the stream's frames, one 20 ms frame per iteration."""
    from livekit.rtc import AudioFrame, AudioProcessingModule

    frames, refs = stream.frames, stream.refs
    speex = SpeexKernels(stream)
    v = webrtcvad.Vad(3)
    half = FRAME_BYTES // 2
    # AEC3: the same AudioProcessing configuration as Aec3Stage (AEC3 + NS + high-pass),
    # 10 ms frames prepared ahead so the loop is the binding's calls alone
    apm = AudioProcessingModule(
        echo_cancellation=True, noise_suppression=True, high_pass_filter=True
    )
    apm.set_stream_delay_ms(0)
    near_halves = [
        AudioFrame(bytearray(f[h * half : (h + 1) * half]), FS, 1, N // 2)
        for f in frames
        for h in (0, 1)
    ]
    far_halves = [
        AudioFrame(bytearray(r_[h * half : (h + 1) * half]), FS, 1, N // 2)
        for r_ in refs
        for h in (0, 1)
    ]

    def vad() -> None:
        for f in frames:
            v.is_speech(f, FS)

    def aec3() -> None:
        for nf, ff in zip(near_halves, far_halves, strict=True):
            apm.process_reverse_stream(ff)
            apm.process_stream(nf)

    return {
        "speex_echo_cancellation_200ms": speex.cancel_echo,
        "speex_preprocess_run_with_res": speex.preprocess,
        "webrtcvad_is_speech": vad,
        "aec3_apm_livekit": aec3,
    }


def evaluate_engines(far: Float, near: Float, quick: bool) -> dict[str, Any]:
    """Every engine case; sizes as the rest of the evaluation (``quick``: the CI subset)."""
    delays = [0, 400, 800] if quick else list(range(0, 1001, 100))
    seconds = 8.0 if quick else 12.0
    drift_seconds = 12.0 if quick else 24.0
    skews = [0.0, 50.0, -50.0, 100.0, -100.0]
    started = time.time()
    print("engines: ERLE", flush=True)
    erle = _erle(far, delays, seconds)
    print("engines: drift", flush=True)
    drift = _drift(far, skews, drift_seconds)
    print("engines: double talk", flush=True)
    dt = _double_talk(far[5 * FS :], near, [0, 400, 800] if quick else delays, 12.0)
    print("engines: barge-in", flush=True)
    clips = sig.alsa_clips() or [near[i : i + 2 * FS] for i in range(0, len(near) - 2 * FS, 2 * FS)]
    barge = _barge_in(far, clips[:4] if quick else clips, [400] if quick else [0, 400, 800])
    print("engines: CPU", flush=True)
    cpu = _cpu(far, near, 15.0 if quick else 40.0, 3 if quick else 5)
    from importlib.metadata import version

    return {
        "engines": list(ENGINES),
        "default_engine": FrontEndSettings().echo_engine,
        "livekit_version": version("livekit"),
        "quick": quick,
        "clip_seconds": seconds,
        "drift_clip_seconds": drift_seconds,
        "drift_delay_ms": 400,
        "echo_dbfs": ECHO_DBFS,
        "targets": TARGETS,
        "erle": erle,
        "drift": drift,
        "double_talk": dt,
        "barge_in": barge,
        "cpu": cpu,
        "runtime_s": round(time.time() - started, 1),
    }
