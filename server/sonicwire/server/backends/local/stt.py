"""Offline speech recognition with pocketsphinx.

`SpeechRecognizer` turns one utterance (16-bit mono PCM) into text. It is built once per
process; `recognize` blocks for tens to hundreds of milliseconds, so callers run it in an
executor, never on the event loop. It is thread-safe: pocketsphinx decoders are not, so each
call borrows a decoder from a small pool (one per concurrently recognising thread); every
decoder in the pool shares the same model files.

Two language models:
- ``"domain"`` (default): a trigram model trained at load time on the assistant's own command
  phrasings (`phrases.training_sentences`) with a dictionary cut down to their words. It
  expects commands, so it hears them far better than a general model in unfamiliar voices,
  and it loads in tens of milliseconds instead of seconds.
- ``"general"``: pocketsphinx's bundled en-US model (large vocabulary). The tests and the
  benchmark use it to transcribe the assistant's replies without biasing it towards them.

Raises `RecognizerUnavailable` when pocketsphinx or its model cannot be loaded.
"""

from __future__ import annotations

import importlib
import io
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

__all__ = [
    "LanguageModel",
    "RecognizerUnavailable",
    "SpeechRecognizer",
    "Transcript",
]

log = logging.getLogger(__name__)

LanguageModel = Literal["domain", "general"]
_SAMPLE_RATE = 16_000
# Dither added to every utterance, in 16-bit sample units (about -55 dBFS). pocketsphinx's
# feature normalisation breaks down on digital silence, which noise suppression and
# synthesised test speech both produce: on the espeak command set, word error rate fell from
# 0.30 to 0.09 with it, and clean (flite) speech improved too. Seeded: results are repeatable.
_DITHER = 60.0
# Fillers pocketsphinx puts in its hypotheses for breath, noise and silence.
_FILLERS = frozenset({"<s>", "</s>", "<sil>", "[noise]", "++noise++", "[breath]"})


class RecognizerUnavailable(RuntimeError):
    """pocketsphinx, its acoustic model or the language model could not be loaded."""


@dataclass(frozen=True, slots=True)
class Transcript:
    """What was recognised: ``text`` is "" when nothing was; ``confidence`` is the
    hypothesis' posterior probability (0..1, low for out-of-vocabulary speech)."""

    text: str
    confidence: float


class SpeechRecognizer:
    """Recognises utterances; see the module docstring. Build with `load`."""

    def __init__(
        self, make_decoder: Callable[[], Any], *, workdir: tempfile.TemporaryDirectory[str] | None
    ) -> None:
        self._make_decoder = make_decoder
        self._workdir = workdir
        self._idle: list[Any] = []
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def load(
        cls,
        language_model: LanguageModel = "domain",
        *,
        sentences: Sequence[str] | None = None,
    ) -> SpeechRecognizer:
        """Load the acoustic model and build the language model; one decoder is made now.

        Args:
            language_model: ``"domain"`` or ``"general"`` (see the module docstring).
            sentences: the domain model's training text; default `phrases.training_sentences`.

        Raises:
            RecognizerUnavailable: the model could not be loaded.
        """
        try:
            import pocketsphinx
        except ImportError as exc:  # the [local] extra is not installed
            raise RecognizerUnavailable(f"pocketsphinx is not installed: {exc}") from exc
        model_dir = Path(pocketsphinx.get_model_path())
        config: dict[str, Any] = {"hmm": str(model_dir / "en-us" / "en-us"), "loglevel": "FATAL"}
        workdir: tempfile.TemporaryDirectory[str] | None = None
        if language_model == "domain":
            if sentences is None:
                from .phrases import training_sentences

                sentences = training_sentences()
            workdir = tempfile.TemporaryDirectory(prefix="sonicwire-stt-")
            lm_path, dict_path = _build_domain_model(
                sentences, model_dir / "en-us" / "cmudict-en-us.dict", Path(workdir.name)
            )
            config |= {"lm": str(lm_path), "dict": str(dict_path)}
        elif language_model != "general":
            raise ValueError(f"unknown language model {language_model!r}")

        def make_decoder() -> Any:
            return pocketsphinx.Decoder(**config)

        recognizer = cls(make_decoder, workdir=workdir)
        try:
            recognizer._idle.append(make_decoder())  # fail now, not on the first utterance
        except Exception as exc:
            recognizer.close()
            raise RecognizerUnavailable(f"pocketsphinx could not load its model: {exc}") from exc
        return recognizer

    def recognize(self, pcm: bytes, sample_rate: int = _SAMPLE_RATE) -> Transcript:
        """Recognise one utterance of mono s16le ``pcm``. Blocking; thread-safe."""
        audio = _to_16k(pcm, sample_rate)
        if not audio:
            return Transcript("", 0.0)
        with self._decoder() as decoder:
            # Fresh feature state: pocketsphinx adapts its cepstral mean across utterances, which
            # made one decoder's results depend on what it heard before (and on which pooled
            # decoder a call got). Costs ~0.1 ms.
            decoder.reinit_feat()
            decoder.start_utt()
            decoder.process_raw(audio, full_utt=True)
            decoder.end_utt()
            hyp = decoder.hyp()
            if hyp is None:
                return Transcript("", 0.0)
            words = [w for w in hyp.hypstr.split() if w.lower() not in _FILLERS]
            return Transcript(" ".join(words), float(hyp.prob))

    def close(self) -> None:
        """Drop the decoders and the model files. Safe to call twice."""
        with self._lock:
            self._closed = True
            self._idle.clear()
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None

    @contextmanager
    def _decoder(self) -> Iterator[Any]:
        with self._lock:
            if self._closed:
                raise RecognizerUnavailable("the recogniser is closed")
            decoder = self._idle.pop() if self._idle else None
        if decoder is None:
            decoder = self._make_decoder()
        try:
            yield decoder
        finally:
            with self._lock:
                if not self._closed:
                    self._idle.append(decoder)


def _to_16k(pcm: bytes, sample_rate: int) -> bytes:
    """16 kHz s16le with the dither added."""
    samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype=np.int16).astype(np.float32)
    if not samples.size:
        return b""
    if sample_rate != _SAMPLE_RATE:
        import soxr

        samples = np.asarray(soxr.resample(samples, sample_rate, _SAMPLE_RATE), np.float32)
    samples += np.random.default_rng(0).normal(0.0, _DITHER, samples.size).astype(np.float32)
    return np.clip(np.rint(samples), -32768, 32767).astype(np.int16).tobytes()


def _build_domain_model(
    sentences: Sequence[str], dictionary: Path, workdir: Path
) -> tuple[Path, Path]:
    """Write ``domain.lm`` (ARPA trigrams) and ``domain.dict`` (their words) to ``workdir``.

    Sentences with a word the pronunciation dictionary lacks are left out (and logged): the
    decoder cannot say a word it cannot pronounce.
    """
    # Imported by name: the mypy configuration types "pocketsphinx" but not its submodules.
    arpa_builder: Any = importlib.import_module("pocketsphinx.lm").ArpaBoLM

    wanted = {word for sentence in sentences for word in sentence.split()}
    entries: list[str] = []
    known: set[str] = set()
    with dictionary.open(encoding="utf-8") as source:
        for line in source:
            word = line.split(" ", 1)[0]
            base = word.split("(", 1)[0]  # "read(2)" is the second pronunciation of "read"
            if base in wanted:
                entries.append(line if line.endswith("\n") else line + "\n")
                known.add(base)
    missing = wanted - known
    if missing:
        log.warning("left out sentences with words not in the dictionary: %s", sorted(missing))
    usable = [s for s in sentences if not missing.intersection(s.split())]
    if not usable:
        raise RecognizerUnavailable("no training sentence can be pronounced")

    model = arpa_builder(text="\n".join(usable) + "\n", add_start=True)
    model.compute()
    arpa = io.StringIO()
    model.write(arpa)
    lm_path, dict_path = workdir / "domain.lm", workdir / "domain.dict"
    lm_path.write_text(arpa.getvalue(), encoding="utf-8")
    dict_path.write_text("".join(entries), encoding="utf-8")
    os.chmod(workdir, 0o700)
    return lm_path, dict_path
