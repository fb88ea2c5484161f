"""Sonicwire client: talk to a Sonicwire voice server from Python.

::

    from sonicwire.client import Client, session_config, Transcript

    async with Client("127.0.0.1:50051", api_key=key) as client:
        async with client.converse(session_config()) as conversation:
            await conversation.send_text("What time is it?")
            await conversation.end_input()
            async for event in conversation:
                if isinstance(event, Transcript) and event.final:
                    print(event.role.name, event.text)

Modules: ``client`` (``Client``), ``conversation``, ``events`` (typed events), ``errors``
(``SonicwireError`` tree), ``config`` (``session_config``), ``tools`` (client-side tools),
``resume`` (``AutoResume``: surviving a server replica going away), ``audio`` (WAV helpers),
``exchange`` (``talk()``, one whole exchange), ``sync`` (``SyncClient``), ``cli`` (the
``sonicwire`` command). This package imports no server
code and no numeric libraries.
"""

from .audio import AudioCollector, PcmAudio, read_wav, stream_audio, stream_wav, write_wav
from .client import DEFAULT_TARGET, Client, HealthStatus, ServerTool, TlsOptions, Voice
from .config import SUPPORTED_SAMPLE_RATES, SessionConfig, session_config
from .conversation import Conversation
from .errors import (
    AudioFormatError,
    CallCancelledError,
    ConversationClosedError,
    DeadlineExceededError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ProtocolError,
    ResourceExhaustedError,
    ResumeFailedError,
    ServerError,
    SonicwireError,
    UnauthenticatedError,
    UnavailableError,
)
from .events import (
    AudioOutput,
    Event,
    GoingAway,
    Interruption,
    InterruptionSource,
    Resumed,
    Role,
    SessionLimits,
    SessionStarted,
    SpeechActivity,
    SpeechActivityKind,
    StopReason,
    ToolCall,
    ToolCallResult,
    ToolExecutor,
    ToolStatus,
    Transcript,
    TurnComplete,
    TurnLatency,
    Usage,
    Warning,
)
from .exchange import TalkResult, talk
from .resume import AutoResume
from .retry import RetryPolicy
from .sync import SyncClient
from .tools import ClientTool, ToolHandler

__all__ = [
    "DEFAULT_TARGET",
    "SUPPORTED_SAMPLE_RATES",
    "AudioCollector",
    "AudioFormatError",
    "AudioOutput",
    "AutoResume",
    "CallCancelledError",
    "Client",
    "ClientTool",
    "Conversation",
    "ConversationClosedError",
    "DeadlineExceededError",
    "Event",
    "FailedPreconditionError",
    "GoingAway",
    "HealthStatus",
    "Interruption",
    "InterruptionSource",
    "InvalidArgumentError",
    "NotFoundError",
    "PcmAudio",
    "PermissionDeniedError",
    "ProtocolError",
    "ResourceExhaustedError",
    "ResumeFailedError",
    "Resumed",
    "RetryPolicy",
    "Role",
    "ServerError",
    "ServerTool",
    "SessionConfig",
    "SessionLimits",
    "SessionStarted",
    "SonicwireError",
    "SpeechActivity",
    "SpeechActivityKind",
    "StopReason",
    "SyncClient",
    "TalkResult",
    "TlsOptions",
    "ToolCall",
    "ToolCallResult",
    "ToolExecutor",
    "ToolHandler",
    "ToolStatus",
    "Transcript",
    "TurnComplete",
    "TurnLatency",
    "UnauthenticatedError",
    "UnavailableError",
    "Usage",
    "Voice",
    "Warning",
    "read_wav",
    "session_config",
    "stream_audio",
    "stream_wav",
    "talk",
    "write_wav",
]
