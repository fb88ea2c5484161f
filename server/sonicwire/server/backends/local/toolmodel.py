"""What the offline engine learns from a session's tools (pure, no I/O, no clock).

Every tool describes how people ask for it (``ToolSpec.examples``: "what's the weather in
{city}", slots named after the schema's properties) and the schema says what each argument
is. `ToolModel` compiles that, once per set of tools, into:

- **training text** for the recogniser's language model (`ToolModel.sentences`): every
  example with its slots filled by values of the slot's class (`slots.spoken_values`: spoken
  numbers and identifiers in every reading, dates, times, the schema's ``enum`` /
  ``examples`` values), plus politeness around them and the assistant's own small talk;
- **an understanding** of one utterance (`ToolModel.understand`): each slot's value is found
  by its class (`slots.find_slots`), the found values are replaced by their slot name, and
  the tool whose examples are most similar (`similarity.Scorer`) wins, if it is similar
  enough; otherwise the utterance is not understood.

The slot classes (choice, id, integer, date, time, boolean, text) are described in `slots`.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import jsonschema
import jsonschema.validators

from sonicwire.server.backends.base import ToolDescription
from sonicwire.server.tools.spec import ToolSpec

from .similarity import Scorer
from .slots import Slot, find_slots, mark_slots, slot_from_schema, spoken_values, text_slots
from .words import FILLER_WORDS, tokenize

__all__ = [
    "CHAT_INTENTS",
    "MIN_SCORE",
    "POLITE_WORDS",
    "LearntTool",
    "ToolModel",
    "Understanding",
    "builtin_sentences",
    "describe_spec",
]

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
# nothing when comparing an utterance with the examples (`words.FILLER_WORDS`).
_PREFIXES = ("please", "can you", "could you", "hey")
_SUFFIXES = ("please", "for me", "thanks")
#: The words of that politeness: learnt around every tool's examples.
POLITE_WORDS = frozenset(w for phrase in (*_PREFIXES, *_SUFFIXES) for w in phrase.split())
# Training copies of an example at least (see ToolModel.sentences), and fillings of it that
# get politeness around them at most.
_MIN_COPIES = 8
_WRAPPED = 24
#: Below this similarity the utterance is "not understood" (chosen on the in-training
#: commands of bench/local_eval.py, never on its held-out phrasings).
MIN_SCORE = 0.34


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
        self._scorer = Scorer({t.name: t.examples for t in self.tools.values()})
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

    def slot_words(self, kinds: Collection[str]) -> frozenset[str]:
        """The words of the values the tools' slots of ``kinds`` are trained with (choice:
        the schema's ``enum``/``examples``, e.g. city names; id: digit words; ...), for
        pronunciation variants of slot values only (`stt.SpeechRecognizer.add_language_model`'s
        ``accent_words``)."""
        return frozenset(
            word
            for tool in self.tools.values()
            for slot in tool.slots
            if slot.kind in kinds
            for value in spoken_values(slot)
            for word in value.split()
        )

    def similarities(self, text: str, *, today: date | None = None) -> dict[str, float]:
        """How like each tool's examples ``text`` is (`understand`'s score per tool, small
        talk included; 0 for every tool when it has no words)."""
        words = tokenize(text)
        out: dict[str, float] = {}
        for tool in self.tools.values():
            if not words:
                out[tool.name] = 0.0
                continue
            found = find_slots(tool.slots, words, text, today=today)
            out[tool.name] = self._scorer.score(tool.name, mark_slots(words, found))
        return out

    def understand(self, text: str, *, today: date | None = None) -> Understanding:
        """The tool ``text`` asks for, with the arguments it says (see the module docstring)."""
        words = tokenize(text)
        if not words:
            return Understanding(None)
        best = Understanding(None)
        for tool in self.tools.values():
            found = find_slots(tool.slots, words, text, today=today)
            marked = mark_slots(words, found)
            score = self._scorer.score(tool.name, marked)
            if score > best.score:
                arguments = {name: value for name, (value, _, _) in found.items()}
                arguments |= text_slots(tool.slots, tool.examples, words, found)
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
        found = find_slots(tool.slots, words, text, today=today)
        if slot in found:
            return found[slot][0]
        if target.kind == "text" and words:
            return " ".join(w for w in words if w not in FILLER_WORDS) or None
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


# --- learning a tool, and its training text ---------------------------------------------------


def _learn(tool: ToolDescription) -> LearntTool:
    schema = tool.parameters if isinstance(tool.parameters, Mapping) else {}
    properties = schema.get("properties") if isinstance(schema.get("properties"), Mapping) else {}
    assert isinstance(properties, Mapping)
    required = set(schema.get("required") or ())
    slots = tuple(
        slot_from_schema(name, prop if isinstance(prop, Mapping) else {}, name in required)
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
    values = {name: spoken_values(slot) if (slot := tool.slot(name)) else [] for name in names}
    if any(not v for v in values.values()):
        return  # a free-text slot: its words cannot be foreseen
    count = max(len(v) for v in values.values())
    for i in range(count):  # every value once; several slots cycle together
        yield " ".join(values[w[1:-1]][i % len(values[w[1:-1]])] if w.startswith("{") else w
                       for w in example)  # fmt: skip
