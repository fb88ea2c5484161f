"""Inbound messages: every WebSocket message becomes one typed command, or an
:class:`~sonicwire.gateway.errors.InvalidMessage` with a stable reason. Pure: no I/O."""

from __future__ import annotations

import binascii
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from ._fields import Fields, json_type
from .errors import InvalidMessage, Reason

__all__ = [
    "SUPPORTED_SAMPLE_RATES",
    "Audio",
    "ClientToolSpec",
    "Command",
    "Configure",
    "EndInput",
    "Playback",
    "ProtocolLimits",
    "Text",
    "ToolResult",
    "VadOptions",
    "parse_message",
    "split_audio",
]

SUPPORTED_SAMPLE_RATES: Final = (8000, 16000, 24000, 48000)
"""Sample rates a session accepts for input and output audio."""

_TOOL_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9_-]{0,63}$")


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
    time_zone: str = ""
    resume_token: str = ""

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
    """``{"action": "playback"}``: milliseconds of a turn's audio the client has played, and
    optionally its device's output latency (``output_latency_ms``, 0 = unknown)."""

    turn_id: str
    played_ms: int
    output_latency_ms: int = 0


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
        message = _loads(data)
    except ValueError as exc:
        raise InvalidMessage(Reason.INVALID_JSON, f"not valid JSON: {exc}") from None
    except RecursionError:
        # A few KB of nested brackets exhaust the parser's recursion limit: hostile, not JSON
        # we can use, and never a reason to drop the connection.
        raise InvalidMessage(Reason.INVALID_JSON, "JSON nested too deeply") from None
    if type(message) is dict and message.get("action") == "audiostream":
        # Audio, 50 messages a second per socket: what the general path below does for it,
        # minus its dispatch and `Fields` wrapper (a missing or null field takes that path,
        # which names it).
        encoded = message.get("audioData")
        if encoded is not None:
            return _audio_from_base64(encoded)
    if not isinstance(message, dict):
        raise InvalidMessage(
            Reason.INVALID_MESSAGE, f"expected a JSON object, got {json_type(message)}"
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
    return parser(Fields(message), limits)


def _loads(data: str) -> Any:
    """Parse JSON text: orjson for audio (the audio path's ~1 KB frames, 50 a second per
    socket), the standard library for everything else and whatever orjson refuses.

    orjson is strict RFC 8259; the standard library also takes NaN and Infinity and lone
    surrogates, and names the error precisely. Falling back keeps exactly the documents
    accepted (and the reasons given) the gateway always had. orjson also reads an integer
    beyond 64 bits as a float instead of refusing it: harmless in an audio message (its one
    field is a string), digits lost in the JSON other messages pass on (a tool's result
    content, a client tool's schema), so only audio keeps orjson's reading.
    """
    try:
        message = orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)
    if type(message) is dict and message.get("action") == "audiostream":
        return message
    return json.loads(data)


def _check_pcm(pcm: bytes) -> bytes:
    if not pcm:
        raise InvalidMessage(Reason.AUDIO_CHUNK_INVALID, "empty audio chunk")
    if len(pcm) % 2:
        raise InvalidMessage(
            Reason.AUDIO_CHUNK_INVALID,
            f"audio chunk of {len(pcm)} bytes: PCM s16le needs an even number of bytes",
        )
    return pcm


def _sample_rate(fields: Fields, key: str) -> int | None:
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
        "resume_token",
        "time_zone",
    }
)
_VAD_FIELDS = frozenset(
    {"engine", "confidence", "start_secs", "stop_secs", "min_volume", "speech_pad_ms"}
)
_TOOL_FIELDS = frozenset({"name", "description", "parameters", "timeout_ms"})


def _parse_config(fields: Fields, limits: ProtocolLimits) -> Configure:
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
        system_prompt=fields.string("system_prompt", "", max_chars=limits.max_system_prompt_chars),
        barge_in=fields.boolean("barge_in", True),
        barge_in_min_speech_ms=fields.integer("barge_in_min_speech_ms", 0, hi=10_000),
        echo_cancellation=fields.boolean("echo_cancellation", True),
        noise_suppression=fields.boolean("noise_suppression", True),
        vad=vad,
        endpointing=fields.choice("endpointing", ("high", "medium", "low")),
        server_tools=tuple(server_tools),
        client_tools=tuple(client_tools),
        resume_session_id=fields.string("resume_session_id", "", max_chars=128),
        time_zone=fields.string("time_zone", "", max_chars=64),
        resume_token=fields.string("resume_token", "", max_chars=128),
    )


def _parse_tool(item: Any, index: int) -> ClientToolSpec:
    prefix = f"client_tools[{index}]."
    if not isinstance(item, dict):
        raise InvalidMessage(Reason.INVALID_FIELD, f"'client_tools[{index}]' must be an object")
    tool = Fields(item, prefix)
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


def _parse_audio(fields: Fields, limits: ProtocolLimits) -> Audio:
    return _audio_from_base64(fields.raw("audioData"))


def _audio_from_base64(encoded: Any) -> Audio:
    if not isinstance(encoded, str):
        raise InvalidMessage(
            Reason.INVALID_FIELD, f"'audioData' must be a base64 string, got {json_type(encoded)}"
        )
    try:
        # What base64.b64decode(validate=True) does, minus its Python wrapper.
        pcm = binascii.a2b_base64(encoded, strict_mode=True)
    except (binascii.Error, ValueError):
        raise InvalidMessage(
            Reason.INVALID_BASE64, "'audioData' is not valid base64 (RFC 4648, with padding)"
        ) from None
    return Audio(_check_pcm(pcm))


def _parse_text(fields: Fields, limits: ProtocolLimits) -> Text:
    # The frame size bounds the length; the byte limit below gives the precise reason.
    text = fields.string("text", max_chars=1 << 30)
    if not text.strip():
        raise InvalidMessage(Reason.INVALID_FIELD, "'text' must not be empty")
    if len(text.encode("utf-8", "surrogatepass")) > limits.max_text_bytes:
        raise InvalidMessage(
            Reason.TEXT_TOO_LONG, f"'text' is longer than {limits.max_text_bytes} UTF-8 bytes"
        )
    return Text(text)


def _parse_playback(fields: Fields, limits: ProtocolLimits) -> Playback:
    return Playback(
        turn_id=fields.string("turn_id", max_chars=128),
        played_ms=fields.integer("played_ms", hi=24 * 3600 * 1000),
        output_latency_ms=fields.integer("output_latency_ms", 0, hi=10_000),
    )


def _parse_tool_result(fields: Fields, limits: ProtocolLimits) -> ToolResult:
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


def _parse_end(fields: Fields, limits: ProtocolLimits) -> EndInput:
    return EndInput()


_PARSERS: dict[str, Callable[[Fields, ProtocolLimits], Command]] = {
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
