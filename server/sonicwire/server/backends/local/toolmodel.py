"""What the offline engine learns from a session's tools (pure, no I/O, no clock).

Every tool describes how people ask for it (``ToolSpec.examples``: "what's the weather in
{city}", slots named after the schema's properties) and the schema says what each argument
is. `ToolModel` compiles that, once per set of tools, into:

- **training text** for the recogniser's language model (`ToolModel.sentences`): every
  example with its slots filled by values of the slot's class (spoken numbers and
  identifiers in every reading, dates, times, the schema's ``enum`` / ``examples`` values),
  plus politeness around them and the assistant's own small talk;
- **an understanding** of one utterance (`ToolModel.understand`): each slot's value is found
  by its class, the found values are replaced by their slot name, and the tool whose examples
  are most similar (word overlap weighted by how specific a word is to one tool, see
  `_Scorer`) wins, if it is similar enough; otherwise the utterance is not understood.

Slot classes, from the property's schema:

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

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import jsonschema
import jsonschema.validators

from sonicwire.server.backends.base import ToolDescription
from sonicwire.server.tools.spec import ToolSpec

from .numbers import DIGIT_WORDS, number_spans, say_number, spoken_id_forms

__all__ = [
    "CHAT_INTENTS",
    "POLITE_WORDS",
    "LearntTool",
    "Slot",
    "ToolModel",
    "Understanding",
    "builtin_sentences",
    "describe_spec",
    "tokenize",
]

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_SLOT_MARK = re.compile(r"\{([^{}]+)\}")

#: The assistant's own small talk, understood like tools (the reply is fixed, no tool runs).
CHAT_INTENTS: Mapping[str, tuple[str, ...]] = {
    "greeting": ("hello", "hi", "hey", "hi there", "hello there", "good morning",
                 "good afternoon", "good evening", "hey there", "howdy"),
    "help": ("help", "what can you do", "what can i ask you", "what can you help me with",
             "how can you help", "what do you do", "help me", "what are you", "who are you"),
    "thanks": ("thank you", "thanks", "thanks a lot"),
    "goodbye": ("goodbye", "bye"),
}  # fmt: skip

# Politeness people wrap requests in: learnt around every example, and weighed as nearly
# nothing when comparing an utterance with the examples.
_PREFIXES = ("please", "can you", "could you", "hey")
_SUFFIXES = ("please", "for me", "thanks")
#: The words of that politeness: learnt around every tool's examples.
POLITE_WORDS = frozenset(w for phrase in (*_PREFIXES, *_SUFFIXES) for w in phrase.split())
_FILLER = frozenset({"please", "can", "could", "you", "for", "me", "hey", "oh", "um",
                     "uh", "the", "a", "so", "now", "just", "okay", "well"})  # fmt: skip
_FILLER_WEIGHT = 0.1
# Function words say little about which tool is meant, however few tools use them.
_FUNCTION = frozenset(
    [
        "what's",
        "what",
        "is",
        "the",
        "in",
        "it",
        "of",
        "an",
        "to",
        "do",
        "does",
        "i",
        "on",
        "at",
        "are",
        "be",
        "will",
        "this",
        "that",
        "it's",
        "my",
        "there",
        "like",
        "tell",
        "get",
        "give",
        "know",
        "have",
        "want",
    ]
)
_FUNCTION_WEIGHT = 0.3
# The least total weight of the utterance's words a tool's examples must share with it.
_MIN_EVIDENCE = 0.45
# Training copies of an example at least (see ToolModel.sentences), and fillings of it that
# get politeness around them at most.
_MIN_COPIES = 8
_WRAPPED = 24
# A found slot value is strong evidence for the tools whose examples have that slot.
_SLOT_WEIGHT = 2.5
#: Below this similarity the utterance is "not understood" (chosen on the in-training
#: commands of bench/local_eval.py, never on its held-out phrasings).
MIN_SCORE = 0.34

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_HOURS = {DIGIT_WORDS[h] if h < 10 else say_number(h): h for h in range(1, 13)}
_MINUTES = {"o'clock": 0, "fifteen": 15, "thirty": 30, "forty five": 45, "quarter": 15,
            "half": 30}  # fmt: skip
# Identifiers the language model learns in every reading: short demo-like ones and a
# deterministic spread, so every digit follows every other somewhere.
_ID_NUMBERS = (*range(1000, 1011), *(1000 + (137 * k) % 9000 for k in range(1, 40)))


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens; apostrophes stay inside words ("what's")."""
    return _TOKEN.findall(text.lower().replace("\u2019", "'"))


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


@dataclass(frozen=True)
class LearntTool:
    """A tool (or a small-talk intent, ``chat`` True) as the engine knows it."""

    name: str
    slots: tuple[Slot, ...]
    examples: tuple[tuple[str, ...], ...]  # tokens; a slot is "{name}"
    answer: str = ""
    parameters: Mapping[str, Any] = field(default_factory=dict)
    chat: bool = False

    def slot(self, name: str) -> Slot | None:
        return next((s for s in self.slots if s.name == name), None)


@dataclass(frozen=True)
class Understanding:
    """What `ToolModel.understand` made of an utterance: the tool (or small-talk intent)
    and the arguments found; ``name`` is None when nothing was similar enough."""

    name: str | None
    arguments: Mapping[str, Any] = field(default_factory=dict)
    score: float = 0.0


class ToolModel:
    """A session's tools, learnt; see the module docstring. Build once per set of tools."""

    def __init__(self, tools: Sequence[ToolDescription]) -> None:
        learnt = [_learn(tool) for tool in tools]
        chat = [
            LearntTool(name, (), tuple(tuple(tokenize(e)) for e in examples), chat=True)
            for name, examples in CHAT_INTENTS.items()
        ]
        self.tools: dict[str, LearntTool] = {t.name: t for t in [*learnt, *chat]}
        self._scorer = _Scorer(self.tools.values())
        self._validators = {t.name: _validator(t.parameters) for t in learnt}

    def invalid_arguments(self, name: str, arguments: Mapping[str, Any]) -> set[str]:
        """The arguments of ``arguments`` that the tool's schema rejects ("" for the object
        itself, e.g. a missing required property)."""
        validator = self._validators.get(name)
        if validator is None:
            return set()
        bad: set[str] = set()
        for error in validator.iter_errors(dict(arguments)):
            bad.add(str(error.path[0]) if error.path else "")
        return bad

    def sentences(self) -> list[str]:
        """The language model's training text: lower-case sentences. An example without
        slots is repeated so that it weighs at least `_MIN_COPIES` sentences, like an example
        whose slots expand into many (counts are what a language model learns from)."""
        out: list[str] = []
        for tool in self.tools.values():
            for example in tool.examples:
                filled = list(_fill_example(tool, example))
                if not filled:
                    continue
                out += filled * max(1, -(-_MIN_COPIES // len(filled)))
                # Politeness around the fillings, one per word it touches: "... one oh oh
                # three for me" needs "three" before "for me" somewhere.
                for sentence in _by_edge_word(filled, -1):
                    out += [f"{sentence} {suffix}" for suffix in _SUFFIXES]
                for sentence in _by_edge_word(filled, 0):
                    out += [f"{prefix} {sentence}" for prefix in _PREFIXES]
        out += ["okay", "yes", "no"]
        return out

    def understand(self, text: str, *, today: date | None = None) -> Understanding:
        """The tool ``text`` asks for, with the arguments it says (see the module docstring)."""
        words = tokenize(text)
        if not words:
            return Understanding(None)
        best = Understanding(None)
        for tool in self.tools.values():
            found = find_slots(tool, words, text, today=today)
            marked = _mark(words, found)
            score = self._scorer.score(tool, marked)
            if score > best.score:
                arguments = {name: value for name, (value, _, _) in found.items()}
                arguments |= _text_slots(tool, words, found)
                best = Understanding(tool.name, arguments, score)
        if best.score < MIN_SCORE:
            return Understanding(None, score=best.score)
        return best

    def misshapen(self, meaning: Understanding) -> bool:
        """Whether an identifier of ``meaning`` has a number of digits none of its schema's
        examples has (`Slot.lengths`; a slot without digit examples is never misshapen)."""
        tool = self.tools.get(meaning.name or "")
        for slot in tool.slots if tool is not None else ():
            value = meaning.arguments.get(slot.name)
            if (
                slot.kind == "id"
                and slot.lengths
                and isinstance(value, str)
                and sum(c.isdigit() for c in value) not in slot.lengths
            ):
                return True
        return False

    def sample(self, name: str) -> str:
        """One way to ask for tool ``name`` (its first example, slots filled), for help."""
        tool = self.tools.get(name)
        for example in tool.examples if tool is not None else ():
            for sentence in _fill_example(tool, example):  # type: ignore[arg-type]
                return sentence
        return ""

    def fill(self, name: str, slot: str, text: str, *, today: date | None = None) -> Any:
        """The value of ``slot`` of tool ``name`` in ``text`` (an answer to "what's the
        ...?"), or None when it says none."""
        tool = self.tools.get(name)
        target = tool.slot(slot) if tool is not None else None
        if tool is None or target is None:
            return None
        words = tokenize(text)
        found = find_slots(tool, words, text, today=today)
        if slot in found:
            return found[slot][0]
        if target.kind == "text" and words:
            return " ".join(w for w in words if w not in _FILLER) or None
        return None


def _validator(schema: Mapping[str, Any]) -> Any:
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def describe_spec(spec: ToolSpec) -> ToolDescription:
    """A tool spec as backends receive it (``BackendOptions.tools``)."""
    return ToolDescription(
        spec.name,
        spec.description,
        dict(spec.parameters),
        examples=spec.examples,
        answer=spec.answer,
        keywords=spec.keywords,
    )


def builtin_sentences() -> list[str]:
    """The training text for the built-in tools: the recogniser's default model."""
    from sonicwire.server.tools.builtin import GET_DATE_TIME, TRACK_ORDER

    return ToolModel([describe_spec(GET_DATE_TIME), describe_spec(TRACK_ORDER)]).sentences()


# --- learning a tool ---------------------------------------------------------------------------


def _learn(tool: ToolDescription) -> LearntTool:
    schema = tool.parameters if isinstance(tool.parameters, Mapping) else {}
    properties = schema.get("properties") if isinstance(schema.get("properties"), Mapping) else {}
    assert isinstance(properties, Mapping)
    required = set(schema.get("required") or ())
    slots = tuple(
        _slot(name, prop if isinstance(prop, Mapping) else {}, name in required)
        for name, prop in properties.items()
    )
    examples = [_example_tokens(e) for e in tool.examples]
    examples += [tuple(tokenize(k)) for k in tool.keywords]
    if not examples:
        # A tool without examples is still reachable: by the words of its name and description.
        examples = [tuple(tokenize(re.sub(r"[_\-]+", " ", tool.name)))]
        if tool.description:
            examples.append(tuple(tokenize(tool.description.split(".")[0]))[:12])
    return LearntTool(
        tool.name,
        slots,
        tuple(e for e in examples if e),
        tool.answer,
        dict(schema),
    )


def _example_tokens(example: str) -> tuple[str, ...]:
    out: list[str] = []
    for index, part in enumerate(_SLOT_MARK.split(example)):
        if index % 2:
            out.append("{" + part + "}")
        else:
            out += tokenize(part)
    return tuple(out)


def _slot(name: str, prop: Mapping[str, Any], required: bool) -> Slot:
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


def _slot_values(slot: Slot) -> list[str]:
    """Spoken values a slot is trained with."""
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


def _by_edge_word(sentences: Sequence[str], index: int) -> list[str]:
    """The first sentence for each distinct first (``index`` 0) or last (-1) word."""
    seen: dict[str, str] = {}
    for sentence in sentences:
        seen.setdefault(sentence.split()[index], sentence)
        if len(seen) >= _WRAPPED:
            break
    return list(seen.values())


def _fill_example(tool: LearntTool, example: tuple[str, ...]) -> Iterable[str]:
    names = [w[1:-1] for w in example if w.startswith("{")]
    if not names:
        yield " ".join(example)
        return
    values = {name: _slot_values(slot) if (slot := tool.slot(name)) else [] for name in names}
    if any(not v for v in values.values()):
        return  # a free-text slot: its words cannot be foreseen
    count = max(len(v) for v in values.values())
    for i in range(count):  # every value once; several slots cycle together
        yield " ".join(values[w[1:-1]][i % len(values[w[1:-1]])] if w.startswith("{") else w
                       for w in example)  # fmt: skip


# --- finding slot values -----------------------------------------------------------------------

_TYPED_ID = re.compile(r"#?(?:[A-Za-z]+-?)?\d[A-Za-z0-9-]*")
_MIN_SPOKEN_ID_DIGITS = 3


def find_slots(
    tool: LearntTool, words: Sequence[str], text: str = "", *, today: date | None = None
) -> dict[str, tuple[Any, int, int]]:
    """``{slot: (value, start, end)}`` for the slots of ``tool`` said in ``words``
    (``words[start:end]`` said it; typed values have an empty span)."""
    found: dict[str, tuple[Any, int, int]] = {}
    taken: set[int] = set()
    for slot in tool.slots:
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


def _text_slots(
    tool: LearntTool, words: Sequence[str], found: Mapping[str, tuple[Any, int, int]]
) -> dict[str, Any]:
    """Free-text slots: the words where the slot stands in the example that shares the
    most context with the utterance ("book a table for {name}": the words after "for")."""
    out: dict[str, Any] = {}
    for slot in tool.slots:
        if slot.kind != "text" or slot.name in found:
            continue
        mark = "{" + slot.name + "}"
        for example in tool.examples:
            if mark not in example:
                continue
            at = example.index(mark)
            before = example[at - 1] if at > 0 else None
            after = example[at + 1] if at + 1 < len(example) else None
            if before is None or before not in words:
                continue
            start = len(words) - 1 - list(reversed(words)).index(before) + 1
            end = words.index(after, start) if after in words[start:] else len(words)
            value = [w for w in words[start:end] if w not in _FILLER]
            if value:
                out[slot.name] = " ".join(value)
                break
    return out


def _mark(words: Sequence[str], found: Mapping[str, tuple[Any, int, int]]) -> list[str]:
    """The utterance with each found value's words replaced by its slot's mark."""
    out = list(words)
    spans = sorted(((s, e, n) for n, (_, s, e) in found.items()), reverse=True)
    for start, end, name in spans:
        out[start:end] = ["{" + name + "}"]
    for name, (_, start, end) in found.items():
        if start == end:  # a typed value: no words to replace
            out.append("{" + name + "}")
    return out


# --- similarity ---------------------------------------------------------------------------------


class _Scorer:
    """Weighted word-overlap (F1) between an utterance and a tool's examples.

    A word's weight is how specific it is to few tools (inverse document frequency over the
    tools: "weather" points at one tool, "what's" at all of them); fillers weigh almost
    nothing, a found slot a lot. The score is the best example's F1, nudged up by how much of
    the utterance the tool's whole vocabulary explains (so a new phrasing that uses the tool's
    words in another order still scores).
    """

    def __init__(self, tools: Iterable[LearntTool]) -> None:
        tools = list(tools)
        self._vocab = {t.name: {w for e in t.examples for w in e} for t in tools}
        df: dict[str, int] = {}
        for words in self._vocab.values():
            for word in words:
                df[word] = df.get(word, 0) + 1
        n = len(tools)
        self._idf = {w: math.log(1 + n / d) for w, d in df.items()}
        self._unknown = math.log(1 + 2 * n)
        self._examples = {t.name: [set(e) for e in t.examples] for t in tools}

    def weight(self, word: str) -> float:
        if word.startswith("{"):
            return _SLOT_WEIGHT
        if word in _FILLER:
            return _FILLER_WEIGHT
        if word in _FUNCTION:
            return _FUNCTION_WEIGHT
        return self._idf.get(word, self._unknown)

    def score(self, tool: LearntTool, words: Sequence[str]) -> float:
        said = set(words)
        said_weight = sum(self.weight(w) for w in said)
        if not said_weight:
            return 0.0
        vocab = self._vocab[tool.name]
        explained = sum(self.weight(w) for w in said & vocab)
        if explained < _MIN_EVIDENCE:
            return 0.0  # a stray "can" or "the" (what noise is often heard as) is no request
        coverage = explained / said_weight
        best = 0.0
        for example in self._examples[tool.name]:
            common = sum(self.weight(w) for w in said & example)
            if not common:
                continue
            precision = common / said_weight
            recall = common / sum(self.weight(w) for w in example)
            best = max(best, 2 * precision * recall / (precision + recall))
        return 0.7 * best + 0.3 * coverage
