"""A local Amazon Bedrock endpoint for ``InvokeModelWithBidirectionalStream`` (Nova Sonic).

Real HTTP/2 over TLS (ALPN ``h2``) on 127.0.0.1, an ephemeral port, and a throwaway CA from
``trustme``, so the real ``aws-sdk-bedrock-runtime`` client (CRT transport, SigV4 signing,
event-stream framing) talks to it exactly as it talks to AWS. Nothing checks signatures, so
any credentials work. Usage::

    async with FakeBedrock(Scenario.each_stream(answer_each_utterance())) as fake:
        backend = NovaSonicBackend.from_options(**fake.backend_options())
        ...                                  # or export fake.env() for `sonicwire serve`
        assert fake.streams[0].event_names[:2] == ["sessionStart", "promptStart"]

What it offers: `endpoint_url`, `ca_path`, `env()` / `backend_options()`, `streams`
(one `FakeStream` per request, with every decoded Nova input event), `received_events`
(all streams, arrival order), `wait_for_streams`, `open_connections`. Scenarios
(`sonicwire.server.testing.fake_scenario`) script replies, tool use, barge-in, modeled errors,
HTTP errors and a compressed stream time limit.

Run ``python -m sonicwire.server.testing.fake_bedrock`` to serve a simple conversation partner
and print the environment that points ``sonicwire serve --backend nova-sonic`` at it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import re
import ssl
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import unquote

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import trustme

from sonicwire.server.testing.bedrock_wire import (
    MessageBuffer,
    WireError,
    decode_client_message,
)
from sonicwire.server.testing.fake_scenario import (
    IDLE_TIMEOUT_MESSAGE,
    Scenario,
    StreamPlan,
    StreamScript,
    answer_each_utterance,
)
from sonicwire.server.testing.fake_stream import FakeStream

__all__ = ["FakeBedrock", "RecordedEvent"]

_log = logging.getLogger(__name__)
_PATH = re.compile(r"^/model/(?P<model>[^/]+)/invoke-with-bidirectional-stream$")
_WINDOW = 16 * 1024 * 1024  # generous receive window: the client never waits on us


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """One Nova input event as received: which stream, its name, its fields."""

    stream: int
    name: str
    body: dict[str, Any]


class _Stream:
    """Server-side state of one HTTP/2 stream (the `StreamWire` of its `FakeStream`)."""

    def __init__(self, conn: _Connection, stream_id: int) -> None:
        self.conn = conn
        self.stream_id = stream_id
        self.buffer = MessageBuffer()
        self.fake: FakeStream | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.window_open = asyncio.Event()

    async def write(self, data: bytes, *, end_stream: bool = False) -> None:
        await self.conn.send_data(self, data, end_stream=end_stream)

    def reset(self) -> None:
        self.conn.reset_stream(self.stream_id)

    def drop_connection(self) -> None:
        self.conn.abort()


class _Connection(asyncio.Protocol):
    """One client connection: h2 state machine plus the streams on it."""

    def __init__(self, server: FakeBedrock) -> None:
        self._server = server
        self._h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        )
        self._transport: asyncio.Transport | None = None
        self._streams: dict[int, _Stream] = {}
        self.closed = False

    # --- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._server._connections.add(self)
        self._h2.initiate_connection()
        self._h2.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: _WINDOW})
        self._h2.increment_flow_control_window(_WINDOW)
        self._flush()

    def data_received(self, data: bytes) -> None:
        try:
            events = self._h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            _log.warning("fake bedrock: HTTP/2 protocol error: %s", exc)
            self.abort()
            return
        for event in events:
            self._handle(event)
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._server._connections.discard(self)
        self._server._disconnected.set()
        for stream in list(self._streams.values()):
            self._finish(stream)
        self._streams.clear()

    # --- h2 events -----------------------------------------------------------------------

    def _handle(self, event: h2.events.Event) -> None:
        match event:
            case h2.events.RequestReceived(stream_id=sid, headers=headers):
                self._on_request(sid, {str(k): str(v) for k, v in headers or []})
            case h2.events.DataReceived(stream_id=sid, data=data, flow_controlled_length=n):
                self._h2.acknowledge_received_data(n or 0, sid)
                stream = self._streams.get(sid or 0)
                if stream is not None and data:
                    self._on_data(stream, data)
            case h2.events.StreamEnded(stream_id=sid):
                stream = self._streams.get(sid or 0)
                if stream is not None and stream.fake is not None:
                    stream.fake.mark_input_ended()
            case h2.events.StreamReset(stream_id=sid):
                stream = self._streams.pop(sid or 0, None)
                if stream is not None:
                    self._finish(stream)
            case h2.events.WindowUpdated() | h2.events.RemoteSettingsChanged():
                for stream in self._streams.values():
                    stream.window_open.set()
            case h2.events.ConnectionTerminated():
                self.abort()
            case _:
                pass

    def _on_request(self, stream_id: int, headers: dict[str, str]) -> None:
        stream = _Stream(self, stream_id)
        self._streams[stream_id] = stream
        match = _PATH.match(headers.get(":path", "").partition("?")[0])
        if headers.get(":method") != "POST" or match is None:
            self._respond_error(stream_id, 404, "UnknownOperationException", "no such operation")
            return
        index = self._server._next_index()
        plan = self._server.scenario.plan_for(index)
        if plan.http_status != 200:
            self._server._refused.append((index, plan.http_status))
            self._respond_error(stream_id, plan.http_status, plan.error_type, plan.error_message)
            self._streams.pop(stream_id, None)
            return
        fake = FakeStream(index, unquote(match["model"]), headers, stream, self._server._record)
        stream.fake = fake
        self._server.streams.append(fake)
        self._h2.send_headers(
            stream_id,
            [
                (":status", "200"),
                ("content-type", "application/vnd.amazon.eventstream"),
                ("x-amzn-requestid", str(uuid.uuid4())),
            ],
        )
        stream.tasks.append(asyncio.get_running_loop().create_task(self._run(stream, plan)))
        self._server._stream_opened()

    def _respond_error(self, stream_id: int, status: int, error_type: str, message: str) -> None:
        body = json.dumps({"message": message}).encode()
        headers = [(":status", str(status)), ("content-type", "application/json")]
        if error_type:
            headers.append(("x-amzn-errortype", error_type))
        headers.append(("content-length", str(len(body))))
        self._h2.send_headers(stream_id, headers)
        self._h2.send_data(stream_id, body, end_stream=True)

    def _on_data(self, stream: _Stream, data: bytes) -> None:
        fake = stream.fake
        if fake is None:
            return
        try:
            for envelope in stream.buffer.feed(data):
                message = decode_client_message(envelope)
                if message.event is None:
                    # The end-of-input envelope; the response ends only after the client's
                    # END_STREAM, or the CRT client fails to finish its request body.
                    fake.end_envelope_received = True
                else:
                    fake.record(message.event)
        except WireError as exc:
            _log.warning("fake bedrock: stream %d: %s", fake.index, exc)
            self.reset_stream(stream.stream_id)

    def _finish(self, stream: _Stream) -> None:
        if stream.fake is not None:
            stream.fake.mark_closed()
        for task in stream.tasks:
            task.cancel()

    # --- running a plan ------------------------------------------------------------------

    async def _run(self, stream: _Stream, plan: StreamPlan) -> None:
        fake = stream.fake
        assert fake is not None
        script = asyncio.create_task(_run_script(plan.script, fake)) if plan.script else None
        finished = asyncio.create_task(_until_input_end(script, fake))
        idle = (
            asyncio.create_task(_idle_watchdog(fake, plan.idle_timeout_s))
            if plan.idle_timeout_s is not None
            else None
        )
        try:
            waiting = {finished} if idle is None else {finished, idle}
            done, _ = await asyncio.wait(
                waiting, timeout=plan.time_limit_s, return_when=asyncio.FIRST_COMPLETED
            )
            if finished in done:
                await fake.end()
            elif idle is not None and idle in done:
                if script is not None:
                    script.cancel()
            elif not fake.response_ended:
                # Nova's stream time limit, compressed: the stream ends with an error.
                if script is not None:
                    script.cancel()
                fake.time_limit_hit = True
                await fake.send_exception(
                    "ModelTimeoutException", "stream time limit reached (fake)"
                )
        except (ConnectionError, h2.exceptions.StreamClosedError):
            pass
        finally:
            tasks = [t for t in (script, finished, idle) if t is not None]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    # --- sending -------------------------------------------------------------------------

    async def send_data(self, stream: _Stream, data: bytes, *, end_stream: bool) -> None:
        sid = stream.stream_id
        view = memoryview(data)
        while True:
            if self.closed or sid not in self._streams:
                raise ConnectionError("stream closed")
            if not view:
                if end_stream:
                    self._h2.end_stream(sid)
                    self._flush()
                return
            window = min(self._h2.local_flow_control_window(sid), self._h2.max_outbound_frame_size)
            if window <= 0:
                stream.window_open.clear()
                await stream.window_open.wait()
                continue
            chunk, view = view[:window], view[window:]
            self._h2.send_data(sid, bytes(chunk), end_stream=end_stream and not view)
            self._flush()
            if not view:
                return

    def reset_stream(self, stream_id: int) -> None:
        stream = self._streams.pop(stream_id, None)
        with contextlib.suppress(h2.exceptions.ProtocolError):
            self._h2.reset_stream(stream_id)
        self._flush()
        if stream is not None:
            self._finish(stream)

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def _flush(self) -> None:
        data = self._h2.data_to_send()
        if data and self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)


async def _run_script(script: StreamScript, fake: FakeStream) -> None:
    try:
        await script(fake)
    except (ConnectionError, TimeoutError, asyncio.CancelledError):
        raise
    except Exception:
        _log.exception("fake bedrock: stream %d: script failed", fake.index)
        raise


async def _idle_watchdog(fake: FakeStream, idle_s: float) -> None:
    """Abort the stream once no input event arrived for ``idle_s`` seconds, as Bedrock does
    with a stream that only got its opening events (a pre-opened continuation stream)."""
    loop = asyncio.get_running_loop()
    while True:
        left = fake.last_input_at + idle_s - loop.time()
        if left <= 0:
            break
        await asyncio.sleep(left)
    if fake.input_ended or fake.response_ended:
        await asyncio.Event().wait()  # not idle but ending: the normal end wins
    fake.idle_timeout_hit = True
    await fake.send_exception("ValidationException", IDLE_TIMEOUT_MESSAGE)


async def _until_input_end(script: asyncio.Task[None] | None, fake: FakeStream) -> None:
    """Done when the client ended its input; a script still running then is cut short
    (it could only be waiting for input that will never come)."""
    await fake.wait_input_end(timeout=24 * 3600)
    if script is not None:
        script.cancel()
        with contextlib.suppress(BaseException):
            await script


class FakeBedrock:
    """The local endpoint. Use as ``async with FakeBedrock(scenario) as fake:``.

    ``scenario`` may be a `Scenario`, a single script run on every stream, or None (streams
    accept input and stay silent).
    """

    def __init__(
        self,
        scenario: Scenario | StreamScript | None = None,
        *,
        region: str = "us-east-1",
    ) -> None:
        if scenario is None:
            scenario = Scenario()
        elif not isinstance(scenario, Scenario):
            scenario = Scenario.each_stream(scenario)
        self.scenario = scenario
        self.region = region
        self.streams: list[FakeStream] = []
        self.received_events: list[RecordedEvent] = []
        self._refused: list[tuple[int, int]] = []
        self._connections: set[_Connection] = set()
        self._requests = 0
        self._server: asyncio.Server | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._streams_changed = asyncio.Event()
        self._disconnected = asyncio.Event()
        self.port = 0

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on 127.0.0.1, a free port. Sets `port`, `endpoint_url`, `ca_path`."""
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        self._tmp = tempfile.TemporaryDirectory(prefix="fake-bedrock-")
        ca_path = Path(self._tmp.name) / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_path))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.set_alpn_protocols(["h2"])
        cert.configure_cert(context)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self),
            "127.0.0.1",
            0,
            ssl=context,
            # A client that distrusts the certificate can leave the handshake hanging.
            ssl_handshake_timeout=1.0,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ca_path = str(ca_path)

    async def stop(self) -> None:
        """Abort every connection, stop listening, remove the CA files."""
        for conn in list(self._connections):
            conn.abort()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await self._server.wait_closed()
            self._server = None
        await asyncio.sleep(0)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    async def __aenter__(self) -> FakeBedrock:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # --- where it is ---------------------------------------------------------------------

    @property
    def endpoint_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_path(self) -> str:
        """PEM file of the CA that signed the server certificate."""
        return self._ca_path

    def env(self) -> dict[str, str]:
        """Standard AWS variables that point the Nova Sonic backend here."""
        return {
            "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": self.endpoint_url,
            "AWS_CA_BUNDLE": self.ca_path,
            "AWS_REGION": self.region,
            "AWS_ACCESS_KEY_ID": "AKIDFAKEBEDROCK",
            "AWS_SECRET_ACCESS_KEY": "fake-secret",
        }

    def backend_options(self) -> dict[str, str]:
        """Keyword options for ``NovaSonicBackend.from_options`` that point it here."""
        return {
            "endpoint_url": self.endpoint_url,
            "ca_bundle": self.ca_path,
            "region": self.region,
            "aws_access_key_id": "AKIDFAKEBEDROCK",
            "aws_secret_access_key": "fake-secret",
        }

    # --- what happened -------------------------------------------------------------------

    @property
    def open_connections(self) -> int:
        return len(self._connections)

    @property
    def refused(self) -> list[tuple[int, int]]:
        """(request index, HTTP status) of requests answered with an HTTP error."""
        return list(self._refused)

    async def wait_for_streams(self, count: int, timeout: float = 10.0) -> list[FakeStream]:
        """Wait until ``count`` streams were opened; returns `streams`."""
        async with asyncio.timeout(timeout):
            while len(self.streams) < count:
                self._streams_changed.clear()
                await self._streams_changed.wait()
        return self.streams

    async def wait_for_disconnect(self, timeout: float = 10.0) -> None:
        """Wait until no client connection is open."""
        async with asyncio.timeout(timeout):
            while self._connections:
                self._disconnected.clear()
                await self._disconnected.wait()

    def _next_index(self) -> int:
        index = self._requests
        self._requests += 1
        return index

    def _stream_opened(self) -> None:
        self._streams_changed.set()

    def _record(self, fake: FakeStream, event: dict[str, Any]) -> None:
        body = event.get("event", {})
        name = next(iter(body), "?") if isinstance(body, dict) else "?"
        fields = body.get(name, {}) if isinstance(body, dict) else {}
        self.received_events.append(RecordedEvent(fake.index, name, fields))


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--after-audio-ms", type=int, default=1500, help="answer after this much user audio"
    )
    parser.add_argument("--reply", default="This is the fake Bedrock endpoint speaking.")
    parser.add_argument(
        "--time-limit",
        type=float,
        default=None,
        help="end each stream with ModelTimeoutException after this many s",
    )
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    script = answer_each_utterance(
        after_audio_ms=args.after_audio_ms, user_text="(speech)", assistant_text=args.reply
    )
    async with FakeBedrock(Scenario.each_stream(script, time_limit_s=args.time_limit)) as fake:
        for key, value in fake.env().items():
            print(f"export {key}={value}")
        print("# serving; Ctrl-C to stop", flush=True)
        await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    """Serve a fake endpoint until interrupted."""
    logging.basicConfig(level=logging.INFO)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(_parse_args(argv)))


if __name__ == "__main__":
    main()
