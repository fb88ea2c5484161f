"""Answers prepared in the VAD's stop wait, before its stop marker.

When `EarlyCut` guesses that the user stopped, the session recognises the guess and, still
before the VAD's stop marker, works out the reply on a copy of the dialogue (for
``get_date_time`` with a predicted result, ``predict.py``) and synthesises its first sentence
(its first clause, when the speaker splits it: speaking.py). Nothing is emitted then: the turn
starts at the marker as always, and the prepared audio is used only if the marker confirms the
guess and the real reply's first sentence is the prepared one word for word. Resumed speech or
a disagreeing marker discards it. The reading also says whether the user's turn may end before
the marker (``endpoint.py``: `Prepared.complete`, `Prepared.end_after`); the session decides.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable, MutableMapping
from concurrent.futures import Executor, Future
from datetime import datetime
from typing import Any

from .dialogue import Dialogue, ToolCall
from .endpoint import complete_request, early_end_after
from .jobs import Prepared
from .predict import predict
from .reading import Reader
from .speaking import Speaker
from .stt import Transcript

__all__ = ["Foresight"]


class Foresight:
    """Prepares a session's answers to its guesses. ``dialogue`` is the session's own (copied
    for each guess); ``clock_zones``, the zones get_date_time reported (predict.py);
    ``sample_rate``, the mic's (`Prepared.end_after` is in its samples)."""

    def __init__(
        self,
        dialogue: Dialogue,
        reader: Reader,
        speaker: Speaker,
        executor: Executor,
        clock_zones: MutableMapping[str, str],
        sample_rate: int,
    ) -> None:
        self._dialogue = dialogue
        self._reader = reader
        self._speaker = speaker
        self._executor = executor
        self._clock_zones = clock_zones
        self._sample_rate = sample_rate

    def start(
        self,
        audio: bytes,
        *,
        speculate: bool,
        stands: Callable[[], bool],
        clock: Callable[[], datetime],
    ) -> asyncio.Task[Prepared]:
        """Recognise a guess's ``audio`` now (in the executor; with ``speculate``, Whisper
        beside pocketsphinx: reading.py) and foresee the reply while ``stands()`` (the guess
        still stands), as a task nobody needs to await."""
        loop = asyncio.get_running_loop()
        recognition = loop.run_in_executor(
            self._executor, self._reader.recognize_guess, audio, speculate
        )
        recognition.add_done_callback(_consume)
        task = loop.create_task(self._prepare(recognition, audio, stands, clock))
        task.add_done_callback(_consume)
        return task

    async def _prepare(
        self,
        recognition: asyncio.Future[tuple[Transcript, Future[str] | None]],
        audio: bytes,
        stands: Callable[[], bool],
        clock: Callable[[], datetime],
    ) -> Prepared:
        transcript, started = await recognition
        speculation = self._reader.speculation(started)  # Whisper's, of this guess's audio
        try:
            return await self._foresee(Prepared(transcript), audio, speculation, stands, clock)
        finally:
            if speculation is not None:
                speculation.cancel()  # unused (or done): a decode not started never runs

    async def _foresee(
        self,
        prepared: Prepared,
        audio: bytes,
        speculation: asyncio.Future[str] | None,
        stands: Callable[[], bool],
        clock: Callable[[], datetime],
    ) -> Prepared:
        if not stands():
            return prepared  # speech resumed (or a marker disagreed): no synthesis for it
        dialogue = copy.copy(self._dialogue)  # respond() may change the dialogue's state
        heard, today = prepared.transcript, clock().date()
        asking = dialogue.asking
        chosen = dialogue.hear(heard.text, heard.alternatives, today=today)
        reading = await self._reader.look_again(audio, chosen, dialogue, today, speculation)
        prepared.reread = (chosen, reading)
        if not stands():
            return prepared
        action = dialogue.respond(reading, today=today)
        prepared.complete = complete_request(
            dialogue.model, reading, action, answering=asking, today=today
        )
        after_ms = early_end_after(
            dialogue.model, reading, action, answering=asking, asks=dialogue.asking, today=today
        )
        prepared.end_after = None if after_ms is None else self._sample_rate * after_ms // 1000
        if isinstance(action, ToolCall):
            result = predict(action, clock(), self._clock_zones)
            if result is None:
                # The result is unknown, but the answer's start may not be: "Order 1001 ...".
                prefix = dialogue.answer_prefix(action)
                if prefix is not None:
                    prepared.prefix_for = action
                    self._synthesize(prepared, prefix.spoken)
                return prepared
            action = dialogue.answer(action, result)
        if action.lines:
            self._synthesize(prepared, self._speaker.first_part(action.lines[0].spoken))
        return prepared

    def _synthesize(self, prepared: Prepared, spoken: str) -> None:
        prepared.spoken = spoken
        prepared.audio = self._speaker.synthesis(spoken)
        prepared.audio.add_done_callback(_consume)


def _consume(future: asyncio.Future[Any]) -> None:
    # A guess nobody awaits must not log "exception was never retrieved"; a failure that
    # matters shows again when the utterance is recognised.
    if not future.cancelled():
        future.exception()
