"""The evaluation cases of the front end (ERLE sweep, skew, jumps, double talk, VAD, CPU)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import webrtcvad

from bench import frontend_signals as sig
from bench.frontend_baselines import nlms, speex_plain
from bench.frontend_cpu import CPU_DELAY_MS, SpeexKernels, cpu_stream
from bench.frontend_harness import (
    DRIFT_PPM,
    ECHO_DBFS,
    FS,
    NEAR_DBFS,
    NOISE_DBFS,
    Float,
    N,
    Reports,
    Run,
    barge_in_clip,
    erle_metrics,
    make_echo_clip,
    run_frontend,
    run_session,
    settings_full,
    settings_linear,
)
from sonicwire.server.dsp.aec import AlignmentPolicy
from sonicwire.server.dsp.pipeline import FrontEndSettings
from sonicwire.server.dsp.vad import Vad, VadSettings

__all__ = [
    "evaluate_cpu",
    "evaluate_double_talk",
    "evaluate_drift",
    "evaluate_erle",
    "evaluate_hard_echo",
    "evaluate_jump",
    "evaluate_vad_accuracy",
    "evaluate_vad_latency",
]


def evaluate_erle(
    far: Float, delays: Sequence[int], seconds: float, baselines: bool, nlms_delays: Sequence[int]
) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    false_starts = 0
    for d in delays:
        seed = 10 + d // 100
        mic, far16, _echo, onset = make_echo_clip(far, d, seed, seconds)
        row: dict[str, Any] = {"delay_ms": d}
        for with_reports in (False, True):
            rep = Reports(delay=d * 16, drift_ppm=DRIFT_PPM) if with_reports else None
            key = "reports" if with_reports else "no_reports"
            full = run_frontend(mic, far16, settings_full(), reports=rep)
            lin = run_frontend(mic, far16, settings_linear(), reports=rep)
            starts = sum(1 for e in full.events if e[2] == "start")
            false_starts += starts
            row[key] = {
                "frontend": erle_metrics(mic, full.out, onset),
                "linear_aec": erle_metrics(mic, lin.out, onset),
                "estimated_delay_ms": None if full.delay is None else full.delay / 16,
                "realignments": full.realignments,
                "speech_started": starts,
            }
        if baselines:
            row["speex_unaligned"] = erle_metrics(mic, speex_plain(mic, far16, 3200), onset)
            if d in nlms_delays:
                lead = AlignmentPolicy().lead_ms * 16
                shift = max(0, d * 16 - lead)
                ref = np.concatenate([np.zeros(shift), far16.astype(np.float64)])[: len(mic)]
                err = nlms(mic.astype(np.float64) / 32768, ref / 32768, 3200, mu=0.5)
                row["nlms_aligned"] = erle_metrics(mic, sig.to_int16(err), onset)
        rows.append(row)
        print(f"  erle delay {d} ms: {json.dumps(row)}", flush=True)
    return {"rows": rows, "speech_started_total": false_starts}


def evaluate_drift(far: Float, skews: Sequence[float], seconds: float) -> list[dict[str, Any]]:
    """Clock skew between loudspeaker and microphone (different devices): the echo is the
    far end resampled by ``1 + ppm``, so its delay grows continuously."""
    rows = []
    for ppm in skews:
        mic, far16, _e, onset = make_echo_clip(far, 400, 60, seconds, drift=ppm)
        row: dict[str, Any] = {"skew_ppm": ppm}
        for with_reports in (False, True):
            rep = Reports(delay=400 * 16, drift_ppm=ppm) if with_reports else None
            full = run_frontend(mic, far16, settings_full(), reports=rep)
            lin = run_frontend(mic, far16, settings_linear(), reports=rep)
            row["reports" if with_reports else "no_reports"] = {
                "frontend": erle_metrics(mic, full.out, onset),
                "linear_aec": erle_metrics(mic, lin.out, onset),
            }
        rows.append(row)
        print(f"  drift {ppm} ppm: {row}", flush=True)
    return rows


def evaluate_jump(
    far: Float, seconds: float, before_ms: int, after_ms: int, at_s: float
) -> dict[str, Any]:
    """The client's buffer grows mid-stream: the bulk delay jumps from before to after."""
    n = int(seconds * FS)
    x = far[:n]
    rir = sig.room_ir(70)
    at = int(at_s * FS)
    e1 = sig.echo_path(x, rir, delay=before_ms * 16, level_dbfs=ECHO_DBFS, length=n)
    e2 = sig.echo_path(x, rir, delay=after_ms * 16, level_dbfs=ECHO_DBFS, length=n)
    gap = (after_ms - before_ms) * 16
    # playback pauses for the gap (underrun), then continues from where it was
    echo = np.concatenate([e1[:at], np.zeros(gap), e2[at + gap :]])[:n]
    noise = sig.noise(n, 70, "pink") * 10 ** (NOISE_DBFS / 20)
    mic = sig.to_int16(echo + noise)
    far16 = sig.to_int16(x)
    result: dict[str, Any] = {"before_ms": before_ms, "after_ms": after_ms, "at_s": at_s}
    for with_reports in (False, True):
        rep = (
            Reports(delay=before_ms * 16, jump=(at + gap, after_ms * 16)) if with_reports else None
        )
        r = run_frontend(mic, far16, settings_full(), reports=rep)
        lin = run_frontend(mic, far16, settings_linear(), reports=rep)
        key = "reports" if with_reports else "no_reports"
        result[key] = {
            "frontend_after": erle_metrics(mic[at:], r.out[at:], 0, from_s=2.0),
            "linear_after": erle_metrics(mic[at:], lin.out[at:], 0, from_s=2.0),
            "speech_started": sum(1 for ev in r.events if ev[2] == "start"),
            "final_delay_ms": None if r.delay is None else r.delay / 16,
        }
    print(f"  jump: {result}", flush=True)
    return result


def evaluate_hard_echo(far: Float, seconds: float, delays: Sequence[int]) -> dict[str, Any]:
    """Echo-only playback in harder conditions: loud echo, longer reverberation, both engines."""
    cases = []
    total = 0
    for d in delays:
        for echo_dbfs, rt60 in ((-12.0, 0.3), (-22.0, 0.6)):
            mic, far16, _e, onset = make_echo_clip(
                far, d, 40 + d // 100, seconds, rt60=rt60, echo_dbfs=echo_dbfs
            )
            for engine in ("webrtc", "silero"):
                for with_reports in (False, True):
                    st = FrontEndSettings(vad=VadSettings(engine=engine))
                    rep = Reports(delay=d * 16, drift_ppm=DRIFT_PPM) if with_reports else None
                    r = run_frontend(mic, far16, st, reports=rep)
                    starts = sum(1 for e in r.events if e[2] == "start")
                    total += starts
                    cases.append(
                        {
                            "delay_ms": d,
                            "echo_dbfs": echo_dbfs,
                            "rt60": rt60,
                            "engine": engine,
                            "reports": with_reports,
                            "speech_started": starts,
                            "erle": erle_metrics(mic, r.out, onset)["mean_db"],
                        }
                    )
    return {"cases": cases, "speech_started_total": total}


def evaluate_double_talk(
    far: Float, near: Float, delays: Sequence[int], seconds: float
) -> list[dict[str, Any]]:
    rows = []
    n = int(seconds * FS)
    near_start = 4 * FS
    for d in delays:
        seed = 20 + d // 100
        _mic, far16, echo, _onset = make_echo_clip(far, d, seed, seconds)
        talk = sig.set_level(near[: n - near_start - FS], NEAR_DBFS)
        user_rir = sig.room_ir(seed + 1000)
        talk = np.convolve(talk, user_rir)[: len(talk)]
        talk = sig.set_level(talk, NEAR_DBFS)
        near_mic = np.zeros(n)
        near_mic[near_start : near_start + len(talk)] = talk
        noise = sig.noise(n, seed, "pink") * 10 ** (NOISE_DBFS / 20)
        mic = sig.to_int16(echo + noise + near_mic)
        a, b = near_start, near_start + len(talk)
        row: dict[str, Any] = {"delay_ms": d}
        row["mix_corr"] = round(float(np.corrcoef(mic[a:b], near_mic[a:b])[0, 1]), 3)
        for with_reports in (False, True):
            rep = Reports(delay=d * 16, drift_ppm=DRIFT_PPM) if with_reports else None
            r = run_frontend(mic, far16, settings_full(), reports=rep)
            lin = run_frontend(mic, far16, settings_linear(), reports=rep)
            key = "reports" if with_reports else "no_reports"
            row[key] = {
                "corr": round(float(np.corrcoef(r.out[a:b], near_mic[a:b])[0, 1]), 3),
                "corr_linear_aec": round(float(np.corrcoef(lin.out[a:b], near_mic[a:b])[0, 1]), 3),
                "near_level_change_db": round(
                    sig.dbfs(r.out[a:b].astype(np.float64) / 32768) - sig.dbfs(mic[a:b] / 32768), 1
                ),
            }
        rows.append(row)
        print(f"  double-talk {d} ms: {row}", flush=True)
    return rows


def evaluate_vad_latency(
    far: Float, clips: list[Float], delays: Sequence[int], near_dbfs: float = NEAR_DBFS
) -> dict[str, Any]:
    """Speech onset -> SpeechStarted alone (front end); as a barge-in over assistant playback,
    onset -> SpeechActivity and -> Interruption out of the real session core."""
    result: dict[str, Any] = {}
    for engine in ("webrtc", "silero"):
        st = FrontEndSettings(vad=VadSettings(engine=engine))
        quiet: list[float] = []
        missed_quiet = 0
        for i, clip in enumerate(clips):
            talk = sig.set_level(clip, NEAR_DBFS)
            n = FS + len(talk) + FS
            near_mic = np.zeros(n)
            near_mic[FS : FS + len(talk)] = talk
            noise = sig.noise(n, 100 + i, "pink") * 10 ** (NOISE_DBFS / 20)
            mic = sig.to_int16(near_mic + noise)
            on = sig.onset(near_mic)
            r = run_frontend(mic, None, st)
            starts = [e for e in r.events if e[2] == "start"]
            if starts:
                quiet.append((starts[0][0] - on) / 16)
            else:
                missed_quiet += 1
        barge: list[float] = []
        interrupted: list[float] = []
        false_before = 0
        false_interruptions = 0
        missed = 0
        for d in delays:
            for i, clip in enumerate(clips):
                c = barge_in_clip(far, clip, d, i, near_dbfs)
                mic, far16, on = c.mic, c.far16, c.onset
                # through the real session core: the latency is to the Interruption it emits
                sr = run_session(mic, far16, st, reports=Reports(delay=d * 16, drift_ppm=DRIFT_PPM))
                false_before += sum(1 for e in sr.speech_started if e[0] <= on)
                false_interruptions += sum(1 for e in sr.interruptions if e <= on)
                after = [e for e in sr.speech_started if e[0] > on]
                cut = [e for e in sr.interruptions if e > on]
                if after:
                    barge.append((after[0][0] - on) / 16)
                if cut:
                    interrupted.append((cut[0] - on) / 16)
                else:
                    missed += 1
        result[engine] = {
            "quiet_ms": _stats(quiet),
            "quiet_missed": missed_quiet,
            "barge_in_ms": _stats(barge),
            "barge_in_interruption_ms": _stats(interrupted),
            "barge_in_missed": missed,
            "barge_in_false_before_onset": false_before,
            "barge_in_false_interruptions": false_interruptions,
            "clips": len(clips),
        }
        print(f"  vad latency {engine}: {result[engine]}", flush=True)
    return result


def _stats(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "mean": None, "median": None, "p90": None, "max": None}
    a = np.array(values)
    return {
        "n": len(values),
        "mean": round(float(a.mean()), 1),
        "median": round(float(np.median(a)), 1),
        "p90": round(float(np.percentile(a, 90)), 1),
        "max": round(float(a.max()), 1),
    }


def evaluate_vad_accuracy(clips: list[Float], far: Float, quick: bool) -> dict[str, Any]:
    """Frame accuracy against energy labels of the clean speech, after the front end's NS."""
    sets = {"alsa_recorded": clips}
    if not quick:
        pieces = [far[i : i + 3 * FS] for i in range(0, min(len(far), 24 * FS), 3 * FS)]
        sets["piper_tts"] = pieces
    conditions = [
        ("quiet", "pink", None),
        ("pink_20dB", "pink", 20.0),
        ("pink_10dB", "pink", 10.0),
        ("pink_5dB", "pink", 5.0),
        ("alsa_noise_10dB", "alsa", 10.0),
    ]
    result: dict[str, Any] = {}
    for set_name, items in sets.items():
        parts: list[Float] = []
        for clip in items:
            parts += [np.zeros(int(0.8 * FS)), sig.set_level(clip, NEAR_DBFS)]
        parts.append(np.zeros(int(0.8 * FS)))
        clean = np.concatenate(parts)
        labels = sig.speech_labels(clean)
        for cond, kind, snr in conditions:
            level = NOISE_DBFS if snr is None else NEAR_DBFS - snr
            noise = sig.noise(len(clean), 7, kind) * 10 ** (level / 20)
            mic = sig.to_int16(clean + noise)
            cleaned = run_frontend(mic, None, FrontEndSettings()).out
            frames = len(mic) // N
            raw = webrtcvad.Vad(3)
            raw_dec = np.array(
                [raw.is_speech(cleaned[i * N : (i + 1) * N].tobytes(), FS) for i in range(frames)]
            )
            row: dict[str, Any] = {"frames": frames, "speech_frames": int(labels[:frames].sum())}
            row["webrtcvad_raw_mode3"] = _acc(raw_dec, labels[:frames])
            for engine in ("webrtc", "silero"):
                vad = Vad(VadSettings(engine=engine))
                dec = np.zeros(frames, dtype=bool)
                state = np.zeros(frames, dtype=bool)
                for i in range(frames):
                    vad.process(cleaned[i * N : (i + 1) * N].tobytes())
                    dec[i] = vad.last_speech
                    state[i] = vad.in_speech
                row[engine] = _acc(dec, labels[:frames])
                row[engine + "_state"] = _acc(state, labels[:frames])
            result.setdefault(set_name, {})[cond] = row
            print(f"  vad accuracy {set_name}/{cond}: {row}", flush=True)
    return result


def _acc(dec: npt.NDArray[np.bool_], lab: npt.NDArray[np.bool_]) -> dict[str, float]:
    return {
        "accuracy": round(float(np.mean(dec == lab)), 3),
        "speech_recall": round(float(np.mean(dec[lab])), 3) if lab.any() else float("nan"),
        "noise_rejection": round(float(np.mean(~dec[~lab])), 3) if (~lab).any() else float("nan"),
    }


def evaluate_cpu(far: Float, near: Float, seconds: float, repeats: int) -> dict[str, Any]:
    """Whole front end per 20 ms frame vs its C kernels (speex AEC, preprocess, webrtcvad)."""
    stream = cpu_stream(far, near, seconds)
    mic, far16, frames, d = stream.mic, stream.far16, stream.frames, CPU_DELAY_MS
    result: dict[str, Any] = {"seconds": seconds, "frames": len(frames)}

    # kernels alone, on the same frames with the reference aligned as the front end aligns it
    speex = SpeexKernels(stream)
    v = webrtcvad.Vad(3)
    aec, pp = speex.cancel_echo, speex.preprocess

    def vad() -> None:
        for c in speex.cleaned:
            v.is_speech(c, FS)

    def timed(fn: Any) -> float:
        t0 = time.process_time()
        fn()
        return (time.process_time() - t0) / len(frames) * 1e6

    # interleave the runs so that load from other processes hits both sides alike
    best: dict[str, float] = {}
    fe_run: Run | None = None
    for _ in range(repeats):
        r = run_frontend(mic, far16, FrontEndSettings(), reports=Reports(delay=d * 16))
        us = r.cpu_s / r.frames * 1e6
        if us < best.get("fe", float("inf")):
            best["fe"], fe_run = us, r
        for name, fn in (("aec", aec), ("pp", pp), ("vad", vad)):
            best[name] = min(best.get(name, float("inf")), timed(fn))
        r = run_frontend(
            mic,
            far16,
            FrontEndSettings(vad=VadSettings(engine="silero")),
            reports=Reports(delay=d * 16),
        )
        best["silero"] = min(best.get("silero", float("inf")), r.cpu_s / r.frames * 1e6)
    assert fe_run is not None
    speex.close()
    fe_us, aec_us, pp_us, vad_us = best["fe"], best["aec"], best["pp"], best["vad"]
    result["frontend_us"] = round(fe_us, 1)
    result["frontend_realignments"] = fe_run.realignments
    result["frontend_replayed_frames"] = fe_run.replayed_frames
    result["frontend_silero_us"] = round(best["silero"], 1)
    kernels = aec_us + pp_us + vad_us
    result["kernels_us"] = {
        "speex_echo_cancellation_200ms": round(aec_us, 1),
        "speex_preprocess_run_with_res": round(pp_us, 1),
        "webrtcvad_is_speech": round(vad_us, 1),
        "sum": round(kernels, 1),
    }
    result["ratio"] = round(fe_us / kernels, 2)
    # the same without the replay bursts of realignments (each replayed frame is one AEC call)
    steady = fe_us - fe_run.replayed_frames * aec_us / len(frames)
    result["frontend_steady_us"] = round(steady, 1)
    result["steady_ratio"] = round(steady / kernels, 2)
    print(f"  cpu: {result}", flush=True)
    return result
