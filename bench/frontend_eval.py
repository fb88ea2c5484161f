"""Evaluate the audio front end (echo cancellation, alignment, VAD, CPU) and write the report.

Run from the repository root::

    .venv/bin/python -m bench.frontend_eval            # full run (a few minutes)
    .venv/bin/python -m bench.frontend_eval --quick    # CI-sized subset

Writes ``bench/results/frontend.json`` and ``docs/FRONTEND.md`` (``--no-write`` to skip).
Signals and metric definitions are in bench/frontend_signals.py and in the report itself.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "server") not in sys.path:
    sys.path.insert(0, str(ROOT / "server"))
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import webrtcvad  # noqa: E402

from bench import frontend_signals as sig  # noqa: E402
from bench.frontend_baselines import nlms, speex_plain  # noqa: E402
from bench.frontend_report import render  # noqa: E402
from sonicwire.server.dsp.aec import AlignmentPolicy  # noqa: E402
from sonicwire.server.dsp.frames import FRAME_BYTES, FRAME_SAMPLES  # noqa: E402
from sonicwire.server.dsp.pipeline import FrontEnd, FrontEndSettings  # noqa: E402
from sonicwire.server.dsp.speex import EchoCanceller, Preprocessor  # noqa: E402
from sonicwire.server.dsp.vad import SpeechStarted, Vad, VadSettings  # noqa: E402

FS = sig.FS
N = FRAME_SAMPLES
Float = npt.NDArray[np.float64]
Int16 = npt.NDArray[np.int16]

ECHO_DBFS = -22.0
NOISE_DBFS = -60.0
NEAR_DBFS = -26.0
RELEASE_LEAD = 80 * 16  # the server releases audio 80 ms ahead of real time
DEVICE_LATENCY = 40 * 16  # playback latency the client's PlaybackUpdate cannot see
REPORT_EVERY = 250 * 16
REPORT_QUANTUM = 10 * 16
DRIFT_PPM = 0.0  # main sweep: speaker and mic share a clock (see evaluate_drift)
ACTIVE_DBFS = -40.0


@dataclass(frozen=True)
class Reports:
    """How the simulated client reports playback (its counter misses the device latency)."""

    delay: int
    drift_ppm: float = 0.0
    device_latency: int = DEVICE_LATENCY
    every: int = REPORT_EVERY
    quantum: int = REPORT_QUANTUM
    jump: tuple[int, int] | None = None  # (mic position, new delay)

    def played(self, t: int, far_start: int) -> int:
        delay = self.delay
        if self.jump is not None and t >= self.jump[0]:
            delay = self.jump[1]
        k = (t + self.device_latency - far_start - delay) / (1 + self.drift_ppm * 1e-6)
        return int(k // self.quantum * self.quantum)


@dataclass
class Run:
    out: Int16
    events: list[tuple[int, int, str]] = field(default_factory=list)  # (emitted, offset, kind)
    speech_frames: list[tuple[int, bool]] = field(default_factory=list)  # (offset, in_speech)
    cpu_s: float = 0.0
    frames: int = 0
    delay: int | None = None
    realignments: int = 0
    replayed_frames: int = 0


def run_frontend(
    mic: Int16,
    far: Int16 | None,
    settings: FrontEndSettings,
    *,
    far_start: int = 0,
    reports: Reports | None = None,
    chunk: int = N,
) -> Run:
    """Feed ``mic`` in ``chunk``-sample pieces, releasing ``far`` like the server would."""
    fe = FrontEnd(settings)
    out = np.zeros(len(mic), dtype=np.int16)
    run = Run(out)
    released = 0
    cpu = 0.0
    far_len = 0 if far is None else len(far)
    next_report = far_start + REPORT_EVERY
    for t in range(0, len(mic) - chunk + 1, chunk):
        t0 = time.process_time()
        if far is not None and t >= far_start:
            while released < far_len and far_start + released - RELEASE_LEAD <= t:
                fe.push_far_end(far[released : released + N].tobytes())
                released += N
        if reports is not None and t >= next_report:
            next_report += reports.every
            played = reports.played(t, far_start)
            if 0 <= played < released:
                fe.report_playback(played)
        frames = fe.process(mic[t : t + chunk].tobytes())
        cpu += time.process_time() - t0
        for fr in frames:
            out[fr.offset : fr.offset + N] = np.frombuffer(fr.pcm, dtype=np.int16)
            run.speech_frames.append((fr.offset, fr.in_speech))
            for ev in fr.events:
                kind = "start" if isinstance(ev, SpeechStarted) else "stop"
                run.events.append((t + chunk, ev.offset, kind))
    run.cpu_s = cpu
    run.frames = len(mic) // N
    run.delay = fe.echo_delay
    run.realignments = fe.stats.realignments
    run.replayed_frames = fe.stats.retrained_frames
    fe.close()
    return run


def erle_metrics(mic: Int16, out: Int16, onset: int, *, from_s: float = 3.0) -> dict[str, Any]:
    """ERLE over 0.5 s windows (hop 0.25 s) where the mic is above -40 dBFS, and overall.

    ``t20_s``: time from echo onset to the end of the first window at >= 20 dB;
    ``t20_settled_s``: ... of the first window after which every window stays >= 20 dB;
    ``mean_db``: 10 log10 of mic energy over output energy from ``from_s`` to the end.
    """
    m = mic.astype(np.float64)
    o = out.astype(np.float64)
    win, hop = FS // 2, FS // 4
    floor = win * (10 ** (ACTIVE_DBFS / 10)) * 32768.0**2
    curve: list[tuple[float, float]] = []
    for i in range(onset, len(m) - win + 1, hop):
        pm = float(np.sum(m[i : i + win] ** 2))
        if pm < floor:
            continue
        po = float(np.sum(o[i : i + win] ** 2)) + 1e-9
        curve.append(((i + win - onset) / FS, 10 * np.log10(pm / po)))
    t20 = next((t for t, e in curve if e >= 20), None)
    settled = None
    for j in range(len(curve)):
        if all(e >= 20 for _, e in curve[j:]):
            settled = curve[j][0]
            break
    a = int(from_s * FS)
    mean = 10 * np.log10(np.sum(m[a:] ** 2) / (np.sum(o[a:] ** 2) + 1e-9))
    return {
        "mean_db": round(float(mean), 1),
        "t20_s": None if t20 is None else round(t20, 2),
        "t20_settled_s": None if settled is None else round(settled, 2),
        "min_window_db_after_3s": round(
            min((e for t, e in curve if t + onset / FS >= from_s), default=float("nan")), 1
        ),
    }


def make_echo_clip(
    far: Float,
    delay_ms: int,
    seed: int,
    seconds: float,
    *,
    drift: float = DRIFT_PPM,
    rt60: float = 0.3,
    echo_dbfs: float = ECHO_DBFS,
) -> tuple[Int16, Int16, Float, int]:
    """Echo-only mic clip: returns (mic, far int16, echo float, echo onset sample)."""
    n = int(seconds * FS)
    x = far[:n]
    rir = sig.room_ir(seed, rt60)
    delay = delay_ms * 16
    echo = sig.echo_path(x, rir, delay=delay, drift_ppm=drift, level_dbfs=echo_dbfs, length=n)
    noise = sig.noise(n, seed, "pink") * 10 ** (NOISE_DBFS / 20)
    mic = sig.to_int16(echo + noise)
    return mic, sig.to_int16(x), echo, delay + int(np.argmax(np.abs(rir)))


def settings_full() -> FrontEndSettings:
    return FrontEndSettings()


def settings_linear() -> FrontEndSettings:
    return FrontEndSettings(noise_suppression=False, residual_echo_suppression=False)


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
    """Speech onset -> SpeechStarted, alone and as a barge-in over assistant playback."""
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
        false_before = 0
        missed = 0
        for d in delays:
            for i, clip in enumerate(clips):
                seconds = 7.0
                n = int(seconds * FS)
                seed = 200 + i + d
                _mic, far16, echo, _o = make_echo_clip(far, d, seed, seconds)
                talk = sig.set_level(clip, near_dbfs)
                start = int((3.5 + 0.25 * (i % 4)) * FS)
                near_mic = np.zeros(n)
                near_mic[start : start + len(talk)] = talk[: n - start]
                noise = sig.noise(n, seed, "pink") * 10 ** (NOISE_DBFS / 20)
                mic = sig.to_int16(echo + noise + near_mic)
                on = sig.onset(near_mic)
                r = run_frontend(mic, far16, st, reports=Reports(delay=d * 16, drift_ppm=DRIFT_PPM))
                starts = [e for e in r.events if e[2] == "start"]
                false_before += sum(1 for e in starts if e[0] <= on)
                after = [e for e in starts if e[0] > on]
                if after:
                    barge.append((after[0][0] - on) / 16)
                else:
                    missed += 1
        result[engine] = {
            "quiet_ms": _stats(quiet),
            "quiet_missed": missed_quiet,
            "barge_in_ms": _stats(barge),
            "barge_in_missed": missed,
            "barge_in_false_before_onset": false_before,
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
    n = int(seconds * FS)
    d = 300
    _mic, far16, echo, _o = make_echo_clip(far, d, 77, seconds)
    talk = np.zeros(n)
    for k, start in enumerate(range(5 * FS, n - 3 * FS, 8 * FS)):
        piece = sig.set_level(near[k * 2 * FS : k * 2 * FS + 2 * FS], NEAR_DBFS)
        talk[start : start + len(piece)] = piece
    noise = sig.noise(n, 77, "pink") * 10 ** (NOISE_DBFS / 20)
    mic = sig.to_int16(echo + noise + talk)
    frames = [mic[i : i + N].tobytes() for i in range(0, n - N + 1, N)]
    result: dict[str, Any] = {"seconds": seconds, "frames": len(frames)}

    def whole(settings: FrontEndSettings) -> tuple[float, Run]:
        best = float("inf")
        run = None
        for _ in range(repeats):
            r = run_frontend(mic, far16, settings, reports=Reports(delay=d * 16))
            if r.cpu_s / r.frames < best:
                best, run = r.cpu_s / r.frames, r
        assert run is not None
        return best * 1e6, run

    fe_us, fe_run = whole(FrontEndSettings())
    result["frontend_us"] = round(fe_us, 1)
    result["frontend_realignments"] = fe_run.realignments
    result["frontend_replayed_frames"] = fe_run.replayed_frames
    sil_us, _ = whole(FrontEndSettings(vad=VadSettings(engine="silero")))
    result["frontend_silero_us"] = round(sil_us, 1)

    # kernels alone, on the same frames with the reference aligned as the front end aligns it
    offset = d * 16 - AlignmentPolicy().lead_ms * 16
    ref = np.concatenate([np.zeros(offset, dtype=np.int16), far16])[:n]
    refs = [ref[i : i + N].tobytes() for i in range(0, n - N + 1, N)]
    outs = [bytearray(FRAME_BYTES) for _ in frames]

    def timed(fn: Any) -> float:
        best = float("inf")
        for _ in range(repeats):
            t0 = time.process_time()
            fn()
            best = min(best, time.process_time() - t0)
        return best / len(frames) * 1e6

    ec = EchoCanceller(N, 3200)

    def aec() -> None:
        for f, r, o in zip(frames, refs, outs, strict=True):
            ec.cancel_into(f, r, o)

    aec_us = timed(aec)
    pre = Preprocessor(N, denoise=True, noise_suppress_db=-30)
    pre.link_echo(ec)
    bufs = [bytearray(o) for o in outs]

    def pp() -> None:
        for b in bufs:
            pre.run_inplace(b)

    pp_us = timed(pp)
    v = webrtcvad.Vad(3)
    cleaned = [bytes(b) for b in bufs]

    def vad() -> None:
        for c in cleaned:
            v.is_speech(c, FS)

    vad_us = timed(vad)
    pre.close()
    ec.close()
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small CI-friendly subset")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    quick = args.quick
    started = time.time()
    far_sp = sig.far_speech()
    near_sp = sig.near_speech()
    far = far_sp.signal
    near = near_sp.signal
    clips = sig.alsa_clips() or [near[i : i + 2 * FS] for i in range(0, len(near) - 2 * FS, 2 * FS)]
    delays = [0, 400, 800] if quick else list(range(0, 801, 100))
    seconds = 8.0 if quick else 12.0
    print("ERLE sweep", flush=True)
    erle = evaluate_erle(
        far, delays, seconds, baselines=True, nlms_delays=[400] if quick else delays
    )
    print("clock skew", flush=True)
    drift = evaluate_drift(far, [20.0, 100.0] if quick else [10.0, 20.0, 50.0, 100.0], seconds)
    print("delay jump", flush=True)
    jump = evaluate_jump(far, 14.0, 200, 350, 6.0)
    print("echo-only, harder conditions", flush=True)
    hard = evaluate_hard_echo(far, seconds, [0, 800] if quick else [0, 400, 800])
    print("double talk", flush=True)
    dt = evaluate_double_talk(far[5 * FS :], near, delays, 10.0 if quick else 12.0)
    print("VAD latency", flush=True)
    lat = evaluate_vad_latency(
        far, clips[:4] if quick else clips, [400] if quick else [0, 400, 800]
    )
    lat["quiet_user"] = {"near_dbfs": -34.0}
    lat["quiet_user"].update(
        evaluate_vad_latency(far, clips[:4] if quick else clips, [400], near_dbfs=-34.0)
    )
    print("VAD accuracy", flush=True)
    acc = evaluate_vad_accuracy(clips, far, quick)
    print("CPU", flush=True)
    cpu = evaluate_cpu(far, near, 15.0 if quick else 40.0, 2 if quick else 3)
    results = {
        "meta": {
            "command": "python -m bench.frontend_eval" + (" --quick" if quick else ""),
            "quick": quick,
            "python": platform.python_version(),
            "machine": platform.machine(),
            "far_end_speech": far_sp.source,
            "near_end_speech": near_sp.source,
            "echo_dbfs": ECHO_DBFS,
            "noise_dbfs": NOISE_DBFS,
            "near_dbfs": NEAR_DBFS,
            "clip_seconds": seconds,
            "drift_ppm": DRIFT_PPM,
            "rt60_s": 0.3,
            "alignment": vars(AlignmentPolicy())
            if hasattr(AlignmentPolicy(), "__dict__")
            else {k: getattr(AlignmentPolicy(), k) for k in AlignmentPolicy.__slots__},
            "release_lead_ms": RELEASE_LEAD / 16,
            "device_latency_ms": DEVICE_LATENCY / 16,
            "report_every_ms": REPORT_EVERY / 16,
            "runtime_s": round(time.time() - started, 1),
        },
        "erle": erle,
        "clock_skew": drift,
        "delay_jump": jump,
        "echo_only_hard": hard,
        "double_talk": dt,
        "vad_latency": lat,
        "vad_accuracy": acc,
        "cpu": cpu,
    }
    if not args.no_write:
        out = ROOT / "bench" / "results" / "frontend.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=1) + "\n")
        (ROOT / "docs").mkdir(exist_ok=True)
        (ROOT / "docs" / "FRONTEND.md").write_text(render(results))
        print(f"wrote {out} and docs/FRONTEND.md", flush=True)
    print(f"done in {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
