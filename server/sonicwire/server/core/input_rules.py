"""The rules a client's input must follow, checked by the session core before it acts.

Each check raises `ProtocolError` with a stable reason (the stream then ends with
INVALID_ARGUMENT) and a message that never repeats the client's input. Pure.
"""

from __future__ import annotations

from sonicwire.server.core.errors import ProtocolError

__all__ = [
    "MAX_OUTPUT_LATENCY_MS",
    "MAX_QUOTED_CHARS",
    "check_audio",
    "check_playback",
    "check_text",
    "quoted",
]

MAX_OUTPUT_LATENCY_MS = 10_000  # PlaybackUpdate.output_latency_ms (proto comment)
MAX_QUOTED_CHARS = 64  # ids the server issues are far shorter (UUIDs: 36)


def quoted(value: str) -> str:
    """A client-chosen identifier as a warning may name it: its repr, cut to
    `MAX_QUOTED_CHARS` characters. A warning does not end the stream, so a message that
    repeated the whole value would send every oversized id straight back, as often as the
    client sends it (a 200 KB tool call id: 200 KB out per ``ToolResult``)."""
    if len(value) <= MAX_QUOTED_CHARS:
        return repr(value)
    return f"{value[:MAX_QUOTED_CHARS]!r}... ({len(value)} characters)"


def check_audio(audio: bytes, max_bytes: int) -> None:
    """One chunk of microphone audio: at most ``max_bytes``, whole 16-bit samples."""
    if len(audio) > max_bytes:
        raise ProtocolError(
            "AUDIO_CHUNK_TOO_LARGE",
            f"audio chunk of {len(audio)} bytes exceeds the maximum of {max_bytes}",
        )
    if len(audio) % 2:
        raise ProtocolError(
            "AUDIO_CHUNK_INVALID",
            f"audio chunk of {len(audio)} bytes is not a whole number of 16-bit samples",
        )


def check_text(text: str, max_bytes: int) -> None:
    """A typed turn: not empty, at most ``max_bytes`` of UTF-8."""
    if len(text.encode()) > max_bytes:
        raise ProtocolError("TEXT_TOO_LONG", f"text input exceeds {max_bytes} UTF-8 bytes")
    if not text.strip():
        raise ProtocolError("TEXT_EMPTY", "text input is empty")


def check_playback(played_ms: int, output_latency_ms: int) -> None:
    """A playback report: a non-negative position, a plausible device latency."""
    if played_ms < 0:
        raise ProtocolError("PLAYBACK_INVALID", "played_ms must not be negative")
    if not 0 <= output_latency_ms <= MAX_OUTPUT_LATENCY_MS:
        raise ProtocolError(
            "PLAYBACK_INVALID",
            f"output_latency_ms must be within 0..{MAX_OUTPUT_LATENCY_MS}",
        )
