"""The status a ``Converse`` call really ended with (grpc.aio can overwrite it)."""

from __future__ import annotations

import logging
from collections.abc import Coroutine
from typing import Any

import grpc

from .errors import SonicwireError, error_from_status

__all__ = ["CORE_WRITE_ERROR", "FirstStatus"]

_log = logging.getLogger("sonicwire.client")

CORE_WRITE_ERROR = "Internal error from Core"


def _result_now[T](coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that completes without suspending (a finished call's status getters)."""
    try:
        coroutine.send(None)
    except StopIteration as stop:
        result: T = stop.value
        return result
    coroutine.close()
    raise RuntimeError("the call has not finished")


class FirstStatus:
    """Records the first status a call ends with.

    grpc.aio replaces a call's status with INTERNAL "Internal error from Core" when a write
    fails because the server has just ended the stream (grpc/grpc#36066), which would turn e.g.
    UNAUTHENTICATED or AUDIO_CHUNK_TOO_LARGE into an opaque INTERNAL. Done callbacks run the
    moment the server's status is set, before any such overwrite, so this keeps the real one.
    """

    def __init__(self) -> None:
        self.error: SonicwireError | None = None

    def __call__(self, call: Any) -> None:
        try:
            code = _result_now(call.code())
            if code == grpc.StatusCode.OK or code == grpc.StatusCode.CANCELLED:
                return
            details = _result_now(call.details())
            if code == grpc.StatusCode.INTERNAL and details == CORE_WRITE_ERROR:
                return
            self.error = error_from_status(code, details, _result_now(call.trailing_metadata()))
        except Exception:  # never let a status probe break the call's callbacks
            _log.debug("could not record the status of a Converse call", exc_info=True)
