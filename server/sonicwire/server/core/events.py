"""Events in and out of the session core.

The session core (`sonicwire.server.core.session.Session`) is sans-I/O: drivers feed it the
events below and drain what it produces. All events are frozen dataclasses grouped in named
unions, so consumers dispatch with ``match``.

Three directions::

    driver  --ClientEvent-->  Session  --ClientOutput-->  driver (to the client)
    backend --BackendEvent--> Session  --BackendCommand--> backend
                              Session  --ToolAction-->     tool runner (driver)

Audio inside the core is canonical 16 kHz mono s16le (see ``sonicwire.server.dsp.frames``);
client audio is resampled at the edge by the session itself, backend audio carries its rate.
Offsets and durations are integers in milliseconds unless a name says otherwise.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from sonicwire.server.core.errors import ErrorCode

__all__ = [
    "AssistantAudio",
    "AssistantInterrupted",
    "AssistantText",
    "AssistantTurnEnded",
    "AudioOut",
    "AudioReceived",
    "BackendCommand",
    "BackendEvent",
    "BackendFailed",
    "CancelResponse",
    "CancelTools",
    "ClientEvent",
    "ClientOutput",
    "DeliverToolResult",
    "EndSession",
    "GoingAwayOut",
    "InputEnded",
    "InterruptionOut",
    "InterruptionSource",
    "PlaybackReported",
    "Role",
    "RunTool",
    "SendAudio",
    "SendText",
    "SendToolResult",
    "SpeechActivityOut",
    "StopReason",
    "TextReceived",
    "ToolAction",
    "ToolCallOut",
    "ToolCallResultOut",
    "ToolCompleted",
    "ToolExecutor",
    "ToolRequested",
    "ToolResultReceived",
    "ToolStatus",
    "TranscriptOut",
    "TurnCompleteOut",
    "UsageOut",
    "UsageReported",
    "UserSpeechStarted",
    "UserSpeechStopped",
    "UserTranscript",
    "UserTurnEnded",
    "WarningOut",
]


class Role(enum.Enum):
    USER = "user"
    ASSISTANT = "assistant"


class StopReason(enum.Enum):
    END_TURN = "end_turn"
    INTERRUPTED = "interrupted"
    TOOL_USE = "tool_use"
    ERROR = "error"


class InterruptionSource(enum.Enum):
    BARGE_IN = "barge_in"
    BACKEND = "backend"
    TEXT_INPUT = "text_input"


# The one definition of who runs a tool and how a call ended: the tool layer
# (`sonicwire.server.tools`) re-exports these, so core events and tool outcomes carry the same
# members (StrEnum: a tool spec's "executor" string parses straight into it).
class ToolExecutor(enum.StrEnum):
    """Who runs a tool."""

    #: A handler registered in this process (built-ins and plugins).
    SERVER = "server"
    #: The calling client, over the same stream (``ToolCall`` out, ``ToolResult`` in).
    CLIENT = "client"


class ToolStatus(enum.StrEnum):
    """How a tool call ended."""

    OK = "ok"
    #: The handler raised, or the client reported an error.
    ERROR = "error"
    #: The arguments did not parse or did not match the schema; nothing was executed.
    INVALID_ARGUMENTS = "invalid_arguments"
    TIMEOUT = "timeout"
    #: Barge-in, session end, or an explicit cancel.
    CANCELLED = "cancelled"
    UNKNOWN_TOOL = "unknown_tool"


# --- client -> core -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AudioReceived:
    """Microphone audio in the session's input format (validated by the session)."""

    audio: bytes


@dataclass(frozen=True, slots=True)
class TextReceived:
    """A typed user turn."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolResultReceived:
    """The client's answer to a client-executed tool call."""

    call_id: str
    content: str
    is_error: bool


@dataclass(frozen=True, slots=True)
class PlaybackReported:
    """The client has played ``played_ms`` of turn ``turn_id``'s audio; its device adds
    ``output_latency_ms`` before the loudspeaker when it knows (0 = unknown)."""

    turn_id: str
    played_ms: int
    output_latency_ms: int = 0


type ClientEvent = AudioReceived | TextReceived | ToolResultReceived | PlaybackReported


# --- backend -> core ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AssistantAudio:
    """Assistant speech from the backend: mono s16le at ``sample_rate``."""

    pcm: bytes
    sample_rate: int


@dataclass(frozen=True, slots=True)
class AssistantText:
    """Assistant text: ``final`` is what was spoken, otherwise planned (speculative) text."""

    text: str
    final: bool


@dataclass(frozen=True, slots=True)
class UserTranscript:
    """What the backend recognised the user saying."""

    text: str
    final: bool


@dataclass(frozen=True, slots=True)
class UserTurnEnded:
    """The backend ends the user's turn before the VAD's stop marker (a semantic end of turn:
    what the user said so far is a complete request, silent since ``offset_samples``), and
    answers it. The core takes it only while the VAD waits out its stop time and the user is
    silent; speech that resumes then is a barge-in: the core cancels the answer
    (`CancelResponse`), which the backend ends with `AssistantTurnEnded` (INTERRUPTED) unless
    it had already ended, and the user's turn goes on (the backend keeps its words)."""

    offset_samples: int


@dataclass(frozen=True, slots=True)
class ToolRequested:
    """The model asks for a tool call."""

    call_id: str
    name: str
    arguments_json: str


@dataclass(frozen=True, slots=True)
class AssistantTurnEnded:
    """The backend finished generating the assistant's turn (audio may still be queued)."""

    stop_reason: StopReason


@dataclass(frozen=True, slots=True)
class AssistantInterrupted:
    """The backend itself detected that the user interrupted the assistant."""


@dataclass(frozen=True, slots=True)
class UsageReported:
    """Cumulative token usage of the backend session."""

    input_tokens: int
    output_tokens: int
    total_tokens: int


@dataclass(frozen=True, slots=True)
class BackendFailed:
    """A fatal backend error; ``reason`` is a stable UPPER_SNAKE ErrorInfo reason."""

    reason: str
    message: str
    retryable: bool = False
    code: ErrorCode | None = None  # None: UNAVAILABLE, the usual meaning of a backend failure


type BackendEvent = (
    AssistantAudio
    | AssistantText
    | UserTranscript
    | UserTurnEnded
    | ToolRequested
    | AssistantTurnEnded
    | AssistantInterrupted
    | UsageReported
    | BackendFailed
)


# --- core -> backend ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SendAudio:
    """Cleaned microphone audio, 16 kHz mono s16le, sent continuously (silence included)."""

    pcm: bytes


@dataclass(frozen=True, slots=True)
class UserSpeechStarted:
    """The front end's VAD heard the user start speaking at ``offset_samples`` (16 kHz)."""

    offset_samples: int


@dataclass(frozen=True, slots=True)
class UserSpeechStopped:
    """The front end's VAD heard the user stop speaking at ``offset_samples`` (16 kHz)."""

    offset_samples: int


@dataclass(frozen=True, slots=True)
class SendText:
    """A typed user turn."""

    text: str


@dataclass(frozen=True, slots=True)
class SendToolResult:
    """A tool's outcome for the model; ``result_json`` is always valid JSON."""

    call_id: str
    name: str
    result_json: str
    status: ToolStatus


@dataclass(frozen=True, slots=True)
class CancelResponse:
    """Barge-in: stop generating; the user heard ``heard_text`` of the turn (``played_ms``)."""

    heard_text: str
    played_ms: int


@dataclass(frozen=True, slots=True)
class InputEnded:
    """The client half-closed: no more user audio will come, so cut any utterance now."""


@dataclass(frozen=True, slots=True)
class EndSession:
    """The conversation is over: close orderly."""


type BackendCommand = (
    SendAudio
    | UserSpeechStarted
    | UserSpeechStopped
    | SendText
    | SendToolResult
    | CancelResponse
    | InputEnded
    | EndSession
)


# --- core -> tool runner --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunTool:
    """Start a tool call; the driver reports its outcome with ``ToolCompleted``."""

    call_id: str
    name: str
    arguments_json: str
    executor: ToolExecutor


@dataclass(frozen=True, slots=True)
class CancelTools:
    """Cancel pending tool calls (barge-in or session end): those in ``call_ids``, or every
    one when it is None."""

    reason: str
    call_ids: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class DeliverToolResult:
    """The client answered a client-executed call; the runner validates and times it."""

    call_id: str
    content: str
    is_error: bool


type ToolAction = RunTool | CancelTools | DeliverToolResult


@dataclass(frozen=True, slots=True)
class ToolCompleted:
    """A tool call's outcome, from the runner back into the core."""

    call_id: str
    name: str
    status: ToolStatus
    result_json: str
    duration_ms: int


# --- core -> client -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AudioOut:
    """Assistant audio in the client's output format."""

    audio: bytes
    turn_id: str
    offset_ms: int


@dataclass(frozen=True, slots=True)
class TranscriptOut:
    role: Role
    text: str
    final: bool
    turn_id: str


@dataclass(frozen=True, slots=True)
class SpeechActivityOut:
    started: bool
    offset_ms: int


@dataclass(frozen=True, slots=True)
class InterruptionOut:
    turn_id: str
    played_ms: int
    source: InterruptionSource
    dropped_ms: int = 0  # queued assistant audio that was never sent (for metrics)


@dataclass(frozen=True, slots=True)
class ToolCallOut:
    call_id: str
    name: str
    arguments_json: str
    executor: ToolExecutor
    turn_id: str


@dataclass(frozen=True, slots=True)
class ToolCallResultOut:
    call_id: str
    name: str
    status: ToolStatus
    result_json: str
    duration_ms: int


@dataclass(frozen=True, slots=True)
class TurnCompleteOut:
    turn_id: str
    stop_reason: StopReason
    first_audio_ms: int
    transcript_ms: int
    tools_ms: int
    audio_ms: int


@dataclass(frozen=True, slots=True)
class UsageOut:
    input_tokens: int
    output_tokens: int
    total_tokens: int


@dataclass(frozen=True, slots=True)
class GoingAwayOut:
    reason: str
    grace_ms: int


@dataclass(frozen=True, slots=True)
class WarningOut:
    reason: str
    message: str


type ClientOutput = (
    AudioOut
    | TranscriptOut
    | SpeechActivityOut
    | InterruptionOut
    | ToolCallOut
    | ToolCallResultOut
    | TurnCompleteOut
    | UsageOut
    | GoingAwayOut
    | WarningOut
)
