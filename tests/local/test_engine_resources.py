"""The local backend's resources and options: a session ends with no task left, speech work runs
on the backend's threads, off the event loop; models load once per process; voices (and an
unknown one); a closed backend and a bad option refuse."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest

from sonicwire.server.backends.base import BackendOptions
from sonicwire.server.backends.local.engine import LocalBackend
from sonicwire.server.backends.local.stt import SpeechRecognizer
from sonicwire.server.backends.registry import create_backend
from sonicwire.server.core import events as ev
from sonicwire.server.core.errors import BackendError, ErrorCode
from sonicwire.server.testing.local_harness import MicStream, ToolBox, run_turn

from .conftest import Say, open_session


async def test_end_session_ends_events_and_leaves_no_tasks(
    backend: LocalBackend, toolbox: ToolBox, say: Say
) -> None:
    before = asyncio.all_tasks()
    session = await open_session(backend, toolbox)
    await session.send(ev.SendText("what can you do"))
    await session.send(ev.EndSession())
    remaining = [event async for event in session.events()]
    assert all(not isinstance(e, ev.AssistantTurnEnded) for e in remaining)
    await session.send(ev.SendText("ignored after the end"))
    await session.aclose()
    await session.aclose()
    assert asyncio.all_tasks() == before


async def test_speech_work_runs_off_the_event_loop(
    backend: LocalBackend, toolbox: ToolBox, say: Say, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = await open_session(backend, toolbox)
    threads: list[str] = []

    def spy(work: Callable[..., Any]) -> Callable[..., Any]:
        def run(arg: Any, **kwargs: Any) -> Any:
            threads.append(threading.current_thread().name)
            return work(arg, **kwargs)

        return run

    monkeypatch.setattr(
        session._reader._recognizer, "recognize", spy(session._reader._recognizer.recognize)
    )
    monkeypatch.setattr(
        session._speaker._synthesizer, "synthesize", spy(session._speaker._synthesizer.synthesize)
    )
    await run_turn(
        session, MicStream().utterance(say("hello", "espeak:en-us")).commands, toolbox=toolbox
    )
    await session.aclose()
    assert len(threads) == 2  # one recognition, one sentence synthesised
    assert all(name.startswith("sonicwire-local") for name in threads)


async def test_models_load_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[str] = []
    real_load = SpeechRecognizer.load

    def counting_load(*args: object, **kwargs: object) -> SpeechRecognizer:
        loads.append("stt")
        return real_load(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(SpeechRecognizer, "load", counting_load)
    local = create_backend("local", tts="espeak", unknown_option=True)
    assert isinstance(local, LocalBackend)
    try:
        sessions = await asyncio.gather(*(local.open(BackendOptions("s")) for _ in range(3)))
        assert loads == ["stt"]
        assert len({id(s._reader._recognizer) for s in sessions}) == 1
    finally:
        await local.aclose()
    assert not [
        t
        for t in threading.enumerate()
        if t.name.startswith("sonicwire-local") and t.is_alive() and _owned_by(t, local)
    ]


def _owned_by(thread: threading.Thread, backend: LocalBackend) -> bool:
    return thread in getattr(backend._executor, "_threads", set())


async def test_voices_and_unknown_voice(backend: LocalBackend) -> None:
    voices = backend.voices()
    assert voices[0].id == "joe" and voices[0].default
    assert {"espeak-en-us", "espeak-en-gb"} <= {v.id for v in voices}
    with pytest.raises(BackendError) as caught:
        await backend.open(BackendOptions("s", voice="nobody"))
    assert caught.value.reason == "VOICE_UNKNOWN"
    assert caught.value.code is ErrorCode.INVALID_ARGUMENT


async def test_espeak_voice_session(backend: LocalBackend, toolbox: ToolBox) -> None:
    session = await open_session(backend, toolbox, voice="espeak-en-gb")
    turn = await run_turn(session, [ev.SendText("thanks")], toolbox=toolbox)
    await session.aclose()
    assert turn.assistant_text == ["You're welcome!"] and turn.audio


async def test_closed_backend_refuses_sessions() -> None:
    local = LocalBackend(tts_engine="espeak")
    await local.aclose()
    with pytest.raises(BackendError) as caught:
        await local.open(BackendOptions("s"))
    assert caught.value.reason == "BACKEND_UNAVAILABLE"


def test_bad_tts_option() -> None:
    with pytest.raises(BackendError):
        LocalBackend.from_options(tts="festival")
