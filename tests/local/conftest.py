"""Fixtures for the local engine's tests: one backend and one reply recogniser per run."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pocketsphinx")

from sonicwire.server.backends.base import BackendOptions
from sonicwire.server.backends.local.engine import LocalBackend
from sonicwire.server.backends.local.session import LocalSession
from sonicwire.server.backends.local.stt import SpeechRecognizer
from sonicwire.server.backends.local.toolmodel import ToolModel
from sonicwire.server.testing.local_harness import ToolBox, load_reply_recognizer, speak

#: The clock the tools see in these tests: replies are predictable.
FIXED_NOW = datetime(2026, 5, 5, 15, 47, 12, tzinfo=UTC)


class SilentVoice:
    """A synthesizer double: 10 ms of silence per sentence (the reading is under test)."""

    voice, sample_rate = "silent", 16_000

    def synthesize(self, text: str) -> bytes:
        return b"\x00\x00" * 160


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
