"""The gateway's WebSocket wire format, with no I/O.

Inbound, every WebSocket message becomes one typed command (:func:`parse_message`) or raises
:class:`InvalidMessage` carrying a stable UPPER_SNAKE reason. Outbound, every conversation event
becomes one JSON object (:func:`render_event`), errors become ``{"event": "error", ...}``
(:func:`error_event`), and an upstream gRPC status maps to a WebSocket close code in exactly one
place (:func:`close_code_for_status`).

Text frames carry JSON objects with an ``action``::

    {"action": "config", "sample_rate": 16000, "voice": "...", ...}   optional, first only
    {"action": "audiostream", "audioData": "<base64 pcm_s16le>"}
    {"action": "text", "text": "What time is it?"}
    {"action": "playback", "turn_id": "t1", "played_ms": 1200}
    {"action": "tool_result", "tool_call_id": "c1", "content": {...}, "is_error": false}
    {"action": "end"}

Binary frames are raw PCM s16le in the session's input format. See ``docs/gateway.md``.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, assert_never

from sonicwire.client.events import (
    AudioOutput,
    Event,
    GoingAway,
    Interruption,
    SessionStarted,
    SpeechActivity,
    ToolCall,
    ToolCallResult,
    Transcript,
    TurnComplete,
    Usage,
    Warning,
)

__all__ = [
    "SUPPORTED_SAMPLE_RATES",
    "Audio",
    "ClientToolSpec",
    "CloseCode",
    "Command",
    "Configure",
    "EndInput",
    "InvalidMessage",
    "Playback",
    "ProtocolLimits",
    "Reason",
    "Text",
    "ToolResult",
    "VadOptions",
    "close_code_for_status",
    "encode",
    "error_event",
    "parse_message",
    "render_event",
    "split_audio",
    "upstream_error_event",
]

SUPPORTED_SAMPLE_RATES: Final = (8000, 16000, 24000, 48000)
"""Sample rates a session accepts for input and output audio."""

_TOOL_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9_-]{0,63}$")


class CloseCode(enum.IntEnum):
    """WebSocket close codes the gateway uses; 4xxx mirror HTTP statuses (4401 ~ 401)."""

    NORMAL = 1000
    """The conversation ended (the server finished, or the client sent ``end``)."""
    GOING_AWAY = 1001
    """The gateway or the gRPC server is shutting down; reconnect."""
    INVALID_PAYLOAD = 1007
    """A text frame that is not UTF-8 (sent by the WebSocket library)."""
    MESSAGE_TOO_BIG = 1009
    """A message over the gateway's ``max_message_bytes`` (sent by the WebSocket library)."""
    INTERNAL_ERROR = 1011
    """A bug in the gateway."""
    TRY_AGAIN_LATER = 1013
    """The gateway is at its connection limit."""
    BAD_REQUEST = 4400
    """The gRPC server rejected the conversation's input (INVALID_ARGUMENT and the like)."""
    UNAUTHENTICATED = 4401
    """Missing, malformed or wrong API key."""
    PERMISSION_DENIED = 4403
    """The API key may not do this."""
    TIMEOUT = 4408
    """No message in time (gateway idle timeout) or a server deadline (idle, session length)."""
    RATE_LIMITED = 4429
    """Too many messages per second, or a server limit (RESOURCE_EXHAUSTED)."""
    UPSTREAM_ERROR = 4500
    """The gRPC server failed (INTERNAL, UNKNOWN, ...)."""
    UPSTREAM_UNAVAILABLE = 4503
    """The gRPC server or its speech backend cannot be reached."""
    SLOW_CONSUMER = 4507
    """The client stopped reading: the gateway's bounded send buffer filled up."""


class Reason:
    """Stable UPPER_SNAKE reasons of the gateway's own error events."""

    INVALID_JSON: Final = "INVALID_JSON"
    INVALID_MESSAGE: Final = "INVALID_MESSAGE"
    UNKNOWN_ACTION: Final = "UNKNOWN_ACTION"
    MISSING_FIELD: Final = "MISSING_FIELD"
    INVALID_FIELD: Final = "INVALID_FIELD"
    UNKNOWN_FIELD: Final = "UNKNOWN_FIELD"
    INVALID_BASE64: Final = "INVALID_BASE64"
    AUDIO_CHUNK_INVALID: Final = "AUDIO_CHUNK_INVALID"
    AUDIO_FORMAT_UNSUPPORTED: Final = "AUDIO_FORMAT_UNSUPPORTED"
    TEXT_TOO_LONG: Final = "TEXT_TOO_LONG"
    CONFIG_ALREADY_RECEIVED: Final = "CONFIG_ALREADY_RECEIVED"
    INPUT_ENDED: Final = "INPUT_ENDED"
    RATE_LIMITED: Final = "RATE_LIMITED"
    IDLE_TIMEOUT: Final = "IDLE_TIMEOUT"
    GATEWAY_CONNECTION_LIMIT: Final = "GATEWAY_CONNECTION_LIMIT"
    API_KEY_MALFORMED: Final = "API_KEY_MALFORMED"
    INTERNAL: Final = "GATEWAY_INTERNAL"


class InvalidMessage(ValueError):
    """A client message the gateway cannot accept.

    Attributes:
        reason: a :class:`Reason` constant.
        message: what was wrong, for humans.
        code: the gRPC-style status name reported in the error event.
    """

    def __init__(self, reason: str, message: str, code: str = "INVALID_ARGUMENT") -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.code = code

    def to_event(self, *, fatal: bool = False) -> dict[str, Any]:
        """The ``error`` event reporting this problem."""
        return error_event(self.code, self.reason, self.message, fatal=fatal)


@dataclass(frozen=True, slots=True)
class ProtocolLimits:
    """Limits applied while parsing.

    Attributes:
        max_text_bytes: longest typed text, in UTF-8 bytes (the server's limit is 4096).
        max_system_prompt_chars: longest system prompt.
        max_tool_content_bytes: longest tool result content, in UTF-8 bytes.
    """

    max_text_bytes: int = 4096
    max_system_prompt_chars: int = 16_000
    max_tool_content_bytes: int = 64 * 1024


# -- commands ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VadOptions:
    """Voice activity detection knobs; ``None``/0 leaves the server default."""

    engine: str | None = None
    confidence: float = 0.0
    start_secs: float = 0.0
    stop_secs: float = 0.0
    min_volume: float = 0.0
    speech_pad_ms: int = 0


@dataclass(frozen=True, slots=True)
class ClientToolSpec:
    """A tool the WebSocket client executes itself (answered with ``tool_result``)."""

    name: str
    description: str
    parameters_json_schema: str
    timeout_ms: int = 0


@dataclass(frozen=True, slots=True)
class Configure:
    """``{"action": "config"}``: how to open the conversation. Defaults: 16 kHz in and out."""

    sample_rate_hz: int = 16000
    output_sample_rate_hz: int | None = None
    voice: str = ""
    system_prompt: str = ""
    barge_in: bool = True
    barge_in_min_speech_ms: int = 0
    echo_cancellation: bool = True
    noise_suppression: bool = True
    vad: VadOptions = field(default_factory=VadOptions)
    endpointing: str | None = None
    server_tools: tuple[str, ...] = ()
    client_tools: tuple[ClientToolSpec, ...] = ()
    resume_session_id: str = ""

    @property
    def effective_output_rate_hz(self) -> int:
        """The output rate asked for: ``output_sample_rate`` or else the input rate."""
        if self.output_sample_rate_hz is None:
            return self.sample_rate_hz
        return self.output_sample_rate_hz


@dataclass(frozen=True, slots=True)
class Audio:
    """Microphone audio (``audiostream`` or a binary frame): PCM s16le, whole samples."""

    pcm: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Text:
    """``{"action": "text"}``: a typed user turn."""

    text: str


@dataclass(frozen=True, slots=True)
class Playback:
    """``{"action": "playback"}``: milliseconds of a turn's audio the client has played."""

    turn_id: str
    played_ms: int


@dataclass(frozen=True, slots=True)
class ToolResult:
    """``{"action": "tool_result"}``: the answer to a client-executed ``tool_call``."""

    tool_call_id: str
    content: str
    is_error: bool = False


@dataclass(frozen=True, slots=True)
class EndInput:
    """``{"action": "end"}``: no more input; the server finishes its turn, then the socket
    closes with 1000."""


Command = Configure | Audio | Text | Playback | ToolResult | EndInput
"""Any inbound command."""


# -- parsing ----------------------------------------------------------------------------------


def parse_message(data: str | bytes, limits: ProtocolLimits | None = None) -> Command:
    """Parse one WebSocket message.

    Args:
        data: a text frame (``str``, JSON) or a binary frame (``bytes``, raw PCM s16le).
        limits: parsing limits; defaults to :class:`ProtocolLimits`.

    Returns:
        The command.

    Raises:
        InvalidMessage: the message is malformed; its ``reason`` says how.
    """
    limits = limits or ProtocolLimits()
    if isinstance(data, bytes | bytearray | memoryview):
        return Audio(_check_pcm(bytes(data)))
    try:
        message = json.loads(data)
    except ValueError as exc:
        raise InvalidMessage(Reason.INVALID_JSON, f"not valid JSON: {exc}") from None
    if not isinstance(message, dict):
        raise InvalidMessage(
            Reason.INVALID_MESSAGE, f"expected a JSON object, got {_json_type(message)}"
        )
    action = message.get("action")
    if action is None:
        raise InvalidMessage(Reason.MISSING_FIELD, "missing field 'action'")
    if not isinstance(action, str):
        raise InvalidMessage(Reason.INVALID_FIELD, "'action' must be a string")
    parser = _PARSERS.get(action)
    if parser is None:
        known = ", ".join(sorted(_PARSERS))
        raise InvalidMessage(
            Reason.UNKNOWN_ACTION, f"unknown action {action[:40]!r}; expected one of: {known}"
        )
    return parser(_Fields(message), limits)


class _Fields:
    """Typed access to a message's fields; every failure is an :class:`InvalidMessage`."""

    def __init__(self, message: Mapping[str, Any], prefix: str = "") -> None:
        self._message = message
        self._prefix = prefix

    def _name(self, key: str) -> str:
        return f"{self._prefix}{key}"

    def has(self, key: str) -> bool:
        return self._message.get(key) is not None

    def raw(self, key: str) -> Any:
        if key not in self._message or self._message[key] is None:
            raise InvalidMessage(Reason.MISSING_FIELD, f"missing field {self._name(key)!r}")
        return self._message[key]

    def _typed(self, key: str, kind: type | tuple[type, ...], label: str) -> Any:
        value = self.raw(key)
        # bool is an int in Python but not in JSON: reject it where a number is expected.
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise InvalidMessage(
                Reason.INVALID_FIELD,
                f"{self._name(key)!r} must be {label}, got {_json_type(value)}",
            )
        return value

    def string(self, key: str, default: str | None = None, *, max_chars: int = 256) -> str:
        if default is not None and not self.has(key):
            return default
        value: str = self._typed(key, str, "a string")
        if len(value) > max_chars:
            raise InvalidMessage(
                Reason.INVALID_FIELD, f"{self._name(key)!r} is longer than {max_chars} characters"
            )
        return value

    def boolean(self, key: str, default: bool) -> bool:
        if not self.has(key):
            return default
        value: bool = self._typed(key, bool, "true or false")
        return value

    def integer(self, key: str, default: int | None = None, *, lo: int = 0, hi: int) -> int:
        if default is not None and not self.has(key):
            return default
        value = self._typed(key, (int, float), "an integer")
        if isinstance(value, float):
            if not value.is_integer():
                raise InvalidMessage(
                    Reason.INVALID_FIELD, f"{self._name(key)!r} must be an integer"
                )
            value = int(value)
        if not lo <= value <= hi:
            raise InvalidMessage(
                Reason.INVALID_FIELD, f"{self._name(key)!r} must be between {lo} and {hi}"
            )
        return int(value)

    def number(self, key: str, *, lo: float, hi: float) -> float:
        if not self.has(key):
            return 0.0
        value = float(self._typed(key, (int, float), "a number"))
        if not lo <= value <= hi:
            raise InvalidMessage(
                Reason.INVALID_FIELD, f"{self._name(key)!r} must be between {lo:g} and {hi:g}"
            )
        return value

    def choice(self, key: str, choices: tuple[str, ...]) -> str | None:
        if not self.has(key):
            return None
        value = self.string(key)
        if value not in choices:
            raise InvalidMessage(
                Reason.INVALID_FIELD,
                f"{self._name(key)!r} must be one of {', '.join(choices)}, got {value[:40]!r}",
            )
        return value

    def obj(self, key: str) -> _Fields | None:
        if not self.has(key):
            return None
        value = self._typed(key, dict, "an object")
        return _Fields(value, f"{self._name(key)}.")

    def array(self, key: str, *, max_items: int) -> list[Any]:
        if not self.has(key):
            return []
        value: list[Any] = self._typed(key, list, "an array")
        if len(value) > max_items:
            raise InvalidMessage(
                Reason.INVALID_FIELD, f"{self._name(key)!r} has more than {max_items} items"
            )
        return value

    def only(self, allowed: frozenset[str]) -> None:
        unknown = sorted(set(self._message) - allowed)
        if unknown:
            raise InvalidMessage(
                Reason.UNKNOWN_FIELD,
                f"unknown field {self._name(unknown[0][:40])!r}; "
                f"expected: {', '.join(sorted(allowed))}",
            )


def _json_type(value: Any) -> str:
    match value:
        case None:
            return "null"
        case bool():
            return "a boolean"
        case int() | float():
            return "a number"
        case str():
            return "a string"
        case list():
            return "an array"
        case dict():
            return "an object"
        case _:
            return type(value).__name__


def _check_pcm(pcm: bytes) -> bytes:
    if not pcm:
        raise InvalidMessage(Reason.AUDIO_CHUNK_INVALID, "empty audio chunk")
    if len(pcm) % 2:
        raise InvalidMessage(
            Reason.AUDIO_CHUNK_INVALID,
            f"audio chunk of {len(pcm)} bytes: PCM s16le needs an even number of bytes",
        )
    return pcm


def _sample_rate(fields: _Fields, key: str) -> int | None:
    if not fields.has(key):
        return None
    rate = fields.integer(key, lo=0, hi=1_000_000)
    if rate not in SUPPORTED_SAMPLE_RATES:
        allowed = ", ".join(str(r) for r in SUPPORTED_SAMPLE_RATES)
        raise InvalidMessage(
            Reason.AUDIO_FORMAT_UNSUPPORTED, f"{key!r} must be one of {allowed} Hz, got {rate}"
        )
    return rate


_CONFIG_FIELDS = frozenset(
    {
        "action",
        "sample_rate",
        "output_sample_rate",
        "channels",
        "format",
        "voice",
        "system_prompt",
        "barge_in",
        "barge_in_min_speech_ms",
        "echo_cancellation",
        "noise_suppression",
        "vad",
        "endpointing",
        "server_tools",
        "client_tools",
        "resume_session_id",
    }
)
_VAD_FIELDS = frozenset(
    {"engine", "confidence", "start_secs", "stop_secs", "min_volume", "speech_pad_ms"}
)
_TOOL_FIELDS = frozenset({"name", "description", "parameters", "timeout_ms"})


def _parse_config(fields: _Fields, limits: ProtocolLimits) -> Configure:
    # Unknown keys are rejected here (and only here): a typo in a setting would otherwise be
    # silently ignored for the whole conversation.
    fields.only(_CONFIG_FIELDS)
    if fields.has("channels") and fields.integer("channels", lo=0, hi=64) != 1:
        raise InvalidMessage(Reason.AUDIO_FORMAT_UNSUPPORTED, "only mono audio (channels 1)")
    if fields.has("format") and fields.string("format") != "pcm_s16le":
        raise InvalidMessage(Reason.AUDIO_FORMAT_UNSUPPORTED, "only format 'pcm_s16le'")
    vad = VadOptions()
    if (v := fields.obj("vad")) is not None:
        v.only(_VAD_FIELDS)
        vad = VadOptions(
            engine=v.choice("engine", ("webrtc", "silero")),
            confidence=v.number("confidence", lo=0.0, hi=1.0),
            start_secs=v.number("start_secs", lo=0.0, hi=10.0),
            stop_secs=v.number("stop_secs", lo=0.0, hi=10.0),
            min_volume=v.number("min_volume", lo=0.0, hi=1.0),
            speech_pad_ms=v.integer("speech_pad_ms", 0, hi=5000),
        )
    server_tools = []
    for index, name in enumerate(fields.array("server_tools", max_items=128)):
        if not isinstance(name, str) or not _TOOL_NAME.match(name):
            raise InvalidMessage(
                Reason.INVALID_FIELD, f"'server_tools[{index}]' must be a tool name"
            )
        server_tools.append(name)
    client_tools = [
        _parse_tool(item, index)
        for index, item in enumerate(fields.array("client_tools", max_items=64))
    ]
    return Configure(
        sample_rate_hz=_sample_rate(fields, "sample_rate") or 16000,
        output_sample_rate_hz=_sample_rate(fields, "output_sample_rate"),
        voice=fields.string("voice", "", max_chars=128),
        system_prompt=fields.string(
            "system_prompt", "", max_chars=limits.max_system_prompt_chars
        ),
        barge_in=fields.boolean("barge_in", True),
        barge_in_min_speech_ms=fields.integer("barge_in_min_speech_ms", 0, hi=10_000),
        echo_cancellation=fields.boolean("echo_cancellation", True),
        noise_suppression=fields.boolean("noise_suppression", True),
        vad=vad,
        endpointing=fields.choice("endpointing", ("high", "medium", "low")),
        server_tools=tuple(server_tools),
        client_tools=tuple(client_tools),
        resume_session_id=fields.string("resume_session_id", "", max_chars=128),
    )


def _parse_tool(item: Any, index: int) -> ClientToolSpec:
    prefix = f"client_tools[{index}]."
    if not isinstance(item, dict):
        raise InvalidMessage(Reason.INVALID_FIELD, f"'client_tools[{index}]' must be an object")
    tool = _Fields(item, prefix)
    tool.only(_TOOL_FIELDS)
    name = tool.string("name", max_chars=64)
    if not _TOOL_NAME.match(name):
        raise InvalidMessage(
            Reason.INVALID_FIELD,
            f"'{prefix}name' must match {_TOOL_NAME.pattern}, got {name!r}",
        )
    parameters = tool.obj("parameters")
    schema = json.dumps(item["parameters"]) if parameters is not None else '{"type": "object"}'
    return ClientToolSpec(
        name=name,
        description=tool.string("description", "", max_chars=4096),
        parameters_json_schema=schema,
        timeout_ms=tool.integer("timeout_ms", 0, hi=600_000),
    )


def _parse_audio(fields: _Fields, limits: ProtocolLimits) -> Audio:
    encoded = fields.raw("audioData")
    if not isinstance(encoded, str):
        raise InvalidMessage(
            Reason.INVALID_FIELD, f"'audioData' must be a base64 string, got {_json_type(encoded)}"
        )
    try:
        pcm = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidMessage(
            Reason.INVALID_BASE64, "'audioData' is not valid base64 (RFC 4648, with padding)"
        ) from None
    return Audio(_check_pcm(pcm))


def _parse_text(fields: _Fields, limits: ProtocolLimits) -> Text:
    # The frame size bounds the length; the byte limit below gives the precise reason.
    text = fields.string("text", max_chars=1 << 30)
    if not text.strip():
        raise InvalidMessage(Reason.INVALID_FIELD, "'text' must not be empty")
    if len(text.encode("utf-8", "surrogatepass")) > limits.max_text_bytes:
        raise InvalidMessage(
            Reason.TEXT_TOO_LONG, f"'text' is longer than {limits.max_text_bytes} UTF-8 bytes"
        )
    return Text(text)


def _parse_playback(fields: _Fields, limits: ProtocolLimits) -> Playback:
    return Playback(
        turn_id=fields.string("turn_id", max_chars=128),
        played_ms=fields.integer("played_ms", hi=24 * 3600 * 1000),
    )


def _parse_tool_result(fields: _Fields, limits: ProtocolLimits) -> ToolResult:
    raw = fields.raw("content")
    content = raw if isinstance(raw, str) else json.dumps(raw)
    if len(content.encode("utf-8", "surrogatepass")) > limits.max_tool_content_bytes:
        raise InvalidMessage(
            Reason.INVALID_FIELD,
            f"'content' is longer than {limits.max_tool_content_bytes} UTF-8 bytes",
        )
    return ToolResult(
        tool_call_id=fields.string("tool_call_id", max_chars=128),
        content=content,
        is_error=fields.boolean("is_error", False),
    )


def _parse_end(fields: _Fields, limits: ProtocolLimits) -> EndInput:
    return EndInput()


_PARSERS: dict[str, Callable[[_Fields, ProtocolLimits], Command]] = {
    "config": _parse_config,
    "audiostream": _parse_audio,
    "text": _parse_text,
    "playback": _parse_playback,
    "tool_result": _parse_tool_result,
    "end": _parse_end,
}


def split_audio(pcm: bytes, max_bytes: int) -> Iterator[bytes]:
    """Split PCM into chunks of at most ``max_bytes`` (rounded down to whole samples).

    Raises:
        ValueError: ``max_bytes`` is smaller than one sample.
    """
    step = max_bytes - max_bytes % 2
    if step <= 0:
        raise ValueError("max_bytes must hold at least one sample")
    for start in range(0, len(pcm), step):
        yield pcm[start : start + step]


# -- rendering --------------------------------------------------------------------------------


def _lower(member: enum.Enum) -> str:
    return member.name.lower()


def _json_or_raw(text: str) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def render_event(event: Event, output_sample_rate_hz: int = 16000) -> dict[str, Any]:
    """Render a conversation event as the JSON object sent to the WebSocket client.

    Args:
        event: a typed event from the Sonicwire client SDK.
        output_sample_rate_hz: the session's output rate, stated on ``media`` events.

    Returns:
        A JSON-ready dict with an ``event`` key.
    """
    match event:
        case AudioOutput():
            return {
                "event": "media",
                "data": base64.b64encode(event.audio).decode("ascii"),
                "sample_rate": output_sample_rate_hz,
                "channels": 1,
                "format": "pcm_s16le",
                "turn_id": event.turn_id,
                "offset_ms": event.offset_ms,
            }
        case SessionStarted():
            return {
                "event": "session_started",
                "session_id": event.session_id,
                "backend": event.backend,
                "tools": list(event.tools),
                "input_sample_rate": event.input_sample_rate_hz,
                "output_sample_rate": event.output_sample_rate_hz,
                "limits": {
                    "max_audio_chunk_bytes": event.limits.max_audio_chunk_bytes,
                    "max_session_seconds": event.limits.max_session_seconds,
                    "idle_timeout_seconds": event.limits.idle_timeout_seconds,
                },
            }
        case Transcript():
            return {
                "event": "transcript",
                "role": _lower(event.role),
                "text": event.text,
                "final": event.final,
                "turn_id": event.turn_id,
            }
        case SpeechActivity():
            return {
                "event": "speech_activity",
                "kind": _lower(event.kind),
                "offset_ms": event.offset_ms,
            }
        case Interruption():
            return {
                "event": "interruption",
                "turn_id": event.turn_id,
                "played_ms": event.played_ms,
                "source": _lower(event.source),
            }
        case ToolCall():
            return {
                "event": "tool_call",
                "id": event.id,
                "name": event.name,
                "arguments": _json_or_raw(event.arguments_json),
                "executor": _lower(event.executor),
                "turn_id": event.turn_id,
            }
        case ToolCallResult():
            return {
                "event": "tool_result",
                "id": event.id,
                "name": event.name,
                "status": _lower(event.status),
                "result": _json_or_raw(event.result_json),
                "duration_ms": event.duration_ms,
            }
        case TurnComplete():
            return {
                "event": "turn_complete",
                "turn_id": event.turn_id,
                "stop_reason": _lower(event.stop_reason),
                "audio_ms": event.audio_ms,
                "latency": {
                    "first_audio_ms": event.latency.first_audio_ms,
                    "transcript_ms": event.latency.transcript_ms,
                    "tools_ms": event.latency.tools_ms,
                },
            }
        case Usage():
            return {
                "event": "usage",
                "input_tokens": event.input_tokens,
                "output_tokens": event.output_tokens,
                "total_tokens": event.total_tokens,
            }
        case GoingAway():
            return {"event": "going_away", "reason": event.reason, "grace_ms": event.grace_ms}
        case Warning():
            return {"event": "warning", "reason": event.reason, "message": event.message}
        case _:
            assert_never(event)


def error_event(code: str, reason: str, message: str, *, fatal: bool) -> dict[str, Any]:
    """An ``error`` event.

    Args:
        code: gRPC-style status name, e.g. ``"INVALID_ARGUMENT"``.
        reason: stable UPPER_SNAKE reason (a :class:`Reason` or the server's ErrorInfo reason).
        message: human-readable description.
        fatal: True when the socket closes right after this event.
    """
    return {"event": "error", "code": code, "reason": reason, "message": message, "fatal": fatal}


# The single mapping from upstream gRPC status names to close codes.
_CLOSE_FOR_STATUS: dict[str, CloseCode] = {
    "OK": CloseCode.NORMAL,
    "INVALID_ARGUMENT": CloseCode.BAD_REQUEST,
    "FAILED_PRECONDITION": CloseCode.BAD_REQUEST,
    "OUT_OF_RANGE": CloseCode.BAD_REQUEST,
    "NOT_FOUND": CloseCode.BAD_REQUEST,
    "UNAUTHENTICATED": CloseCode.UNAUTHENTICATED,
    "PERMISSION_DENIED": CloseCode.PERMISSION_DENIED,
    "DEADLINE_EXCEEDED": CloseCode.TIMEOUT,
    "RESOURCE_EXHAUSTED": CloseCode.RATE_LIMITED,
    "UNAVAILABLE": CloseCode.UPSTREAM_UNAVAILABLE,
    "CANCELLED": CloseCode.GOING_AWAY,
}
_GOING_AWAY_REASONS = frozenset({"SERVER_DRAINING"})


def close_code_for_status(code: str, reason: str = "") -> CloseCode:
    """The close code for an upstream gRPC status.

    Args:
        code: the status name, e.g. ``"UNAUTHENTICATED"``; ``""`` when unknown.
        reason: the ErrorInfo reason; ``SERVER_DRAINING`` maps to 1001 (reconnect).
    """
    if reason in _GOING_AWAY_REASONS:
        return CloseCode.GOING_AWAY
    return _CLOSE_FOR_STATUS.get(code, CloseCode.UPSTREAM_ERROR)


def upstream_error_event(code: str, reason: str, message: str) -> tuple[dict[str, Any], CloseCode]:
    """The fatal ``error`` event and close code for a conversation the server ended.

    Args:
        code: the gRPC status name (``""`` when the failure had none).
        reason: the ErrorInfo reason, ``""`` when the server sent none.
        message: the status message.
    """
    code = code or "UNKNOWN"
    return error_event(code, reason or code, message, fatal=True), close_code_for_status(
        code, reason
    )


def encode(message: Mapping[str, Any]) -> str:
    """Serialise an outbound message as compact JSON text."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)
