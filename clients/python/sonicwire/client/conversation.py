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

This module is the application's side (sends, events, client tools); opening the streams and
moving to a new one is in :mod:`._resuming`, the base class.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, Self

from grpc import aio

from sonicwire.v1 import voice_service_pb2 as pb

from ._resuming import ResumableStream, StartCall
from ._status import FirstStatus
from .errors import ConversationClosedError, SonicwireError, UnavailableError
from .events import Event, SessionStarted, ToolCall, ToolExecutor, event_from_proto
from .resume import AutoResume, ReplayBuffer, bytes_per_ms
from .retry import RetryPolicy
from .tools import ClientTool, run_tool

__all__ = ["Conversation"]

_log = logging.getLogger("sonicwire.client")


class Conversation(ResumableStream):
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
        # Set once end_input() has let the automatic tool handlers answer: the stream is (or
        # is about to be) half-closed and can carry no more tool results.
        self._results_ended = False
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

    def stop_auto_resume(self) -> None:
        """Stop moving this conversation when its server replica goes away.

        For an application that is itself shutting down with its server (``sonicwire up`` on
        SIGTERM): from now on ``GoingAway`` is only handed to the application, and a stream
        that ends with UNAVAILABLE ends the conversation with that error, as with auto-resume
        off. A move already under way gives up at its next retry. Idempotent; nothing to do
        when auto-resume was off.
        """
        self._auto = None
        self._moving = self._move_now = False

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
        request = pb.ConverseRequest()
        # Set in place: the nested-constructor form copies the AudioInput, audio and all, a
        # second time (a third of the cost of this call, 50 times a second per stream).
        request.audio.audio = audio
        replay = self._replay
        if replay is None:
            await self._write(request)
            return
        # What `_write` does for audio, without its dispatch on the request's kind.
        self._require_call()
        self._check_open(False)
        lock = self._write_lock
        await lock.acquire()
        try:
            await self._write_audio(request, audio, replay)
        finally:
            lock.release()

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
        self._results_ended = True
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
        if self._results_ended:
            # Refused here: grpc.aio would raise on the half-closed call, and reporting that
            # waited for the call's status, which comes only once its responses are read, so
            # a caller that reads in the same task waited for good (red-team session s36).
            raise ConversationClosedError(
                "input already ended (end_input() was called): the stream takes no more tool "
                "results; send them before end_input()"
            )

    def _require_call(self) -> Any:
        if self._call is None or self._session is None:
            raise RuntimeError("the conversation has not started; use `async with`")
        return self._call

    async def _write(self, request: pb.ConverseRequest, *, allow_after_end: bool = False) -> None:
        call = self._require_call()
        self._check_open(allow_after_end)
        # acquire/release rather than `async with`: one coroutine fewer per message.
        lock = self._write_lock
        await lock.acquire()
        try:
            if self._replay is not None:
                await self._write_resumable(request, self._replay)
                return
            try:
                await call.write(request)
            except aio.AioRpcError as exc:
                raise await self._error(call, exc) from None
            except asyncio.InvalidStateError:
                raise await self._ended_error(call) from None
        finally:
            lock.release()

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
            if self._move_now and not self.done and self._auto is not None:
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
                error = await self._error(call, exc)
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
