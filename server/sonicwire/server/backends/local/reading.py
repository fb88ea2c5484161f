"""How a session reads an utterance: pocketsphinx with the session's language model, a second
look at a misheard value, and Whisper when the reading still means nothing.

`LocalSession` answers what `Reader` reads; the reading itself needs the recogniser (worker
processes, `stt.py`), the session's model key and the executor its blocking calls run in,
never the event loop. Kept apart from session.py, which is about turns: when to read, what to
prepare, when a turn ends.

Whisper ahead of need (`recognize_guess`): the session's early guess is read by pocketsphinx and,
when its reading means nothing, by Whisper after it; one after the other they took ~250 ms of
the ~400 ms an unknown turn may take before it ends early, and the answer's synthesis came
after both. So on the guess the session also starts Whisper at once, on a worker of its own,
beside pocketsphinx: when the reading turns out to mean nothing, Whisper's text is (nearly)
there already. Most of these decodes are never used (the reading meant something), so one
starts only on a free worker (`SpeechRecognizer.submit_open`) and is cancelled when not
wanted; without one, or if it fails, the reading falls back to the serial decode. An
utterance no guess stood for (a room too noisy for `early.EarlyCut` makes none) is read at the
VAD's marker the same way, Whisper beside pocketsphinx: there the whole reading is on the turn's
clock.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from concurrent.futures import Executor, Future
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

    def recognize_guess(self, pcm: bytes, speculate: bool) -> tuple[Transcript, Future[str] | None]:
        """`recognize`, and with ``speculate`` Whisper's reading of the same audio started
        beside it (see the module docstring) when a worker is free once pocketsphinx's decode
        is queued (so it never takes that decode's worker): returns the transcript and that
        decode's future, if one started, for `speculation` (which the caller cancels when it
        is not used). Blocking: runs in the executor."""
        if not speculate:
            return self.recognize(pcm), None
        started: list[Future[str] | None] = [None]

        def beside() -> None:
            started[0] = self._recognizer.submit_open(pcm)

        try:
            transcript = self._recognizer.recognize(
                pcm, model=self._language_model, on_submitted=beside
            )
        except BaseException:
            if started[0] is not None:
                started[0].cancel()
            raise
        return transcript, started[0]

    def will_speculate(self, dialogue: Dialogue) -> bool:
        """Whether Whisper is worth starting beside pocketsphinx on a guess: only when it may
        be used (the open reading is on, and the session does not wait for the answer to its
        own question: `open_reading.needs_open_reading`)."""
        return self.open_reading and not dialogue.asking

    def speculation(self, started: Future[str] | None) -> asyncio.Future[str] | None:
        """A speculative decode of `recognize_guess` as the loop's future (on the loop)."""
        if started is None:
            return None
        speculation = asyncio.wrap_future(started, loop=self._loop)
        speculation.add_done_callback(_consume)
        return speculation

    async def look_again(
        self,
        pcm: bytes,
        reading: str,
        dialogue: Dialogue,
        today: date,
        speculation: asyncio.Future[str] | None = None,
    ) -> str:
        """``reading`` after a second look at its identifier or its missing choice value, when
        it needs one (`reread.py`, `choice_look.py`): the same audio decoded with a grammar
        that lets only that value change; then, if it still means nothing, Whisper's reading
        of the same audio if that means something (``open_reading.py``): ``speculation``'s,
        Whisper started on this same ``pcm`` (`recognize_guess`), else decoded now."""
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
            text = await self._open_text(pcm, speculation)
            reading = adopted(dialogue, text, today=today) or reading
        return reading

    async def _open_text(self, pcm: bytes, speculation: asyncio.Future[str] | None) -> str:
        if speculation is not None and not speculation.cancelled():
            try:
                return await speculation
            except Exception:  # a worker died, the pool closed: read serially
                log.debug("speculative open reading failed; reading again", exc_info=True)
        return await self.run(self._recognizer.recognize_open, pcm)

    async def run[R](self, work: Callable[..., R], *args: Any) -> R:
        # Speech work blocks for up to a few hundred ms: never on the loop.
        return await self._loop.run_in_executor(self._executor, work, *args)


def _consume(future: asyncio.Future[Any]) -> None:
    # A speculation nobody awaits must not log "exception was never retrieved"; a failure
    # that matters shows again in the serial decode.
    if not future.cancelled():
        future.exception()
