"""Fixtures for the local engine's tests: one backend and one reply recogniser per run."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

pytest.importorskip("pocketsphinx")

from sonicwire.server.backends.local.engine import LocalBackend
from sonicwire.server.backends.local.stt import SpeechRecognizer
from sonicwire.server.testing.local_harness import ToolBox, load_reply_recognizer, speak

#: The clock the tools see in these tests: replies are predictable.
FIXED_NOW = datetime(2026, 5, 5, 15, 47, 12, tzinfo=UTC)


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
