"""A second, constrained look at an identifier the recogniser misheard (pure, no I/O).

The recogniser's commonest slip on an order number is a digit heard twice, not at all, or as a
word ("one zero feel five", "ten oh fall", "one zero zero full arrive"), and often no next-best
reading has it right (`dialogue.MISSHAPEN_PENALTY` looks among those). When the reading the
dialogue answers asks for a tool with an identifier slot whose value is missing or has another
number of digits than the schema's examples (`slots.Slot.lengths`), the same audio is
decoded once more with a grammar (JSGF) that is the reading itself, except that the words of
the identifier may only be an identifier of the right length: "has my order <id> left yet",
``<id>`` four digits said digit by digit, in pairs ("ten oh one") or as a thousand ("one
thousand and one"). The words around it are the first pass's, so only the identifier is read
again; the recogniser's acoustic evidence, not a guess, picks its digits.

`plan` decides whether a reading gets the second look and builds the grammar; `SpeechRecognizer
.recognize_grammar` decodes; `Reread.merge` puts the identifier read into the reading (None when
the second pass found no identifier of the right length: the first reading stands).
`looks_again` is `plan`'s decision alone; `says_identifier` also holds for an identifier of the
right length (the tool vote leaves such a reading alone: `dialogue.VOTE_SPARES_IDENTIFIER`).
Chosen on the development set (bench/local_dev_reread.py), never on the evaluation's held-out
phrasings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

from .numbers import DIGIT_WORDS, NUMBER_WORDS, number_spans
from .toolmodel import POLITE_WORDS, ToolModel, Understanding
from .words import tokenize

__all__ = ["Reread", "looks_again", "plan", "says_identifier"]

# Words said as one digit, as two ("ten", "twenty five"), and the units after a tens word.
_ONE = (*DIGIT_WORDS, "oh")
_TEENS = ("ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
          "eighteen", "nineteen")  # fmt: skip
_TENS = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_UNITS = DIGIT_WORDS[1:]
# Words inside a number that are no digits of their own.
_JOINERS = frozenset({"and", "a"})
# The identifier must have been said: at least this many number words in the reading's span
# ("i want to know ..." heard as "i want to oh ..." has one, and is no identifier).
_MIN_NUMBER_WORDS = 2
# Lengths of identifiers the grammar can say (longer ones get no second look: the grammar
# grows with the number of ways to split the digits into ones and pairs).
_MAX_LENGTH = 8


@dataclass(frozen=True, slots=True)
class Reread:
    """A planned second look: ``words[start:end]`` is where the reading said the identifier of
    ``slot`` (of tool ``tool``); ``grammar`` is the JSGF to decode the audio with."""

    tool: str
    slot: str
    words: tuple[str, ...]
    start: int
    end: int
    lengths: frozenset[int]
    grammar: str

    def merge(self, hypothesis: str) -> str | None:
        """The reading with the identifier the second pass heard, or None when it heard none
        of the right length (or did not keep the words around it: a failed search returns a
        partial path)."""
        heard = tokenize(hypothesis)
        before, after = self.words[: self.start], self.words[self.end :]
        if len(heard) <= len(before) + len(after):
            return None
        if tuple(heard[: len(before)]) != before:
            return None
        if after and tuple(heard[len(heard) - len(after) :]) != after:
            return None
        said = heard[len(before) : len(heard) - len(after)]
        if not all(w in NUMBER_WORDS for w in said):
            return None
        spans = number_spans(said)
        if len(spans) != 1 or len(spans[0][2]) not in self.lengths:
            return None
        return " ".join([*before, *said, *after])


def plan(
    model: ToolModel,
    reading: str,
    known: Callable[[str], bool],
    *,
    asked: tuple[str, str] | None = None,
    today: date | None = None,
    meaning: Understanding | None = None,
) -> Reread | None:
    """The second look ``reading`` needs, or None. ``known``: whether the recogniser can say a
    word (the grammar may only use words of its dictionary). ``asked``: (tool, slot) when the
    assistant just asked for that argument (the reading is then the answer). ``meaning``:
    ``model.understand(reading, today=today)`` when the caller has it (parsed once for both
    looks: `choice_look.second_look`)."""
    target = _target(model, reading, asked=asked, today=today, meaning=meaning)
    if target is None:
        return None
    tool, slot, words, start, end, lengths = target
    if not all(known(w) for w in (*words[:start], *words[end:])):
        return None
    return Reread(
        tool,
        slot,
        tuple(words),
        start,
        end,
        lengths,
        _grammar(words[:start], words[end:], lengths, known),
    )


def looks_again(model: ToolModel, reading: str, *, today: date | None = None) -> bool:
    """Whether a reading of the recogniser (whose words it can all say) gets a second look:
    `plan` without building the grammar."""
    return _target(model, reading, today=today) is not None


def says_identifier(model: ToolModel, reading: str, *, today: date | None = None) -> bool:
    """Whether ``reading`` asks for a tool with an identifier slot and says the identifier in
    number words (two or more, where `plan` would look), of the right length or not: what
    `plan` looks at again, and the well-shaped ones it leaves alone. `Dialogue.hear` asks it
    before the tool vote (`dialogue.VOTE_SPARES_IDENTIFIER`)."""
    return _target(model, reading, today=today, shaped_too=True) is not None


def _target(
    model: ToolModel,
    reading: str,
    *,
    asked: tuple[str, str] | None = None,
    today: date | None = None,
    shaped_too: bool = False,
    meaning: Understanding | None = None,
) -> tuple[str, str, list[str], int, int, frozenset[int]] | None:
    """(tool, slot, words, start, end, lengths) of the identifier `plan` looks at again (with
    ``shaped_too``, also when its value has the right length)."""
    words = tokenize(reading)
    if not words:
        return None
    if asked is not None:
        tool = model.tools.get(asked[0])
        slot = tool.slot(asked[1]) if tool is not None else None
        value = model.fill(asked[0], asked[1], reading, today=today) if slot is not None else None
    else:
        if meaning is None:
            meaning = model.understand(reading, today=today)
        tool = model.tools.get(meaning.name or "")
        ids = [s for s in tool.slots if s.kind == "id" and s.lengths] if tool else []
        slot = ids[0] if ids else None
        value = meaning.arguments.get(slot.name) if slot is not None else None
    if tool is None or slot is None or slot.kind != "id" or not slot.lengths:
        return None
    if (
        not shaped_too
        and isinstance(value, str)
        and sum(c.isdigit() for c in value) in slot.lengths
    ):
        return None  # well-shaped: nothing to look at again
    lengths = frozenset(n for n in slot.lengths if 0 < n <= _MAX_LENGTH)
    if not lengths:
        return None
    # Words the tool's requests are made of, around the identifier: never a misheard digit.
    frame = ({w for example in tool.examples for w in example} | POLITE_WORDS) - NUMBER_WORDS
    span = _span(words, frame, max(lengths))
    if span is None:
        return None
    return tool.name, slot.name, words, span[0], span[1], lengths


def _span(words: Sequence[str], frame: set[str], length: int) -> tuple[int, int] | None:
    """Where the identifier was said: the run of number words with the most of them, joined
    with a neighbouring run across one word that no example of the tool has ("one zero feel
    five": "feel" is a misheard "zero"), and, when it has fewer digits than ``length``, the
    word after it if no example has that word ("ten oh fall")."""
    number = [w in NUMBER_WORDS and w not in _JOINERS for w in words]
    runs: list[list[int]] = []
    for i, is_number in enumerate(number):
        if not is_number:
            continue
        if runs and runs[-1][1] == i:
            runs[-1][1] = i + 1
        elif runs and runs[-1][1] == i - 1 and words[i - 1] not in frame:
            runs[-1][1] = i + 1  # one stray word between two runs
        else:
            runs.append([i, i + 1])
    if not runs:
        return None
    start, end = max(runs, key=lambda r: sum(number[r[0] : r[1]]))
    if sum(number[start:end]) < _MIN_NUMBER_WORDS:
        return None
    digits = sum(len(s[2]) for s in number_spans(words[start:end]))
    if digits < length and end < len(words) and words[end] not in frame:
        end += 1
    return start, end


def _grammar(
    before: Sequence[str],
    after: Sequence[str],
    lengths: frozenset[int],
    known: Callable[[str], bool],
) -> str:
    ones = [w for w in _ONE if known(w)]
    teens = [w for w in _TEENS if known(w)]
    tens = [w for w in _TENS if known(w)]
    units = [w for w in _UNITS if known(w)]
    pairs = [*teens]
    if tens:
        unit = f" [({' | '.join(units)})]" if units else ""
        pairs.append(f"({' | '.join(tens)}){unit}")
    rules = [f"<one> = {' | '.join(ones)};"]
    if pairs:
        rules.append(f"<two> = {' | '.join(pairs)};")
    ways: list[str] = []
    for length in sorted(lengths):
        for parts in _splits(length, pairs=bool(pairs)):
            ways.append(" ".join("<one>" if p == 1 else "<two>" for p in parts))
        if length == 4 and units and known("thousand") and pairs:
            joiner = " [and]" if known("and") else ""
            ways.append(f"({' | '.join(units)}) thousand{joiner} (<one> | <two>)")
    rules.append(f"<id> = {' | '.join(f'({w})' for w in ways)};")
    body = " ".join([*before, "<id>", *after])
    return "\n".join(["#JSGF V1.0;", "grammar identifier;", *rules, f"public <said> = {body};", ""])


def _splits(length: int, *, pairs: bool) -> list[list[int]]:
    """Every way to say ``length`` digits in ones and (with ``pairs``) twos."""
    if length == 0:
        return [[]]
    out = [[1, *rest] for rest in _splits(length - 1, pairs=pairs)]
    if pairs and length >= 2:
        out += [[2, *rest] for rest in _splits(length - 2, pairs=pairs)]
    return out
