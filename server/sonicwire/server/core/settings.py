"""Per-session settings, transport-neutral (``convert.py`` builds them from the proto)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sonicwire.server.dsp.settings import FrontEndSettings

__all__ = [
    "DEFAULT_SAMPLE_RATE",
    "MAX_AUDIO_CHUNK_BYTES",
    "MAX_TEXT_BYTES",
    "SUPPORTED_SAMPLE_RATES",
    "InferenceSettings",
    "SessionSettings",
]

DEFAULT_SAMPLE_RATE = 16_000
SUPPORTED_SAMPLE_RATES = frozenset({8_000, 16_000, 24_000, 48_000})
# One AudioInput may carry at most this many bytes (about 2 s at 16 kHz): big enough for any
# sane chunking, small enough that one message cannot stall the loop.
MAX_AUDIO_CHUNK_BYTES = 65_536
MAX_TEXT_BYTES = 4_096


@dataclass(frozen=True, slots=True)
class InferenceSettings:
    """Model generation settings; ``None`` means the backend's default."""

    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    endpointing_sensitivity: str | None = None  # "HIGH" | "MEDIUM" | "LOW"
    # How the model picks tools: None (backend default), "auto", "any", or "tool" with
    # ``tool_choice_name`` the tool it must call.
    tool_choice: str | None = None
    tool_choice_name: str = ""


@dataclass(frozen=True, slots=True)
class SessionSettings:
    """Everything the session core needs to know about one conversation."""

    input_sample_rate: int = DEFAULT_SAMPLE_RATE
    output_sample_rate: int = DEFAULT_SAMPLE_RATE
    voice: str = ""
    system_prompt: str = ""
    front_end: FrontEndSettings = field(default_factory=FrontEndSettings)
    barge_in: bool = True
    barge_in_min_ms: int = 200
    inference: InferenceSettings = field(default_factory=InferenceSettings)
    # Names of tools the calling client executes; every other tool runs on the server.
    client_tools: frozenset[str] = frozenset()
    # Names of tools whose calls keep running through a barge-in (their result still goes to
    # the model); calls of other tools are cancelled.
    tools_surviving_interruption: frozenset[str] = frozenset()
    # The user's IANA time zone ("" = the server's default), context for tools.
    time_zone: str = ""
    # The server releases assistant audio at real time plus this lead, so a barge-in finds
    # little audio already in flight at the client.
    playback_lead_ms: int = 120
    # ...and in messages of at least this much audio (whole 20 ms steps; capped at the lead),
    # except a turn's first and last: every message out costs a gRPC write, and 40 ms halves
    # them against 20 ms while the client's buffer stays between the lead and lead - 40 ms.
    playback_batch_ms: int = 40
    max_audio_chunk_bytes: int = MAX_AUDIO_CHUNK_BYTES
    max_text_bytes: int = MAX_TEXT_BYTES
