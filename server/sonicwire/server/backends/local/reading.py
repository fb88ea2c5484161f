"""How a session reads an utterance: pocketsphinx with the session's language model, a second
look at a misheard value, and Whisper when the reading still means nothing.

`LocalSession` answers what `Reader` reads; the reading itself needs the recogniser (worker
processes, `stt.py`), the session's model key and the executor its blocking calls run in,
never the event loop. Kept apart from session.py, which is about turns: when to read, what to
prepare, when a turn ends.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from datetime import date
from typing import Any

from .choice_look import second_look
from .dialogue import Dialogue
from .open_reading import adopted, needs_open_reading
from .stt import SpeechRecognizer, Transcript

__all__ = ["Reader"]

log = logging.getLogger(__name__)


class Reader:
    """Reads a session's utterances; see the module docstring. Built inside the running loop."""

    def __init__(
        self,
        recognizer: SpeechRecognizer,
        executor: Executor,
        *,
        language_model: str | None,
        open_reading: bool,
    ) -> None:
        self._recognizer = recognizer
        self._executor = executor
        self._loop = asyncio.get_running_loop()
        self._language_model = language_model  # None: the recogniser's own
        self.open_reading = open_reading  # Whisper when a reading means nothing

    def recognize(self, pcm: bytes) -> Transcript:
        """Recognise with this session's language model (blocking: runs in the executor)."""
        if self._language_model is None:
            return self._recognizer.recognize(pcm)
        return self._recognizer.recognize(pcm, model=self._language_model)

    async def look_again(self, pcm: bytes, reading: str, dialogue: Dialogue, today: date) -> str:
        """``reading`` after a second look at its identifier or its missing choice value, when
        it needs one (`reread.py`, `choice_look.py`): the same audio decoded with a grammar
        that lets only that value change; then, if it still means nothing, Whisper's reading
        of the same audio if that means something (``open_reading.py``)."""
        model = self._language_model
        knows = functools.partial(self._recognizer.knows, model=model)
        second = second_look(dialogue.model, reading, knows, asked=dialogue.asked, today=today)
        try:
            if second is not None:
                look = functools.partial(self._recognizer.recognize_grammar, model=model)
                reading = second.merge(await self.run(look, pcm, second.grammar)) or reading
        except ValueError:
            log.warning("second look at %r: grammar rejected", reading, exc_info=True)
        if self.open_reading and needs_open_reading(
            dialogue.model, reading, asking=dialogue.asking, today=today
        ):
            text = await self.run(self._recognizer.recognize_open, pcm)
            reading = adopted(dialogue, text, today=today) or reading
        return reading

    async def run[R](self, work: Callable[..., R], *args: Any) -> R:
        # Speech work blocks for up to a few hundred ms: never on the loop.
        return await self._loop.run_in_executor(self._executor, work, *args)
