"""One live conversation: a ``Converse`` stream wrapped in typed sends and events.

Created by ``Client.converse(...)``; use it as an async context manager::

    async with client.converse(session_config()) as conversation:
        print("session", conversation.session.session_id)
        await conversation.send_text("What time is it?")
        await conversation.end_input()
        async for event in conversation:
            ...

Entering the block opens the stream, sends the ``SessionConfig`` and waits for the server's
``SessionStarted``; an UNAVAILABLE status up to that point is retried with backoff (nothing
but the configuration has been sent).

Once the session has started, a server replica going away does not end the conversation
(unless ``AutoResume.off()``): after ``GoingAway`` the conversation waits for a safe point
(no user speech in progress, no answer outstanding), half-closes the old stream and reads it
to its end (the old replica saves the final state), then opens a new stream through the same
target (a balancer picks a live replica), resumes with the last resume token and sends again
the microphone audio the new replica needs (see :mod:`.resume`); the iteration then yields a
``Resumed`` event. A stream that ends mid-way with UNAVAILABLE (or CANCELLED by a proxy)
resumes the same way at once. Sends made meanwhile are kept and sent on the new stream. A
refused resume ends the conversation with :class:`~sonicwire.client.errors.ResumeFailedError`.

Any other failure ends the conversation with a typed
:class:`~sonicwire.client.errors.SonicwireError`, raised from the iteration (or from the send
that noticed it). Leaving the block hangs up: the stream is cancelled if it is still open and
running tool handlers are cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, Self

import grpc
from grpc import aio

from sonicwire.v1 import voice_service_pb2 as pb

from ._status import CORE_WRITE_ERROR, FirstStatus
from .errors import (
    CallCancelledError,
    ConversationClosedError,
    DeadlineExceededError,
    ProtocolError,
    ResumeFailedError,
    SonicwireError,
    UnavailableError,
    error_from_rpc,
    error_from_status,
)
from .events import (
    Event,
    GoingAway,
    Resumed,
    SessionStarted,
    SpeechActivity,
    SpeechActivityKind,
    StopReason,
    ToolCall,
    ToolExecutor,
    TurnComplete,
    event_from_proto,
)
from .resume import AutoResume, ReplayBuffer, bytes_per_ms
from .retry import RetryPolicy
from .tools import ClientTool, run_tool

__all__ = ["Conversation"]

_log = logging.getLogger("sonicwire.client")
StartCall = Callable[[], Any]
"""Opens a new ``Converse`` call (a ``grpc.aio.StreamStreamCall`` or a test double)."""


class Conversation:
    """A live ``Converse`` stream. Obtain one from ``Client.converse()``.

    Sends are coroutines that may be called from any task of the loop (they are serialised).
    Iterate the conversation from a single task to receive events; iteration also answers
    ``ToolCall`` events for the client tools given to ``Client.converse(tools=...)``.
    """

    def __init__(
        self,
        start_call: StartCall,
        config: pb.SessionConfig,
        *,
        tools: Mapping[str, ClientTool] | None = None,
        retry: RetryPolicy | None = None,
        start_timeout: float | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        auto_resume: AutoResume | None = None,
    ) -> None:
        """Prepare a conversation; nothing happens on the network until it is started.

        Prefer ``Client.converse()``, which fills these in.

        Args:
            start_call: opens a new ``Converse`` call; called once per connection attempt.
            config: the ``SessionConfig`` sent as the first message.
            tools: client tools answered automatically, by name.
            retry: connection retry policy for UNAVAILABLE before ``SessionStarted``.
            start_timeout: seconds to wait for ``SessionStarted`` over all attempts.
            sleep: the coroutine used for backoff (for tests).
            auto_resume: how to survive the server replica going away; ``None`` (here, not
                in ``Client.converse``) means off.
        """
        self._start_call = start_call
        self._config = config
        self._tools: dict[str, ClientTool] = dict(tools or {})
        self._retry = retry or RetryPolicy()
        self._start_timeout = start_timeout
        self._sleep = sleep
        self._call: Any = None
        self._status = FirstStatus()
        self._session: SessionStarted | None = None
        self._pending: deque[Event] = deque()
        self._write_lock = asyncio.Lock()
        self._tool_tasks: set[asyncio.Task[None]] = set()
        self._input_ended = False
        self._finished = False
        self._closed = False
        self._auto = auto_resume if auto_resume is not None and auto_resume.enabled else None
        self._replay: ReplayBuffer | None = None  # set at start when auto-resume is on
        self._fatal: SonicwireError | None = None  # what ended the conversation for good
        self._switching = False  # no stream takes input: sends are kept for the next one
        self._moving = False  # GoingAway seen: move at the next safe point
        self._move_now = False
        self._texts: list[str] = []  # typed turns not answered yet (sent again on a resume)
        self._held: list[pb.ConverseRequest] = []  # tool results sent while switching
        self.attempts = 0
        """How many times the stream was opened (1 unless a connection was retried)."""
        self.resumes = 0
        """How many times the conversation moved to a new stream (auto-resume)."""

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def start(self) -> SessionStarted:
        """Open the stream, send the configuration and wait for ``SessionStarted``.

        Returns:
            The ``SessionStarted`` event (also the first event the iteration yields).

        Raises:
            UnavailableError: the server stayed unreachable for every attempt of the policy.
            DeadlineExceededError: no ``SessionStarted`` within the start timeout.
            ProtocolError: the server's first message was not ``SessionStarted``.
            SonicwireError: any other status the server ended the stream with (e.g.
                ``InvalidArgumentError`` with reason ``AUDIO_FORMAT_UNSUPPORTED``).
        """
        if self._session is not None:
            return self._session
        loop = asyncio.get_running_loop()
        deadline = None if self._start_timeout is None else loop.time() + self._start_timeout
        attempt = 0
        while True:
            attempt += 1
            self.attempts = attempt
            try:
                session = await self._open_once(deadline, loop)
            except UnavailableError as error:
                delay = self._retry.delay(attempt)
                out_of_time = deadline is not None and loop.time() + delay >= deadline
                if attempt >= self._retry.max_attempts or out_of_time:
                    raise
                _log.debug("Converse unavailable (%s); retrying in %.2fs", error, delay)
                await self._sleep(delay)
                continue
            self._session = session
            self._pending.append(session)
            if self._auto is not None:
                rate, exact = bytes_per_ms(session.config)
                self._replay = ReplayBuffer(
                    bytes_per_ms=rate,
                    exact_offsets=exact,
                    capacity_ms=self._auto.buffer_ms,
                    lookback_ms=self._auto.lookback_ms,
                )
            return session

    async def _open_once(
        self, deadline: float | None, loop: asyncio.AbstractEventLoop
    ) -> SessionStarted:
        call = self._call = self._start_call()
        self._status = FirstStatus()
        add_done_callback = getattr(call, "add_done_callback", None)
        if add_done_callback is not None:
            add_done_callback(self._status)
        try:
            # If the call already ended, read() below raises its status.
            with contextlib.suppress(aio.AioRpcError, asyncio.InvalidStateError):
                await call.write(pb.ConverseRequest(config=self._config))
            remaining = None if deadline is None else max(deadline - loop.time(), 0.0)
            async with asyncio.timeout(remaining):
                first = await call.read()
        except aio.AioRpcError as exc:
            raise self._error(exc) from None
        except TimeoutError:
            call.cancel()
            raise DeadlineExceededError(
                f"no SessionStarted within {self._start_timeout:g}s",
                code=grpc.StatusCode.DEADLINE_EXCEEDED,
            ) from None
        if first is aio.EOF:
            raise ProtocolError("the server ended the stream before SessionStarted")
        event = event_from_proto(first)
        if not isinstance(event, SessionStarted):
            call.cancel()
            kind = first.WhichOneof("response")
            raise ProtocolError(f"expected SessionStarted as the first message, got {kind}")
        return event

    async def aclose(self) -> None:
        """Hang up: cancel the stream if it is still open and cancel running tool handlers.

        Safe to call more than once. Events not yet read are dropped.
        """
        if self._closed:
            return
        self._closed = True
        for task in self._tool_tasks:
            task.cancel()
        for task in list(self._tool_tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._call is not None and not self._finished:
            self._call.cancel()

    @property
    def session(self) -> SessionStarted:
        """The ``SessionStarted`` event.

        Raises:
            RuntimeError: the conversation has not been started.
        """
        if self._session is None:
            raise RuntimeError("the conversation has not started; use `async with`")
        return self._session

    @property
    def session_id(self) -> str:
        """The server-assigned session id."""
        return self.session.session_id

    @property
    def done(self) -> bool:
        """True once the stream has ended (all events read) or the conversation was closed."""
        return self._finished or self._closed

    # -- sending ---------------------------------------------------------------------------

    async def send_audio(self, audio: bytes) -> None:
        """Send microphone audio in the session's input format.

        Args:
            audio: PCM s16le, a whole number of samples, at most
                ``session.limits.max_audio_chunk_bytes`` (65536) bytes.

        Raises:
            ConversationClosedError: after ``end_input()`` or once the stream has ended.
            SonicwireError: the server ended the stream with an error status.
        """
        await self._write(pb.ConverseRequest(audio=pb.AudioInput(audio=audio)))

    async def send_text(self, text: str) -> None:
        """Send a typed user turn (at most 4096 UTF-8 bytes).

        Raises:
            ConversationClosedError: after ``end_input()`` or once the stream has ended.
            SonicwireError: the server ended the stream with an error status.
        """
        await self._write(pb.ConverseRequest(text=pb.TextInput(text=text)))

    async def report_playback(
        self, turn_id: str, played_ms: int, *, output_latency_ms: int = 0
    ) -> None:
        """Tell the server how much of a turn's audio has actually been played.

        The server aligns echo cancellation with it and truncates the history to what the
        user heard when they interrupt. ``output_latency_ms``: what the audio device adds
        after that (if the platform tells you; 0 = unknown), a first guess for the echo
        canceller, which finds the real delay itself.

        Raises:
            ConversationClosedError: after ``end_input()`` or once the stream has ended.
            SonicwireError: the server ended the stream with an error status.
        """
        await self._write(
            pb.ConverseRequest(
                playback=pb.PlaybackUpdate(
                    turn_id=turn_id, played_ms=played_ms, output_latency_ms=output_latency_ms
                )
            )
        )

    async def send_tool_result(
        self, tool_call_id: str, content: str, *, is_error: bool = False
    ) -> None:
        """Answer a ``ToolCall`` whose executor is CLIENT.

        Only needed for tools without a handler in ``Client.converse(tools=...)``.

        Args:
            tool_call_id: the ``ToolCall.id``.
            content: the result, preferably a JSON document.
            is_error: True when the tool failed; ``content`` then describes the failure.

        Raises:
            ConversationClosedError: after ``end_input()`` or once the stream has ended.
            SonicwireError: the server ended the stream with an error status.
        """
        await self._write(
            pb.ConverseRequest(
                tool_result=pb.ToolResult(
                    tool_call_id=tool_call_id, content=content, is_error=is_error
                )
            ),
            allow_after_end=True,
        )

    async def end_input(self) -> None:
        """Half-close: no more input. The server ends the stream after its current turn.

        Tool results may still be sent by the automatic handlers. Idempotent.
        """
        if self._input_ended or self.done:
            self._input_ended = True
            return
        self._input_ended = True
        # Half-close only once the automatic tool handlers have answered: after done_writing
        # the stream can carry no ToolResult.
        for task in list(self._tool_tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.shield(task)
        async with self._write_lock:
            if self._switching:
                return  # the resumed stream is half-closed once its input was sent again
            with contextlib.suppress(aio.AioRpcError, asyncio.InvalidStateError):
                await self._require_call().done_writing()

    def _check_open(self, allow_after_end: bool) -> None:
        if self._closed:
            raise ConversationClosedError("the conversation was closed")
        if self._fatal is not None:
            raise self._fatal
        if self._input_ended and not allow_after_end:
            raise ConversationClosedError("input already ended (end_input() was called)")

    def _require_call(self) -> Any:
        if self._call is None or self._session is None:
            raise RuntimeError("the conversation has not started; use `async with`")
        return self._call

    async def _write(self, request: pb.ConverseRequest, *, allow_after_end: bool = False) -> None:
        call = self._require_call()
        self._check_open(allow_after_end)
        if self._replay is not None:
            async with self._write_lock:
                await self._write_resumable(request, self._replay)
            return
        async with self._write_lock:
            try:
                await call.write(request)
            except aio.AioRpcError as exc:
                raise self._error(exc) from None
            except asyncio.InvalidStateError:
                raise await self._ended_error(call) from None

    async def _write_resumable(self, request: pb.ConverseRequest, replay: ReplayBuffer) -> None:
        # Called with the write lock held. Input the next stream needs is kept: audio in the
        # replay buffer, typed turns until answered, tool results while no stream takes them.
        kind = request.WhichOneof("request")
        if kind == "audio":
            sent = not self._switching and await self._try_write(request)
            replay.captured(request.audio.audio, sent=sent)
            return
        if kind == "text":
            self._texts.append(request.text.text)
            replay.text_sent()
        if self._switching:
            if kind == "tool_result":
                self._held.append(request)
            return  # playback reports describe the old stream's audio: dropped
        await self._try_write(request)

    async def _try_write(self, request: pb.ConverseRequest) -> bool:
        """Write to the live stream; False when it has ended in a way the reader resumes."""
        call = self._call
        try:
            await call.write(request)
            return True
        except aio.AioRpcError as exc:
            error = self._error(exc)
        except asyncio.InvalidStateError:
            error = await self._ended_error(call)
        if not self._resumable(error):
            raise error
        self._switching = True  # the reading side sees the status and moves
        return False

    def _resumable(self, error: SonicwireError) -> bool:
        # UNAVAILABLE: the replica is draining, gone or unreachable. CANCELLED that we did not
        # ask for: how L7 proxies report a replica that went away under a stream.
        if self._auto is None or self._closed:
            return False
        return isinstance(error, UnavailableError | CallCancelledError)

    def _error(self, exc: aio.AioRpcError) -> SonicwireError:
        return self._status.error or error_from_rpc(exc)

    async def _ended_error(self, call: Any) -> SonicwireError:
        if self._status.error is not None:
            return self._status.error
        code = await call.code()
        if code is not None and code != grpc.StatusCode.OK:
            details = await call.details()
            trailers = await call.trailing_metadata()
            return error_from_status(code, details, trailers)
        return ConversationClosedError("the server already ended the conversation")

    # -- receiving -------------------------------------------------------------------------

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Event:
        event = await self.receive()
        if event is None:
            raise StopAsyncIteration
        return event

    async def receive(self) -> Event | None:
        """Wait for the next event.

        Returns:
            The next event, or ``None`` once the server has ended the stream normally (or
            the conversation was closed).

        Raises:
            SonicwireError: the server ended the stream with an error status (the typed
                subclass for its code, with the ``ErrorInfo`` reason).
        """
        self._require_call()
        while True:
            if self._pending:
                return self._pending.popleft()
            if self._move_now and not self.done:
                self._move_now = False
                # Input sent since (a typed turn) may have taken the safe point away.
                if self._replay is not None and self._replay.idle and not self._input_ended:
                    await self._move(None)
                    continue
            if self.done:
                return None
            call = self._call
            try:
                message = await call.read()
            except aio.AioRpcError as exc:
                error = self._error(exc)
                if self._resumable(error) and not self.done:
                    await self._move(error)
                    continue
                self._finished = True
                self._fatal = error
                raise error from None
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if self._closed and (task is None or task.cancelling() == 0):
                    return None  # aclose() cancelled the call under our read
                raise
            if message is aio.EOF:
                if self._moving and not self._input_ended and not self._closed:
                    await self._move(None)  # a draining replica ended it before a safe point
                    continue
                self._finished = True
                return None
            event = event_from_proto(message)
            if event is None:
                continue  # a message kind from a newer server
            if self._replay is not None:
                self._observe(event, self._replay)
            if isinstance(event, ToolCall):
                self._dispatch_tool(event)
            return event

    # -- auto-resume -----------------------------------------------------------------------

    def _observe(self, event: Event, replay: ReplayBuffer) -> None:
        """Track safe points (see :mod:`.resume`) and decide when to move after GoingAway."""
        match event:
            case SpeechActivity(kind=SpeechActivityKind.STARTED):
                replay.speech_started()
            case SpeechActivity(kind=SpeechActivityKind.STOPPED, offset_ms=offset_ms):
                replay.speech_stopped(offset_ms)
            case TurnComplete(stop_reason=reason) if reason is not StopReason.TOOL_USE:
                replay.turn_completed()
                if replay.outstanding == 0:
                    self._texts.clear()
            case GoingAway():
                self._moving = True
            case _:
                pass
        # After end_input() at a safe point the stream is ending anyway: no need to move.
        if self._moving and replay.idle and not self._input_ended:
            self._move_now = True  # after this event has been handed to the application

    async def _move(self, cause: SonicwireError | None) -> None:
        """Resume the conversation on a new stream; ``cause`` None for GoingAway."""
        assert self._auto is not None and self._replay is not None and self._session is not None
        auto, replay = self._auto, self._replay
        async with self._write_lock:
            self._switching = True
        old = self._call
        if cause is None:
            await self._finish_old(old, auto.drain_timeout_s)
        else:
            old.cancel()
        self._moving = self._move_now = False
        session_id = self._session.session_id
        self._config = pb.SessionConfig(
            resume_session_id=session_id, resume_token=self._session.resume_token
        )
        loop = asyncio.get_running_loop()
        attempt = 0
        while True:
            attempt += 1
            self.attempts += 1
            deadline = None if self._start_timeout is None else loop.time() + self._start_timeout
            try:
                session = await self._open_once(deadline, loop)
                if session.session_id != session_id:
                    self._call.cancel()
                    raise ProtocolError(
                        f"resuming {session_id} started another conversation "
                        f"({session.session_id}); the server ignored the resume"
                    )
                break
            except SonicwireError as error:
                # A replica that refuses the new stream at once (draining) can surface as
                # INTERNAL "from Core" (grpc/grpc#36066): nothing was said yet, so retry it too.
                masked = (
                    error.code == grpc.StatusCode.INTERNAL and error.message == CORE_WRITE_ERROR
                )
                retry = masked or isinstance(error, UnavailableError | CallCancelledError)
                if not retry or attempt >= auto.retry.max_attempts or self._closed:
                    self._finished = True
                    failure = ResumeFailedError(
                        error, session_id=session_id, attempts=attempt, interrupted_by=cause
                    )
                    self._fatal = failure
                    raise failure from error
                _log.debug("resume of %s: %s; retrying", session_id, error)
                await self._sleep(auto.retry.delay(attempt))
        self._session = session
        self.resumes += 1
        async with self._write_lock:
            chunks, stats = replay.replay()
            resent = [pb.ConverseRequest(audio=pb.AudioInput(audio=c)) for c in chunks]
            texts, self._texts = self._texts, []
            held, self._held = self._held, []
            live = True
            for request in resent:
                live = live and await self._try_write(request)
            for text in texts:
                self._texts.append(text)
                replay.text_sent()
                request = pb.ConverseRequest(text=pb.TextInput(text=text))
                live = live and await self._try_write(request)
            for request in held:
                live = live and await self._try_write(request)
            if live and self._input_ended:
                with contextlib.suppress(aio.AioRpcError, asyncio.InvalidStateError):
                    await self._call.done_writing()
            # A write that failed left `_switching` set: the reader moves again, and the
            # buffer still holds everything.
            self._switching = not live
        reason = "GOING_AWAY"
        if cause is not None:
            reason = cause.reason or (cause.code.name if cause.code is not None else "ERROR")
        self._pending.append(
            Resumed(
                session_id=session_id,
                attempt=attempt,
                reason=reason,
                audio_resent_ms=replay.ms(stats.resent_bytes),
                audio_lost_ms=replay.ms(stats.lost_bytes),
                session=session,
            )
        )
        _log.info("conversation %s resumed (%s, attempt %d)", session_id, reason, attempt)

    async def _finish_old(self, old: Any, timeout_s: float) -> None:
        # Half-close and read the old stream to its end: by then the old replica has saved
        # the conversation's final state, so the new replica loads it, not an older one (and
        # the old replica's last save cannot overwrite what the new one saves).
        with contextlib.suppress(aio.AioRpcError, asyncio.InvalidStateError, aio.UsageError):
            await old.done_writing()
        with contextlib.suppress(TimeoutError, aio.AioRpcError, asyncio.InvalidStateError):
            async with asyncio.timeout(timeout_s):
                while (message := await old.read()) is not aio.EOF:
                    event = event_from_proto(message)
                    if event is not None and not isinstance(event, GoingAway):
                        self._pending.append(event)
        old.cancel()

    def _dispatch_tool(self, call: ToolCall) -> None:
        if call.executor is not ToolExecutor.CLIENT:
            return
        tool = self._tools.get(call.name)
        if tool is None:
            return  # declared by hand: the application answers with send_tool_result()
        task = asyncio.create_task(self._answer_tool(call, tool), name=f"tool:{call.name}")
        self._tool_tasks.add(task)
        task.add_done_callback(self._tool_tasks.discard)

    async def _answer_tool(self, call: ToolCall, tool: ClientTool) -> None:
        content, is_error = await run_tool(tool, call.arguments)
        try:
            await self.send_tool_result(call.id, content, is_error=is_error)
        except SonicwireError as exc:
            _log.debug("could not send the result of tool call %s: %s", call.id, exc)
