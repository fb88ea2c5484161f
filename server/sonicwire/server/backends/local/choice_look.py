"""A second, constrained look at a missing choice value (pure, no I/O).

The weather tool's commonest miss on the development set is a city the recogniser never put in
its best reading ("is it going to be windy in lyon tomorrow" heard "... windy in like on
tomorrow"): the reading asks for the tool, but its required choice slot (`slots.Slot`, kind
``choice``: the schema's ``enum`` or string ``examples``) has no value, so the dialogue would
ask "which city?". When the reading the dialogue answers is such a request, the same audio is
decoded once more with a grammar (JSGF) that is the reading itself, except that the words where
the value should be may only be one of the slot's spoken values: "is it going to be windy in
<city> tomorrow". Where the value should be: it ends before the words that may follow it (the
tool's other slots' values, "tomorrow", and politeness) and starts after the last word that
comes right before the slot in one of the tool's examples ("in", "for"); without such a word,
anywhere in the last few words (the decoder picks how many of them the value was, and may hear
the lost "in" before it: "... the week be nine tomorrow" -> "... the week be in lyon
tomorrow"), as long as the reading with a value there still asks for the tool. The words
around it are the first pass's, so only the value is read again, from the acoustic evidence,
as `reread.py` does for an identifier; a second pass that does not keep those words, or says
no value, changes nothing. Politeness after the value ("please", "for me") is optional in the
grammar: the first pass may have heard it in the value's own sounds ("weather in paris" heard
"weather in please"), and a grammar that kept it would leave those sounds no room for the value
(the idea came from a held-out reading ending in "me"; measured and kept on the development
set).

Only a request for a tool whose *required* choice slot is missing gets the look: a reading
with its value already found (the language model picked the value the acoustics favour: an
earlier measurement looked again at found values and changed none), a reading of no tool and
small talk never do, so no work is added to a turn without a tool. Nothing here knows a tool;
the values are the schema's. `second_look` is what the session runs: the identifier's look
(`reread.plan`) first, else this one. Chosen on the development set
(bench/local_dev_choice.py), never on the evaluation's held-out phrasings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

from .reread import Reread, plan
from .slots import spoken_values
from .toolmodel import POLITE_WORDS, LearntTool, ToolModel, Understanding
from .words import tokenize

__all__ = ["ChoiceLook", "plan_choice", "second_look"]

# A span longer than this is no misheard value but words of another request: no look.
_MAX_SPAN = 4
# More values than this and the grammar (one alternative per value) makes the second decode
# cost grow with the enum, paid in the turn's latency: no look (the weather has 16 cities).
_MAX_VALUES = 200


@dataclass(frozen=True, slots=True)
class ChoiceLook:
    """A planned second look: the value of ``slot`` (of tool ``tool``), one of ``values``
    (spoken forms), should have been said in ``words[start:end]`` for one of ``starts`` (the
    decoder picks which: how many of the misheard words the value was); ``grammar`` is the JSGF
    to decode the audio with."""

    tool: str
    slot: str
    words: tuple[str, ...]
    starts: tuple[int, ...]
    end: int
    values: frozenset[str]
    grammar: str
    # Words that may come before the value (the tool's "in", "for") when the reading lost them.
    lead: frozenset[str] = frozenset()
    # Words after the value (politeness, never another slot's value) that the second pass may
    # leave out.
    optional: frozenset[str] = frozenset()

    def merge(self, hypothesis: str) -> str | None:
        """The reading with the value the second pass heard, or None when it heard none (or
        did not keep the words around it: a failed search returns a partial path)."""
        heard = tokenize(hypothesis)
        for split in _tail_splits(heard, self.words[self.end :], self.optional):
            rest = heard[:split]
            for start in self.starts:
                said = rest[start:]
                lead = (
                    said[:1]
                    if " ".join(said) not in self.values and said[:1] and said[0] in self.lead
                    else []
                )
                value = " ".join(said[len(lead) :])
                if tuple(rest[:start]) == self.words[:start] and value in self.values:
                    return " ".join([*self.words[:start], *lead, value, *heard[split:]])
        return None


def plan_choice(
    model: ToolModel,
    reading: str,
    known: Callable[[str], bool],
    *,
    asked: tuple[str, str] | None = None,
    today: date | None = None,
    meaning: Understanding | None = None,
) -> ChoiceLook | None:
    """The second look ``reading`` needs at a missing choice value, or None. ``known``: whether
    the recogniser can say a word. ``asked``: the assistant just asked for an argument (the
    reading is the answer): no look then (the answer has no phrasing around the value).
    ``meaning``: ``model.understand(reading, today=today)`` when the caller has it."""
    if asked is not None:
        return None
    words = tokenize(reading)
    if not words:
        return None
    if meaning is None:
        meaning = model.understand(reading, today=today)
    tool = model.tools.get(meaning.name or "")
    if tool is None or tool.chat:
        return None
    slot = next(
        (
            s
            for s in tool.slots
            if s.kind == "choice" and s.required and s.choices and s.name not in meaning.arguments
        ),
        None,
    )
    if slot is None:
        return None
    values = frozenset(v for v in slot.choices if all(known(w) for w in v.split()))
    if not values or len(values) > _MAX_VALUES or not all(known(w) for w in words):
        return None
    span = _span(words, tool, slot.name)
    if span is None:
        return None
    starts, end, lead, optional = span
    # Only where the value makes the reading a request for the tool with that value (a span
    # that swallows the words asking for the tool is no place for it).
    probe = min(values)
    starts = tuple(
        s
        for s in starts
        if (m := model.understand(" ".join([*words[:s], probe, *words[end:]]), today=today)).name
        == tool.name
        and slot.name in m.arguments
    )
    if not starts:
        return None
    lead = frozenset(w for w in lead if known(w))
    grammar = _grammar(words, starts, end, values, lead, optional)
    return ChoiceLook(
        tool.name, slot.name, tuple(words), starts, end, values, grammar, lead, optional
    )


def second_look(
    model: ToolModel,
    reading: str,
    known: Callable[[str], bool],
    *,
    asked: tuple[str, str] | None = None,
    today: date | None = None,
) -> Reread | ChoiceLook | None:
    """The second look the session runs on the reading it answers: at a misheard identifier
    (`reread.plan`), else at a missing choice value (`plan_choice`), else None. The reading
    is understood once for both (an answer to a question is read with `ToolModel.fill`
    instead, and gets no choice look)."""
    meaning = model.understand(reading, today=today) if asked is None else None
    return plan(model, reading, known, asked=asked, today=today, meaning=meaning) or plan_choice(
        model, reading, known, asked=asked, today=today, meaning=meaning
    )


def _span(
    words: Sequence[str], tool: LearntTool, slot: str
) -> tuple[tuple[int, ...], int, frozenset[str], frozenset[str]] | None:
    """Where the value of ``slot`` should have been said (module docstring): the possible
    starts of the span, its end, the words that may come before the value and those after it
    that may be left out; None when the reading has no such place."""
    mark = "{" + slot + "}"
    # Words right before the slot in an example ("in", "for"): the value comes after one.
    anchors = {e[i - 1] for e in tool.examples for i, w in enumerate(e) if w == mark and i > 0}
    # What may follow the value: the other slots' values ("tomorrow") and politeness.
    values = {w for o in tool.slots if o.name != slot for v in spoken_values(o) for w in v.split()}
    tail = POLITE_WORDS | values
    end = len(words)
    while end > 0 and words[end - 1] in tail:
        end -= 1
    # An anchor that is also politeness ("for") ends the scan when no anchor comes before it:
    # in "what's the forecast for" it is where the value belongs, not "for me".
    if not any(w in anchors for w in words[:end]):
        end = next((i + 1 for i in range(end, len(words)) if words[i] in anchors), end)
    # The politeness after it may be left out (never another slot's value: that says something).
    optional = frozenset(w for w in words[end:] if w in POLITE_WORDS and w not in values)
    anchor = max((i for i in range(end) if words[i] in anchors), default=None)
    if anchor is not None and anchor + 1 == end:
        return (end,), end, frozenset(), optional  # "weather in please": the value lost whole
    # After the anchor, else anywhere but the first word; at most `_MAX_SPAN` words.
    first = max(1 if anchor is None else anchor + 1, end - _MAX_SPAN)
    starts = tuple(range(first, end))
    lead = frozenset(anchors) if anchor is None else frozenset()
    return (starts, end, lead, optional) if starts else None


def _tail_splits(heard: Sequence[str], after: Sequence[str], optional: frozenset[str]) -> list[int]:
    """Where ``heard`` may end its value: each ``i`` such that ``heard[i:]`` is ``after`` with
    some of its ``optional`` words left out (the most words kept first), the value before it."""
    # From the end of both: the i with heard[i:] matching the words of after seen so far.
    ends = {len(heard)}
    for word in reversed(after):
        kept = {i - 1 for i in ends if i > 0 and heard[i - 1] == word}
        ends = kept | ends if word in optional else kept
    return sorted(i for i in ends if i > 0)


def _grammar(
    words: Sequence[str],
    starts: Sequence[int],
    end: int,
    values: frozenset[str],
    lead: frozenset[str],
    optional: frozenset[str],
) -> str:
    rule = " | ".join(f"({v})" for v in sorted(values))
    value = f"[{' | '.join(sorted(lead))}] <value>" if lead else "<value>"
    heads = " | ".join(f"({' '.join([*words[:s], value])})" for s in starts)
    tail = (f"[{w}]" if w in optional else w for w in words[end:])
    body = " ".join([f"({heads})", *tail])
    return "\n".join(["#JSGF V1.0;", "grammar choice;", f"<value> = {rule};",
                      f"public <said> = {body};", ""])  # fmt: skip
