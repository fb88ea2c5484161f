"""The recogniser's worker-process side (`stt.SpeechRecognizer` submits to these).

Each worker process of a `stt.SpeechRecognizer` runs `start_worker` once (it loads the
pocketsphinx decoder, and Whisper when the recogniser reads openly), then one job at a time:
`recognize_in_worker`, `grammar_in_worker`, `open_in_worker`. The state here is per process:
a worker's decoders and its Whisper. Kept apart from stt.py so that the calling side (models,
dictionaries, the pool) and what runs in the workers read separately; the workers import
this module by name (the pool's "spawn" context pickles the functions by reference).
"""

from __future__ import annotations

import ctypes
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

__all__ = ["grammar_in_worker", "open_in_worker", "recognize_in_worker", "start_worker"]

# Fillers pocketsphinx puts in its hypotheses for breath, noise and silence.
_FILLERS = frozenset({"<s>", "</s>", "<sil>", "[noise]", "++noise++", "[breath]"})

_decoder: Any = None
# The decoder options of this worker's recogniser (`SpeechRecognizer.load`), for its session
# decoders too.
_options: dict[str, Any] = {}
# Decoders of the session models this worker used, by their files; a few at most (each holds
# its search graph: a few MB).
_session_decoders: OrderedDict[tuple[str, str, str], Any] = OrderedDict()
_MAX_SESSION_DECODERS = 8
# This worker's Whisper (`open_reading.OpenReader`), when its recogniser reads openly.
_open_reader: Any = None


def start_worker(config: dict[str, Any], open_reading: bool = False) -> None:
    global _decoder, _options, _open_reader
    import pocketsphinx

    from ..parent_watch import exit_with_parent

    exit_with_parent()  # a SIGKILLed server would otherwise leave its workers running
    _one_math_thread()
    _options = {k: v for k, v in config.items() if k not in ("hmm", "lm", "dict")}
    _decoder = _configured(pocketsphinx.Decoder(**config), _options)
    if open_reading:
        from .open_reading import OpenReader

        _open_reader = OpenReader(threads=1)  # refuses a model that is not the pinned one


# Thread-count settings of the numerical libraries a worker loads (numpy's OpenBLAS, OpenMP).
_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
# OpenBLAS's run-time thread-count functions, as numpy's wheels (scipy-openblas, 64-bit
# integers) and a plain OpenBLAS name them.
_OPENBLAS_PREFIXES = ("scipy_openblas_", "openblas_")
_OPENBLAS_SUFFIXES = ("64_", "")


def _one_math_thread() -> None:
    """Keep this worker's numerical work on one thread: a worker decodes one utterance at a
    time, and the machine's other cores belong to the other workers (a speculative Whisper
    runs beside pocketsphinx, `reading.py`). Whisper's feature extraction (numpy matrix
    products) otherwise spread over every core through OpenBLAS and slowed the pocketsphinx
    decode beside it (docs/LOCAL_ENGINE.md, "Whisper beside pocketsphinx"). The variables
    cover libraries loaded from here on; numpy is usually loaded already (a spawned worker
    imports the parent's main module first), so its OpenBLAS is set at run time too."""
    for name in _THREAD_VARIABLES:
        os.environ[name] = "1"
    for function in _openblas_functions("set_num_threads"):
        function(ctypes.c_int(1))


def math_threads() -> list[int]:
    """The thread count of every OpenBLAS this process has loaded (1 in a worker)."""
    return [int(function()) for function in _openblas_functions("get_num_threads")]


def _openblas_functions(name: str) -> list[Any]:
    """OpenBLAS's function ``name`` in every OpenBLAS this process has loaded (Linux: read
    from /proc/self/maps; elsewhere none)."""
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            loaded = {line.split()[-1] for line in maps if "openblas" in line.lower()}
    except OSError:
        return []
    found = []
    for path in sorted(p for p in loaded if Path(p).is_file()):
        library = ctypes.CDLL(path)  # already loaded: the same handle
        names = [f"{p}{name}{s}" for p in _OPENBLAS_PREFIXES for s in _OPENBLAS_SUFFIXES]
        function = next((getattr(library, n) for n in names if hasattr(library, n)), None)
        if function is not None:
            found.append(function)
    return found


def open_in_worker(audio: bytes) -> str:
    text: str = _open_reader.read(audio)
    return text


def _configured(decoder: Any, options: dict[str, Any]) -> Any:
    """``decoder`` with ``options`` in force: the acoustic model's ``feat.params`` (read when
    the decoder is built) overrides the caller's feature options (``cmn``, ``remove_noise``,
    ``varnorm``), so those are set again and the feature extraction rebuilt (`reinit_feat`,
    which every recognition calls again: the setting stays)."""
    stale = {k: v for k, v in options.items() if decoder.config[k] != v}
    for key, value in stale.items():
        decoder.config[key] = value
    if stale:
        decoder.reinit_feat()
    return decoder


def _session_decoder(files: tuple[str, str, str]) -> Any:
    decoder = _session_decoders.get(files)
    if decoder is None:
        import pocketsphinx

        hmm, lm, dictionary = files
        decoder = _configured(
            pocketsphinx.Decoder(**_options, hmm=hmm, lm=lm, dict=dictionary), _options
        )
        _session_decoders[files] = decoder
        while len(_session_decoders) > _MAX_SESSION_DECODERS:
            _session_decoders.popitem(last=False)
    _session_decoders.move_to_end(files)
    return decoder


def recognize_in_worker(
    audio: bytes, files: tuple[str, str, str] | None, nbest: int
) -> tuple[str, float, list[str]]:
    if not audio:
        return "", 0.0, []
    decoder = _decoder if files is None else _session_decoder(files)
    hyp = _decode(decoder, audio)
    if hyp is None:
        return "", 0.0, []
    text = _without_fillers(hyp.hypstr)
    alternatives: list[str] = []
    # The lattice's best paths; several differ only in fillers or pronunciation variants.
    for rank, reading in enumerate(decoder.nbest()):
        words = _without_fillers(getattr(reading, "hypstr", None) or "")  # None past the end
        if words and words != text and words not in alternatives:
            alternatives.append(words)
        if len(alternatives) >= nbest or rank >= 4 * nbest:
            break
    return text, float(hyp.prob), alternatives


# The name of the grammar search a worker's decoders switch to for `recognize_grammar`; each
# call replaces the last grammar (a search over a small grammar builds in about a millisecond).
_GRAMMAR_SEARCH = "reread"


def grammar_in_worker(audio: bytes, files: tuple[str, str, str] | None, grammar: str) -> str:
    decoder = _decoder if files is None else _session_decoder(files)
    default = decoder.current_search()
    decoder.add_jsgf_string(_GRAMMAR_SEARCH, grammar)  # ValueError: not valid for this model
    decoder.activate_search(_GRAMMAR_SEARCH)
    try:
        hyp = _decode(decoder, audio)
    finally:
        decoder.activate_search(default)
    return "" if hyp is None else _without_fillers(hyp.hypstr)


def _decode(decoder: Any, audio: bytes) -> Any:
    """``audio`` decoded as one utterance with the decoder's active search: its best
    hypothesis, or None."""
    # Fresh feature state: pocketsphinx adapts its cepstral mean across utterances, which made
    # a decoder's results depend on what it heard before. Costs ~0.1 ms.
    decoder.reinit_feat()
    decoder.start_utt()
    decoder.process_raw(audio, full_utt=True)
    decoder.end_utt()
    return decoder.hyp()


def _without_fillers(hypothesis: str) -> str:
    return " ".join(w for w in hypothesis.split() if w.lower() not in _FILLERS)
