"""One WebSocket, one conversation: the gateway's per-socket driver.

Three tasks share a socket: the *reader* parses client messages (``protocol``), applies the
order rules (``state``) and the rate limit, and forwards input to the SDK conversation; the
*pump* renders conversation events into the outbox; the *writer* sends the outbox. The first
of them to decide how the socket ends records an :class:`_Outcome`; :meth:`Connection.run`
then stops the others, hangs up the conversation, flushes the final error event (unless the
client is the problem) and closes the socket with the outcome's code.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from sonicwire.client import (
    Client,
    Conversation,
    GoingAway,
    Resumed,
    SonicwireError,
    ToolCall,
    ToolCallResult,
    ToolExecutor,
)

from .config import GatewayConfig
from .guard import until_closed
from .limits import TokenBucket
from .outbox import Outbox, SlowConsumer
from .protocol import (
    Audio,
    CloseCode,
    Command,
    Configure,
    EndInput,
    InvalidMessage,
    Playback,
    ProtocolLimits,
    Reason,
    Text,
    ToolResult,
    encode,
    error_event,
    parse_message,
    render_event,
    split_audio,
    upstream_error_event,
)
from .routes import MalformedKey, api_key_from_offer, offered_subprotocols
from .state import ClientCalls, InboundFlow
from .upstream import Upstream

__all__ = ["Connection", "GatewayStats", "reject"]

log = logging.getLogger("sonicwire.gateway")

_CLOSE_TIMEOUT_S = 2.0
_ACTION_NAMES: dict[type[Command], str] = {
    Configure: "config",
    Audio: "audio",
    Text: "text",
    Playback: "playback",
    ToolResult: "tool_result",
    EndInput: "end",
}


@dataclass
class GatewayStats:
    """Counters of a gateway since it started (for tests, logs and health output)."""

    connections_active: int = 0
    connections_total: int = 0
    closes: Counter[int] = field(default_factory=Counter)
    """Close codes the gateway ended sockets with (1006 when the client vanished)."""
    messages_in: Counter[str] = field(default_factory=Counter)
    """Accepted inbound messages by action (``audio`` counts both frame kinds)."""
    errors: Counter[str] = field(default_factory=Counter)
    """Error events sent, by reason."""
    peak_send_buffer_bytes: int = 0
    """The most bytes any socket's outbox held at once."""


@dataclass(frozen=True, slots=True)
class _Outcome:
    code: int
    reason: str
    event: dict[str, Any] | None = None
    client_gone: bool = False


def _close_reason(text: str) -> str:
    # A close frame's reason is at most 123 UTF-8 bytes.
    return text.encode()[:123].decode(errors="ignore")


async def _hang_up(ws: ServerConnection, code: int, reason: str) -> None:
    """Close the socket; abort the TCP connection if the client does not take the close."""
    try:
        async with asyncio.timeout(_CLOSE_TIMEOUT_S):
            await ws.close(code, _close_reason(reason))
    except TimeoutError:
        ws.transport.abort()


async def reject(ws: ServerConnection, code: int, event: dict[str, Any]) -> None:
    """Send a fatal ``error`` event, then close with ``code`` (both bounded in time)."""
    with contextlib.suppress(ConnectionClosed, TimeoutError):
        async with asyncio.timeout(_CLOSE_TIMEOUT_S):
            await ws.send(encode(event))
    await _hang_up(ws, code, str(event.get("reason", "")))


class Connection:
    """Drives one accepted WebSocket until it closes. Call :meth:`run` once."""

    def __init__(
        self,
        ws: ServerConnection,
        *,
        upstream: Upstream,
        config: GatewayConfig,
        stats: GatewayStats,
    ) -> None:
        self._ws = ws
        self._upstream = upstream
        self._config = config
        self._stats = stats
        self._limits = ProtocolLimits()
        self._flow = InboundFlow()
        self._client_calls = ClientCalls()
        self._outbox = Outbox(
            ws.send,
            max_bytes=config.send_buffer_bytes,
            send_timeout_s=config.send_timeout_s,
            send_now=self._send_now,
        )
        self._client: Client | None = None
        self._conversation: Conversation | None = None
        self._pump_task: asyncio.Task[None] | None = None
        self._output_rate = 16000
        self._max_chunk = 65536
        self._done: asyncio.Future[_Outcome] | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def run(self) -> int:
        """Serve the socket until it ends.

        Returns:
            The close code the socket ended with (1006 when the client vanished).
        """
        request = self._ws.request
        assert request is not None, "run() is called after the handshake"
        try:
            api_key = api_key_from_offer(offered_subprotocols(request.headers))
        except MalformedKey as error:
            event = error_event(
                "UNAUTHENTICATED",
                Reason.API_KEY_MALFORMED,
                f"bad API key offer: {error}",
                fatal=True,
            )
            self._count_error(event)
            self._stats.closes[CloseCode.UNAUTHENTICATED] += 1
            await reject(self._ws, CloseCode.UNAUTHENTICATED, event)
            return CloseCode.UNAUTHENTICATED
        loop = asyncio.get_running_loop()
        self._done = loop.create_future()
        writer = asyncio.create_task(self._write(), name=f"ws-writer:{self._ws.id}")
        reader = asyncio.create_task(self._read(api_key), name=f"ws-reader:{self._ws.id}")
        watchdog = asyncio.create_task(self._watch_pongs(), name=f"ws-pongs:{self._ws.id}")
        try:
            outcome = await self._done
        finally:
            for task in (reader, watchdog, self._pump_task):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            if self._conversation is not None:
                await self._conversation.aclose()
            if self._client is not None:
                await self._client.close()
        await self._finish_socket(outcome, writer)
        return outcome.code

    def _finish(self, outcome: _Outcome) -> None:
        assert self._done is not None
        if not self._done.done():
            self._done.set_result(outcome)

    def _fail(self, code: int, event: dict[str, Any]) -> None:
        self._count_error(event)
        self._finish(_Outcome(code, str(event["reason"]), event))

    def _count_error(self, event: dict[str, Any]) -> None:
        self._stats.errors[str(event["reason"])] += 1

    def _slow_consumer(self, error: SlowConsumer) -> None:
        log.info("ws %s: slow consumer: %s", self._ws.id, error)
        self._stats.errors["SLOW_CONSUMER"] += 1
        self._finish(_Outcome(CloseCode.SLOW_CONSUMER, "client not reading"))

    async def _watch_pongs(self) -> None:
        """Close a client that stops reading its socket with 4507 (slow consumer), as
        documented. Such a client stops answering pings too; this check waits half a ping
        interval for the pong, so it fires before websockets' own keepalive would close the
        socket with 1011 "keepalive ping timeout"."""
        interval = self._config.ping_interval_s
        if not interval:
            return
        while True:
            await asyncio.sleep(interval)
            try:
                async with asyncio.timeout(interval / 2):
                    pong = await self._ws.ping()
                    await pong
            except TimeoutError:
                self._slow_consumer(SlowConsumer(f"no pong within {interval / 2:g} s"))
                return
            except ConnectionClosed:
                return

    def _client_gone(self, error: ConnectionClosed) -> None:
        if error.sent is not None:  # e.g. 1009 or 1007, sent by the WebSocket library
            code = error.sent.code
        elif error.rcvd is not None:
            code = error.rcvd.code
        else:
            code = 1006
        self._finish(_Outcome(code, "", client_gone=True))

    def _crashed(self, where: str) -> None:
        log.exception("ws %s: internal error in %s", self._ws.id, where)
        self._fail(
            CloseCode.INTERNAL_ERROR,
            error_event("INTERNAL", Reason.INTERNAL, "internal gateway error", fatal=True),
        )

    async def _finish_socket(self, outcome: _Outcome, writer: asyncio.Task[None]) -> None:
        self._stats.closes[outcome.code] += 1
        log.info("ws %s: closed %d %s", self._ws.id, outcome.code, outcome.reason)
        if outcome.client_gone or outcome.code == CloseCode.SLOW_CONSUMER:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            if not outcome.client_gone:
                await _hang_up(self._ws, outcome.code, outcome.reason)
            return
        if outcome.event is not None:
            with contextlib.suppress(SlowConsumer, RuntimeError):
                self._outbox.put(encode(outcome.event))
        self._outbox.close()
        try:
            async with asyncio.timeout(self._config.send_timeout_s):
                await asyncio.shield(writer)
        except TimeoutError:
            writer.cancel()
        await _hang_up(self._ws, outcome.code, outcome.reason)

    # -- writer ------------------------------------------------------------------------------

    async def _write(self) -> None:
        try:
            await self._outbox.run()
        except SlowConsumer as error:
            self._slow_consumer(error)
        except ConnectionClosed as error:
            self._client_gone(error)
        except Exception:
            self._crashed("writer")

    def _send_now(self, message: str | bytes) -> bool:
        """Write ``message`` to the socket now if ``ws.send`` would not wait: the connection
        is open, no fragmented send is under way and the transport buffers nothing (so
        websockets' drain would return at once). What ``ws.send`` does then, minus the
        coroutine, its context manager and the writer task's wake-up."""
        ws = self._ws
        if (
            ws.protocol.state is not State.OPEN
            or ws.send_in_progress is not None
            or ws.transport.is_closing()
            or ws.transport.get_write_buffer_size()
        ):
            return False
        if isinstance(message, str):
            ws.protocol.send_text(message.encode())
        else:
            ws.protocol.send_binary(message)
        ws.send_data()
        return True

    def _send_event(self, event: dict[str, Any]) -> None:
        if event.get("event") == "error":
            self._count_error(event)
        self._outbox.put(encode(event))
        stats = self._stats
        stats.peak_send_buffer_bytes = max(stats.peak_send_buffer_bytes, self._outbox.queued_bytes)

    # -- reader ------------------------------------------------------------------------------

    async def _read(self, api_key: str | None) -> None:
        loop = asyncio.get_running_loop()
        bucket = TokenBucket(
            self._config.max_messages_per_second, self._config.message_burst, loop.time()
        )
        try:
            async with asyncio.timeout(self._config.first_message_timeout_s or None):
                data = await self._ws.recv()
            while True:
                started = loop.time()
                if not bucket.take(started):
                    self._fail(
                        CloseCode.RATE_LIMITED,
                        error_event(
                            "RESOURCE_EXHAUSTED",
                            Reason.RATE_LIMITED,
                            f"more than {self._config.max_messages_per_second:g} messages per "
                            "second",
                            fatal=True,
                        ),
                    )
                    return
                if not await self._handle(data, api_key):
                    return
                # While a message is handled (a conversation starting, gRPC flow control) the
                # socket is not read and the client's messages queue up: not its fault.
                bucket.credit(loop.time() - started)
                data = await self._ws.recv()
        except TimeoutError:
            self._fail(
                CloseCode.TIMEOUT,
                error_event(
                    "DEADLINE_EXCEEDED",
                    Reason.IDLE_TIMEOUT,
                    f"no message within {self._config.first_message_timeout_s:g}s of connecting",
                    fatal=True,
                ),
            )
        except ConnectionClosed as error:
            self._client_gone(error)
        except SlowConsumer as error:
            self._slow_consumer(error)
        except Exception:
            self._crashed("reader")

    async def _handle(self, data: str | bytes, api_key: str | None) -> bool:
        """Handle one message; False when the reader should stop."""
        try:
            command = parse_message(data, self._limits)
            actions = self._flow.receive(command)
        except InvalidMessage as error:
            self._send_event(error.to_event())
            return True
        self._stats.messages_in[_ACTION_NAMES[type(command)]] += 1
        for action in actions:
            if isinstance(action, Configure):
                if not await self._open(action, api_key):
                    return False
                continue
            if self._conversation is None:  # ``end`` before anything else
                self._finish(_Outcome(CloseCode.NORMAL, "input ended"))
                return False
            try:
                if type(action) is Audio and len(action.pcm) <= self._max_chunk:
                    # Every 20 ms frame: forwarded whole, without `_forward`'s dispatch.
                    await self._conversation.send_audio(action.pcm)
                else:
                    await self._forward(self._conversation, action)
            except SonicwireError:
                # The stream has ended; the pump reports how. Nothing more to forward.
                await asyncio.Future()
        return True

    async def _forward(self, conversation: Conversation, command: Command) -> None:
        match command:
            case Audio(pcm=pcm):
                for chunk in split_audio(pcm, self._max_chunk):
                    await conversation.send_audio(chunk)
            case Text(text=text):
                await conversation.send_text(text)
            case Playback(turn_id=turn_id, played_ms=played_ms, output_latency_ms=latency):
                await conversation.report_playback(turn_id, played_ms, output_latency_ms=latency)
            case ToolResult(tool_call_id=call_id, content=content, is_error=is_error):
                await conversation.send_tool_result(call_id, content, is_error=is_error)
                if self._client_calls.settled(call_id):
                    await conversation.end_input()
            case EndInput():
                if self._client_calls.end():
                    await conversation.end_input()
            case Configure():
                raise AssertionError("config is handled by _open")

    async def _open(self, command: Configure, api_key: str | None) -> bool:
        self._client, conversation = self._upstream.converse(api_key, command)
        self._conversation = conversation
        try:
            session = await until_closed(self._ws, conversation.start())
        except SonicwireError as error:
            self._upstream_failed(error)
            return False
        self._output_rate = session.output_sample_rate_hz
        self._max_chunk = session.limits.max_audio_chunk_bytes or self._max_chunk
        log.info("ws %s: session %s started", self._ws.id, session.session_id)
        self._pump_task = asyncio.create_task(
            self._pump(conversation), name=f"ws-pump:{self._ws.id}"
        )
        return True

    def _upstream_failed(self, error: SonicwireError) -> None:
        code_name = error.code.name if error.code is not None else ""
        event, close_code = upstream_error_event(code_name, error.reason, error.message)
        log.info("ws %s: conversation ended: %s", self._ws.id, error)
        self._fail(close_code, event)

    # -- pump --------------------------------------------------------------------------------

    async def _pump(self, conversation: Conversation) -> None:
        token = conversation.session.resume_token
        try:
            async for event in conversation:
                if isinstance(event, GoingAway) and self._upstream.resume:
                    # The conversation moves to another replica by itself and the socket
                    # stays open: nothing for the client to do (it hears `resumed` after).
                    log.info("ws %s: upstream going away; resuming", self._ws.id)
                    continue
                if isinstance(event, Resumed):
                    self._upstream.moved(event.session_id, token, event.session.resume_token)
                    token = event.session.resume_token
                    log.info("ws %s: resumed upstream: %s", self._ws.id, event)
                    if self._client_calls.forget():
                        await conversation.end_input()
                self._send_event(render_event(event, self._output_rate))
                if isinstance(event, ToolCall) and event.executor is ToolExecutor.CLIENT:
                    self._client_calls.called(event.id)
                elif isinstance(event, ToolCallResult) and self._client_calls.settled(event.id):
                    # The server ended a call the client had not answered: `end` may go now.
                    await conversation.end_input()
        except SonicwireError as error:
            self._upstream_failed(error)
        except SlowConsumer as error:
            self._slow_consumer(error)
        except Exception:
            self._crashed("pump")
        else:
            self._finish(_Outcome(CloseCode.NORMAL, "conversation ended"))
