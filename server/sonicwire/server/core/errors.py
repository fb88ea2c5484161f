"""The one error hierarchy of Sonicwire.

Every failure that ends a conversation is a `SonicwireError` with a stable UPPER_SNAKE
``reason`` (sent to clients as ``google.rpc.ErrorInfo.reason``) and an `ErrorCode`. Drivers map
`ErrorCode` to their transport's status in exactly one place
(``sonicwire.server.status`` for gRPC)::

    SonicwireError
    ├── ProtocolError        INVALID_ARGUMENT   the client broke the stream's rules
    ├── AuthenticationError  UNAUTHENTICATED    missing or wrong API key
    ├── LimitExceeded        RESOURCE_EXHAUSTED too many streams, session too long
    ├── IdleTimeout          DEADLINE_EXCEEDED  no client message for too long
    ├── BackendError         UNAVAILABLE        the speech backend failed or is unreachable
    │                        (or the code the backend's failure calls for)
    ├── ServerDraining       UNAVAILABLE        the server is shutting down (says which
    │                                            replica and how long its drain lasts)
    └── ResumeError          NOT_FOUND          the conversation to resume is unknown or expired
                             (PERMISSION_DENIED: another key's; ABORTED: resumed elsewhere)
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType

__all__ = [
    "AuthenticationError",
    "BackendError",
    "ErrorCode",
    "IdleTimeout",
    "LimitExceeded",
    "ProtocolError",
    "ResumeError",
    "ServerDraining",
    "SonicwireError",
]


class ErrorCode(enum.Enum):
    """Transport-neutral status codes (a subset of gRPC's, which they map to one to one)."""

    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    UNAVAILABLE = "UNAVAILABLE"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    NOT_FOUND = "NOT_FOUND"
    ABORTED = "ABORTED"
    INTERNAL = "INTERNAL"


class SonicwireError(Exception):
    """Base class: ``reason`` is stable and machine-readable, ``message`` is for humans."""

    code: ErrorCode = ErrorCode.INTERNAL
    metadata: Mapping[str, str] = MappingProxyType({})
    """Sent with ``reason`` (as ``ErrorInfo.metadata``): facts a client can act on."""

    def __init__(self, reason: str, message: str, *, code: ErrorCode | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        if code is not None:
            self.code = code

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reason!r}, {self.message!r})"


class ProtocolError(SonicwireError):
    """The client sent something the stream's rules forbid."""

    code = ErrorCode.INVALID_ARGUMENT


class AuthenticationError(SonicwireError):
    code = ErrorCode.UNAUTHENTICATED


class LimitExceeded(SonicwireError):
    code = ErrorCode.RESOURCE_EXHAUSTED


class IdleTimeout(SonicwireError):
    code = ErrorCode.DEADLINE_EXCEEDED


class BackendError(SonicwireError):
    """The speech backend failed; ``retryable`` says whether a reconnect may help."""

    code = ErrorCode.UNAVAILABLE

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        code: ErrorCode | None = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(reason, message, code=code)
        self.retryable = retryable


class ServerDraining(SonicwireError):
    """The server is draining (``SERVER_DRAINING``).

    ``metadata`` names the refusing replica (``replica``, random per server process) and the
    milliseconds its drain has left (``drain_left_ms``): a client whose retries keep reaching
    the same draining replica, for longer than they would last, can stop retrying at once.
    """

    code = ErrorCode.UNAVAILABLE

    def __init__(
        self, reason: str, message: str, *, replica: str = "", drain_left_s: float = 0.0
    ) -> None:
        super().__init__(reason, message)
        if replica:
            self.metadata = MappingProxyType(
                {"replica": replica, "drain_left_ms": str(max(0, round(drain_left_s * 1000)))}
            )


class ResumeError(SonicwireError):
    """A conversation could not be resumed (or was resumed on another stream)."""

    code = ErrorCode.NOT_FOUND
