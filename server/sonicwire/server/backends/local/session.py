"""One conversation with the local engine: utterances in, spoken answers out.

`LocalSession.send` only queues (it never blocks the loop); a worker task answers one user turn
at a time:

    utterance (UtteranceCollector, cut by the front end's VAD markers)
      -> recognise (executor)      -> UserTranscript
         (usually already done: `EarlyCut` starts it in the VAD's stop_secs wait)
      -> Dialogue.respond          -> Reply, or ToolRequested ... SendToolResult -> Reply
         (the session's tools, learnt from their specs at open: `toolmodel.ToolModel`, and
         the recogniser's language model built from their examples; the calls: tool_calls.py)
      -> per sentence: synthesise (executor) -> AssistantText(final) + AssistantAudio chunks
         (speaking.py; the first sentence usually already done, see below; its first clause
         alone, the rest while that plays: clauses.py)
      -> AssistantTurnEnded(END_TURN)

Answers prepared in the stop wait (foresight.py): when `EarlyCut` guesses that the user
stopped, the session recognises the guess and, before the VAD's stop marker, works out the
reply on a copy of the dialogue and synthesises its first sentence; nothing is emitted then,
and the prepared audio is used only if the marker confirms the guess.

A semantic early end of turn (``endpoint.py``): when the guess reads as a complete request
("what time is it", after 200 ms of silence) or a confident one that only lacks an argument
("where is my order", after 400 ms: its answer is a question), or as no request at all and
unlikely to be the start of one ("open the garage door", after 400 ms: "Sorry, I didn't catch
that"), the session does not wait for the marker: it ends the user's turn (`ev.UserTurnEnded`,
which the core takes in the VAD's stop wait) and answers the guess at once. The utterance the
collector closes at the marker is then not answered again. If the user goes on, the core
cancels the early answer (`CancelResponse`, a barge-in); the session ends it with
``AssistantTurnEnded(INTERRUPTED)`` even when none of it was out yet (the core drops its output
until then), and answers the whole utterance, still being collected, at its marker.

Barge-in: `CancelResponse` cancels the turn in progress at once; a synthesis already running in
the executor finishes there but its audio is dropped. The session core discards backend output
after a cancel until it sees an `AssistantTurnEnded`, so a cancelled response that had started
(tool requested, text or audio sent) and not yet ended ends with
``AssistantTurnEnded(INTERRUPTED)``.

Speech while the assistant is talking that the core did *not* treat as a barge-in (too short
to interrupt: a cough, an "mm-hm", echo the canceller left) is not a turn: the core keeps the
assistant's turn and expects no answer, so answering it would talk over the user later. The
session estimates on the mic timeline how long its audio keeps playing (the core paces audio at
real time) and drops an utterance that started inside that span unless a `CancelResponse`
came for it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, MutableMapping
from concurrent.futures import Executor
from datetime import UTC, datetime
from typing import Any

from sonicwire.server.backends.base import BackendOptions
from sonicwire.server.core import events as ev
from sonicwire.server.core.utterance import UtteranceCollector

from .clauses import SynthesisPace
from .dialogue import Dialogue, Reply, ToolCall
from .early import LATE_MS, ROOM_MARGIN_DB, EarlyCut, Guess
from .foresight import Foresight
from .jobs import Prepared, ToolAnswer, Utterance
from .predict import learn
from .reading import Reader
from .speaking import Speaker
from .stt import SpeechRecognizer
from .tool_calls import ToolCalls
from .toolmodel import ToolModel
from .tts import Synthesizer

__all__ = ["LocalSession"]

log = logging.getLogger(__name__)

_SAMPLE_RATE = 16_000
# The core releases audio up to this far ahead of real time (its playback lead, plus slack),
# so the assistant may stop talking this much earlier than the mic timeline suggests; the
# estimate errs towards answering.
_FLOOR_SLACK_SAMPLES = _SAMPLE_RATE * 250 // 1000
# The early guess is recognised after this much silence (`EarlyCut`), but a semantic early end
# of turn needs more of it (`endpoint.early_end_after`: 200 ms for a complete request):
# recognition (~100 ms) runs in between instead of after, so a pause shorter than that never
# ends a turn, however fast the machine.
_GUESS_SILENCE_MS = 100


class LocalSession:
    """See the module docstring. Built by `LocalBackend.open` inside the running loop."""

    def __init__(
        self,
        options: BackendOptions,
        *,
        recognizer: SpeechRecognizer,
        synthesizer: Synthesizer,
        executor: Executor,
        on_close: Callable[[LocalSession], None] | None = None,
        clock_zones: MutableMapping[str, str] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        tool_model: ToolModel | None = None,
        language_model: str | None = None,
        early_end: bool = True,
        open_reading: bool = False,
        open_speculation: bool = True,
        noisy_room_guess: bool = True,
        first_clause: bool = True,
        synthesis_pace: SynthesisPace | None = None,
    ) -> None:
        self._on_close = on_close
        # Zones get_date_time reported, by arguments (shared by the backend's sessions), and
        # the clock its results are predicted with: see predict.py.
        self._clock_zones: MutableMapping[str, str] = {} if clock_zones is None else clock_zones
        self._clock = clock
        # The pace is the backend's (the machine's load), else the session's own.
        pace = (synthesis_pace or SynthesisPace()) if first_clause else None
        self._speaker = Speaker(
            synthesizer, executor, pace, send=self._respond, played=self._extend_floor
        )
        self._tool_calls = ToolCalls(send=self._respond)
        self._collector = UtteranceCollector(sample_rate=_SAMPLE_RATE, pad_ms=options.speech_pad_ms)
        self._pad_samples = _SAMPLE_RATE * options.speech_pad_ms // 1000
        # The session's tools as the dialogue knows them, and the recogniser's model of their
        # phrasings (None: the recogniser's own); both built by the backend, once per tool set.
        self._dialogue = Dialogue(tool_model or ToolModel(options.tools))
        # How utterances are read: pocketsphinx with the session's model (None: the
        # recogniser's own), second looks, Whisper when on (reading.py).
        self._reader = Reader(
            recognizer, executor, language_model=language_model, open_reading=open_reading
        )
        self._speculate = open_speculation  # Whisper beside pocketsphinx on a guess
        self._foresight = Foresight(
            self._dialogue, self._reader, self._speaker, executor, self._clock_zones, _SAMPLE_RATE
        )
        self._events: asyncio.Queue[ev.BackendEvent | None] = asyncio.Queue()
        self._jobs: asyncio.Queue[Utterance | str | ToolAnswer] = asyncio.Queue()
        self._early = EarlyCut(
            sample_rate=_SAMPLE_RATE,
            pad_ms=options.speech_pad_ms,
            silence_ms=_GUESS_SILENCE_MS,
            # off: quiet only under the absolute floor, and the marker within 100 ms either way
            room_margin_db=ROOM_MARGIN_DB if noisy_room_guess else None,
            late_ms=LATE_MS if noisy_room_guess else 0,
        )
        self._guess: tuple[Guess, asyncio.Task[Prepared]] | None = None
        self._recognized: asyncio.Task[Prepared] | None = None  # for the next utterance
        self._confirmed: Guess | None = None  # the guess the last stop marker confirmed
        self._preparing: set[asyncio.Task[Prepared]] = set()
        # Semantic end of turn (endpoint.py): on, and the answer whose turn was ended before
        # the stop marker, until that marker's utterance comes (or the user goes on).
        self._early_end = early_end
        self._ended_early: Utterance | None = None
        # A request recognised before its silence (`Prepared.end_after`) has passed: it ends the
        # turn once the silence has lasted that long, if the guess still stands.
        self._end_pending: tuple[Guess, asyncio.Task[Prepared]] | None = None
        self._job: Utterance | str | ToolAnswer | None = None  # the job being answered
        self._turn: asyncio.Task[None] | None = None
        # True once the current turn produced output the core has seen (a tool call, text,
        # audio) and until it ended: only then does a cancel need an AssistantTurnEnded.
        self._response_open = False
        self._position = 0  # mic samples received
        self._floor_until = 0  # mic position until which our audio is estimated to play
        self._in_utterance = False
        self._utterance_overlaps_floor = False
        self._closed = False
        self._shut_down = False
        self._worker = asyncio.create_task(self._work(), name=f"local-{options.session_id}")

    # --- BackendSession -----------------------------------------------------------------------

    async def send(self, command: ev.BackendCommand) -> None:
        if self._closed:
            return
        match command:
            case ev.SendAudio(pcm):
                self._collector.push_audio(pcm)
                self._position += len(pcm) // 2
                guess = self._early.push_audio(pcm)
                if guess is not None:
                    self._recognize_early(guess)
                if self._end_pending is not None:
                    self._end_turn_early(*self._end_pending)
            case ev.UserSpeechStarted(offset):
                self._collector.speech_started(offset)
                self._early.speech_started(offset)
                if not self._in_utterance:
                    self._in_utterance = True
                    self._utterance_overlaps_floor = (
                        offset < self._floor_until - _FLOOR_SLACK_SAMPLES
                    )
            case ev.UserSpeechStopped(offset):
                self._end_pending = None  # the marker ends the turn
                guess = self._early.speech_stopped(offset)
                if guess is not None and self._guess is not None and self._guess[0] is guess:
                    self._recognized = self._guess[1]
                    self._confirmed = guess
                self._guess = None
                self._collector.speech_stopped(offset)
            case ev.SendText(text):
                self._jobs.put_nowait(text)
            case ev.SendToolResult(call_id, _name, result_json, status):
                late = self._tool_calls.received(call_id, result_json, status)
                if late is not None:
                    self._jobs.put_nowait(late)
            case ev.CancelResponse():
                self._utterance_overlaps_floor = False  # this speech did interrupt us
                self._cancel_response()
            case ev.EndSession():
                await self._shutdown()
                return
        self._queue_utterances()

    async def events(self) -> AsyncIterator[ev.BackendEvent]:
        while True:
            event = await self._events.get()
            if event is None:
                return
            yield event

    async def aclose(self) -> None:
        await self._shutdown()

    # --- input ----------------------------------------------------------------------------------

    def _queue_utterances(self) -> None:
        for utterance in self._collector.take():
            self._in_utterance = False
            recognized, self._recognized = self._recognized, None
            if self._ended_early is not None:
                self._ended_early = None  # answered before the marker: not a second time
                continue
            if self._utterance_overlaps_floor:
                self._utterance_overlaps_floor = False
                log.debug("dropped %d ms of speech over the assistant", len(utterance) // 32)
                continue
            self._jobs.put_nowait(Utterance(utterance, recognized))

    def _recognize_early(self, guess: Guess) -> None:
        """Start preparing the answer to a guessed utterance (see ``early.py``); a newer guess
        replaces an older one, whose result is then never used."""
        # read with the tail the collector's utterance would have (Guess.padded says why)
        audio = guess.padded(self._pad_samples)
        task = self._foresight.start(
            audio,
            speculate=self._speculates(),
            stands=lambda: self._early.current is guess or self._confirmed is guess,
            clock=self._clock,
        )
        self._preparing.add(task)
        task.add_done_callback(self._preparing.discard)
        if self._early_end:
            task.add_done_callback(lambda done: self._end_turn_early(guess, done))
        self._guess = (guess, task)

    def _end_turn_early(self, guess: Guess, prepared: asyncio.Task[Prepared]) -> None:
        """End the user's turn now and answer the guess, when its reading may end the turn
        early (a complete request, one that only lacks an argument, or no request:
        `endpoint.py`) and it still stands (no speech since), and nothing else is being
        answered; the core cancels the answer if the user goes on. Before the silence has
        lasted the reading's `Prepared.end_after`, the decision waits for it (`send` asks
        again)."""
        if self._end_pending is not None and self._end_pending[0] is guess:
            self._end_pending = None  # decided now (a late older guess keeps a newer one's)
        if (
            prepared.cancelled()
            or prepared.exception() is not None
            or prepared.result().end_after is None
            or self._closed
            or self._early.current is not guess
            or self._ended_early is not None
            or self._job is not None
            or not self._jobs.empty()
            or self._utterance_overlaps_floor
        ):
            return
        end_after = prepared.result().end_after
        if end_after is not None and self._position - guess.silence_start < end_after:
            self._end_pending = (guess, prepared)
            return
        job = Utterance(guess.pcm, prepared, ended_early=True)
        self._ended_early = job
        self._emit(ev.UserTurnEnded(guess.silence_start))
        self._jobs.put_nowait(job)

    def _cancel_response(self) -> None:
        self._floor_until = self._position  # the client flushed our audio
        early, self._ended_early = self._ended_early, None
        if early is not None:
            # The user went on after the turn was ended early: the core waits for this
            # answer's AssistantTurnEnded (INTERRUPTED), unless it already ended; the
            # utterance, still being collected, is answered whole at its marker.
            # Ended here, whether queued (it never starts) or running: its task may not
            # have run once yet, and a task cancelled then never runs its handler. A task
            # that is done has sent its end (the worker is just not back yet).
            turn = self._turn if self._job is early else None
            running = turn is not None and not turn.done()
            if (running or not early.started) and not early.void:
                early.void = True
                if turn is not None:
                    turn.cancel()
                self._emit(ev.AssistantTurnEnded(ev.StopReason.INTERRUPTED))
            return
        if self._turn is not None and self._response_open:
            self._turn.cancel()

    # --- the worker -----------------------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            job = await self._jobs.get()
            if isinstance(job, Utterance):
                if job.void:
                    continue
                job.started = True
            self._job = job
            self._turn = asyncio.create_task(self._answer(job))
            try:
                # wait() rather than await: a cancelled turn must not cancel the worker.
                await asyncio.wait({self._turn})
            finally:
                turn, self._turn, self._job = self._turn, None, None
                turn.cancel()
            error = None if turn.cancelled() else turn.exception()
            if error is not None:
                log.error("local engine turn failed", exc_info=error)
                self._emit(ev.BackendFailed("LOCAL_ENGINE_FAILED", f"local engine: {error}"))
                self._finish_events()
                return

    async def _answer(self, job: Utterance | str | ToolAnswer) -> None:
        """One user turn, from audio (or typed text) to the end of the spoken answer; or the
        answer to the result of a call that outlived its turn."""
        prepared: Prepared | None = None
        speculation: asyncio.Future[str] | None = None
        try:
            if isinstance(job, ToolAnswer):
                learn(job.call, job.result_json, self._clock_zones)
                await self._speaker.speak(self._dialogue.answer(job.call, job.result_json))
                self._emit(ev.AssistantTurnEnded(ev.StopReason.END_TURN))
                return
            if isinstance(job, Utterance):
                if job.early is not None:
                    prepared = await job.early
                    heard = prepared.transcript
                else:
                    # No guess stood for this utterance (a noisy room makes none, or speech
                    # resumed): read it now, with Whisper beside pocketsphinx as on a guess.
                    heard, started = await self._reader.run(
                        self._reader.recognize_guess, job.pcm, self._speculates()
                    )
                    speculation = self._reader.speculation(started)
                text = self._dialogue.hear(
                    heard.text, heard.alternatives, today=self._clock().date()
                )
                if prepared is not None and prepared.reread and prepared.reread[0] == text:
                    text = prepared.reread[1]
                else:
                    text = await self._reader.look_again(
                        job.pcm, text, self._dialogue, self._clock().date(), speculation
                    )
                if text:
                    self._emit(ev.UserTranscript(text, True))
            else:
                text = job  # typed: the core already shows and records the user's text
            action = self._dialogue.respond(text, today=self._clock().date())
            said = ""
            if isinstance(action, ToolCall):
                if prepared is not None and prepared.prefix_for == action and prepared.audio:
                    # The answer's start, prepared in the stop wait, plays while the tool runs.
                    said = prepared.spoken or ""
                    self._speaker.play(await prepared.audio)
                reply = await self._call_tool(action, job)
            else:
                reply = action
            await self._speaker.speak(reply, prepared, said=said)
            self._emit(ev.AssistantTurnEnded(ev.StopReason.END_TURN))
        except asyncio.CancelledError:
            # a void early answer was ended by `_cancel_response`
            if self._response_open and not (isinstance(job, Utterance) and job.void):
                self._emit(ev.AssistantTurnEnded(ev.StopReason.INTERRUPTED))
            raise
        finally:
            self._response_open = False
            if speculation is not None:
                speculation.cancel()  # unused (or done): a decode not started never runs

    async def _call_tool(self, call: ToolCall, job: Utterance | str | ToolAnswer) -> Reply:
        result_json = await self._tool_calls.result(call, job)
        learn(call, result_json, self._clock_zones)
        return self._dialogue.answer(call, result_json)

    def _speculates(self) -> bool:
        """Whether to read Whisper beside pocketsphinx on an utterance (reading.py)."""
        return self._speculate and self._reader.will_speculate(self._dialogue)

    # --- output and shutdown ---------------------------------------------------------------------

    def _emit(self, event: ev.BackendEvent) -> None:
        if not self._closed:
            self._events.put_nowait(event)

    def _respond(self, event: ev.BackendEvent) -> None:
        """Emit output of the current turn (a tool call, text, audio): the core has now seen
        the response, so a cancel must end it."""
        self._response_open = True
        self._emit(event)

    def _extend_floor(self, samples: int, rate: int) -> None:
        """Our audio just sent plays after what was sent before (or from now)."""
        played = samples * _SAMPLE_RATE // rate
        self._floor_until = max(self._floor_until, self._position) + played

    def _finish_events(self) -> None:
        if not self._closed:
            self._closed = True
            self._events.put_nowait(None)  # ends events()

    async def _shutdown(self) -> None:
        if self._shut_down:
            return
        self._shut_down = True
        if self._on_close is not None:
            self._on_close(self)
        self._finish_events()
        self._tool_calls.cancel()
        tasks: list[asyncio.Task[Any]] = [t for t in (self._turn, self._worker) if t is not None]
        tasks += self._preparing
        for task in tasks:
            task.cancel()
        # Wait for the tasks to unwind so none outlives the session (work already running in
        # the executor finishes there; the backend's executor shutdown waits for it).
        await asyncio.wait(tasks)
        for task in tasks:
            if not task.cancelled() and task.exception() is not None:
                log.debug("local session task ended with %r", task.exception())
