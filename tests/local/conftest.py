"""Fixtures for the local engine's tests: one backend and one reply recogniser per run."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pocketsphinx")

from sonicwire.server.backends.base import BackendOptions
from sonicwire.server.backends.local.engine import LocalBackend
from sonicwire.server.backends.local.session import LocalSession
from sonicwire.server.backends.local.stt import RecognizerUnavailable, SpeechRecognizer, Transcript
from sonicwire.server.backends.local.toolmodel import ToolModel
from sonicwire.server.testing.local_harness import ToolBox, load_reply_recognizer, speak

#: The clock the tools see in these tests: replies are predictable.
FIXED_NOW = datetime(2026, 5, 5, 15, 47, 12, tzinfo=UTC)

#: The `say` fixture's type: text and a test voice in, 16 kHz mono PCM out.
Say = Callable[..., bytes]


class SilentVoice:
    """A synthesizer double: 10 ms of silence per sentence (the reading is under test)."""

    voice, sample_rate = "silent", 16_000

    def synthesize(self, text: str) -> bytes:
        return b"\x00\x00" * 160


class ScriptedRecognizer:
    """A recogniser double with the recogniser's whole interface (the reading is under test).

    pocketsphinx reads the utterances as ``heard`` in turn (the last one for the rest); Whisper,
    serial (`recognize_open`) or speculative (`submit_open`), reads the n-th audio it gets as
    ``open_texts[n]`` (the last one for the rest). ``free``: a worker is free for a speculative
    decode (else the reading falls back to `recognize_open`); ``fail``: that decode fails (a
    worker died)."""

    def __init__(
        self, heard: list[str], open_texts: list[str], *, free: bool = True, fail: bool = False
    ) -> None:
        self.heard, self.open_texts, self.free, self.fail = heard, open_texts, free, fail
        self.open_calls = 0  # serial decodes
        self.decodes = 0  # pocketsphinx's
        self.started: list[Future[str]] = []  # speculative decodes
        self.read: list[str] = []  # what Whisper returned, in order

    def _open_text(self) -> str:
        text = self.open_texts[min(len(self.read), len(self.open_texts) - 1)]
        self.read.append(text)
        return text

    def recognize(
        self,
        pcm: bytes,
        *,
        model: str | None = None,
        on_submitted: Callable[[], None] | None = None,
    ) -> Transcript:
        self.decodes += 1
        if on_submitted is not None:
            on_submitted()
        return Transcript(self.heard[0] if len(self.heard) == 1 else self.heard.pop(0), 0.9)

    def knows(self, word: str, *, model: str | None = None) -> bool:
        return True

    def recognize_grammar(self, pcm: bytes, grammar: str, *, model: str | None = None) -> str:
        return ""

    def recognize_open(self, pcm: bytes) -> str:
        self.open_calls += 1
        return self._open_text()

    def submit_open(self, pcm: bytes) -> Future[str] | None:
        if not self.free:
            return None
        future: Future[str] = Future()
        self.started.append(future)
        if self.fail:
            future.set_exception(RecognizerUnavailable("speech recognition failed: died"))
        else:
            future.set_result(self._open_text())
        return future


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(max_workers=2)
    yield pool
    pool.shutdown(wait=True)


def double_session(
    recognizer: object, toolbox: ToolBox, executor: ThreadPoolExecutor, **options: Any
) -> LocalSession:
    """A session over a recogniser double, a silent voice and the fixed clock."""
    return LocalSession(
        BackendOptions(session_id="t", tools=toolbox.descriptions),
        recognizer=recognizer,  # type: ignore[arg-type]
        synthesizer=SilentVoice(),
        executor=executor,
        clock=lambda: FIXED_NOW,
        tool_model=ToolModel(toolbox.descriptions),
        **options,
    )


async def open_session(
    backend: LocalBackend, toolbox: ToolBox | None, **fields: object
) -> LocalSession:
    """A session of the real backend offered ``toolbox``'s tools (none without a toolbox)."""
    tools = toolbox.descriptions if toolbox is not None else []
    return await backend.open(BackendOptions(session_id="t", tools=tools, **fields))  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def say() -> Callable[..., bytes]:
    """`local_harness.speak`: test speech in espeak-ng voices (never the engine's own voice)."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (Debian package espeak-ng)")
    return speak


@pytest.fixture(scope="session")
def backend() -> Iterator[LocalBackend]:
    """The default local backend (piper voice, command language model), loaded once."""
    local = LocalBackend()
    asyncio.run(local.warm_up())
    yield local
    asyncio.run(local.aclose())


@pytest.fixture(scope="session")
def domain_recognizer() -> Iterator[SpeechRecognizer]:
    recognizer = SpeechRecognizer.load("domain")
    yield recognizer
    recognizer.close()


@pytest.fixture(scope="session")
def reply_recognizer() -> Iterator[SpeechRecognizer]:
    """Transcribes the assistant's audio (`local_harness.load_reply_recognizer`)."""
    recognizer = load_reply_recognizer()
    yield recognizer
    recognizer.close()


@pytest.fixture
def orders_db(tmp_path: Path) -> Path:
    return tmp_path / "orders.db"


@pytest.fixture
def toolbox(orders_db: Path) -> ToolBox:
    return ToolBox(orders_db, now=lambda: FIXED_NOW)
