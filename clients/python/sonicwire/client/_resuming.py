"""The stream half of `Conversation`: opening its ``Converse`` streams, and moving it to a
new one when its server replica goes away (auto-resume, described in :mod:`.conversation`).

A base class rather than a helper object: a move swaps the conversation's own call, session
and configuration, and queues events for its reader, all under the same write lock its sends
hold, so the two halves share that state by design. `Conversation` sets every attribute
declared here in its ``__init__``; this module only reads and updates them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from grpc import aio

from sonicwire.v1 import voice_service_pb2 as pb

from ._status import FirstStatus, is_core_write_error
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
    TurnComplete,
    event_from_proto,
)
from .resume import AutoResume, ReplayBuffer

__all__ = ["ResumableStream", "StartCall"]

_log = logging.getLogger("sonicwire.client")
StartCall = Callable[[], Any]
"""Opens a new ``Converse`` call (a ``grpc.aio.StreamStreamCall`` or a test double)."""


class ResumableStream:
    """Opens, writes and moves the ``Converse`` stream under a `Conversation`."""

    _start_call: StartCall
    _config: pb.SessionConfig
    _start_timeout: float | None
    _sleep: Callable[[float], Awaitable[None]]
    _call: Any
    _status: FirstStatus
    _session: SessionStarted | None
    _pending: deque[Event]
    _write_lock: asyncio.Lock
    _input_ended: bool
    _finished: bool
    _closed: bool
    _auto: AutoResume | None
    _replay: ReplayBuffer | None
    _fatal: SonicwireError | None
    _switching: bool
    _moving: bool
    _move_now: bool
    _texts: list[str]
    _held: list[pb.ConverseRequest]
    attempts: int
    resumes: int

    # -- one stream ------------------------------------------------------------------------

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
            raise await self._error(call, exc) from None
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

    async def _write_resumable(self, request: pb.ConverseRequest, replay: ReplayBuffer) -> None:
        # Called with the write lock held. Input the next stream needs is kept: audio in the
        # replay buffer, typed turns until answered, tool results while no stream takes them.
        kind = request.WhichOneof("request")
        if kind == "audio":
            await self._write_audio(request, request.audio.audio, replay)
            return
        if kind == "text":
            self._texts.append(request.text.text)
            replay.text_sent()
        if self._switching:
            if kind == "tool_result":
                self._held.append(request)
            return  # playback reports describe the old stream's audio: dropped
        await self._try_write(request)

    async def _write_audio(
        self, request: pb.ConverseRequest, audio: bytes, replay: ReplayBuffer
    ) -> None:
        # With the write lock held; ``audio`` is the request's audio (kept for a replay).
        if self._switching:
            replay.captured(audio, sent=False)
            return
        sent = await self._try_write(request)
        replay.captured(audio, sent=sent)

    async def _try_write(self, request: pb.ConverseRequest) -> bool:
        """Write to the live stream; False when it has ended in a way the reader resumes."""
        call = self._call
        try:
            await call.write(request)
            return True
        except aio.AioRpcError as exc:
            error = await self._error(call, exc)
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

    async def _error(self, call: Any, exc: aio.AioRpcError) -> SonicwireError:
        """What ``call`` really ended with: the server's status, not grpc.aio's INTERNAL
        "from Core" stand-in for a failed write (`FirstStatus`)."""
        if self._status.error is None and is_core_write_error(exc.code(), exc.details()):
            await self._status.settle(call)
        return self._status.error or error_from_rpc(exc)

    async def _ended_error(self, call: Any) -> SonicwireError:
        if self._status.error is None:
            await self._status.settle(call)
        if self._status.error is not None:
            return self._status.error
        code = await call.code()
        if code is not None and code != grpc.StatusCode.OK:
            details = await call.details()
            trailers = await call.trailing_metadata()
            return error_from_status(code, details, trailers)
        return ConversationClosedError("the server already ended the conversation")

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
            case GoingAway() if self._auto is not None:  # not after `stop_auto_resume`
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
                masked = is_core_write_error(error.code, error.message)
                retry = masked or isinstance(error, UnavailableError | CallCancelledError)
                stopped = self._closed or self._auto is None  # closed, or resume stopped
                if not retry or attempt >= auto.retry.max_attempts or stopped:
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
