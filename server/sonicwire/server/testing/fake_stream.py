"""One bidirectional stream on the fake Bedrock endpoint, as a scenario script sees it.

The server (`sonicwire.server.testing.fake_bedrock`) creates a `FakeStream` per
``InvokeModelWithBidirectionalStream`` request, records every Nova input event on it, and runs
the stream's script (``async def script(stream: FakeStream) -> None``). Scripts wait for input
(`wait_event`, `wait_audio`, `wait_for`) and answer with Nova output events: whole building
blocks (`reply`, `tool_use`, `speak`, `interrupted`, `usage`) or raw events (`send`), modeled
errors (`send_exception`), or failures (`reset`, `drop_connection`).

Output events follow what Nova Sonic emits: ``completionStart``; per content block
``contentStart`` (type, role, ``additionalModelFields`` as a JSON *string* with the generation
stage) then ``textOutput`` / ``audioOutput`` / ``toolUse`` then ``contentEnd`` with a stop
reason; ``usageEvent``; ``completionEnd``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import re
import struct
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sonicwire.server.testing.bedrock_wire import encode_chunk, encode_exception

__all__ = ["INTERRUPTED_TEXT", "FakeStream", "StreamWire", "tone"]

# What Nova puts in an assistant textOutput when the user barged in.
INTERRUPTED_TEXT = '{ "interrupted" : true }'
_INPUT_RATE = 16_000


class StreamWire(Protocol):
    """How a `FakeStream` reaches its HTTP/2 stream (implemented by the server)."""

    async def write(self, data: bytes, *, end_stream: bool = False) -> None: ...

    def reset(self) -> None: ...

    def drop_connection(self) -> None: ...


def tone(ms: int, sample_rate: int = 24_000, hz: float = 220.0) -> bytes:
    """``ms`` of a quiet sine tone, mono s16le: stand-in assistant speech."""
    count = sample_rate * ms // 1000
    return b"".join(
        struct.pack("<h", int(3000 * math.sin(2 * math.pi * hz * i / sample_rate)))
        for i in range(count)
    )


@dataclass(frozen=True, slots=True)
class _Block:
    content_id: str
    kind: str
    role: str


class FakeStream:
    """Recorded input and scripted output of one stream.

    Read: `events` (every Nova input event, in order), `event_names`, `audio` (all user PCM),
    `audio_chunks`, `end_envelope_received` (the client's signed empty end-of-input message),
    `input_ended` (its HTTP/2 END_STREAM), `closed` (stream reset or connection gone).
    """

    def __init__(
        self,
        index: int,
        model_id: str,
        headers: Mapping[str, str],
        wire: StreamWire,
        on_event: Callable[[FakeStream, dict[str, Any]], None],
    ) -> None:
        self.index = index
        self.model_id = model_id
        self.headers = dict(headers)
        self.events: list[dict[str, Any]] = []
        self.audio = bytearray()
        self.audio_chunks: list[bytes] = []
        self.input_ended = False
        self.end_envelope_received = False
        self.closed = False
        self.response_ended = False
        self.time_limit_hit = False  # the plan's time limit ended it (ModelTimeoutException)
        # The plan's idle timeout ended it: no input event arrived for that long, so it was
        # aborted as Bedrock aborts idle streams ("Timed out waiting for input events").
        self.idle_timeout_hit = False
        self.last_input_at = asyncio.get_running_loop().time()
        self.event_times: list[float] = []  # loop time each event in `events` arrived
        self.session_id = str(uuid.uuid4())
        self.completion_id = str(uuid.uuid4())
        self._wire = wire
        self._on_event = on_event
        self._waiters: set[asyncio.Future[None]] = set()
        self._cursor = 0
        self._audio_mark = 0
        self._input_rate = _INPUT_RATE
        self._completion_started = False
        self._send_lock = asyncio.Lock()

    # --- recording (called by the server) ------------------------------------------------

    def record(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        self.last_input_at = asyncio.get_running_loop().time()
        self.event_times.append(self.last_input_at)
        body = event.get("event", {})
        start = body.get("contentStart")
        if isinstance(start, dict) and start.get("type") == "AUDIO":
            config = start.get("audioInputConfiguration")
            rate = config.get("sampleRateHertz") if isinstance(config, dict) else None
            self._input_rate = rate if isinstance(rate, int) and rate > 0 else _INPUT_RATE
        audio = body.get("audioInput")
        if isinstance(audio, dict):
            pcm = base64.b64decode(audio.get("content", ""))
            self.audio += pcm
            self.audio_chunks.append(pcm)
        self._on_event(self, event)
        self._notify()

    def mark_input_ended(self) -> None:
        self.input_ended = True
        self._notify()

    def mark_closed(self) -> None:
        self.closed = True
        self._notify()

    def _notify(self) -> None:
        # Recording happens in synchronous protocol callbacks, so waiters park on plain
        # futures (no lock to take, no task to spawn per event).
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    # --- reading -------------------------------------------------------------------------

    @property
    def access_key_id(self) -> str:
        """The access key id the request was signed with (from its SigV4 Authorization)."""
        match = re.search(r"Credential=([^/,\s]+)/", self.headers.get("authorization", ""))
        return match.group(1) if match else ""

    @property
    def event_names(self) -> list[str]:
        return [next(iter(e.get("event", {"?": None}))) for e in self.events]

    @property
    def audio_ms(self) -> int:
        return len(self.audio) // 2 * 1000 // self.input_rate

    @property
    def input_rate(self) -> int:
        """The user audio rate the client declared in its audio ``contentStart``
        (``audioInputConfiguration.sampleRateHertz``; 16 kHz until it did)."""
        return self._input_rate

    @property
    def output_rate(self) -> int:
        """The assistant audio rate the client asked for in ``promptStart`` (24 kHz if none)."""
        for event in self.events:
            start = event.get("event", {}).get("promptStart")
            if isinstance(start, dict):
                rate = start.get("audioOutputConfiguration", {}).get("sampleRateHertz")
                return int(rate) if isinstance(rate, int) else 24_000
        return 24_000

    @property
    def prompt_name(self) -> str:
        for event in self.events:
            start = event.get("event", {}).get("promptStart")
            if isinstance(start, dict):
                return str(start.get("promptName", ""))
        return ""

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until ``predicate()`` holds. Raises `TimeoutError`, or `ConnectionError` when
        the stream closed first."""
        async with asyncio.timeout(timeout):
            while not predicate():
                if self.closed:
                    raise ConnectionError(f"stream {self.index} closed")
                waiter = asyncio.get_running_loop().create_future()
                self._waiters.add(waiter)
                try:
                    await waiter
                finally:
                    self._waiters.discard(waiter)

    async def wait_event(
        self,
        name: str,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
        timeout: float = 10.0,
    ) -> dict[str, Any]:
        """Wait for the next input event called ``name`` (past earlier `wait_event` results)
        and return its body."""
        found: list[dict[str, Any]] = []

        def scan() -> bool:
            while self._cursor < len(self.events):
                body = self.events[self._cursor].get("event", {})
                self._cursor += 1
                inner = body.get(name)
                if isinstance(inner, dict) and (predicate is None or predicate(inner)):
                    found.append(inner)
                    return True
            return False

        await self.wait_for(scan, timeout)
        return found[0]

    async def wait_audio(self, ms: int, timeout: float = 10.0) -> None:
        """Wait until ``ms`` of user audio arrived since the last `wait_audio` returned."""
        need = self._audio_mark + ms * self.input_rate // 1000 * 2
        await self.wait_for(lambda: len(self.audio) >= need, timeout)
        self._audio_mark = len(self.audio)

    async def wait_input_end(self, timeout: float = 10.0) -> None:
        await self.wait_for(lambda: self.input_ended, timeout)

    # --- raw output ----------------------------------------------------------------------

    async def send(self, body: Mapping[str, Any]) -> None:
        """Send one output event: ``body`` is ``{name: fields}`` (wrapped in ``"event"``)."""
        async with self._send_lock:
            await self._wire.write(encode_chunk({"event": dict(body)}))

    async def send_exception(self, name: str, message: str = "", *, end: bool = True) -> None:
        """Send a modeled error (e.g. ``"ThrottlingException"``) and, by default, end the
        response as Bedrock does."""
        async with self._send_lock:
            await self._wire.write(encode_exception(name, message or name), end_stream=end)
            if end:
                self.response_ended = True

    async def end(self) -> None:
        """End the response stream normally (the client's receive loop sees end of stream)."""
        async with self._send_lock:
            if not self.response_ended:
                self.response_ended = True
                await self._wire.write(b"", end_stream=True)

    def reset(self) -> None:
        """Abort this HTTP/2 stream with RST_STREAM."""
        self._wire.reset()

    def drop_connection(self) -> None:
        """Abort the whole TCP connection (a network failure, as the client sees it)."""
        self._wire.drop_connection()

    # --- Nova building blocks ------------------------------------------------------------

    def _ids(self) -> dict[str, str]:
        return {
            "sessionId": self.session_id,
            "promptName": self.prompt_name,
            "completionId": self.completion_id,
        }

    async def completion_start(self) -> None:
        if not self._completion_started:
            self._completion_started = True
            await self.send({"completionStart": self._ids()})

    async def _start(self, kind: str, role: str, stage: str | None, **extra: Any) -> _Block:
        block = _Block(str(uuid.uuid4()), kind, role)
        fields: dict[str, Any] = {**self._ids(), "contentId": block.content_id}
        fields.update(type=kind, role=role, **extra)
        if stage is not None:
            fields["additionalModelFields"] = json.dumps({"generationStage": stage})
        await self.send({"contentStart": fields})
        return block

    async def _end(self, block: _Block, stop_reason: str) -> None:
        await self.send(
            {
                "contentEnd": {
                    **self._ids(),
                    "contentId": block.content_id,
                    "type": block.kind,
                    "stopReason": stop_reason,
                }
            }
        )

    async def text(self, role: str, stage: str, text: str, stop_reason: str) -> None:
        """One TEXT content block."""
        await self.completion_start()
        block = await self._start(
            "TEXT", role, stage, textOutputConfiguration={"mediaType": "text/plain"}
        )
        await self.send(
            {
                "textOutput": {
                    **self._ids(),
                    "contentId": block.content_id,
                    "role": role,
                    "content": text,
                }
            }
        )
        await self._end(block, stop_reason)

    async def audio_block(
        self,
        pcm: bytes,
        *,
        sample_rate: int | None = None,
        chunk_ms: int = 100,
        stop_reason: str = "END_TURN",
        pace: float = 0.0,
    ) -> None:
        """One ASSISTANT AUDIO content block carrying ``pcm`` (at ``sample_rate``, default the
        requested rate) in ``chunk_ms`` pieces, sleeping ``pace`` seconds between pieces (0: as
        fast as flow control allows)."""
        sample_rate = sample_rate or self.output_rate
        await self.completion_start()
        block = await self._start(
            "AUDIO",
            "ASSISTANT",
            "FINAL",
            audioOutputConfiguration={
                "mediaType": "audio/lpcm",
                "sampleRateHertz": sample_rate,
                "sampleSizeBits": 16,
                "channelCount": 1,
                "encoding": "base64",
                "audioType": "SPEECH",
            },
        )
        step = sample_rate * chunk_ms // 1000 * 2
        for start in range(0, len(pcm), step):
            chunk = base64.b64encode(pcm[start : start + step]).decode()
            await self.send(
                {"audioOutput": {**self._ids(), "contentId": block.content_id, "content": chunk}}
            )
            if pace:
                await asyncio.sleep(pace)
        await self._end(block, stop_reason)

    async def user_transcript(self, text: str) -> None:
        await self.text("USER", "FINAL", text, "END_TURN")

    async def speak(
        self,
        sentences: Sequence[str],
        *,
        audio_ms: int = 300,
        sample_rate: int | None = None,
        pace: float = 0.0,
    ) -> None:
        """The assistant says ``sentences``: per sentence a SPECULATIVE text, its audio and the
        FINAL text; the last blocks end with END_TURN, earlier ones with PARTIAL_TURN."""
        for i, sentence in enumerate(sentences):
            last = i == len(sentences) - 1
            reason = "END_TURN" if last else "PARTIAL_TURN"
            rate = sample_rate or self.output_rate
            await self.text("ASSISTANT", "SPECULATIVE", sentence, "PARTIAL_TURN")
            await self.audio_block(
                tone(audio_ms, rate), sample_rate=rate, stop_reason=reason, pace=pace
            )
            await self.text("ASSISTANT", "FINAL", sentence, reason)

    async def reply(
        self,
        user_text: str,
        assistant_text: str | Sequence[str],
        *,
        audio_ms: int = 300,
        sample_rate: int | None = None,
    ) -> None:
        """A whole turn: the user's transcript, then the assistant speaking, then usage."""
        sentences = [assistant_text] if isinstance(assistant_text, str) else list(assistant_text)
        await self.user_transcript(user_text)
        await self.speak(sentences, audio_ms=audio_ms, sample_rate=sample_rate)
        await self.usage(input_tokens=10, output_tokens=20)

    async def tool_use(
        self,
        name: str,
        arguments: Mapping[str, Any],
        tool_use_id: str,
        *,
        double_encoded: bool = False,
    ) -> None:
        """A TOOL content block asking for ``name(arguments)``; arguments go in ``content`` as a
        JSON string, as Nova 2 sends them. ``double_encoded``: as Nova sometimes does, the
        string holds a JSON *string* whose text is the arguments object."""
        content = json.dumps(dict(arguments))
        if double_encoded:
            content = json.dumps(content)
        await self.completion_start()
        block = await self._start(
            "TOOL", "TOOL", "FINAL", toolUseOutputConfiguration={"mediaType": "application/json"}
        )
        await self.send(
            {
                "toolUse": {
                    **self._ids(),
                    "contentId": block.content_id,
                    "toolName": name,
                    "toolUseId": tool_use_id,
                    "content": content,
                }
            }
        )
        await self._end(block, "TOOL_USE")

    async def wait_tool_result(self, tool_use_id: str, timeout: float = 10.0) -> str:
        """Wait for the client's result for ``tool_use_id`` and return its content string."""
        start = await self.wait_event(
            "contentStart",
            lambda e: (
                e.get("type") == "TOOL"
                and e.get("toolResultInputConfiguration", {}).get("toolUseId") == tool_use_id
            ),
            timeout,
        )
        result = await self.wait_event(
            "toolResult", lambda e: e.get("contentName") == start.get("contentName"), timeout
        )
        return str(result.get("content", ""))

    async def interrupted(self) -> None:
        """Nova's barge-in signal: an ASSISTANT text ``{ "interrupted" : true }`` whose block
        ends with INTERRUPTED."""
        await self.text("ASSISTANT", "FINAL", INTERRUPTED_TEXT, "INTERRUPTED")

    async def usage(self, *, input_tokens: int, output_tokens: int) -> None:
        await self.send(
            {
                "usageEvent": {
                    **self._ids(),
                    "details": {
                        "delta": {
                            "input": {"speechTokens": input_tokens, "textTokens": 0},
                            "output": {"speechTokens": output_tokens, "textTokens": 0},
                        },
                        "total": {
                            "input": {"speechTokens": input_tokens, "textTokens": 0},
                            "output": {"speechTokens": output_tokens, "textTokens": 0},
                        },
                    },
                    "totalInputTokens": input_tokens,
                    "totalOutputTokens": output_tokens,
                    "totalTokens": input_tokens + output_tokens,
                }
            }
        )

    async def completion_end(self) -> None:
        await self.send({"completionEnd": {**self._ids(), "stopReason": "END_TURN"}})
