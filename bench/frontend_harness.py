"""Harness for the front-end evaluation: drive a FrontEnd like a server would, measure ERLE.

Used by bench/frontend_cases.py; see bench/frontend_eval.py for the entry point.
"""

from __future__ import annotations

import sys
import time
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


from bench import frontend_signals as sig  # noqa: E402
from sonicwire.server.core import events as cev  # noqa: E402
from sonicwire.server.core.session import Session  # noqa: E402
from sonicwire.server.core.settings import SessionSettings  # noqa: E402
from sonicwire.server.dsp.frames import FRAME_SAMPLES  # noqa: E402
from sonicwire.server.dsp.pipeline import FrontEnd, FrontEndSettings  # noqa: E402
from sonicwire.server.dsp.vad import SpeechStarted  # noqa: E402

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


@dataclass
class SessionRun:
    """Client-visible events of a :func:`run_session` (mic sample at which each came out)."""

    speech_started: list[tuple[int, int]] = field(default_factory=list)  # (emitted, offset)
    interruptions: list[int] = field(default_factory=list)  # emitted
    released: int = 0  # far-end samples the client received


def run_session(
    mic: Int16,
    far: Int16,
    settings: FrontEndSettings,
    *,
    reports: Reports | None = None,
    chunk: int = N,
) -> SessionRun:
    """Barge-in through the real session core: ``far`` is one assistant turn from the
    backend at t = 0, paced out by the session (which feeds its own echo reference), played
    by the client back to back from t = 0; ``mic`` goes in as client audio, ``chunk`` samples
    at a time, with ``now`` the time its last sample arrived. Records when SpeechActivity
    (started) and Interruption come out."""
    session = Session("bench", SessionSettings(front_end=settings))
    run = SessionRun()
    turn_id: str | None = None
    next_report = REPORT_EVERY

    def drain(emitted: int) -> None:
        nonlocal turn_id
        for out in session.outputs_to_send():
            if isinstance(out, cev.AudioOut):
                turn_id = out.turn_id
                run.released += len(out.audio) // 2
            elif isinstance(out, cev.SpeechActivityOut) and out.started:
                run.speech_started.append((emitted, out.offset_ms * 16))
            elif isinstance(out, cev.InterruptionOut):
                run.interruptions.append(emitted)
        session.commands_to_send()

    session.receive_backend(cev.AssistantAudio(far.tobytes(), FS), now=0.0)
    drain(0)
    for t in range(0, len(mic) - chunk + 1, chunk):
        session.tick(t / FS)
        drain(t)
        if reports is not None and t >= next_report and turn_id is not None:
            next_report += reports.every
            played = reports.played(t, 0)
            if 0 <= played < run.released:
                session.receive_client(cev.PlaybackReported(turn_id, played // 16), t / FS)
        session.receive_client(cev.AudioReceived(mic[t : t + chunk].tobytes()), (t + chunk) / FS)
        drain(t + chunk)
    session.abort()
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


@dataclass(frozen=True)
class BargeInClip:
    """A user talking over the assistant's echo: ``mic`` (echo, noise and the user) and
    ``far16`` for the front end; ``near`` is the user alone as it reaches the microphone,
    ``onset`` its first sample (`frontend_signals.onset`)."""

    mic: Int16
    far16: Int16
    near: Float
    onset: int


def barge_in_clip(
    far: Float, talk: Float, delay_ms: int, index: int, near_dbfs: float
) -> BargeInClip:
    """7 s of assistant speech echoed ``delay_ms`` late; the user's ``talk`` (at
    ``near_dbfs``) starts 3.5-4.25 s in, by ``index`` (the clip's number). Seeded by the
    delay and the index, so every barge-in measurement (the main case and the engines')
    hears the same clips."""
    n = 7 * FS
    seed = 200 + index + delay_ms
    _mic, far16, echo, _o = make_echo_clip(far, delay_ms, seed, 7.0)
    levelled = sig.set_level(talk, near_dbfs)
    start = int((3.5 + 0.25 * (index % 4)) * FS)
    near = np.zeros(n)
    near[start : start + len(levelled)] = levelled[: n - start]
    noise = sig.noise(n, seed, "pink") * 10 ** (NOISE_DBFS / 20)
    mic = sig.to_int16(echo + noise + near)
    return BargeInClip(mic, far16, near, sig.onset(near))


def settings_full() -> FrontEndSettings:
    return FrontEndSettings()


def settings_linear() -> FrontEndSettings:
    return FrontEndSettings(noise_suppression=False, residual_echo_suppression=False)
