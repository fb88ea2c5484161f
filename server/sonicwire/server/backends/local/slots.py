"""A tool's arguments as the offline engine hears them (pure, no I/O, no clock).

Each property of a tool's schema becomes a `Slot` of one class, and the class decides both
how the slot is *said* (`spoken_values`: the values the language model is trained with) and
how it is *heard* (`find_slots`: its value found in an utterance). The two live together here,
apart from `toolmodel`, so that the words a class is trained with and the words it recognises
(weekdays, hours, "o'clock", spoken identifiers) cannot drift apart.

=========  ==========================================================================
choice     ``enum`` or string ``examples`` (not identifiers): heard by their spoken form
           ("Asia/Tokyo" -> "tokyo", "America/New_York" -> "new york")
id         a string whose ``examples`` or ``pattern`` have digits: "ten oh one" -> "1001"
integer    ``integer`` / ``number``: a spoken number
date       ``format: date``: today, tomorrow, a weekday -> ISO date (needs today's date)
time       ``format: time`` or an HH:MM ``pattern``: "seven thirty p m" -> "19:30"
boolean    yes / no
text       anything else: the words where the slot stands in the best example
=========  ==========================================================================
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from .numbers import DIGIT_WORDS, number_spans, say_number, spoken_id_forms
from .words import FILLER_WORDS, tokenize

__all__ = [
    "Slot",
    "find_slots",
    "mark_slots",
    "slot_from_schema",
    "spoken_values",
    "text_slots",
]

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_HOURS = {DIGIT_WORDS[h] if h < 10 else say_number(h): h for h in range(1, 13)}
_MINUTES = {"o'clock": 0, "fifteen": 15, "thirty": 30, "forty five": 45, "quarter": 15,
            "half": 30}  # fmt: skip
# Identifiers the language model learns in every reading: short demo-like ones and a
# deterministic spread, so every digit follows every other somewhere.
_ID_NUMBERS = (*range(1000, 1011), *(1000 + (137 * k) % 9000 for k in range(1, 40)))


@dataclass(frozen=True)
class Slot:
    """One argument as the engine fills it: ``kind`` is its class (module docstring);
    ``choices`` maps spoken forms to values; ``title`` is how to ask for it."""

    name: str
    kind: str
    required: bool
    title: str
    choices: Mapping[str, Any] = field(default_factory=dict)
    closed: bool = False  # an enum: only the choices are valid
    # Digits in the schema's examples of an identifier ("1001" -> 4): an id of such a length
    # is whole, a shorter one may still be being said (`endpoint.complete_request`).
    lengths: frozenset[int] = frozenset()


# --- a slot from its schema --------------------------------------------------------------------


def slot_from_schema(name: str, prop: Mapping[str, Any], required: bool) -> Slot:
    """The slot of property ``name`` (its JSON schema ``prop``), classed as the module says."""
    kind = _json_type(prop)
    title = str(prop.get("title") or name.replace("_", " "))
    enum = prop.get("enum") if isinstance(prop.get("enum"), list) else None
    listed = prop.get("examples")
    examples: list[Any] = listed if isinstance(listed, list) else []
    pattern = str(prop.get("pattern") or "")
    fmt = str(prop.get("format") or "")
    if enum:
        return Slot(name, "choice", required, title, _choices(enum), closed=True)
    if kind in ("integer", "number"):
        return Slot(name, "integer", required, title)
    if kind == "boolean":
        return Slot(name, "boolean", required, title, {"yes": True, "no": False})
    if fmt == "date":
        return Slot(name, "date", required, title)
    if fmt == "time" or re.search(r"\[0-[25]\]\[0-9\]:", pattern) or "\\d{2}:" in pattern:
        return Slot(name, "time", required, title)
    has_digits = any(isinstance(e, str) and re.search(r"\d", e) for e in examples)
    if has_digits or "\\d" in pattern or "0-9" in pattern:
        digits = [re.sub(r"\D", "", e) for e in examples if isinstance(e, str)]
        lengths = frozenset(len(d) for d in digits if d)
        return Slot(name, "id", required, title, lengths=lengths)
    if examples:
        return Slot(name, "choice", required, title, _choices(examples))
    return Slot(name, "text", required, title)


def _json_type(prop: Mapping[str, Any]) -> str:
    kind = prop.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "")
    return kind if isinstance(kind, str) else ""


def _choices(values: Iterable[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for value in values:
        for spoken in _spoken_forms(value):
            out.setdefault(spoken, value)
    return out


def _spoken_forms(value: Any) -> list[str]:
    """How a value is said: "Asia/Tokyo" -> ["tokyo", "asia tokyo"]; 7 -> ["seven"]."""
    if isinstance(value, bool):
        return ["yes" if value else "no"]
    if isinstance(value, int) and 0 <= value < 1_000_000:
        return [say_number(value).replace("-", " ")]
    if not isinstance(value, str):
        return []
    if value.isupper() and value.isalpha() and len(value) <= 4:
        return [" ".join(value.lower())]  # "UTC" is said letter by letter
    forms = [" ".join(tokenize(value.rsplit("/", 1)[-1].replace("_", " ")))]
    forms.append(" ".join(tokenize(value.replace("/", " ").replace("_", " "))))
    return [f for f in dict.fromkeys(forms) if f]


# --- how a slot is said (training) -------------------------------------------------------------


def spoken_values(slot: Slot) -> list[str]:
    """Spoken values a slot is trained with (none for free text: its words cannot be
    foreseen)."""
    match slot.kind:
        case "choice" | "boolean":
            return list(slot.choices)
        case "id":
            return [form for n in _ID_NUMBERS for form in spoken_id_forms(n)]
        case "integer":
            return [say_number(n).replace("-", " ") for n in (*range(1, 21), 30, 45, 50, 100)]
        case "date":
            return ["today", "tomorrow", "the day after tomorrow", *_WEEKDAYS,
                    *(f"next {d}" for d in _WEEKDAYS)]  # fmt: skip
        case "time":
            hours = list(_HOURS)
            return [*hours, *(f"{h} thirty" for h in hours), *(f"{h} p m" for h in hours),
                    *(f"{h} a m" for h in hours), "noon", "midnight"]  # fmt: skip
        case _:
            return []


# --- how a slot is heard (finding its value) ---------------------------------------------------

_TYPED_ID = re.compile(r"#?(?:[A-Za-z]+-?)?\d[A-Za-z0-9-]*")
_MIN_SPOKEN_ID_DIGITS = 3


def find_slots(
    slots: Sequence[Slot], words: Sequence[str], text: str = "", *, today: date | None = None
) -> dict[str, tuple[Any, int, int]]:
    """``{slot: (value, start, end)}`` for the ``slots`` said in ``words``
    (``words[start:end]`` said it; typed values have an empty span)."""
    found: dict[str, tuple[Any, int, int]] = {}
    taken: set[int] = set()
    for slot in slots:
        hit = _find(slot, words, text, today, taken)
        if hit is not None:
            found[slot.name] = hit
            taken.update(range(hit[1], hit[2]))
    return found


def _find(
    slot: Slot, words: Sequence[str], text: str, today: date | None, taken: set[int]
) -> tuple[Any, int, int] | None:
    match slot.kind:
        case "choice" | "boolean":
            for spoken in sorted(slot.choices, key=len, reverse=True):
                span = _phrase_span(words, spoken, taken)
                if span is not None:
                    return slot.choices[spoken], *span
        case "id":
            # Typed input first ("#1001", "A-17B"): a recogniser writes numbers as words.
            typed = [m.group().lstrip("#").upper() for m in _TYPED_ID.finditer(text)]
            typed = [t for t in typed if not t.isdigit() or len(t) >= _MIN_SPOKEN_ID_DIGITS]
            if typed:
                value = max(typed, key=len)
                at = next((i for i, w in enumerate(words) if w == value.lower()), None)
                return (value, 0, 0) if at is None else (value, at, at + 1)
            spans = [s for s in number_spans(words) if len(s[2]) >= _MIN_SPOKEN_ID_DIGITS
                     and not taken.intersection(range(s[0], s[1]))]  # fmt: skip
            if spans:  # the longest: a stray "oh" before the id is not it
                start, end, digits = max(spans, key=lambda s: len(s[2]))
                return digits, start, end
        case "integer":
            spans = [s for s in number_spans(words) if not taken.intersection(range(s[0], s[1]))]
            if spans:
                start, end, digits = spans[0]
                return int(digits), start, end
        case "date":
            return _find_date(words, today, taken)
        case "time":
            return _find_time(words, taken)
    return None


def _phrase_span(words: Sequence[str], phrase: str, taken: set[int]) -> tuple[int, int] | None:
    target = phrase.split()
    n = len(target)
    for start in range(len(words) - n + 1):
        if list(words[start : start + n]) == target and not taken.intersection(
            range(start, start + n)
        ):
            return start, start + n
    return None


def _find_date(
    words: Sequence[str], today: date | None, taken: set[int]
) -> tuple[Any, int, int] | None:
    if today is None:
        return None
    for phrase, days in (("day after tomorrow", 2), ("tomorrow", 1), ("today", 0),
                         ("tonight", 0)):  # fmt: skip
        span = _phrase_span(words, phrase, taken)
        if span is not None:
            return (today + timedelta(days=days)).isoformat(), *span
    for index, name in enumerate(_WEEKDAYS):
        span = _phrase_span(words, name, taken)
        if span is not None:
            ahead = (index - today.weekday()) % 7 or 7
            return (today + timedelta(days=ahead)).isoformat(), *span
    return None


def _find_time(words: Sequence[str], taken: set[int]) -> tuple[Any, int, int] | None:
    for phrase, hour in (("noon", 12), ("midnight", 0)):
        span = _phrase_span(words, phrase, taken)
        if span is not None:
            return f"{hour:02d}:00", *span
    for start, word in enumerate(words):
        if word not in _HOURS or start in taken:
            continue
        hour, end, minute = _HOURS[word], start + 1, 0
        rest = " ".join(words[end : end + 2])
        for phrase, value in sorted(_MINUTES.items(), key=lambda kv: -len(kv[0])):
            if rest.startswith(phrase):
                minute, end = value, end + len(phrase.split())
                break
        else:
            spans = [s for s in number_spans(words[end:]) if s[0] == 0]
            if spans and words[end] not in _HOURS and int(spans[0][2]) < 60:
                minute, end = int(spans[0][2]), end + spans[0][1]
        tail = " ".join(words[end : end + 3])
        if tail.startswith(("p m", "pm", "in the evening", "in the afternoon", "tonight")):
            hour = hour % 12 + 12
            end += 2 if tail.startswith("p m") else 1 if tail.startswith("pm") else 3
        elif tail.startswith(("a m", "am", "in the morning")):
            hour %= 12
            end += 2 if tail.startswith("a m") else 1 if tail.startswith("am") else 3
        return f"{hour:02d}:{minute:02d}", start, end
    return None


def text_slots(
    slots: Sequence[Slot],
    examples: Sequence[Sequence[str]],
    words: Sequence[str],
    found: Mapping[str, tuple[Any, int, int]],
) -> dict[str, Any]:
    """Free-text slots: the words where the slot stands in the example that shares the
    most context with the utterance ("book a table for {name}": the words after "for")."""
    out: dict[str, Any] = {}
    for slot in slots:
        if slot.kind != "text" or slot.name in found:
            continue
        mark = "{" + slot.name + "}"
        for example in examples:
            if mark not in example:
                continue
            at = example.index(mark)
            before = example[at - 1] if at > 0 else None
            after = example[at + 1] if at + 1 < len(example) else None
            if before is None or before not in words:
                continue
            start = len(words) - 1 - list(reversed(words)).index(before) + 1
            end = words.index(after, start) if after in words[start:] else len(words)
            value = [w for w in words[start:end] if w not in FILLER_WORDS]
            if value:
                out[slot.name] = " ".join(value)
                break
    return out


def mark_slots(words: Sequence[str], found: Mapping[str, tuple[Any, int, int]]) -> list[str]:
    """The utterance with each found value's words replaced by its slot's mark."""
    out = list(words)
    spans = sorted(((s, e, n) for n, (_, s, e) in found.items()), reverse=True)
    for start, end, name in spans:
        out[start:end] = ["{" + name + "}"]
    for name, (_, start, end) in found.items():
        if start == end:  # a typed value: no words to replace
            out.append("{" + name + "}")
    return out
