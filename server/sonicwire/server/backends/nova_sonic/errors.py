"""Nova Sonic / Bedrock failures -> Sonicwire's `BackendError` reasons and codes, in one place.

Reasons (``google.rpc.ErrorInfo.reason``) and codes::

    ThrottlingException, ServiceQuotaExceeded    BACKEND_THROTTLED          RESOURCE_EXHAUSTED
    ValidationException                          BACKEND_VALIDATION_FAILED  INVALID_ARGUMENT
    ModelTimeoutException (stream time limit)    BACKEND_TIMEOUT            UNAVAILABLE
    ModelStreamError, InternalServer,
    ServiceUnavailable, connection loss,
    unexpected end of stream, connect timeout,
    ExpiredTokenException                        BACKEND_UNAVAILABLE        UNAVAILABLE (retryable)
    AccessDenied, HTTP 401/403, no credentials   BACKEND_AUTH_FAILED        UNAVAILABLE
    bad backend options (ca file, region, ...)   BACKEND_CONFIG_INVALID     FAILED_PRECONDITION

`to_backend_error` classifies an exception; `code_for_reason` gives the code for a reason, for
drivers that turn a mid-session `BackendFailed` (which carries only the reason) into a status.
`is_transient` says whether a failure deserves another attempt (a reconnect with history, or
retrying the first open) and `retry_delay` how long to wait before attempt n.

Exceptions by message: Nova 2's ``ValidationException: System instability detected. Please
retry your request.`` (seen early in calls) and "Invalid event bytes" are transient, whatever
their class says: the message itself asks for a retry.
"""

from __future__ import annotations

import asyncio

from sonicwire.server.core.errors import BackendError, ErrorCode

__all__ = [
    "BACKEND_AUTH_FAILED",
    "BACKEND_CONFIG_INVALID",
    "BACKEND_THROTTLED",
    "BACKEND_TIMEOUT",
    "BACKEND_UNAVAILABLE",
    "BACKEND_VALIDATION_FAILED",
    "code_for_reason",
    "is_transient",
    "retry_delay",
    "to_backend_error",
]

BACKEND_THROTTLED = "BACKEND_THROTTLED"
BACKEND_VALIDATION_FAILED = "BACKEND_VALIDATION_FAILED"
BACKEND_TIMEOUT = "BACKEND_TIMEOUT"
BACKEND_UNAVAILABLE = "BACKEND_UNAVAILABLE"
BACKEND_AUTH_FAILED = "BACKEND_AUTH_FAILED"
BACKEND_CONFIG_INVALID = "BACKEND_CONFIG_INVALID"

_CODES = {
    BACKEND_THROTTLED: ErrorCode.RESOURCE_EXHAUSTED,
    BACKEND_VALIDATION_FAILED: ErrorCode.INVALID_ARGUMENT,
    BACKEND_TIMEOUT: ErrorCode.UNAVAILABLE,
    BACKEND_UNAVAILABLE: ErrorCode.UNAVAILABLE,
    BACKEND_AUTH_FAILED: ErrorCode.UNAVAILABLE,
    BACKEND_CONFIG_INVALID: ErrorCode.FAILED_PRECONDITION,
}

# Classified by class name so this module needs no SDK import (and stays cheap to test).
_BY_NAME: dict[str, tuple[str, bool]] = {
    "ThrottlingException": (BACKEND_THROTTLED, True),
    "ServiceQuotaExceededException": (BACKEND_THROTTLED, True),
    "ValidationException": (BACKEND_VALIDATION_FAILED, False),
    "ModelTimeoutException": (BACKEND_TIMEOUT, True),
    "ModelStreamErrorException": (BACKEND_UNAVAILABLE, True),
    "InternalServerException": (BACKEND_UNAVAILABLE, True),
    "ServiceUnavailableException": (BACKEND_UNAVAILABLE, True),
    "ModelNotReadyException": (BACKEND_UNAVAILABLE, True),
    "ModelErrorException": (BACKEND_UNAVAILABLE, True),
    # Temporary credentials ran out mid-stream: a new stream resolves fresh ones.
    "ExpiredTokenException": (BACKEND_UNAVAILABLE, True),
    "AccessDeniedException": (BACKEND_AUTH_FAILED, False),
    "IdentityChainError": (BACKEND_AUTH_FAILED, False),
    "SmithyIdentityError": (BACKEND_AUTH_FAILED, False),
    "ResourceNotFoundException": (BACKEND_CONFIG_INVALID, False),
    "ConfigValidationError": (BACKEND_CONFIG_INVALID, False),
    "ProfileNotFoundError": (BACKEND_CONFIG_INVALID, False),
}


# Lower-case message fragments that make any error transient (BACKEND_UNAVAILABLE, retried).
_TRANSIENT_MESSAGES = (
    "system instability detected",
    "invalid event bytes",
    "timed out waiting for input events",
)


def code_for_reason(reason: str) -> ErrorCode:
    """The status code for a Nova backend reason (UNAVAILABLE for anything unknown)."""
    return _CODES.get(reason, ErrorCode.UNAVAILABLE)


def is_transient(error: BackendError) -> bool:
    """Whether a failure may be survived by another attempt (with exponential backoff, see
    `retry_delay`, so throttling does not become a reconnect storm)."""
    return error.retryable and error.reason in (
        BACKEND_UNAVAILABLE,
        BACKEND_TIMEOUT,
        BACKEND_THROTTLED,
    )


def retry_delay(attempt: int, base_s: float) -> float:
    """Seconds to wait before retry ``attempt`` (0-based): ``base_s``, 2x, 4x, ... capped at 8 s.
    The stream time limit (BACKEND_TIMEOUT) is not an overload: callers may skip the wait."""
    return min(base_s * float(2 ** max(attempt, 0)), 8.0)


def _make(reason: str, message: str, retryable: bool) -> BackendError:
    return BackendError(reason, message, code=code_for_reason(reason), retryable=retryable)


def to_backend_error(exc: BaseException, context: str = "Nova Sonic") -> BackendError:
    """Classify ``exc`` (an SDK, CRT, OS or timeout error) as a `BackendError`."""
    if isinstance(exc, BackendError):
        return exc
    detail = str(getattr(exc, "message", "") or exc) or type(exc).__name__
    if any(fragment in detail.lower() for fragment in _TRANSIENT_MESSAGES):
        return _make(BACKEND_UNAVAILABLE, f"{context}: {type(exc).__name__}: {detail}", True)
    for cls in type(exc).__mro__:
        known = _BY_NAME.get(cls.__name__)
        if known is not None:
            reason, retryable = known
            return _make(reason, f"{context}: {cls.__name__}: {detail}", retryable)
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return _make(BACKEND_UNAVAILABLE, f"{context}: timed out", True)
    status = getattr(getattr(exc, "response_metadata", None), "http_status_code", None)
    if status in (401, 403):
        return _make(BACKEND_AUTH_FAILED, f"{context}: HTTP {status}: {detail}", False)
    if status == 429:
        return _make(BACKEND_THROTTLED, f"{context}: HTTP 429: {detail}", True)
    if isinstance(status, int) and 400 <= status < 500:
        return _make(BACKEND_VALIDATION_FAILED, f"{context}: HTTP {status}: {detail}", False)
    # Connection refused/reset, TLS failures (AwsCrtError wrapped in SmithyError), OSError
    # from a broken stream, HTTP 5xx: the service is unreachable for now.
    return _make(BACKEND_UNAVAILABLE, f"{context}: {type(exc).__name__}: {detail}", True)
