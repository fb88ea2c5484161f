"""The load generator's microphone: real recorded speech, paced in 20 ms frames.

The speech is the voice samples Debian's ``alsa-utils`` ships in /usr/share/sounds/alsa (one
real speaker saying "front left", "rear centre", ...; ``Noise.wav`` is left out), resampled to
16 kHz mono s16le with soxr. Each stream plays a seeded shuffle of the clips, each followed by
a pause long enough for the VAD to end the utterance and for the echo reply to be played in
full before the next clip starts (so a reply is never cut by barge-in). Pauses carry a faint
seeded noise floor (about -60 dBFS), as a real microphone does.

All frames are prepared once and shared: a stream is a sequence of indices into
:attr:`SpeechCorpus.frames`.
"""

from __future__ import annotations

import glob
import os
import random
import wave
from dataclasses import dataclass

import numpy as np
import soxr

__all__ = [
    "FRAME_BYTES",
    "FRAME_S",
    "SAMPLE_RATE",
    "SpeechCorpus",
    "StreamProgram",
    "load_corpus",
]

SAMPLE_RATE = 16_000
FRAME_SAMPLES = 320
FRAME_BYTES = FRAME_SAMPLES * 2
FRAME_S = FRAME_SAMPLES / SAMPLE_RATE
ALSA_DIR = "/usr/share/sounds/alsa"
# Pause after a clip: the VAD's stop window (0.5 s), the echo reply (clip + 2 x 300 ms pads),
# the 120 ms pacing lead, and a margin.
PAUSE_AFTER_CLIP_S = 1.6
NOISE_FLOOR_RMS = 30.0  # about -60 dBFS
_NOISE_FRAMES = 50


@dataclass(frozen=True)
class SpeechCorpus:
    """Speech clips and noise-floor frames, each a list of indices into ``frames``."""

    frames: list[bytes]
    """Every distinct 640-byte frame."""
    clips: list[list[int]]
    """Each clip as frame indices (the last frame zero-padded)."""
    silence: list[int]
    """Noise-floor frames, cycled during pauses."""
    clip_names: list[str]

    @property
    def mean_clip_s(self) -> float:
        return float(np.mean([len(c) for c in self.clips])) * FRAME_S


def _read_wav(path: str) -> tuple[np.ndarray, int]:
    with wave.open(path, "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: only 16-bit PCM is supported")
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        channels = w.getnchannels()
        rate = w.getframerate()
    if channels > 1:
        data = data.reshape(-1, channels).mean(axis=1).astype(np.int16)
    return data, rate


def load_corpus(directory: str = ALSA_DIR, seed: int = 1) -> SpeechCorpus:
    """Load and resample the alsa voice samples. Raises `FileNotFoundError` if there are none."""
    paths = sorted(
        p for p in glob.glob(os.path.join(directory, "*.wav")) if "noise" not in p.lower()
    )
    if not paths:
        raise FileNotFoundError(
            f"no speech samples in {directory}: install Debian's alsa-utils (make setup does)"
        )
    frames: list[bytes] = []
    clips: list[list[int]] = []
    for path in paths:
        data, rate = _read_wav(path)
        pcm = soxr.resample(data.astype(np.float32), rate, SAMPLE_RATE)
        pcm16 = np.clip(np.round(pcm), -32768, 32767).astype(np.int16)
        pad = (-len(pcm16)) % FRAME_SAMPLES
        pcm16 = np.concatenate([pcm16, np.zeros(pad, dtype=np.int16)])
        indices = []
        for start in range(0, len(pcm16), FRAME_SAMPLES):
            indices.append(len(frames))
            frames.append(pcm16[start : start + FRAME_SAMPLES].tobytes())
        clips.append(indices)
    rng = np.random.default_rng(seed)
    silence = []
    for _ in range(_NOISE_FRAMES):
        noise = rng.normal(0.0, NOISE_FLOOR_RMS, FRAME_SAMPLES)
        silence.append(len(frames))
        frames.append(np.clip(np.round(noise), -32768, 32767).astype(np.int16).tobytes())
    names = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    return SpeechCorpus(frames, clips, silence, names)


class StreamProgram:
    """One stream's endless microphone: shuffled clips, each followed by a pause.

    ``next_index()`` returns the index of the next 20 ms frame; ``clips_started`` counts the
    utterances begun so far. The first clip starts after a seeded random delay of up to one
    cycle so that streams do not speak in lockstep.
    """

    def __init__(self, corpus: SpeechCorpus, seed: int) -> None:
        self._corpus = corpus
        self._rng = random.Random(seed)
        self._queue: list[int] = []
        self._silence_i = self._rng.randrange(len(corpus.silence))
        self.clips_started = 0
        lead = self._rng.uniform(0.0, corpus.mean_clip_s * 2 + PAUSE_AFTER_CLIP_S)
        self._pause(lead)

    @property
    def corpus(self) -> SpeechCorpus:
        """The shared frames this program indexes into."""
        return self._corpus

    def _pause(self, seconds: float) -> None:
        silence = self._corpus.silence
        for _ in range(max(1, round(seconds / FRAME_S))):
            self._queue.append(silence[self._silence_i])
            self._silence_i = (self._silence_i + 1) % len(silence)

    def _refill(self) -> None:
        clip = self._rng.choice(self._corpus.clips)
        self.clips_started += 1
        self._queue.extend(clip)
        # The reply is as long as the clip plus padding: wait for it before speaking again.
        self._pause(len(clip) * FRAME_S + PAUSE_AFTER_CLIP_S + self._rng.uniform(0.0, 0.4))
        self._queue.reverse()

    def next_index(self) -> int:
        if not self._queue:
            self._refill()
        return self._queue.pop()
