"""Whisper started beside pocketsphinx on the early guess (reading.py, `open_speculation`): its
text is what the reading adopts when pocketsphinx's means nothing, without a second decode (at
the VAD's marker too, when no guess stood); a replaced guess's is never used; no free worker, a
failed decode, the option off or the open reading off fall back to (or stay on) the serial path.
With recogniser doubles; the gate on a free worker, and the workers' one math thread, with the
real recogniser."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from sonicwire.server.backends.local import stt_worker
from sonicwire.server.backends.local.stt import SpeechRecognizer
from sonicwire.server.testing.local_harness import MicStream, ToolBox, TurnResult, run_turn

from .conftest import ScriptedRecognizer, double_session

Say = Callable[..., bytes]
_PARIS = "Do you know the time in Paris?"


def _tone(ms: int) -> bytes:
    """A loud tone: speech to `EarlyCut` (silence after it is well below its level)."""
    t = np.arange(16 * ms) / 16_000
    return (8000 * np.sin(2 * np.pi * 220 * t)).astype(np.int16).tobytes()


async def _turn(
    recognizer: ScriptedRecognizer,
    toolbox: ToolBox,
    executor: ThreadPoolExecutor,
    speech: bytes | None = None,
    **options: Any,
) -> TurnResult:
    session = double_session(recognizer, toolbox, executor, **options)
    mic = MicStream().utterance(_tone(800) if speech is None else speech)
    turn = await run_turn(session, mic.commands, toolbox=toolbox)
    await session.aclose()
    return turn


def _paris(turn: TurnResult) -> bool:
    calls = [(c.name, c.arguments_json) for c in turn.tool_calls]
    return calls == [("get_date_time", '{"timezone":"Europe/Paris"}')]


async def test_the_speculative_reading_is_adopted_without_a_second_decode(
    toolbox: ToolBox, executor: ThreadPoolExecutor
) -> None:
    recognizer = ScriptedRecognizer(["the older always"], [_PARIS])
    turn = await _turn(recognizer, toolbox, executor, open_reading=True)
    assert recognizer.started, "no Whisper beside pocketsphinx on the guess"
    assert recognizer.open_calls == 0  # the speculative text was used
    assert turn.user_text == "do you know the time in paris"
    assert _paris(turn)


async def test_an_understood_reading_leaves_the_speculation_unused(
    toolbox: ToolBox, executor: ThreadPoolExecutor
) -> None:
    recognizer = ScriptedRecognizer(["what time is it"], [_PARIS])
    turn = await _turn(recognizer, toolbox, executor, open_reading=True)
    assert recognizer.open_calls == 0
    assert turn.user_text == "what time is it"
    assert [c.arguments_json for c in turn.tool_calls] == ["{}"]


async def test_an_utterance_without_a_guess_reads_whisper_beside_pocketsphinx_too(
    toolbox: ToolBox, executor: ThreadPoolExecutor
) -> None:
    """A room too noisy for a guess (above `EarlyCut`'s floor and within 25 dB of the speech)
    makes none: the utterance is read at the VAD's marker, and Whisper starts beside
    pocketsphinx there as on a guess."""
    recognizer = ScriptedRecognizer(["the older always"], [_PARIS])
    session = double_session(recognizer, toolbox, executor, open_reading=True)
    mic = MicStream(noise_dbfs=-25.0)
    turn = await run_turn(session, mic.utterance(_tone(800)).commands, toolbox=toolbox)
    await session.aclose()
    assert recognizer.decodes == 1, "a guess was read: the room is not noisy enough"
    assert len(recognizer.started) == 1  # beside the marker's decode
    assert recognizer.open_calls == 0  # ...and used: no serial decode after pocketsphinx
    assert _paris(turn)


async def test_a_replaced_guess_speculation_is_never_used(
    toolbox: ToolBox, executor: ThreadPoolExecutor
) -> None:
    """Speech, a pause long enough for a guess, more speech: the first guess's Whisper reads
    Paris, the second's Tokyo; the answer is Tokyo's (the second guess's, confirmed). No early
    end of turn: Paris, a complete request, would end the turn in the pause."""
    recognizer = ScriptedRecognizer(["the older always"], [_PARIS, "What time is it in Tokyo?"])
    speech = _tone(500) + bytes(2 * 16 * 300) + _tone(500)
    turn = await _turn(recognizer, toolbox, executor, speech, open_reading=True, early_end=False)
    assert len(recognizer.started) >= 2, recognizer.read
    assert recognizer.read[0] == _PARIS
    assert [(c.name, c.arguments_json) for c in turn.tool_calls] == [
        ("get_date_time", '{"timezone":"Asia/Tokyo"}')
    ]


@pytest.mark.parametrize("free, fail", [(False, False), (True, True)])
async def test_no_free_worker_or_a_failed_speculation_reads_serially(
    free: bool, fail: bool, toolbox: ToolBox, executor: ThreadPoolExecutor
) -> None:
    recognizer = ScriptedRecognizer(["the older always"], [_PARIS], free=free, fail=fail)
    turn = await _turn(recognizer, toolbox, executor, open_reading=True)
    assert recognizer.open_calls >= 1  # the serial decode
    assert _paris(turn)


@pytest.mark.parametrize(
    "options",
    [{"open_reading": False}, {"open_reading": True, "open_speculation": False}],
    ids=["open_reading off", "open_speculation off"],
)
async def test_off_no_whisper_starts_beside_pocketsphinx(
    options: dict[str, bool], toolbox: ToolBox, executor: ThreadPoolExecutor
) -> None:
    recognizer = ScriptedRecognizer(["the older always"], [_PARIS])
    turn = await _turn(recognizer, toolbox, executor, **options)
    assert recognizer.started == []
    assert recognizer.open_calls == (1 if options["open_reading"] else 0)
    assert _paris(turn) == options["open_reading"]


async def test_not_while_the_session_waits_for_the_answer_to_its_question(
    toolbox: ToolBox, executor: ThreadPoolExecutor
) -> None:
    recognizer = ScriptedRecognizer(["where is my order"], [_PARIS])
    session = double_session(recognizer, toolbox, executor, open_reading=True)
    mic = MicStream()
    first = await run_turn(session, mic.utterance(_tone(800)).commands, toolbox=toolbox)
    assert first.assistant_text == ["Sure. What's the order number?"]
    started = len(recognizer.started)
    recognizer.heard = ["the older always"]
    await run_turn(session, mic.utterance(_tone(800)).commands, toolbox=toolbox)
    await session.aclose()
    assert len(recognizer.started) == started  # asking: Whisper would not be used


# --- the real recogniser -----------------------------------------------------------------------


@pytest.mark.parametrize("processes", [1, 2])
def test_a_speculative_decode_only_starts_on_a_free_worker(processes: int, say: Say) -> None:
    """Started once pocketsphinx's decode is queued: beside it with two workers, not at all
    with one (it would take the worker the reading waits for)."""
    recognizer = SpeechRecognizer.load("domain", processes=processes, open_reading=True)
    try:
        # each worker's numerical work stays on one thread (stt_worker._one_math_thread)
        threads = recognizer._pool.submit(stt_worker.math_threads).result(timeout=30)
        assert threads and set(threads) == {1}
        pcm = say("what time is it in paris", "espeak:en-us")
        started: list[Future[str] | None] = []
        recognizer.recognize(pcm, on_submitted=lambda: started.append(recognizer.submit_open(pcm)))
        (speculation,) = started
        if processes == 1:
            assert speculation is None
        else:
            assert speculation is not None
            assert "paris" in speculation.result(timeout=30).lower()
    finally:
        recognizer.close()
    assert recognizer.submit_open(pcm) is None  # closed
