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

Small talk that opens with one of its own phrases whole ("thank you ...", "hello ...") is
confident whatever follows it (the words after it only lower its similarity).

Other readings end the turn later or not at all (`early_end_after`): a confident request that
only lacks a required argument ("where is my order") after `ASK_END_SILENCE_MS` (400 ms) of
silence, since its answer is a question and the argument may still come after a pause; a
reading not understood also after `UNKNOWN_END_SILENCE_MS` (400 ms) when it is unlikely to be
the start of a request (three words or more, like no tool, not dangling, no last number:
"open the garage door"), since the marker would answer the same reading of the same audio,
only later; any other reading not understood waits for the VAD's marker (it may be the start
of a request: "can you", "tell me"). A user who goes on after such an early end is answered
whole, as after any other.

Pure: no clock, no I/O.
"""

from __future__ import annotations

from datetime import date

from .dialogue import UNKNOWN, Reply, ToolCall
from .numbers import NUMBER_WORDS, number_spans
from .toolmodel import ToolModel
from .words import tokenize

__all__ = [
    "ASK_END_SILENCE_MS",
    "COMPLETE_END_SILENCE_MS",
    "EARLY_END_SCORE",
    "UNKNOWN_END_SCORE",
    "UNKNOWN_END_SILENCE_MS",
    "UNKNOWN_END_WORDS",
    "complete_request",
    "early_end_after",
]

#: The least similarity of a reading to its tool's examples for an early end (the dialogue's
#: own threshold is `toolmodel.MIN_SCORE`, 0.34): partial phrases made of function words
#: score up to ~0.58 ("what is the" -> the clock), whole requests mostly 0.6-1.0.
EARLY_END_SCORE = 0.6
#: The silence after which a complete request ends the turn: recognition of the guess (100 ms
#: into the silence) runs in between, and a pause shorter than this never ends a turn.
COMPLETE_END_SILENCE_MS = 200
#: The silence after which a request missing a required argument ends the turn, to be answered
#: with a question ("Sure. What's the order number?"): longer than a complete request's,
#: because the argument may still come after a pause; shorter than the VAD's 500 ms stop wait,
#: because the question is what the user waits for. If the user goes on, the core cancels the
#: question and the whole utterance is answered at the marker, as after any early end.
ASK_END_SILENCE_MS = 400
#: The silence after which a reading not understood, and like no tool, ends the turn
#: (`early_end_after`), as a question back does.
UNKNOWN_END_SILENCE_MS = 400
#: ...when its similarity to every tool is under this ("what is the" is faintly like the
#: clock: the start of a request, it waits); 0 turns the rule off...
UNKNOWN_END_SCORE = 0.25
#: ...and it has at least this many words: a request's start is often read as one or two
#: ("can you", "tell me", "show me"), as are noise and hum. Both chosen on the development
#: set (bench/local_dev_unknown.py): of 510 spoken request prefixes, 23 more may end a turn
#: (91 without the word count), against 167 that a complete request or a question back ends
#: already; 12 of 30 out-of-domain requests end 100 ms sooner, with the same answer.
UNKNOWN_END_WORDS = 3
_SMALL_TALK = frozenset({"greeting", "thanks", "goodbye", "help"})
# Words after which an English request goes on.
_DANGLING = frozenset(
    {"the", "a", "an", "in", "at", "on", "for", "of", "to", "from", "with", "about", "and",
     "or", "but", "is", "are", "was", "my", "your", "his", "her", "their", "our", "what",
     "what's", "where", "where's", "which", "how", "when", "who", "whose", "could", "can",
     "would", "will", "tell", "give", "show", "find", "check", "um",
     "uh", "like", "number", "order"}
)  # fmt: skip
# Of those, the words after which a request's argument comes (not grammar).
_ARGUMENT_NEXT = frozenset({"number", "order"})
# A reading not understood also goes on after these: the opening of a request that has not
# come yet ("i was wondering if", "do you know whether", "so basically i"). Only the unknown
# rule uses them: a complete request never ends on one, so they change nothing there.
_OPENING_GOES_ON = _DANGLING | frozenset(
    {"if", "whether", "because", "that", "i", "we", "so", "then", "than"}
)


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
        if _opens_with_phrase(model, action.intent, words):
            return True  # "thank you very much": the phrase whole, then words that add to it
    elif _ends_in_open_number(model, words, action):
        return False
    elif answering:
        return True
    return model.understand(reading, today=today).score >= EARLY_END_SCORE


def early_end_after(
    model: ToolModel,
    reading: str,
    action: Reply | ToolCall,
    *,
    answering: bool = False,
    asks: bool = False,
    today: date | None = None,
) -> int | None:
    """After how many milliseconds of silence the user's turn may end before the VAD's stop
    marker, or None when it waits for the marker. ``asks``: the dialogue answers ``reading``
    with a question for a missing argument (``action`` is that question).

    A complete request (`complete_request`) after `COMPLETE_END_SILENCE_MS`; a confident
    request that only lacks a required argument ("where is my order") after
    `ASK_END_SILENCE_MS`, unless it dangles, ends on a number (the argument may be being
    said), or was itself the answer to a question (an answer not understood waits); a reading
    not understood that is unlikely to be the start of a request after
    `UNKNOWN_END_SILENCE_MS` (`_unknown_end_after`); anything else waits for the marker.
    """
    if complete_request(model, reading, action, answering=answering, today=today):
        return COMPLETE_END_SILENCE_MS
    if answering or not isinstance(action, Reply) or action.intent in _SMALL_TALK:
        return None
    words = tokenize(reading)
    if not asks:
        return _unknown_end_after(model, words, action, today=today)
    # "order" and "number" dangle because the argument may follow: that is the question here
    if not words or words[-1] in _DANGLING - _ARGUMENT_NEXT or words[-1] in NUMBER_WORDS:
        return None
    if model.understand(reading, today=today).score < EARLY_END_SCORE:
        return None
    return ASK_END_SILENCE_MS


def _unknown_end_after(
    model: ToolModel, words: list[str], action: Reply, *, today: date | None
) -> int | None:
    """A reading not understood ends the turn after `UNKNOWN_END_SILENCE_MS` when it is
    unlikely to be the start of a request: at least `UNKNOWN_END_WORDS` words, no last word
    a request's opening goes on after (`_OPENING_GOES_ON`), no last number word, and like no
    tool (similarity under `UNKNOWN_END_SCORE`); otherwise it waits for the marker."""
    if action.intent != UNKNOWN:
        return None
    if len(words) < UNKNOWN_END_WORDS or words[-1] in _OPENING_GOES_ON or words[-1] in NUMBER_WORDS:
        return None
    if model.understand(" ".join(words), today=today).score >= UNKNOWN_END_SCORE:
        return None
    return UNKNOWN_END_SILENCE_MS


def _opens_with_phrase(model: ToolModel, intent: str, words: list[str]) -> bool:
    """The reading starts with one of the small-talk intent's own phrases, whole ("thank
    you" in "thank you so much"): confident, whatever words follow it, which would otherwise
    dilute its similarity below `EARLY_END_SCORE`."""
    tool = model.tools.get(intent)
    return tool is not None and any(
        len(example) > 0 and tuple(words[: len(example)]) == example for example in tool.examples
    )


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
