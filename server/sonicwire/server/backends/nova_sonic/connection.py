"""`NovaSonicSession`: one conversation with Nova Sonic (its backend, one per process, is
``backend.py``'s `NovaSonicBackend`).

Wiring: ``backend = NovaSonicBackend.from_options(**options)`` (options and environment are
described in ``config.py``), then per conversation ``session = await backend.open(options)``;
pump commands into ``await session.send(command)``, iterate ``session.events()``, and finish
with ``await session.aclose()``. `open` raises `BackendError`; failures later arrive as one
`BackendFailed` event, after which `events` ends.

A session keeps one *current* Nova stream (`_Link`) and replaces it when needed:

- continuation (``continuation.py``): before Nova's ~8-minute limit, in a quiet moment;
- reconnect: after a transient failure (throttling, stream error, 5xx, connection loss,
  "System instability", stream limit), up to ``reconnects`` attempts with exponential backoff,
  with the history and recent audio replayed; if those fail too, the session reports
  `BackendFailed` with the reason from ``errors.py``.

Only the current stream's output reaches the core; a replaced stream is closed in the
background (its late output is dropped).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from sonicwire.server.backends.base import BackendOptions
from sonicwire.server.backends.nova_sonic import codec
from sonicwire.server.backends.nova_sonic.continuation import (
    AudioRing,
    ContinuationPolicy,
    QuietTracker,
    ReplayLog,
    ReplayMarks,
    run_continuation,
)
from sonicwire.server.backends.nova_sonic.decoder import OutputDecoder
from sonicwire.server.backends.nova_sonic.errors import BACKEND_TIMEOUT, is_transient, retry_delay
from sonicwire.server.backends.nova_sonic.speak_first import (
    CuePlayer,
    CueTranscripts,
    cached_cue,
)
from sonicwire.server.backends.nova_sonic.stream import NovaStream, StreamOpener
from sonicwire.server.codecs.downsample import Downsampler2x
from sonicwire.server.core import events as ev
from sonicwire.server.core.errors import BackendError
from sonicwire.server.core.history import Message

__all__ = ["NovaSonicSession"]

_log = logging.getLogger(__name__)

# VAD reports speech this long after it began; a replayed utterance starts that much earlier.
_SPEECH_PREROLL_MS = 300


@dataclass(eq=False)
class _Link:
    """One stream in use by the session, with its per-stream protocol state."""

    stream: NovaStream
    prompt_name: str
    decoder: OutputDecoder
    opened_at: float
    generation: int
    audio_content: str | None = None
    pump: asyncio.Task[None] | None = None
    healthy: bool = False
    tool_calls: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class _Prepared:
    stream: NovaStream
    prompt_name: str
    opened_at: float
    generation: int


class NovaSonicSession:
    """One conversation over Nova streams. Create with `NovaSonicBackend.open`."""

    def __init__(
        self,
        opener: StreamOpener,
        setup: codec.StreamSetup,
        options: BackendOptions,
        new_name: Callable[[], str] | None = None,
    ) -> None:
        s = opener.settings
        self.session_id = options.session_id
        self._opener = opener
        self._settings = s
        self._setup = setup
        self._new_name = new_name or (lambda: str(uuid.uuid4()))
        self._policy = ContinuationPolicy(
            threshold_s=s.continuation_threshold_s,
            max_defer_s=s.continuation_max_defer_s,
            audio_replay_ms=s.audio_replay_ms,
            retry_s=min(5.0, max(s.continuation_threshold_s / 4, 0.05)),
            prepared_max_idle_s=s.continuation_prepared_idle_s,
        )
        self._ring = AudioRing(max(s.audio_replay_ms, 0) + 20_000, setup.input_sample_rate)
        # A telephone call goes to Nova at 8 kHz: the front end's 16 kHz audio, brought back
        # down to the caller's band (frame by frame; soxr would hold audio back in blocks).
        self._downsample = Downsampler2x() if setup.input_sample_rate == 8_000 else None
        self._marks = ReplayMarks(preroll=self._ring.samples(_SPEECH_PREROLL_MS))
        self._log = ReplayLog(options.history)
        self._quiet = QuietTracker(self._policy.answer_wait_s)
        self._events: asyncio.Queue[ev.BackendEvent | None] = asyncio.Queue()
        self._link: _Link | None = None
        self._generation = 0
        self._reconnects_left = s.reconnects
        self._usage_base = (0, 0, 0)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._continuation: asyncio.Task[None] | None = None
        self._finishing: asyncio.Task[None] | None = None
        self._speak_first = options.speak_first
        # Until the assistant's first output: a stream that replaces a failed one then is
        # asked to speak first again (the failed one took the prompt or the cue with it).
        self._greeting_due = bool(options.speak_first)
        # Nova 1 speaks first on a spoken cue (``speak_first.py``): mic audio waits while the
        # cue plays, and Nova's transcription of the cue is no user's turn.
        self._cue: asyncio.Task[None] | None = None
        self._cue_text = CueTranscripts(active=False)
        self._closed = False
        self._ended = False  # a failure ended the conversation; commands are ignored
        self.streams_opened = 0

    # --- public --------------------------------------------------------------------------

    @property
    def history(self) -> tuple[Message, ...]:
        """The conversation as it would be replayed into a fresh stream now."""
        return self._log.messages

    async def start(self) -> None:
        """Open the first stream, retrying transient failures (``reconnects`` times with
        exponential backoff: Nova 2's "System instability detected" comes early in calls).
        Raises `BackendError`."""
        attempt = 0
        while True:
            try:
                prepared = await self._prepare(f" #{self.streams_opened + 1}")
                break
            except BackendError as error:
                if not is_transient(error) or attempt >= self._settings.reconnects:
                    raise
                await self._backoff(attempt, error)
                attempt += 1
        self._greet(self._attach(prepared, self._log.messages, replay_audio=[]))
        self._continuation = self._spawn(
            run_continuation(_Host(self), self._policy), "nova-continuation"
        )

    async def send(self, command: ev.BackendCommand) -> None:
        """Deliver a command; waits only while Bedrock's writer is behind (bounded outbox)."""
        if self._closed or self._ended or self._finishing is not None:
            return
        link = self._link
        now = asyncio.get_running_loop().time()
        match command:
            case ev.SendAudio(pcm):
                if self._downsample is not None:
                    pcm = self._downsample.process(pcm)
                self._ring.append(pcm)
                cue_playing = self._cue is not None and not self._cue.done()
                if link is not None and link.audio_content is not None and pcm and not cue_playing:
                    link.stream.send(codec.audio_input(link.prompt_name, link.audio_content, pcm))
                    # Backpressure: wait while Bedrock's writer is behind (bounded outbox).
                    await link.stream.writable()
            case ev.UserSpeechStarted():
                self._quiet.speech_started()
                self._marks.speech_started(self._ring.position)
            case ev.UserSpeechStopped():
                self._quiet.speech_stopped(now)
            case ev.SendText(text):
                self._send_text(link, text, now)
            case ev.SendToolResult(call_id, name, result_json, status):
                if link is not None and call_id in link.tool_calls:
                    link.tool_calls.discard(call_id)
                    if status is not ev.ToolStatus.CANCELLED:
                        # Nova answers the result with no USER turn in between: let it through.
                        link.decoder.user_turn_sent()
                    link.stream.send_many(
                        codec.tool_result(link.prompt_name, self._new_name(), call_id, result_json)
                    )
                else:
                    _log.warning(
                        "nova %s: dropping result of %s (%s): its stream is gone",
                        self.session_id,
                        name,
                        call_id,
                    )
            case ev.CancelResponse(heard_text, _played_ms):
                answer_open = link is not None and link.decoder.turn_open
                self._log.cancelled(heard_text, answer_open=answer_open)
                if link is not None:
                    # Pending tool calls stay pending: the core answers each with a CANCELLED
                    # result, and Nova needs a toolResult for every toolUse or its turn stays
                    # open (LiveKit Agents fixed the same).
                    for event in link.decoder.cancel_response():
                        self._emit(event)
            case ev.EndSession():
                self._finishing = self._spawn(self._finish(), "nova-finish")

    def _greet(self, link: _Link) -> None:
        """Speak first, if asked to and not done yet: Nova 2 on a hidden typed turn, Nova 1
        on the spoken cue."""
        if not (self._speak_first and self._greeting_due):
            return
        if self._setup.nova2:
            self._prompt_hidden(link, self._speak_first)
        else:
            self._play_cue(link)

    def _play_cue(self, link: _Link) -> None:
        """Nova 1: play the speak-first cue into the audio block (see ``speak_first.py``)."""
        rate = self._setup.input_sample_rate
        player = CuePlayer(cached_cue(rate, self._settings.speak_first_cue), rate)
        self._cue_text = CueTranscripts(active=True)
        self._quiet.user_turn_sent(asyncio.get_running_loop().time())

        def send(frame: bytes) -> bool:
            if self._link is not link or link.audio_content is None:
                return False  # the stream was replaced: its successor gets live audio only
            link.stream.send(codec.audio_input(link.prompt_name, link.audio_content, frame))
            return True

        self._cue = self._spawn(player.play(send), "nova-cue")

    def _prompt_hidden(self, link: _Link, text: str) -> None:
        """A typed turn Nova answers but the history does not keep (speak-first: the
        greeting is the conversation's first message, not an answer to a user)."""
        link.decoder.user_turn_sent()
        self._quiet.user_turn_sent(asyncio.get_running_loop().time())
        link.stream.send_many(codec.text_turn(link.prompt_name, self._new_name(), text))

    def _send_text(self, link: _Link | None, text: str, now: float) -> None:
        self._log.user_typed(text)
        self._marks.typed()
        self._quiet.user_turn_sent(now)
        if link is None:
            return  # reconnecting: the text is in the history the new stream gets
        if not self._setup.nova2:
            _log.warning(
                "nova %s: Nova 1 takes no typed turns; kept in history only", self.session_id
            )
            return
        link.decoder.user_turn_sent()
        link.stream.send_many(codec.text_turn(link.prompt_name, self._new_name(), text))

    async def events(self) -> AsyncIterator[ev.BackendEvent]:
        """Core events in order; ends after `EndSession`, a `BackendFailed`, or `aclose`."""
        while (event := await self._events.get()) is not None:
            yield event

    async def aclose(self) -> None:
        """Close promptly: give an orderly close (after `EndSession`) a moment, then end the
        current stream briefly gracefully and cancel every task. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        finishing = self._finishing
        if finishing is not None and not finishing.done():
            await asyncio.wait({finishing}, timeout=min(self._settings.close_timeout_s, 1.0))
        link, self._link = self._link, None
        # Cancelling is safe everywhere: a stream being closed still frees its connection.
        tasks = [t for t in self._tasks if not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if link is not None:
            await self._close_link(
                link, graceful=True, timeout=min(self._settings.close_timeout_s, 0.5)
            )
        self._events.put_nowait(None)

    # --- streams -------------------------------------------------------------------------

    async def _prepare(self, label: str) -> _Prepared:
        prompt_name = self._new_name()
        generation = self._generation
        stream = await self._opener.open(
            codec.opening_events(self._setup, prompt_name, self._new_name), label=label
        )
        self.streams_opened += 1
        return _Prepared(stream, prompt_name, asyncio.get_running_loop().time(), generation)

    def _attach(
        self, prepared: _Prepared, messages: tuple[Message, ...], replay_audio: list[bytes]
    ) -> _Link:
        """Make ``prepared`` the current stream: replay history and audio, start its pump.

        Synchronous on purpose: no audio frame can slip between the old stream and this one.
        """
        self._generation += 1
        link = _Link(
            prepared.stream,
            prepared.prompt_name,
            OutputDecoder(self._setup.output_sample_rate),
            prepared.opened_at,
            self._generation,
        )
        stream = link.stream
        stream.send_many(codec.history_events(link.prompt_name, messages, self._new_name))
        link.audio_content = self._new_name()
        stream.send(
            codec.audio_start(link.prompt_name, link.audio_content, self._setup.input_sample_rate)
        )
        for pcm in replay_audio:
            stream.send(codec.audio_input(link.prompt_name, link.audio_content, pcm))
        self._link = link
        link.pump = self._spawn(self._pump(link), f"nova-pump-{link.generation}")
        return link

    def _retire(self, old: _Link, *, graceful: bool) -> None:
        """Stop using ``old``: end its open answer for the core, close it in the background."""
        for event in old.decoder.close_turn(ev.StopReason.END_TURN):
            self._emit(event)
        inp, out, total = old.decoder.usage
        base = self._usage_base
        self._usage_base = (base[0] + inp, base[1] + out, base[2] + total)
        if old.pump is not None and old.pump is not asyncio.current_task():
            old.pump.cancel()
        self._spawn(
            self._close_link(old, graceful=graceful, timeout=self._settings.close_timeout_s),
            f"nova-close-{old.generation}",
        )

    def _switch(self, prepared: _Prepared) -> bool:
        old = self._link
        if old is None or prepared.generation != self._generation or self._finishing:
            return False
        if prepared.stream.failure is not None:
            # The pre-opened stream died while it waited for a quiet moment (e.g. Nova's
            # "Timed out waiting for input events"): keep the current one and prepare anew.
            _log.warning(
                "nova %s: prepared stream failed (%s); not switching",
                self.session_id,
                prepared.stream.failure.message,
            )
            return False
        messages, replay = self._replay(self._ring.position)
        self._attach(prepared, messages, replay)
        self._retire(old, graceful=True)
        _log.info(
            "nova %s: continued on a new stream (replayed %d messages, %d audio frames)",
            self.session_id,
            len(messages),
            len(replay),
        )
        return True

    def _replay(self, position: int) -> tuple[tuple[Message, ...], list[bytes]]:
        """History and audio for a new stream, each utterance once (see `ReplayMarks`)."""
        window = self._ring.samples(self._policy.audio_replay_ms)
        messages, start = self._marks.plan(self._log.messages, position, window)
        return messages, self._ring.since(start)

    async def _close_link(self, link: _Link, *, graceful: bool, timeout: float) -> None:
        closing = codec.closing_events(link.prompt_name, link.audio_content)
        await link.stream.close(closing, timeout=timeout if graceful else 0)

    # --- output --------------------------------------------------------------------------

    async def _pump(self, link: _Link) -> None:
        try:
            while (raw := await link.stream.receive()) is not None:
                if link is not self._link:
                    return
                if not link.healthy:
                    link.healthy = True
                    self._reconnects_left = self._settings.reconnects
                for event in link.decoder.decode(raw):
                    if isinstance(event, ev.ToolRequested):
                        link.tool_calls.add(event.call_id)
                    self._emit(event)
        except BackendError as error:
            if link is self._link:
                await self._recover(link, error)

    def _emit(self, event: ev.BackendEvent) -> None:
        if not self._cue_text.passes(event):
            return  # Nova's transcription of the speak-first cue
        self._log.observe(event)
        match event:
            case ev.UserTranscript(_, True):
                self._marks.transcript(self._ring.position)
            case ev.UsageReported(inp, out, total):
                base = self._usage_base
                event = ev.UsageReported(base[0] + inp, base[1] + out, base[2] + total)
            case ev.AssistantText() | ev.AssistantAudio() | ev.ToolRequested():
                self._greeting_due = False
                self._quiet.answer_started()
                self._marks.answer_started(self._ring.position)
            case _:
                pass
        self._events.put_nowait(event)

    async def _recover(self, failed: _Link, error: BackendError) -> None:
        """The current stream failed: reconnect with history (with backoff), or report it."""
        self._link = None
        position = self._ring.position
        self._retire(failed, graceful=False)
        if not is_transient(error) or self._reconnects_left <= 0 or self._finishing:
            self._fail(error)
            return
        while True:
            attempt = self._settings.reconnects - self._reconnects_left
            self._reconnects_left -= 1
            if error.reason != BACKEND_TIMEOUT:  # the stream time limit is no overload
                await self._backoff(attempt, error)
            if self._finishing is not None or self._ended or self._closed:
                return
            try:
                prepared = await self._prepare(f" #{self.streams_opened + 1} (reconnect)")
                break
            except BackendError as again:
                if not is_transient(again) or self._reconnects_left <= 0:
                    self._fail(again)
                    return
                error = again
        if self._finishing is not None or self._ended:
            await prepared.stream.close(timeout=0)
            return
        messages, replay = self._replay(position)
        self._greet(self._attach(prepared, messages, replay))

    async def _backoff(self, attempt: int, error: BackendError) -> None:
        delay = retry_delay(attempt, self._settings.retry_backoff_s)
        _log.warning(
            "nova %s: %s; retry %d in %.2f s", self.session_id, error.message, attempt + 1, delay
        )
        await asyncio.sleep(delay)

    def _fail(self, error: BackendError) -> None:
        _log.warning("nova %s: failed: %s (%s)", self.session_id, error.message, error.reason)
        self._events.put_nowait(
            ev.BackendFailed(error.reason, error.message, error.retryable, error.code)
        )
        self._events.put_nowait(None)
        self._ended = True
        if self._continuation is not None:
            self._continuation.cancel()

    async def _finish(self) -> None:
        """`EndSession`: close the stream orderly, then end `events`."""
        if self._continuation is not None:
            self._continuation.cancel()
        link, self._link = self._link, None
        if link is not None:
            if link.pump is not None:
                link.pump.cancel()
            await self._close_link(link, graceful=True, timeout=self._settings.close_timeout_s)
        self._events.put_nowait(None)

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


class _Host:
    """The session as `run_continuation` sees it."""

    def __init__(self, session: NovaSonicSession) -> None:
        self._s = session

    def stream_age(self) -> float | None:
        link = self._s._link
        if link is None:
            return None
        return asyncio.get_running_loop().time() - link.opened_at

    def window(self) -> tuple[float, float]:
        s = self._s
        policy = s._policy
        link = s._link
        ttl = link.stream.credentials_ttl_s if link is not None else None
        margin = s._settings.credential_refresh_margin_s
        if ttl is None or ttl - margin < margin:
            # No expiry, or credentials the resolver could not refresh early: switching
            # sooner would not help (if they expire, the reconnect resolves new ones).
            return policy.threshold_s, policy.max_defer_s
        return min(policy.threshold_s, ttl - margin), min(policy.max_defer_s, margin / 2)

    def is_quiet(self) -> bool:
        link = self._s._link
        busy = link is None or link.decoder.turn_open or bool(link.tool_calls)
        return self._s._quiet.quiet(asyncio.get_running_loop().time(), assistant_busy=busy)

    async def prepare_stream(self) -> object:
        return await self._s._prepare(f" #{self._s.streams_opened + 1}")

    def prepared_failed(self, prepared: object) -> bool:
        assert isinstance(prepared, _Prepared)
        return prepared.stream.failure is not None

    def switch_to(self, prepared: object) -> bool:
        assert isinstance(prepared, _Prepared)
        return self._s._switch(prepared)

    async def discard(self, prepared: object) -> None:
        assert isinstance(prepared, _Prepared)
        await prepared.stream.close(codec.closing_events(prepared.prompt_name, None), timeout=0.5)
