"""Outbound messages: conversation events rendered as JSON objects, and the one mapping from
an upstream gRPC status to a WebSocket close code. Pure: no I/O."""

from __future__ import annotations

import binascii
import enum
import json
from collections.abc import Mapping
from typing import Any, assert_never

import orjson

from sonicwire.client.events import (
    AudioOutput,
    Event,
    GoingAway,
    Interruption,
    Resumed,
    SessionStarted,
    SpeechActivity,
    ToolCall,
    ToolCallResult,
    Transcript,
    TurnComplete,
    Usage,
    Warning,
)

from .errors import CloseCode, error_event

__all__ = ["close_code_for_status", "encode", "render_event", "upstream_error_event"]


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
                # What base64.b64encode does, minus its Python wrapper (every media event).
                "data": binascii.b2a_base64(event.audio, newline=False).decode("ascii"),
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
                # With session_id, continues the conversation from a new socket (config
                # resume_session_id + resume_token); empty when the server keeps no state.
                "resume_token": event.resume_token,
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
        case Resumed():
            # The gateway moved the conversation to another server replica; the socket stays.
            return {
                "event": "resumed",
                "session_id": event.session_id,
                # The token rotates on every start: the old one no longer resumes.
                "resume_token": event.session.resume_token,
                "attempt": event.attempt,
                "reason": event.reason,
                "audio_resent_ms": event.audio_resent_ms,
                "audio_lost_ms": event.audio_lost_ms,
            }
        case _:
            assert_never(event)


# The single mapping from upstream gRPC status names to close codes.
_CLOSE_FOR_STATUS: dict[str, CloseCode] = {
    "OK": CloseCode.NORMAL,
    "INVALID_ARGUMENT": CloseCode.BAD_REQUEST,
    "FAILED_PRECONDITION": CloseCode.BAD_REQUEST,
    "OUT_OF_RANGE": CloseCode.BAD_REQUEST,
    "NOT_FOUND": CloseCode.BAD_REQUEST,
    "UNAUTHENTICATED": CloseCode.UNAUTHENTICATED,
    "PERMISSION_DENIED": CloseCode.PERMISSION_DENIED,
    "ABORTED": CloseCode.CONFLICT,
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
    """Serialise an outbound message as compact JSON text (UTF-8, not ASCII-escaped)."""
    try:
        # orjson writes the same compact form several times faster (every media event).
        return orjson.dumps(message).decode()
    except orjson.JSONEncodeError:
        # What orjson refuses (a lone surrogate in a string, an integer beyond 64 bits) the
        # standard library still writes, as the gateway always did.
        return json.dumps(message, separators=(",", ":"), ensure_ascii=False)
