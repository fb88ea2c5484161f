"""One Twilio Media Stream, one conversation: the telephony edge's per-socket driver.

Twilio connects, sends ``connected`` and ``start``; the call is authenticated (a valid
``X-Twilio-Signature`` on the handshake, or an ``apiKey`` custom parameter, which the gRPC
server checks) and configured from its allow-listed parameters; then a ``Converse`` stream runs
through the same SDK client the browser shim uses. The caller's mu-law goes upstream as it
comes (the server decodes it; no resampling here); assistant mu-law comes back as 20 ms
``media`` frames and a ``mark`` per chunk (`playback.Playback`).

Four tasks: the *reader* (Twilio -> gRPC), the *pump* (gRPC -> Twilio), the *writer* (the
outbox) and the *keypad* timer. The first to decide how the call ends records the outcome;
`TwilioCall.run` then cancels the rest, closes the conversation (the gRPC stream is cancelled
if it is still open, so nothing outlives the socket) and closes the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from sonicwire.client import (
    AudioOutput,
    Client,
    Conversation,
    GoingAway,
    Interruption,
    PermissionDeniedError,
    SonicwireError,
    TurnComplete,
    UnauthenticatedError,
)

from ..config import GatewayConfig
from ..guard import until_closed
from ..outbox import Outbox, SlowConsumer
from ..upstream import Upstream
from .callconfig import (
    CallParameterError,
    DigitCollector,
    call_settings,
    session_config_for_call,
)
from .closing import CloseCode, close_code_for_error
from .codec import (
    TWILIO_ENCODING,
    TWILIO_SAMPLE_RATE,
    Connected,
    Dtmf,
    Mark,
    Media,
    Start,
    Stop,
    TwilioProtocolError,
    UnknownEvent,
    parse_message,
)
from .playback import Playback

__all__ = ["CloseCode", "TwilioCall", "TwilioStats"]

log = logging.getLogger("sonicwire.gateway.twilio")

_CLOSE_TIMEOUT_S = 2.0
_STOP_GRACE_S = 5.0  # after ``stop``, how long the server may take to finish the turn


@dataclass
class TwilioStats:
    """Counters of the Twilio endpoint since the gateway started."""

    calls_total: int = 0
    calls_refused: int = 0
    malformed: int = 0
    frames_in: int = 0
    frames_out: int = 0
    marks_out: int = 0
    marks_echoed: int = 0
    clears_out: int = 0
    dtmf_turns: int = 0


@dataclass(frozen=True, slots=True)
class _Outcome:
    code: int
    reason: str
    client_gone: bool = False


def _is_audio(message: str | bytes) -> bool:
    # Media and mark messages are built by codec.py with compact separators.
    return isinstance(message, str) and message.startswith(('{"event":"media"', '{"event":"mark"'))


class TwilioCall:
    """Drives one accepted Twilio WebSocket until it closes. Call :meth:`run` once."""

    def __init__(
        self,
        ws: ServerConnection,
        *,
        upstream: Upstream,
        config: GatewayConfig,
        stats: TwilioStats,
        signed: bool,
    ) -> None:
        self._ws = ws
        self._upstream = upstream
        self._config = config
        self._stats = stats
        self._signed = signed
        self._outbox = Outbox(
            ws.send, max_bytes=config.send_buffer_bytes, send_timeout_s=config.send_timeout_s
        )
        self._digits = DigitCollector(config.twilio_dtmf_timeout_s)
        self._digit_wake = asyncio.Event()
        self._playback: Playback | None = None
        self._client: Client | None = None
        self._conversation: Conversation | None = None
        self._done: asyncio.Future[_Outcome] | None = None
        self._stopped = False
        self._last_sequence: int | None = None
        self._last_chunk = 0
        self._sequence_gaps = 0
        self._chunk_gaps = 0
        self.call_sid = ""

    # -- lifecycle ---------------------------------------------------------------------------

    async def run(self) -> int:
        """Serve the call until it ends; returns the close code (1006 if Twilio vanished)."""
        self._stats.calls_total += 1
        loop = asyncio.get_running_loop()
        self._done = loop.create_future()
        writer = asyncio.create_task(self._write(), name=f"twilio-writer:{self._ws.id}")
        tasks: list[asyncio.Task[None]] = []
        try:
            conversation = await self._open()
            if conversation is not None:
                tasks = [
                    asyncio.create_task(self._read(conversation), name="twilio-reader"),
                    asyncio.create_task(self._pump(conversation), name="twilio-pump"),
                    asyncio.create_task(self._keypad(conversation), name="twilio-keypad"),
                ]
            outcome = await self._done
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if self._conversation is not None:
                await self._conversation.aclose()
            if self._client is not None:
                await self._client.close()
        await self._close_socket(outcome, writer)
        return outcome.code

    def _finish(self, outcome: _Outcome) -> None:
        assert self._done is not None
        if not self._done.done():
            self._done.set_result(outcome)

    def _refuse(self, code: int, why: str) -> None:
        self._stats.calls_refused += 1
        log.warning("twilio call %s refused: %s", self.call_sid or "?", why)
        self._finish(_Outcome(code, why))

    def _malformed(self, error: TwilioProtocolError) -> None:
        self._stats.malformed += 1
        log.warning("twilio call %s: malformed message (%s); closing", self.call_sid or "?", error)
        self._finish(_Outcome(CloseCode.INVALID_DATA, "malformed Twilio message"))

    def _gone(self, error: ConnectionClosed) -> None:
        code = error.rcvd.code if error.rcvd is not None else 1006
        self._finish(_Outcome(code, "Twilio closed the stream", client_gone=True))

    def _crashed(self, where: str) -> None:
        log.exception("twilio call %s: internal error in %s", self.call_sid or "?", where)
        self._finish(_Outcome(CloseCode.INTERNAL, "internal gateway error"))

    async def _close_socket(self, outcome: _Outcome, writer: asyncio.Task[None]) -> None:
        log.info("twilio call %s: closed %d %s", self.call_sid or "?", outcome.code, outcome.reason)
        if self._sequence_gaps or self._chunk_gaps:
            log.info(
                "twilio call %s: %d sequence gaps, %d media chunk gaps in all",
                self.call_sid or "?",
                self._sequence_gaps,
                self._chunk_gaps,
            )
        if outcome.client_gone:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            return
        self._outbox.close()
        try:
            async with asyncio.timeout(self._config.send_timeout_s):
                await asyncio.shield(writer)
        except TimeoutError:
            writer.cancel()
        try:
            async with asyncio.timeout(_CLOSE_TIMEOUT_S):
                await self._ws.close(outcome.code, outcome.reason[:120])
        except TimeoutError:
            self._ws.transport.abort()

    async def _write(self) -> None:
        try:
            await self._outbox.run()
        except SlowConsumer as error:
            log.info("twilio call %s: not reading: %s", self.call_sid or "?", error)
            self._finish(_Outcome(CloseCode.INTERNAL, "Twilio not reading"))
        except ConnectionClosed as error:
            self._gone(error)
        except Exception:
            self._crashed("writer")

    # -- opening -----------------------------------------------------------------------------

    async def _open(self) -> Conversation | None:
        """Read ``connected`` and ``start``, authenticate, start the conversation."""
        try:
            async with asyncio.timeout(self._config.first_message_timeout_s or None):
                start = await self._read_start()
        except TimeoutError:
            self._refuse(CloseCode.POLICY, "no start message in time")
            return None
        except TwilioProtocolError as error:
            self._malformed(error)
            return None
        except ConnectionClosed as error:
            self._gone(error)
            return None
        self.call_sid = start.call_sid
        if (
            start.encoding != TWILIO_ENCODING
            or start.sample_rate != TWILIO_SAMPLE_RATE
            or start.channels != 1
        ):
            # Interleaved stereo taken as mono would reach the assistant as noise at half speed.
            self._refuse(
                CloseCode.POLICY,
                f"media format {start.encoding} at {start.sample_rate} Hz, {start.channels} "
                f"channel(s); only mono {TWILIO_ENCODING} at {TWILIO_SAMPLE_RATE} Hz is supported",
            )
            return None
        try:
            settings = call_settings(start.custom_parameters, self._config.twilio_parameters)
        except CallParameterError as error:
            self._refuse(CloseCode.POLICY, f"bad customParameters: {error}")
            return None
        if not self._signed and not settings.api_key:
            self._refuse(
                CloseCode.POLICY,
                "no valid X-Twilio-Signature (set the account's auth token with "
                "--twilio-auth-token) and no apiKey custom parameter",
            )
            return None
        if settings.ignored:
            log.info(
                "twilio call %s: ignored parameters not on the allow-list: %s",
                self.call_sid,
                ", ".join(settings.ignored),
            )
        self._playback = Playback(start.stream_sid)
        self._client, conversation = self._upstream.open(
            settings.api_key, session_config_for_call(settings)
        )
        self._conversation = conversation
        try:
            session = await until_closed(self._ws, conversation.start())
        except SonicwireError as error:
            # By the status: a key or parameters the server refused is a policy refusal like
            # the gateway's own (1008), a draining server 1001, a failure 1011.
            if isinstance(error, UnauthenticatedError | PermissionDeniedError):
                why = f"the server refused the API key: {error}"
            else:
                why = f"the conversation did not start: {error}"
            self._refuse(close_code_for_error(error), why)
            return None
        except ConnectionClosed as error:  # the caller hung up before it started
            self._gone(error)
            return None
        log.info(
            "twilio call %s (stream %s): session %s started, %s",
            self.call_sid,
            start.stream_sid,
            session.session_id,
            "signed" if self._signed else "API key",
        )
        return conversation

    async def _read_start(self) -> Start:
        while True:
            event = parse_message(await self._ws.recv())
            match event:
                case Connected() | UnknownEvent():
                    continue
                case Start():
                    self._last_sequence = event.sequence
                    return event
                case _:
                    raise TwilioProtocolError(f"{type(event).__name__.lower()} before start")

    # -- Twilio -> gRPC ----------------------------------------------------------------------

    async def _read(self, conversation: Conversation) -> None:
        try:
            while True:
                event = parse_message(await self._ws.recv())
                self._check_sequence(event)
                await self._handle(conversation, event)
        except TwilioProtocolError as error:
            self._malformed(error)
        except ConnectionClosed as error:
            self._gone(error)
        except SonicwireError:
            await asyncio.Future()  # the stream ended; the pump reports how
        except Exception:
            self._crashed("reader")

    def _check_sequence(self, event: object) -> None:
        # Twilio numbers every message; over one TCP stream a gap means a bug somewhere, not
        # loss to conceal: not fatal, and logged once per call (a carrier or proxy that
        # numbers wrongly does so on every message, 50 a second), counted, and the count
        # logged when the call closes.
        sequence = getattr(event, "sequence", None)
        if sequence is None:
            return
        last = self._last_sequence
        if last is not None and sequence != last + 1:
            self._sequence_gaps += 1
            if self._sequence_gaps == 1:
                log.info(
                    "twilio call %s: sequence %d after %d (further gaps are only counted)",
                    self.call_sid,
                    sequence,
                    last,
                )
        self._last_sequence = sequence

    async def _handle(self, conversation: Conversation, event: object) -> None:
        assert self._playback is not None
        match event:
            case Media(track=track, payload=payload, chunk=chunk, stream_sid=sid):
                if track != "inbound" or self._stopped or not payload:
                    return  # only the caller's audio; nothing after stop
                if sid and sid != self._playback.stream_sid:
                    raise TwilioProtocolError(f"media for stream {sid}, not this call's")
                if chunk and self._last_chunk and chunk != self._last_chunk + 1:
                    self._chunk_gaps += 1
                    if self._chunk_gaps == 1:  # as sequence gaps: once, then counted
                        log.info(
                            "twilio call %s: chunk %d after %d (further gaps are only counted)",
                            self.call_sid,
                            chunk,
                            self._last_chunk,
                        )
                self._last_chunk = chunk or self._last_chunk
                self._stats.frames_in += 1
                await conversation.send_audio(payload)
            case Mark(name=name):
                position = self._playback.mark_played(name)
                if position is not None and not self._stopped:
                    self._stats.marks_echoed += 1
                    await conversation.report_playback(*position)
            case Dtmf(digit=digit):
                if self._stopped:
                    return
                text = self._digits.press(digit, asyncio.get_running_loop().time())
                self._digit_wake.set()
                if text is not None:
                    await self._send_digits(conversation, text)
            case Stop() if self._stopped:
                return  # a repeated stop: the call is already ending (no log line per copy)
            case Stop():
                # The caller hung up: half-close, so the server ends the conversation after
                # its current turn; bounded, in case Twilio keeps the socket open.
                self._stopped = True
                log.info("twilio call %s: stop (caller hung up)", self.call_sid)
                await conversation.end_input()
                asyncio.get_running_loop().call_later(
                    _STOP_GRACE_S,
                    self._finish,
                    _Outcome(CloseCode.NORMAL, "call stopped"),
                )
            case Start():
                raise TwilioProtocolError("a second start message")
            case Connected() | UnknownEvent():
                log.debug("twilio call %s: ignored %s", self.call_sid, event)

    async def _send_digits(self, conversation: Conversation, text: str) -> None:
        self._stats.dtmf_turns += 1
        log.info("twilio call %s: keypad turn: %s", self.call_sid, text)
        await conversation.send_text(text)

    async def _keypad(self, conversation: Conversation) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                deadline = self._digits.deadline
                self._digit_wake.clear()
                timeout = None if deadline is None else max(0.0, deadline - loop.time())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._digit_wake.wait(), timeout)
                text = self._digits.expire(loop.time())
                if text is not None and not self._stopped:
                    await self._send_digits(conversation, text)
        except SonicwireError:
            return
        except Exception:
            self._crashed("keypad")

    # -- gRPC -> Twilio ----------------------------------------------------------------------

    async def _pump(self, conversation: Conversation) -> None:
        playback = self._playback
        assert playback is not None
        try:
            async for event in conversation:
                messages = self._render(playback, event)
                if messages is None:
                    continue
                for message in messages:
                    self._outbox.put(message)
                self._count(playback)
        except SonicwireError as error:
            log.info("twilio call %s: conversation ended: %s", self.call_sid, error)
            self._finish(
                _Outcome(close_code_for_error(error), f"conversation failed: {error.reason}")
            )
        except SlowConsumer as error:
            log.info("twilio call %s: not reading: %s", self.call_sid, error)
            self._finish(_Outcome(CloseCode.INTERNAL, "Twilio not reading"))
        except Exception:
            self._crashed("pump")
        else:
            self._finish(_Outcome(CloseCode.NORMAL, "conversation ended"))

    def _count(self, playback: Playback) -> None:
        stats = self._stats
        stats.frames_out += playback.frames_sent
        stats.marks_out += playback.marks_sent
        stats.clears_out += playback.clears_sent
        playback.frames_sent = playback.marks_sent = playback.clears_sent = 0

    def _render(self, playback: Playback, event: Any) -> list[str] | None:
        match event:
            case AudioOutput(audio=audio, turn_id=turn_id, offset_ms=offset_ms):
                if self._stopped:
                    return None  # nobody is listening any more
                return playback.audio(turn_id, audio, offset_ms)
            case Interruption(turn_id=turn_id):
                # At once: ahead of any audio still queued here, which is dropped with it.
                for message in playback.interrupt(turn_id):
                    self._outbox.put_first(message, drop=_is_audio)
                self._count(playback)
                log.info("twilio call %s: barge-in, clear sent", self.call_sid)
                return None
            case TurnComplete(turn_id=turn_id):
                return playback.turn_complete(turn_id)
            case GoingAway(reason=reason):
                log.info("twilio call %s: server going away: %s", self.call_sid, reason)
                return None
            case _:
                return None
