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
    {"action": "playback", "turn_id": "t1", "played_ms": 1200, "output_latency_ms": 40}
    {"action": "tool_result", "tool_call_id": "c1", "content": {...}, "is_error": false}
    {"action": "end"}

Binary frames are raw PCM s16le in the session's input format. See ``docs/gateway.md``.
"""

from __future__ import annotations

from .errors import CloseCode, InvalidMessage, Reason, error_event
from .inbound import (
    SUPPORTED_SAMPLE_RATES,
    Audio,
    ClientToolSpec,
    Command,
    Configure,
    EndInput,
    Playback,
    ProtocolLimits,
    Text,
    ToolResult,
    VadOptions,
    parse_message,
    split_audio,
)
from .outbound import close_code_for_status, encode, render_event, upstream_error_event

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
