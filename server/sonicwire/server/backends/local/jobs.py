"""What a `LocalSession`'s worker answers, and what an early guess prepares for it.

Plain records shared by the session's input side (guesses, markers, early ends) and its
worker (one turn at a time); see session.py for how they move.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from .dialogue import ToolCall
from .stt import Transcript

__all__ = ["Prepared", "ToolAnswer", "Utterance"]


@dataclass(slots=True)
class Prepared:
    """What an early guess prepared: its transcript and, when the reply could be foreseen,
    the synthesis (started before the marker) of the reply's first sentence."""

    transcript: Transcript
    spoken: str | None = None
    audio: asyncio.Future[bytes] | None = None
    # Set when ``spoken`` is only the start of the answer to this tool call (its arguments
    # tell it); the rest is synthesised once the result is in.
    prefix_for: ToolCall | None = None
    # The reading is a complete request (`endpoint.complete_request`): the user's turn may
    # end before the stop marker.
    complete: bool = False
    # The silence (samples) after which the user's turn may end before the stop marker
    # (`endpoint.early_end_after`); None: it waits for the marker.
    end_after: int | None = None
    # (the reading the dialogue chose, the reading answered after a second look at its
    # identifier, `reread.py`): reused at the marker when the dialogue chooses the same.
    reread: tuple[str, str] | None = None


@dataclass(slots=True)
class Utterance:
    """A user utterance to answer; ``early`` is its answer, prepared before the marker.
    ``ended_early``: the turn was ended before the marker (`ev.UserTurnEnded`) to answer it;
    ``void``: the user went on, so it is skipped or cut (and its end already sent)."""

    pcm: bytes
    early: asyncio.Task[Prepared] | None = None
    ended_early: bool = False
    void: bool = False
    started: bool = False


@dataclass(frozen=True, slots=True)
class ToolAnswer:
    """The result of a call the user barged in on that kept running (a tool that continues
    on interruption, see ``ToolSpec.continue_on_interruption``): answered as a turn of its
    own, as Nova answers such a result."""

    call: ToolCall
    result_json: str
