"""A semantic end of turn: is what the user said so far a complete request?

The VAD ends the user's turn only after ``stop_secs`` (0.5 s) of silence, and that wait is
most of the time the user waits for an answer. `EarlyCut` guesses the end of speech after
100 ms of silence and the session recognises the guess then; when its reading is a complete
request, the session ends the turn once the silence has lasted 200 ms (at once if recognition
took longer; `events.UserTurnEnded`) instead of waiting out the rest. If the user was only
pausing and goes on, the core hears it (raw voice activity) and cancels the early answer; the
backend then answers the whole utterance. So a wrong early end costs the start of a cut
answer, never the user's words; but it is not free, hence the rules.

Complete means (`complete_request`):

- a tool call with every required argument (the dialogue would otherwise ask for one:
  "where is my order" waits for the VAD, the number may follow), or a small-talk phrase
  (hello, thanks, goodbye, help); an unknown reading or a question back never ends early;
- a confident reading: similarity at least `EARLY_END_SCORE` to the tool's examples ("what
  is the" is faintly like the clock tool, 0.58), unless it answers the assistant's question;
- not ending on a word that needs a continuation ("the", "in", "for", "and": `_DANGLING`);
- not ending on a number that may go on: a time, a count, an identifier shorter than the
  schema's examples ("where is my order ten oh ..." -> "100" while the examples are "1001").

Pure: no clock, no I/O.
"""

from __future__ import annotations

from datetime import date

from .dialogue import Reply, ToolCall
from .numbers import NUMBER_WORDS, number_spans
from .toolmodel import ToolModel, tokenize

__all__ = ["EARLY_END_SCORE", "complete_request"]

#: The least similarity of a reading to its tool's examples for an early end (the dialogue's
#: own threshold is `toolmodel.MIN_SCORE`, 0.34): partial phrases made of function words
#: score up to ~0.58 ("what is the" -> the clock), whole requests mostly 0.6-1.0.
EARLY_END_SCORE = 0.6
_SMALL_TALK = frozenset({"greeting", "thanks", "goodbye", "help"})
# Words after which an English request goes on.
_DANGLING = frozenset(
    {"the", "a", "an", "in", "at", "on", "for", "of", "to", "from", "with", "about", "and",
     "or", "but", "is", "are", "was", "my", "your", "his", "her", "their", "our", "what",
     "what's", "where", "where's", "which", "how", "when", "who", "whose", "could", "can",
     "would", "will", "tell", "give", "show", "find", "check", "um",
     "uh", "like", "number", "order"}
)  # fmt: skip


def complete_request(
    model: ToolModel,
    reading: str,
    action: Reply | ToolCall,
    *,
    answering: bool = False,
    today: date | None = None,
) -> bool:
    """Whether ``reading`` (the reading the dialogue answers), answered by ``action`` (what
    the dialogue made of it), is a complete request; ``answering``: the assistant had asked
    for an argument. See the module docstring."""
    words = tokenize(reading)
    if not words or words[-1] in _DANGLING:
        return False
    if isinstance(action, Reply):
        if action.intent not in _SMALL_TALK:
            return False
    elif _ends_in_open_number(model, words, action):
        return False
    elif answering:
        return True
    return model.understand(reading, today=today).score >= EARLY_END_SCORE


def _ends_in_open_number(model: ToolModel, words: list[str], call: ToolCall) -> bool:
    """The reading ends on a number that is not a whole identifier of the call."""
    if words[-1] not in NUMBER_WORDS:
        return False
    spans = [s for s in number_spans(words) if s[1] == len(words)]
    if not spans:
        return True
    digits = spans[-1][2]
    tool = model.tools.get(call.name)
    for slot in tool.slots if tool is not None else ():
        if slot.kind == "id" and call.arguments.get(slot.name) == digits:
            return len(digits) not in slot.lengths
    return True
