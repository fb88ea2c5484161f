"""How similar an utterance is to a tool's examples (pure, no I/O, no clock).

Apart from `toolmodel` because the weighting (which words say which tool is meant) is tuned
on its own (bench/local_eval.py) and needs nothing of how tools are learnt but their examples.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from .words import FILLER_WORDS

__all__ = ["Scorer"]

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
# A found slot value is strong evidence for the tools whose examples have that slot.
_SLOT_WEIGHT = 2.5


class Scorer:
    """Weighted word-overlap (F1) between an utterance and a tool's examples.

    A word's weight is how specific it is to few tools (inverse document frequency over the
    tools: "weather" points at one tool, "what's" at all of them); fillers weigh almost
    nothing, a found slot (its mark, "{city}") a lot. The score is the best example's F1,
    nudged up by how much of the utterance the tool's whole vocabulary explains (so a new
    phrasing that uses the tool's words in another order still scores).
    """

    def __init__(self, examples: Mapping[str, Sequence[Sequence[str]]]) -> None:
        """``examples``: each tool's (or small-talk intent's) examples as word tokens."""
        self._vocab = {name: {w for e in said for w in e} for name, said in examples.items()}
        df: dict[str, int] = {}
        for words in self._vocab.values():
            for word in words:
                df[word] = df.get(word, 0) + 1
        n = len(examples)
        self._idf = {w: math.log(1 + n / d) for w, d in df.items()}
        self._unknown = math.log(1 + 2 * n)
        self._examples = {name: [set(e) for e in said] for name, said in examples.items()}

    def weight(self, word: str) -> float:
        if word.startswith("{"):
            return _SLOT_WEIGHT
        if word in FILLER_WORDS:
            return _FILLER_WEIGHT
        if word in _FUNCTION:
            return _FUNCTION_WEIGHT
        return self._idf.get(word, self._unknown)

    def score(self, name: str, words: Sequence[str]) -> float:
        """How similar ``words`` (found slot values marked) are to tool ``name``'s examples."""
        said = set(words)
        said_weight = sum(self.weight(w) for w in said)
        if not said_weight:
            return 0.0
        vocab = self._vocab[name]
        explained = sum(self.weight(w) for w in said & vocab)
        if explained < _MIN_EVIDENCE:
            return 0.0  # a stray "can" or "the" (what noise is often heard as) is no request
        coverage = explained / said_weight
        best = 0.0
        for example in self._examples[name]:
            common = sum(self.weight(w) for w in said & example)
            if not common:
                continue
            precision = common / said_weight
            recall = common / sum(self.weight(w) for w in example)
            best = max(best, 2 * precision * recall / (precision + recall))
        return 0.7 * best + 0.3 * coverage
