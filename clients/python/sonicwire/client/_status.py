"""The status a ``Converse`` call really ended with (grpc.aio can overwrite it)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

import grpc

from .errors import SonicwireError, error_from_status

__all__ = ["CORE_WRITE_ERROR", "FirstStatus", "is_core_write_error"]

_log = logging.getLogger("sonicwire.client")

CORE_WRITE_ERROR = "Internal error from Core"
# How long the server's status may trail a failed write's INTERNAL (see `FirstStatus.settle`):
# Core already holds it, so it is a few event-loop turns away; a bound for the case where no
# server status follows (Core refused the write itself), in which the INTERNAL stands.
_LATE_STATUS_WAIT_S = 1.0
_LATE_STATUS_POLL_S = 0.005


def _result_now[T](coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that completes without suspending (a finished call's status getters)."""
    try:
        coroutine.send(None)
    except StopIteration as stop:
        result: T = stop.value
        return result
    coroutine.close()
    raise RuntimeError("the call has not finished")


def is_core_write_error(code: grpc.StatusCode | None, details: str | None) -> bool:
    """Whether a status is grpc.aio's stand-in for a failed write (grpc/grpc#36066)."""
    return code == grpc.StatusCode.INTERNAL and details == CORE_WRITE_ERROR


class FirstStatus:
    """Records the first status a call ends with.

    grpc.aio replaces a call's status with INTERNAL "Internal error from Core" when a write
    fails because the server has just ended the stream (grpc/grpc#36066), which would turn e.g.
    UNAUTHENTICATED or AUDIO_CHUNK_TOO_LARGE into an opaque INTERNAL. Done callbacks run the
    moment the server's status is set, before any such overwrite, so this keeps the real one.
    The rarer opposite order is `settle`'s.
    """

    def __init__(self) -> None:
        self.error: SonicwireError | None = None

    def __call__(self, call: Any) -> None:
        try:
            code = _result_now(call.code())
            if code == grpc.StatusCode.OK or code == grpc.StatusCode.CANCELLED:
                return
            details = _result_now(call.details())
            if is_core_write_error(code, details):
                return
            self.error = error_from_status(code, details, _result_now(call.trailing_metadata()))
        except Exception:  # never let a status probe break the call's callbacks
            _log.debug("could not record the status of a Converse call", exc_info=True)

    async def settle(self, call: Any) -> SonicwireError | None:
        """The server's status of an ended call whose status reads INTERNAL "from Core".

        Rarely (1 early rejection in a few thousand on loopback) grpc.aio handles the failed
        write before the server's status that Core already received: the INTERNAL is then the
        first status, done callbacks run once, with it, and the server's status replaces it a
        few loop turns later without another callback (grpc/grpc#36066). So this polls the
        call's status, for at most `_LATE_STATUS_WAIT_S`. None when no server status came.
        """
        if self.error is not None:
            return self.error
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _LATE_STATUS_WAIT_S
        while True:
            try:
                code, details = await call.code(), await call.details()
                if not is_core_write_error(code, details):
                    self(call)
                    return self.error
            except Exception:  # a status probe never replaces the error being reported
                _log.debug("could not read the status of a Converse call", exc_info=True)
                return None
            if loop.time() >= deadline:
                return None
            await asyncio.sleep(_LATE_STATUS_POLL_S)
