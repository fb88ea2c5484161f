"""Errors raised by the Sonicwire client.

Every error the SDK raises on purpose is a :class:`SonicwireError`::

    SonicwireError                  base; .code, .reason, .message, .domain, .metadata
    ├── InvalidArgumentError        INVALID_ARGUMENT (bad config, bad audio, ...)
    ├── UnauthenticatedError        UNAUTHENTICATED (missing or wrong API key)
    ├── PermissionDeniedError       PERMISSION_DENIED
    ├── NotFoundError               NOT_FOUND (e.g. health check of an unknown service)
    ├── ResourceExhaustedError      RESOURCE_EXHAUSTED (session or concurrency limit)
    ├── FailedPreconditionError     FAILED_PRECONDITION
    ├── DeadlineExceededError       DEADLINE_EXCEEDED
    ├── UnavailableError            UNAVAILABLE (cannot connect, backend down, server draining)
    ├── CallCancelledError          CANCELLED (by the server or a proxy)
    ├── ServerError                 any other non-OK status (INTERNAL, UNKNOWN, ...)
    ├── ProtocolError               the server broke the stream protocol (client side)
    ├── ConversationClosedError     a send after the stream ended or input was closed
    ├── ResumeFailedError           auto-resume was refused or gave up (code/reason of why)
    └── AudioFormatError            a WAV file the client cannot send (also a ValueError)

A non-OK gRPC status is turned into the matching subclass in exactly one place,
:func:`error_from_rpc`. When the server attached a ``google.rpc.Status`` with a
``google.rpc.ErrorInfo`` detail (``grpc-status-details-bin`` trailer), ``reason`` holds its
stable UPPER_SNAKE reason (e.g. ``AUDIO_FORMAT_UNSUPPORTED``), ``domain`` its domain and
``metadata`` its key/value map; otherwise ``reason`` is ``""``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc import aio
from grpc_status import rpc_status

__all__ = [
    "AudioFormatError",
    "CallCancelledError",
    "ConversationClosedError",
    "DeadlineExceededError",
    "FailedPreconditionError",
    "InvalidArgumentError",
    "NotFoundError",
    "PermissionDeniedError",
    "ProtocolError",
    "ResourceExhaustedError",
    "ResumeFailedError",
    "ServerError",
    "SonicwireError",
    "UnauthenticatedError",
    "UnavailableError",
    "error_from_rpc",
    "error_from_status",
]

_DETAILS_KEY = "grpc-status-details-bin"
_EMPTY: Mapping[str, str] = MappingProxyType({})


class SonicwireError(Exception):
    """Base class of every error the Sonicwire client raises on purpose.

    Attributes:
        code: the gRPC status code, or ``None`` for errors raised by the client itself.
        reason: the ``google.rpc.ErrorInfo`` reason (UPPER_SNAKE), or ``""`` when absent.
        message: human-readable description (the status details).
        domain: the ``ErrorInfo`` domain (``"sonicwire.dev"`` for Sonicwire), or ``""``.
        metadata: the ``ErrorInfo`` metadata map (read-only).
    """

    def __init__(
        self,
        message: str,
        *,
        code: grpc.StatusCode | None = None,
        reason: str = "",
        domain: str = "",
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.domain = domain
        self.metadata: Mapping[str, str] = MappingProxyType(dict(metadata)) if metadata else _EMPTY

    def __str__(self) -> str:
        parts = []
        if self.code is not None:
            parts.append(self.code.name)
        if self.reason:
            parts.append(self.reason)
        prefix = " ".join(parts)
        if prefix and self.message:
            return f"{prefix}: {self.message}"
        return prefix or self.message

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, reason={self.reason!r}, "
            f"message={self.message!r})"
        )


class InvalidArgumentError(SonicwireError):
    """The server rejected a request: INVALID_ARGUMENT (bad config, bad audio chunk, ...)."""


class UnauthenticatedError(SonicwireError):
    """The server needs a valid API key: UNAUTHENTICATED."""


class PermissionDeniedError(SonicwireError):
    """The API key is not allowed to do this: PERMISSION_DENIED."""


class NotFoundError(SonicwireError):
    """Something named in the request does not exist: NOT_FOUND."""


class ResourceExhaustedError(SonicwireError):
    """A limit was hit (concurrent sessions, message size, ...): RESOURCE_EXHAUSTED."""


class FailedPreconditionError(SonicwireError):
    """The server is not in a state to serve the request: FAILED_PRECONDITION."""


class DeadlineExceededError(SonicwireError):
    """The call took longer than its deadline: DEADLINE_EXCEEDED."""


class UnavailableError(SonicwireError):
    """The server or its backend cannot be reached, or it is draining: UNAVAILABLE."""


class CallCancelledError(SonicwireError):
    """The call was cancelled by the server or a proxy: CANCELLED."""


class ServerError(SonicwireError):
    """The server ended the call with another non-OK status (INTERNAL, UNKNOWN, ...)."""


class ProtocolError(SonicwireError):
    """The server broke the Converse protocol (e.g. its first message was not SessionStarted)."""


class ConversationClosedError(SonicwireError):
    """A message was sent after the conversation ended or after ``end_input()``."""


class ResumeFailedError(SonicwireError):
    """The conversation's replica went away and it could not be resumed elsewhere.

    ``code``, ``reason`` and ``message`` are those of the refusal (e.g. NOT_FOUND
    ``SESSION_NOT_FOUND`` when the saved state expired or the store lost it, PERMISSION_DENIED
    ``SESSION_OWNED_ELSEWHERE``, UNAVAILABLE ``RESUME_UNAVAILABLE`` when the servers' state
    store is down, or UNAVAILABLE when no replica answered within the retries).
    ``refusal`` is that typed error (also the ``__cause__``); ``interrupted_by`` is the error
    or event that made the conversation move (``None`` for ``GoingAway``).

    Attributes:
        session_id: the conversation that could not be resumed.
        attempts: connection attempts made.
    """

    def __init__(
        self,
        refusal: SonicwireError,
        *,
        session_id: str,
        attempts: int,
        interrupted_by: SonicwireError | None = None,
    ) -> None:
        super().__init__(
            f"could not resume conversation {session_id} after {attempts} attempt(s): "
            f"{refusal.message or refusal}",
            code=refusal.code,
            reason=refusal.reason,
            domain=refusal.domain,
            metadata=refusal.metadata,
        )
        self.refusal = refusal
        self.session_id = session_id
        self.attempts = attempts
        self.interrupted_by = interrupted_by


class AudioFormatError(SonicwireError, ValueError):
    """Audio the client cannot send as is (not 16-bit PCM, unsupported sample rate, ...)."""


# The single mapping from gRPC status codes to error classes.
_ERROR_FOR_CODE: dict[grpc.StatusCode, type[SonicwireError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.CANCELLED: CallCancelledError,
}


def _error_info(status: Any) -> error_details_pb2.ErrorInfo | None:
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    return None


def _status_from_trailers(trailing_metadata: Iterable[tuple[str, str | bytes]] | None) -> Any:
    for key, value in trailing_metadata or ():
        if key == _DETAILS_KEY and isinstance(value, bytes):
            try:
                return status_pb2.Status.FromString(value)
            except Exception:  # a malformed detail must not hide the real status
                return None
    return None


def error_from_status(
    code: grpc.StatusCode,
    details: str | None,
    trailing_metadata: Iterable[tuple[str, str | bytes]] | None = None,
) -> SonicwireError:
    """Build the typed error for a non-OK gRPC status.

    Args:
        code: the status code (not OK).
        details: the status message.
        trailing_metadata: the call's trailers; a ``grpc-status-details-bin`` entry holding a
            ``google.rpc.Status`` with an ``ErrorInfo`` detail fills ``reason``, ``domain`` and
            ``metadata``.

    Returns:
        An instance of the :class:`SonicwireError` subclass for ``code``
        (:class:`ServerError` for codes without a dedicated class).
    """
    status = _status_from_trailers(trailing_metadata)
    return _build(code, details or "", status)


def error_from_rpc(error: aio.AioRpcError) -> SonicwireError:
    """Turn a failed gRPC call into the typed error for its status.

    Args:
        error: the failed call's ``grpc.aio.AioRpcError``.

    Returns:
        An instance of the :class:`SonicwireError` subclass for the call's status code, with
        ``reason`` taken from the ``google.rpc.ErrorInfo`` detail when the server sent one.
    """
    code = error.code()
    details = error.details() or ""
    try:
        status = rpc_status.from_call(error)
    except ValueError:
        # The rich status disagrees with the plain one (e.g. a proxy rewrote the message);
        # its ErrorInfo is still the best reason we have.
        status = _status_from_trailers(error.trailing_metadata())
    return _build(code, details, status)


def _build(code: grpc.StatusCode, details: str, status: Any) -> SonicwireError:
    cls = _ERROR_FOR_CODE.get(code, ServerError)
    info = _error_info(status) if status is not None else None
    if info is None:
        return cls(details, code=code)
    return cls(
        details or status.message,
        code=code,
        reason=info.reason,
        domain=info.domain,
        metadata=dict(info.metadata),
    )
