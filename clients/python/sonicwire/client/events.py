"""Typed events of a conversation: what ``async for event in conversation`` yields.

Each server message (``ConverseResponse``) becomes one frozen dataclass; match on the type::

    match event:
        case Transcript(role=Role.USER, text=text, final=True):
            ...
        case AudioOutput(audio=pcm):
            speaker.write(pcm)
        case Interruption():
            speaker.flush()

Enum fields use the Python enums defined here; a value the client does not know (a newer
server) becomes the enum's ``UNSPECIFIED`` member, and a message kind the client does not know
is skipped, so an older client keeps working against a newer server.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import Any

from sonicwire.v1 import voice_service_pb2 as pb

__all__ = [
    "AudioOutput",
    "Event",
    "GoingAway",
    "Interruption",
    "InterruptionSource",
    "Resumed",
    "Role",
    "SessionLimits",
    "SessionStarted",
    "SpeechActivity",
    "SpeechActivityKind",
    "StopReason",
    "ToolCall",
    "ToolCallResult",
    "ToolExecutor",
    "ToolStatus",
    "Transcript",
    "TurnComplete",
    "TurnLatency",
    "Usage",
    "Warning",
    "event_from_proto",
]


class _ProtoEnum(enum.IntEnum):
    """An IntEnum mirroring a proto enum; unknown numbers map to ``UNSPECIFIED``.

    It prints as its name (``USER``), and compares equal to the proto's number.
    """

    @classmethod
    def _missing_(cls, value: object) -> Any:
        return cls(0)

    def __str__(self) -> str:
        return self.name

    def __format__(self, spec: str) -> str:
        return format(self.name, spec)


class Role(_ProtoEnum):
    """Who spoke."""

    UNSPECIFIED = 0
    USER = 1
    ASSISTANT = 2


class SpeechActivityKind(_ProtoEnum):
    """What the server's voice activity detector saw."""

    UNSPECIFIED = 0
    STARTED = 1
    STOPPED = 2


class InterruptionSource(_ProtoEnum):
    """What interrupted the assistant."""

    UNSPECIFIED = 0
    BARGE_IN = 1
    BACKEND = 2
    TEXT_INPUT = 3


class ToolExecutor(_ProtoEnum):
    """Who runs a tool: the server, or the client (which must answer with a tool result)."""

    UNSPECIFIED = 0
    SERVER = 1
    CLIENT = 2


class ToolStatus(_ProtoEnum):
    """How a tool call ended."""

    UNSPECIFIED = 0
    OK = 1
    ERROR = 2
    INVALID_ARGUMENTS = 3
    TIMEOUT = 4
    CANCELLED = 5
    UNKNOWN_TOOL = 6


class StopReason(_ProtoEnum):
    """Why an assistant turn ended."""

    UNSPECIFIED = 0
    END_TURN = 1
    INTERRUPTED = 2
    TOOL_USE = 3
    ERROR = 4


@dataclass(frozen=True, slots=True)
class SessionLimits:
    """Limits of a session; 0 means unlimited (or "never" for the idle timeout)."""

    max_audio_chunk_bytes: int
    max_session_seconds: int
    idle_timeout_seconds: int


@dataclass(frozen=True, slots=True)
class SessionStarted:
    """The session is ready; always the first event.

    ``config`` is the configuration in effect (a ``sonicwire.v1.SessionConfig`` message with the
    server's defaults filled in); ``output_sample_rate_hz`` is the rate of ``AudioOutput`` audio.
    ``resume_token`` (a secret, kept out of ``repr``) with ``session_id`` continues this
    conversation on a new stream: ``session_config(resume_session_id=..., resume_token=...)``.
    """

    session_id: str
    backend: str
    tools: tuple[str, ...]
    limits: SessionLimits
    config: pb.SessionConfig = field(repr=False, compare=False)
    resume_token: str = field(default="", repr=False, compare=False)

    @property
    def output_sample_rate_hz(self) -> int:
        """Sample rate of the assistant audio (16000 when the server left it unset)."""
        return self.config.output_format.sample_rate_hz or 16000

    @property
    def input_sample_rate_hz(self) -> int:
        """Sample rate the server expects for microphone audio (16000 when unset)."""
        return self.config.input_format.sample_rate_hz or 16000


@dataclass(frozen=True, slots=True)
class AudioOutput:
    """A chunk of assistant audio (PCM s16le in the session's output format)."""

    audio: bytes = field(repr=False)
    turn_id: str
    offset_ms: int


@dataclass(frozen=True, slots=True)
class Transcript:
    """Recognised user speech or assistant text; ``final`` is False for interim text."""

    role: Role
    text: str
    final: bool
    turn_id: str


@dataclass(frozen=True, slots=True)
class SpeechActivity:
    """User speech started or stopped, at ``offset_ms`` on the microphone stream."""

    kind: SpeechActivityKind
    offset_ms: int

    @property
    def started(self) -> bool:
        """True when the user started speaking."""
        return self.kind is SpeechActivityKind.STARTED


@dataclass(frozen=True, slots=True)
class Interruption:
    """Stop playing ``turn_id`` now and drop buffered audio; ``played_ms`` were heard."""

    turn_id: str
    played_ms: int
    source: InterruptionSource


@dataclass(frozen=True, slots=True)
class ToolCall:
    """The model called a tool. When ``executor`` is CLIENT the client must answer it."""

    id: str
    name: str
    arguments_json: str
    executor: ToolExecutor
    turn_id: str

    @property
    def arguments(self) -> dict[str, Any]:
        """The arguments as a dict (empty when the JSON is empty or not an object)."""
        if not self.arguments_json:
            return {}
        try:
            value = json.loads(self.arguments_json)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}


@dataclass(frozen=True, slots=True)
class ToolCallResult:
    """How a tool call ended and what was given to the model."""

    id: str
    name: str
    status: ToolStatus
    result_json: str
    duration_ms: int


@dataclass(frozen=True, slots=True)
class TurnLatency:
    """Latency figures of a turn in milliseconds; 0 when not measured."""

    first_audio_ms: int
    transcript_ms: int
    tools_ms: int


@dataclass(frozen=True, slots=True)
class TurnComplete:
    """An assistant turn ended."""

    turn_id: str
    stop_reason: StopReason
    latency: TurnLatency
    audio_ms: int


@dataclass(frozen=True, slots=True)
class Usage:
    """Token usage of the session so far."""

    input_tokens: int
    output_tokens: int
    total_tokens: int


@dataclass(frozen=True, slots=True)
class GoingAway:
    """The server is shutting down; the stream ends in ``grace_ms``."""

    reason: str
    grace_ms: int


@dataclass(frozen=True, slots=True)
class Resumed:
    """The conversation moved to a new stream (its server replica went away) and goes on.

    Made by the client, not sent by the server. ``session`` is the new stream's
    ``SessionStarted`` (same ``session_id``, a new ``resume_token``). ``audio_resent_ms`` of
    microphone audio were sent again on the new stream: what was captured while no stream
    took audio, plus what the old replica had not yet turned into saved state.
    ``audio_lost_ms`` is what the bounded replay buffer had to drop (0 unless the gap or an
    unanswered utterance outlasted ``AutoResume.buffer_ms``).

    Attributes:
        session_id: the conversation's id (unchanged).
        attempt: connection attempts this resume took (1 when the first one worked).
        reason: why it moved: ``GOING_AWAY``, or the error reason of the stream that ended
            (e.g. ``SERVER_DRAINING``), or the status code name when there was none.
        audio_resent_ms: microphone audio sent again on the new stream.
        audio_lost_ms: microphone audio that could not be kept for the new stream.
        session: the new stream's ``SessionStarted``.
    """

    session_id: str
    attempt: int
    reason: str
    audio_resent_ms: int
    audio_lost_ms: int
    session: SessionStarted = field(repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Warning:  # shadows the builtin on purpose: it mirrors the proto message
    """A non-fatal problem, e.g. a tool result for an unknown call."""

    reason: str
    message: str


Event = (
    SessionStarted
    | AudioOutput
    | Transcript
    | SpeechActivity
    | Interruption
    | ToolCall
    | ToolCallResult
    | TurnComplete
    | Usage
    | GoingAway
    | Resumed
    | Warning
)
"""Any event of a conversation."""


def event_from_proto(message: pb.ConverseResponse) -> Event | None:
    """Convert one server message into its typed event.

    Args:
        message: a ``ConverseResponse``.

    Returns:
        The event, or ``None`` when the message carries a kind this client does not know.
    """
    match message.WhichOneof("response"):
        case "session_started":
            s = message.session_started
            return SessionStarted(
                session_id=s.session_id,
                backend=s.backend,
                tools=tuple(s.tools),
                limits=SessionLimits(
                    max_audio_chunk_bytes=s.limits.max_audio_chunk_bytes,
                    max_session_seconds=s.limits.max_session_seconds,
                    idle_timeout_seconds=s.limits.idle_timeout_seconds,
                ),
                config=s.config,
                resume_token=s.resume_token,
            )
        case "audio":
            a = message.audio
            return AudioOutput(audio=a.audio, turn_id=a.turn_id, offset_ms=a.offset_ms)
        case "transcript":
            t = message.transcript
            return Transcript(role=Role(t.role), text=t.text, final=t.final, turn_id=t.turn_id)
        case "speech_activity":
            sa = message.speech_activity
            return SpeechActivity(kind=SpeechActivityKind(sa.kind), offset_ms=sa.offset_ms)
        case "interruption":
            i = message.interruption
            return Interruption(
                turn_id=i.turn_id, played_ms=i.played_ms, source=InterruptionSource(i.source)
            )
        case "tool_call":
            c = message.tool_call
            return ToolCall(
                id=c.id,
                name=c.name,
                arguments_json=c.arguments_json,
                executor=ToolExecutor(c.executor),
                turn_id=c.turn_id,
            )
        case "tool_call_result":
            r = message.tool_call_result
            return ToolCallResult(
                id=r.id,
                name=r.name,
                status=ToolStatus(r.status),
                result_json=r.result_json,
                duration_ms=r.duration_ms,
            )
        case "turn_complete":
            tc = message.turn_complete
            return TurnComplete(
                turn_id=tc.turn_id,
                stop_reason=StopReason(tc.stop_reason),
                latency=TurnLatency(
                    first_audio_ms=tc.latency.first_audio_ms,
                    transcript_ms=tc.latency.transcript_ms,
                    tools_ms=tc.latency.tools_ms,
                ),
                audio_ms=tc.audio_ms,
            )
        case "usage":
            u = message.usage
            return Usage(
                input_tokens=u.input_tokens,
                output_tokens=u.output_tokens,
                total_tokens=u.total_tokens,
            )
        case "going_away":
            g = message.going_away
            return GoingAway(reason=g.reason, grace_ms=g.grace_ms)
        case "warning":
            w = message.warning
            return Warning(reason=w.reason, message=w.message)
        case _:
            return None
