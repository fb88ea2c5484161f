"""The gateway's error vocabulary: close codes, error reasons, and the ``error`` event.

::

    InvalidMessage (ValueError)     a client message the gateway refuses; carries a Reason
                                    and becomes a non-fatal ``error`` event

Fatal conditions are not exceptions here: the connection driver ends the socket with a
:class:`CloseCode` after a fatal ``error`` event (see ``outbound.upstream_error_event``).
"""

from __future__ import annotations

import enum
from typing import Any, Final

__all__ = ["CloseCode", "InvalidMessage", "Reason", "error_event"]


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
    CONFLICT = 4409
    """The conversation was resumed on another socket or stream (ABORTED upstream)."""
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


def error_event(code: str, reason: str, message: str, *, fatal: bool) -> dict[str, Any]:
    """An ``error`` event.

    Args:
        code: gRPC-style status name, e.g. ``"INVALID_ARGUMENT"``.
        reason: stable UPPER_SNAKE reason (a :class:`Reason` or the server's ErrorInfo reason).
        message: human-readable description.
        fatal: True when the socket closes right after this event.
    """
    return {"event": "error", "code": code, "reason": reason, "message": message, "fatal": fatal}
