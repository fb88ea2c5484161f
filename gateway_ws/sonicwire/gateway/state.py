"""The order of messages on one WebSocket, as a state machine with no I/O.

Everything that affects transitions lives in this file. A socket carries one conversation:

- ``AWAITING_FIRST``: nothing received yet. ``config`` opens the conversation with its
  settings; any other input opens it with the defaults (16 kHz PCM in and out) and is then
  forwarded; ``end`` before anything else just closes the socket.
- ``OPEN``: input is forwarded; a second ``config`` is refused (``CONFIG_ALREADY_RECEIVED``).
- ``INPUT_ENDED``: after ``end`` only tool results are accepted (the assistant may still be
  finishing a turn that calls a client tool); anything else is refused (``INPUT_ENDED``).

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

__all__ = ["InboundFlow", "Phase"]


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
