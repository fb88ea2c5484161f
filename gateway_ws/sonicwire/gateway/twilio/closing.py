"""How a call's socket closes: Twilio's close codes, and the one mapping from a gRPC status.

Twilio ignores close codes; they are for logs and tests, so the edge uses only the standard
codes (the browser shim's 4xxx codes mean nothing to a carrier). The status is judged once, by
the gateway's own table (``outbound.close_code_for_status``, shared with the browser shim), and
this module folds its verdict onto the standard codes: whatever the server refused because of
the call itself (its parameters, its key, its limits) closes 1008 (policy), a draining server
or a stream cancelled under the call (CANCELLED, as an L7 proxy reports a replica that went
away: the browser shim's "reconnect") 1001, anything else 1011. Pure: no I/O.
"""

from __future__ import annotations

from typing import Final

from sonicwire.client import SonicwireError

from ..errors import CloseCode as BrowserCloseCode
from ..outbound import close_code_for_status

__all__ = ["CloseCode", "close_code_for_error"]


class CloseCode:
    """WebSocket close codes of a call (Twilio ignores them; they are for logs and tests)."""

    NORMAL: Final = 1000
    GOING_AWAY: Final = 1001  # the server is draining (SERVER_DRAINING)
    INVALID_DATA: Final = 1007  # malformed Twilio message
    POLICY: Final = 1008  # refused: authentication, a bad parameter, a limit
    INTERNAL: Final = 1011  # upstream failure or a bug


# The browser shim's verdict on a status, folded onto the standard codes; what is missing
# (server failures, unavailable, timeouts, conflicts) is INTERNAL.
_FOLD: Final[dict[BrowserCloseCode, int]] = {
    BrowserCloseCode.NORMAL: CloseCode.NORMAL,
    BrowserCloseCode.GOING_AWAY: CloseCode.GOING_AWAY,
    BrowserCloseCode.BAD_REQUEST: CloseCode.POLICY,
    BrowserCloseCode.UNAUTHENTICATED: CloseCode.POLICY,
    BrowserCloseCode.PERMISSION_DENIED: CloseCode.POLICY,
    BrowserCloseCode.RATE_LIMITED: CloseCode.POLICY,
}


def close_code_for_error(error: SonicwireError) -> int:
    """The close code of a call whose conversation was refused or ended with ``error``.

    By the error's gRPC status and ErrorInfo reason (``SERVER_DRAINING`` closes 1001); an
    error the client library raised itself, with no status, closes 1011.
    """
    code = error.code.name if error.code is not None else ""
    return _FOLD.get(close_code_for_status(code, error.reason), CloseCode.INTERNAL)
