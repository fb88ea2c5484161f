"""The async protocol every speech-to-speech backend implements.

A `Backend` is created once per process (models, clients and connection pools live there);
`Backend.open` starts one `BackendSession` per conversation. The driver pumps
``BackendCommand``s from the session core into `BackendSession.send` and feeds what
`BackendSession.events` yields back into the core. Backends speak only in core events
(``sonicwire.server.core.events``) and never see gRPC.

Errors: `open` raises `BackendError` (reason ``BACKEND_UNAVAILABLE`` or a more precise one);
a failure mid-session is reported as a `BackendFailed` event, after which the session ends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sonicwire.server.core.events import BackendCommand, BackendEvent
from sonicwire.server.core.history import Message
from sonicwire.server.core.settings import InferenceSettings

__all__ = ["Backend", "BackendOptions", "BackendSession", "ToolDescription", "VoiceInfo"]


@dataclass(frozen=True, slots=True)
class ToolDescription:
    """A tool as a backend presents it to the model (neutral JSON-schema form).

    ``examples``, ``answer`` and ``keywords`` are the offline engine's hints (see ``ToolSpec``);
    a model backend ignores them.
    """

    name: str
    description: str
    parameters: dict[str, Any]
    examples: tuple[str, ...] = ()
    answer: str = ""
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class VoiceInfo:
    id: str
    language_code: str
    default: bool = False
    # Every language the voice speaks (``language_code`` first); empty means just that one.
    languages: tuple[str, ...] = ()
    # It speaks every language of its model (Nova 2's tiffany and matthew).
    polyglot: bool = False
    # The backend model it belongs to, for backends with several models ("" if one).
    model: str = ""


@dataclass(frozen=True, slots=True)
class BackendOptions:
    """What a backend needs to start one conversation."""

    session_id: str
    voice: str = ""
    system_prompt: str = ""
    inference: InferenceSettings = field(default_factory=InferenceSettings)
    tools: Sequence[ToolDescription] = ()
    # Sample rate the client wants; backends that can produce it natively should.
    output_sample_rate: int = 16_000
    # Sample rate of the client's audio on the wire. Backends always get the front end's
    # 16 kHz audio; one that takes narrowband input may bring a telephone-band call (8 kHz)
    # back down to the band it has.
    input_sample_rate: int = 16_000
    # Padding around VAD-cut utterances, for backends that endpoint with the front end's VAD.
    speech_pad_ms: int = 300
    # Conversation to continue (resumed sessions).
    history: Sequence[Message] = ()
    # Non-empty: the assistant speaks first, prompted by this hidden instruction (backends
    # that cannot may refuse it in `open`, or ignore it).
    speak_first: str = ""


class BackendSession(Protocol):
    """One conversation with a backend."""

    async def send(self, command: BackendCommand) -> None:
        """Deliver a command. Must not block for long: queue and return."""
        ...

    def events(self) -> AsyncIterator[BackendEvent]:
        """Events in order; the iterator ends when the backend session is over."""
        ...

    async def aclose(self) -> None:
        """Close promptly, releasing connections and tasks. Safe to call twice."""
        ...


class Backend(Protocol):
    """A speech-to-speech engine: process-wide state plus a factory for sessions."""

    name: str

    def voices(self) -> list[VoiceInfo]:
        """Voices this backend can speak with."""
        ...

    async def open(self, options: BackendOptions) -> BackendSession:
        """Start a conversation. Raises `BackendError` when the backend is unavailable."""
        ...

    async def aclose(self) -> None:
        """Release process-wide resources."""
        ...
