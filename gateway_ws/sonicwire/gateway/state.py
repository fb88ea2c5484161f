"""The order of messages on one WebSocket, as a state machine with no I/O.

Everything that affects transitions lives in this file. A socket carries one conversation:

- ``AWAITING_FIRST``: nothing received yet. ``config`` opens the conversation with its
  settings; any other input opens it with the defaults (16 kHz PCM in and out) and is then
  forwarded; ``end`` before anything else just closes the socket.
- ``OPEN``: input is forwarded; a second ``config`` is refused (``CONFIG_ALREADY_RECEIVED``).
- ``INPUT_ENDED``: after ``end`` only tool results are accepted (the assistant may still be
  finishing a turn that calls a client tool); anything else is refused (``INPUT_ENDED``).
  The upstream half-close waits for the client's pending tool calls (`ClientCalls`): once the
  gRPC stream is half-closed it can carry no tool result.

Refusals are :class:`~sonicwire.gateway.protocol.InvalidMessage` errors: the gateway reports
them as non-fatal ``error`` events and the state does not change.
"""

from __future__ import annotations

import enum

from .protocol import (
    Audio,
    Command,
    Configure,
    EndInput,
    InvalidMessage,
    Playback,
    Reason,
    Text,
    ToolResult,
)

__all__ = ["ClientCalls", "InboundFlow", "Phase"]


class Phase(enum.Enum):
    """Where a socket is in its conversation."""

    AWAITING_FIRST = "awaiting_first"
    OPEN = "open"
    INPUT_ENDED = "input_ended"


_P = Phase
_TRANSITIONS: dict[Phase, dict[type[Command], Phase]] = {
    _P.AWAITING_FIRST: {
        Configure: _P.OPEN,
        Audio: _P.OPEN,
        Text: _P.OPEN,
        Playback: _P.OPEN,
        ToolResult: _P.OPEN,
        EndInput: _P.INPUT_ENDED,
    },
    _P.OPEN: {
        Audio: _P.OPEN,
        Text: _P.OPEN,
        Playback: _P.OPEN,
        ToolResult: _P.OPEN,
        EndInput: _P.INPUT_ENDED,
    },
    _P.INPUT_ENDED: {ToolResult: _P.INPUT_ENDED},
}


class InboundFlow:
    """Applies the message-order rules of one socket.

    Feed every parsed command to :meth:`receive`; it returns what to do, in order: a
    :class:`Configure` means "open the conversation with these settings", anything else means
    "forward this to the conversation" (``EndInput``: half-close it).
    """

    def __init__(self) -> None:
        self.phase = Phase.AWAITING_FIRST

    def receive(self, command: Command) -> list[Command]:
        """Accept one command.

        Returns:
            The actions to take, in order (empty for none).

        Raises:
            InvalidMessage: the command is not allowed now (the phase is unchanged).
        """
        allowed = _TRANSITIONS[self.phase]
        target = allowed.get(type(command))
        if target is None:
            raise self._refusal(command)
        previous, self.phase = self.phase, target
        if previous is Phase.AWAITING_FIRST and not isinstance(command, Configure):
            if isinstance(command, EndInput):
                return [command]
            return [Configure(), command]
        return [command]

    def _refusal(self, command: Command) -> InvalidMessage:
        if isinstance(command, Configure):
            return InvalidMessage(
                Reason.CONFIG_ALREADY_RECEIVED,
                "'config' must be the first message of the socket; it was ignored",
            )
        return InvalidMessage(
            Reason.INPUT_ENDED,
            f"input already ended ('end' was sent); {type(command).__name__} was ignored",
        )


class ClientCalls:
    """The client-executed tool calls of one socket that are still open, and a held ``end``.

    ``end`` is a half-close upstream, after which a ``tool_result`` cannot reach the server; so
    while the client has calls to answer it is held, and sent when the last one settles: the
    client answered it, or the server ended it (timeout, barge-in). Found by the red-team
    session (s36): a result sent after ``end``, as documented, was lost.

    Each method returns True when the held ``end`` is to be sent now.
    """

    def __init__(self) -> None:
        self._open: set[str] = set()
        self._end_held = False

    def called(self, call_id: str) -> None:
        """The server sent a ``tool_call`` the client executes."""
        self._open.add(call_id)

    def settled(self, call_id: str) -> bool:
        """``call_id`` was answered by the client or ended by the server."""
        self._open.discard(call_id)
        return self._release()

    def forget(self) -> bool:
        """The conversation moved to another replica (``Resumed``): calls open on the old
        stream can no longer be answered there, and the new one does not know them."""
        self._open.clear()
        return self._release()

    def end(self) -> bool:
        """The client sent ``end``."""
        self._end_held = True
        return self._release()

    def _release(self) -> bool:
        if self._end_held and not self._open:
            self._end_held = False
            return True
        return False
