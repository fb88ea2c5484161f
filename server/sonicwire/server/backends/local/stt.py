"""Offline speech recognition with pocketsphinx.

`SpeechRecognizer` turns one utterance (16-bit mono PCM) into text. It is built once per
process; `recognize` blocks for tens to hundreds of milliseconds, so callers run it in an
executor, never on the event loop.

The decoding itself runs in worker processes, not threads: pocketsphinx holds the GIL for the
whole of a decode, so a recognition in a thread froze the event loop for as long as it took
(measured here: 0.1 s for a command, 3 s for a long utterance with the general model under
load). Feeding the decoder in small chunks bounds the freeze only partly (the final search
pass is one long call) and lost accuracy (whole-utterance feature normalisation helps). In a
worker process the loop never waits; the calling thread just waits for the answer. Each
worker loads the model once and keeps one decoder, so it recognises one utterance at a time.
What runs in the workers is `stt_worker.py`.

Two language models:
- ``"domain"`` (default): a trigram model trained on the commands of the session's tools
  (`toolmodel.ToolModel.sentences`: their examples with slot values) with a dictionary cut
  down to their words. It expects commands, so it hears them far better than a general model
  in unfamiliar voices, and it builds and loads in tens of milliseconds instead of seconds.
  `add_language_model` builds one per set of tools (cached by its text); each worker keeps a
  decoder per model it has used (a few; the acoustic model is shared by the OS page cache and
  a decoder over a small dictionary starts in ~10 ms). ``recognize(..., model=key)`` picks it.
- ``"general"``: pocketsphinx's bundled en-US model (large vocabulary). The tests and the
  benchmark use it to transcribe the assistant's replies without biasing it towards them.

An open reading (``open_reading.py``): loaded with ``open_reading=True``, each worker also
loads Whisper tiny.en once at start (~0.5 s, before the first turn: `load` starts the workers)
and `recognize_open` reads an utterance with it, for the session to fall back on when
pocketsphinx's reading means nothing to the dialogue; `submit_open` starts such a reading
without waiting, on a worker nobody else needs (the session's speculation, `reading.py`).

Raises `RecognizerUnavailable` when pocketsphinx or its model cannot be loaded (or Whisper's,
when asked for: a model whose files are not the pinned ones is refused).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import io
import logging
import multiprocessing
import os
import tempfile
import threading
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .accents import with_variants
from .stt_worker import grammar_in_worker, open_in_worker, recognize_in_worker, start_worker

__all__ = [
    "ACCENT_SLOT_KINDS",
    "ACCENT_VARIANTS",
    "DECODER_OPTIONS",
    "NBEST",
    "SESSION_DISCOUNT",
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
#: The session models' smoothing (`add_language_model`): more mass for word sequences not in
#: the training text than pocketsphinx's default 0.5, because users say the tools' words in
#: orders no example has. Chosen on the development set (bench/local_dev_eval.py), where 0.5
#: was the worst of 0.4-0.75 (held-out phrasings and voices played no part).
SESSION_DISCOUNT = 0.7
#: Next-best readings kept per utterance (`Transcript.alternatives`): chosen on the development
#: phrasings and voices (bench/local_dev_eval.py), never on the evaluation's held-out ones.
NBEST = 5
#: pocketsphinx options of every decoder beyond the model files; the rest are pocketsphinx's
#: defaults and the acoustic model's ``feat.params`` (which already normalise the cepstral
#: mean per whole utterance: ``-cmn batch``, as `recognize` decodes a whole utterance at once).
#: None are set: of the levers measured on the development set (bench/local_dev_decoder.py,
#: docs/LOCAL_ENGINE.md "The decoder's own settings") only a wider word beam won there (+5 / -1
#: of 610), and the full evaluation withdrew it: the same accuracy on every subset, but
#: out-of-domain turns' p95 latency over its target in two runs with it (743-758 ms) and
#: under it without (561 ms).
DECODER_OPTIONS: dict[str, Any] = {}
#: Whether the session dictionaries carry non-rhotic pronunciation variants (`accents.py`)
#: for every word: no, that lost out-of-domain rejections on the development set (56 of 100
#: against 65: "order" as AO D AH is reachable from anything).
ACCENT_VARIANTS = False
#: The slot classes (`slots.py`) whose values' words get them instead (the engine passes
#: `ToolModel.slot_words` of these as ``accent_words``): the spoken digits of identifiers
#: ("four" as F AO, "thirty" as TH AH DX IY). On the development set (bench/local_dev_decoder.py,
#: docs/LOCAL_ENGINE.md "The decoder's own settings") they gained 6 order numbers and lost 3
#: (+3 of 610), out-of-domain rejection unchanged (65 of 100); the choices' words too (city
#: names) lost a rejection ("the capital of france" heard with "berlin").
ACCENT_SLOT_KINDS: tuple[str, ...] = ("id",)


class RecognizerUnavailable(RuntimeError):
    """pocketsphinx, its acoustic model or the language model could not be loaded."""


@dataclass(frozen=True, slots=True)
class Transcript:
    """What was recognised: ``text`` is "" when nothing was; ``confidence`` is the
    hypothesis' posterior probability (0..1, low for out-of-vocabulary speech);
    ``alternatives`` are the next-best readings of the same audio, best first (from the
    decoder's lattice, at most `NBEST`, none equal to ``text``): the dialogue may prefer one
    that its tools explain better (`toolmodel.ToolModel.choose`)."""

    text: str
    confidence: float
    alternatives: tuple[str, ...] = ()


class SpeechRecognizer:
    """Recognises utterances; see the module docstring. Build with `load`."""

    def __init__(
        self, pool: ProcessPoolExecutor, *, workdir: tempfile.TemporaryDirectory[str] | None
    ) -> None:
        self._pool = pool
        self._workdir = workdir
        self._closed = False
        self._models: dict[str, tuple[str, str]] = {}
        # The words each model's dictionary has (None for the recogniser's own model: the
        # general model's dictionary has them all), for grammars of `recognize_grammar`.
        self._vocabularies: dict[str | None, frozenset[str]] = {}
        self._models_lock = threading.Lock()
        self._dictionary: Path | None = None
        self._general = workdir is None
        self._hmm = ""
        self._accent_variants = False
        self._open_reading = False
        # Jobs submitted to the workers and not done yet, against the workers there are: a
        # speculative decode (`submit_open`) is only started on a worker nobody waits for.
        self._processes = 1
        self._in_flight = 0
        self._in_flight_lock = threading.Lock()

    @classmethod
    def load(
        cls,
        language_model: LanguageModel = "domain",
        *,
        sentences: Sequence[str] | None = None,
        processes: int = 1,
        decoder_options: dict[str, Any] | None = None,
        accent_variants: bool | None = None,
        open_reading: bool = False,
    ) -> SpeechRecognizer:
        """Build the language model and start ``processes`` workers with the models loaded.

        Args:
            language_model: ``"domain"`` or ``"general"`` (see the module docstring).
            sentences: the domain model's training text; default: the built-in tools'
                (`toolmodel.builtin_sentences`).
            processes: utterances that can be recognised at the same time.
            decoder_options: pocketsphinx configuration for every decoder of the workers
                (e.g. ``{"lw": 8.0}``); default `DECODER_OPTIONS`. For measuring levers
                (bench/local_dev_decoder.py).
            accent_variants: whether the dictionaries carry non-rhotic variants
                (`accents.py`); default `ACCENT_VARIANTS`.
            open_reading: the workers load Whisper too, for `recognize_open`.

        Raises:
            RecognizerUnavailable: the model could not be loaded.
            ValueError: unknown ``language_model``.
        """
        if language_model not in ("domain", "general"):
            raise ValueError(f"unknown language model {language_model!r}")
        try:
            import pocketsphinx
        except ImportError as exc:  # the [local] extra is not installed
            raise RecognizerUnavailable(f"pocketsphinx is not installed: {exc}") from exc
        model_dir = Path(pocketsphinx.get_model_path())
        options = DECODER_OPTIONS if decoder_options is None else decoder_options
        config: dict[str, Any] = {
            **options,
            "hmm": str(model_dir / "en-us" / "en-us"),
            "loglevel": "FATAL",
        }
        if open_reading:
            _check_open_reading()  # here, with a clear error, not as a worker that died
        workdir: tempfile.TemporaryDirectory[str] | None = None
        variants = ACCENT_VARIANTS if accent_variants is None else accent_variants
        if language_model == "domain":
            if sentences is None:
                from .toolmodel import builtin_sentences

                sentences = builtin_sentences()
            workdir = tempfile.TemporaryDirectory(prefix="sonicwire-stt-")
            lm_path, dict_path = _build_domain_model(
                sentences,
                model_dir / "en-us" / "cmudict-en-us.dict",
                Path(workdir.name),
                accent_variants=variants,
            )
            config |= {"lm": str(lm_path), "dict": str(dict_path)}
        # "spawn": forking a process that runs gRPC threads is unsafe.
        pool = ProcessPoolExecutor(
            max_workers=max(1, processes),
            mp_context=multiprocessing.get_context("spawn"),
            initializer=start_worker,
            initargs=(config, open_reading),
        )
        recognizer = cls(pool, workdir=workdir)
        recognizer._dictionary = model_dir / "en-us" / "cmudict-en-us.dict"
        recognizer._hmm = config["hmm"]
        recognizer._accent_variants = variants
        recognizer._open_reading = open_reading
        recognizer._processes = max(1, processes)
        if "dict" in config:
            recognizer._vocabularies[None] = _vocabulary(Path(config["dict"]))
        try:
            # Start every worker now (each loads the model): fail here, not in a user's turn.
            warm = [
                pool.submit(recognize_in_worker, b"", None, NBEST) for _ in range(max(1, processes))
            ]
            wait(warm)
            for future in warm:
                future.result()
        except Exception as exc:
            recognizer.close()
            raise RecognizerUnavailable(f"pocketsphinx could not load its model: {exc}") from exc
        return recognizer

    def add_language_model(
        self,
        sentences: Sequence[str],
        background: Sequence[str] = (),
        *,
        discount_mass: float | None = None,
        accent_words: Collection[str] = (),
    ) -> str | None:
        """Build (once per text) a domain model of ``sentences``; returns its key for
        `recognize`. Blocking (tens of milliseconds for a few thousand sentences); thread-safe.
        None with the general model, which is used for everything.

        ``background`` is one-word sentences of common words mixed in (`phrases.py` says
        why); a background word that sounds like the start or the end of a command word
        ("low" in "hello") is left out, or it would steal that word.

        ``discount_mass``: the probability mass the model keeps for word sequences it was
        not trained on (pocketsphinx's ``ArpaBoLM`` smoothing); default `SESSION_DISCOUNT`.

        ``accent_words``: words of the model that get non-rhotic pronunciation variants
        (`accents.py`) when the recogniser's dictionaries do not carry them for every word
        (``accent_variants``), e.g. the tools' slot values (`ToolModel.slot_words`).

        Raises:
            RecognizerUnavailable: the recogniser is closed, or no sentence can be pronounced.
        """
        if self._closed:
            raise RecognizerUnavailable("the recogniser is closed")
        if self._general or self._dictionary is None:
            return None
        discount = SESSION_DISCOUNT if discount_mass is None else discount_mass
        accents = sorted(set(accent_words))
        marked = ["", "accents", *accents] if accents else []  # a model of its own
        text = "\n".join([f"discount {discount}", *sentences, "", *background, *marked])
        key = hashlib.sha256(text.encode()).hexdigest()[:16]
        with self._models_lock:
            if key in self._models:
                return key
            if self._workdir is None:
                raise RecognizerUnavailable("the recogniser is closed")
            folder = Path(self._workdir.name) / key
            folder.mkdir(exist_ok=True)
            kept = _without_sound_alikes(background, sentences, self._dictionary)
            lm, dictionary = _build_domain_model(
                [*sentences, *kept],
                self._dictionary,
                folder,
                discount_mass=discount,
                accent_variants=self._accent_variants or accents,
            )
            self._models[key] = (str(lm), str(dictionary))
            self._vocabularies[key] = _vocabulary(dictionary)
        return key

    def knows(self, word: str, *, model: str | None = None) -> bool:
        """Whether the language model ``model`` (a key of `add_language_model`; None: the
        recogniser's own) can say ``word``: a grammar for `recognize_grammar` may only use
        such words."""
        vocabulary = self._vocabularies.get(model)
        return True if vocabulary is None and model is None else word in (vocabulary or ())

    def recognize(
        self,
        pcm: bytes,
        sample_rate: int = _SAMPLE_RATE,
        *,
        model: str | None = None,
        nbest: int = NBEST,
        on_submitted: Callable[[], None] | None = None,
    ) -> Transcript:
        """Recognise one utterance of mono s16le ``pcm``, with the language model ``model``
        (a key from `add_language_model`; None: the one the recogniser was loaded with),
        keeping up to ``nbest`` next-best readings. Blocking; thread-safe.

        ``on_submitted`` is called once the decode is queued for a worker, before waiting for
        it: a caller may then start other work behind it (the session's speculative Whisper,
        `submit_open`, which must not take the worker this decode needs).

        Raises:
            RecognizerUnavailable: the recogniser is closed or a worker died.
            KeyError: ``model`` is not a key of this recogniser.
        """
        if self._closed:
            raise RecognizerUnavailable("the recogniser is closed")
        audio = _to_16k(pcm, sample_rate)
        if not audio:
            return Transcript("", 0.0)
        try:
            files = None if model is None else (self._hmm, *self._models[model])
            job = self._submit(recognize_in_worker, audio, files, nbest)
            if on_submitted is not None:
                on_submitted()
            text, confidence, alternatives = job.result()
        except (BrokenProcessPool, RuntimeError) as exc:  # a worker died / pool shut down
            raise RecognizerUnavailable(f"speech recognition failed: {exc}") from exc
        return Transcript(text, confidence, tuple(alternatives))

    def recognize_grammar(
        self, pcm: bytes, grammar: str, sample_rate: int = _SAMPLE_RATE, *, model: str | None = None
    ) -> str:
        """Decode one utterance again, constrained to ``grammar`` (JSGF over words the model
        ``model`` knows, see `knows`): a second look at part of a reading (`reread.py`).
        Returns the words heard ("" when none); a search that found no path through the whole
        grammar returns its best partial one. Blocking; thread-safe.

        Raises:
            RecognizerUnavailable: the recogniser is closed or a worker died.
            KeyError: ``model`` is not a key of this recogniser.
            ValueError: ``grammar`` is no valid JSGF for the model's dictionary.
        """
        if self._closed:
            raise RecognizerUnavailable("the recogniser is closed")
        audio = _to_16k(pcm, sample_rate)
        if not audio:
            return ""
        try:
            files = None if model is None else (self._hmm, *self._models[model])
            text: str = self._submit(grammar_in_worker, audio, files, grammar).result()
        except (BrokenProcessPool, RuntimeError) as exc:  # a worker died / pool shut down
            raise RecognizerUnavailable(f"speech recognition failed: {exc}") from exc
        return text

    def recognize_open(self, pcm: bytes, sample_rate: int = _SAMPLE_RATE) -> str:
        """Whisper's text for one utterance (`open_reading.OpenReader.read`; not in the
        engine's words yet: `open_reading.normalise`). Blocking (tens of ms); thread-safe.

        Raises:
            RecognizerUnavailable: the recogniser is closed, a worker died, or it was loaded
                without ``open_reading``.
        """
        if self._closed or not self._open_reading:
            raise RecognizerUnavailable("no open reading: closed, or loaded without it")
        # Whisper was measured on the utterance as it is: no dither (it needs none).
        audio = _to_16k(pcm, sample_rate, dither=False)
        if not audio:
            return ""
        try:
            text: str = self._submit(open_in_worker, audio).result()
        except (BrokenProcessPool, RuntimeError) as exc:  # a worker died / pool shut down
            raise RecognizerUnavailable(f"speech recognition failed: {exc}") from exc
        return text

    def submit_open(self, pcm: bytes, sample_rate: int = _SAMPLE_RATE) -> Future[str] | None:
        """Start Whisper's reading of one utterance (as `recognize_open`) without waiting for
        it, if a worker is free now: a speculative decode, of which most are never used, must
        not queue in front of work someone waits for. Returns its future (cancel it when it is
        no longer wanted: a decode not started yet then never runs), or None when no worker is
        free, the recogniser is closed or reads no open reading, or a worker died (the caller
        reads serially with `recognize_open` instead, which reports those). Non-blocking:
        callable on the event loop."""
        if self._closed or not self._open_reading:
            return None
        with self._in_flight_lock:
            if self._in_flight >= self._processes:
                return None
        audio = _to_16k(pcm, sample_rate, dither=False)
        if not audio:
            return None
        try:
            return self._submit(open_in_worker, audio)
        except (BrokenProcessPool, RuntimeError):  # a worker died / pool shut down
            return None

    def _submit(self, work: Callable[..., Any], *args: Any) -> Future[Any]:
        """Submit a job to the workers, counted in flight until it is done."""
        with self._in_flight_lock:
            future = self._pool.submit(work, *args)
            self._in_flight += 1
        future.add_done_callback(self._job_done)
        return future

    def _job_done(self, _future: Future[Any]) -> None:
        with self._in_flight_lock:
            self._in_flight -= 1

    def close(self) -> None:
        """Stop the workers and delete the model files. Safe to call twice."""
        self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None


def _check_open_reading() -> None:
    """Raise `RecognizerUnavailable` if the workers could not load Whisper: its packages are
    missing (a venv from before they were requirements) or its model is not the pinned one."""
    from . import open_reading

    missing = [p for p in ("faster_whisper", "ctranslate2") if importlib.util.find_spec(p) is None]
    try:
        if missing:
            raise open_reading.ModelRefused(f"{', '.join(missing)} not installed")
        open_reading.check_model(open_reading.model_path())
    except open_reading.ModelRefused as exc:
        raise RecognizerUnavailable(f"the open reading (Whisper) cannot load: {exc}") from exc


# --- in the calling process --------------------------------------------------------------------


def _to_16k(pcm: bytes, sample_rate: int, *, dither: bool = True) -> bytes:
    """16 kHz s16le, with the dither added unless not ``dither``."""
    samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype=np.int16).astype(np.float32)
    if not samples.size:
        return b""
    if sample_rate != _SAMPLE_RATE:
        import soxr

        samples = np.asarray(soxr.resample(samples, sample_rate, _SAMPLE_RATE), np.float32)
    if dither:
        samples += np.random.default_rng(0).normal(0.0, _DITHER, samples.size).astype(np.float32)
    return np.clip(np.rint(samples), -32768, 32767).astype(np.int16).tobytes()


def _vocabulary(dictionary: Path) -> frozenset[str]:
    """The words of a pronunciation dictionary (variants such as "read(2)" as "read")."""
    with dictionary.open(encoding="utf-8") as source:
        return frozenset(line.split(" ", 1)[0].split("(", 1)[0] for line in source if line.strip())


def _without_sound_alikes(
    background: Sequence[str], sentences: Sequence[str], dictionary: Path
) -> list[str]:
    """``background`` without the words whose pronunciation is the start or the end of a
    command word's (command words themselves stay)."""
    if not background:
        return []
    commands = {word for sentence in sentences for word in sentence.split()}
    extra = set(background) - commands
    phones: dict[str, list[tuple[str, ...]]] = {}
    with dictionary.open(encoding="utf-8") as source:
        for line in source:
            word, _, rest = line.partition(" ")
            base = word.split("(", 1)[0]
            if base in commands or base in extra:
                phones.setdefault(base, []).append(tuple(rest.split()))
    command_phones = [p for word in commands for p in phones.get(word, [])]
    starts = {p[:n] for p in command_phones for n in range(1, len(p))}
    ends = {p[-n:] for p in command_phones for n in range(1, len(p))}
    stealing = {w for w in extra if any(p in starts or p in ends for p in phones.get(w, []))}
    return [word for word in background if word not in stealing]


def _build_domain_model(
    sentences: Sequence[str],
    dictionary: Path,
    workdir: Path,
    *,
    discount_mass: float = 0.5,
    accent_variants: bool | Collection[str] = False,
) -> tuple[Path, Path]:
    """Write ``domain.lm`` (ARPA trigrams) and ``domain.dict`` (their words; with
    ``accent_variants``, their non-rhotic pronunciations too: `accents.with_variants`; True
    for every word, a collection for those words) to ``workdir``.

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

    model = arpa_builder(text="\n".join(usable) + "\n", add_start=True, discount_mass=discount_mass)
    model.compute()
    arpa = io.StringIO()
    model.write(arpa)
    lm_path, dict_path = workdir / "domain.lm", workdir / "domain.dict"
    lm_path.write_text(arpa.getvalue(), encoding="utf-8")
    if accent_variants is True:
        entries = with_variants(entries)
    elif accent_variants:
        entries = with_variants(entries, only=frozenset(accent_variants))
    dict_path.write_text("".join(entries), encoding="utf-8")
    os.chmod(workdir, 0o700)
    return lm_path, dict_path
