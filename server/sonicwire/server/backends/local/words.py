"""How the offline engine reads text: lower-case word tokens, and the words that say nothing.

Kept apart from `toolmodel` because everything that reads an utterance needs it (the dialogue,
the end-of-turn guess in `endpoint`, the re-read in `reread`, slot finding in `slots`,
similarity in `similarity`) while only the tool model needs the rest of `toolmodel`.
"""

from __future__ import annotations

import re

__all__ = ["FILLER_WORDS", "tokenize"]

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")

#: Words people wrap requests in or hesitate with: they weigh almost nothing when comparing
#: an utterance with a tool's examples, and are never part of a free-text argument.
FILLER_WORDS = frozenset({"please", "can", "could", "you", "for", "me", "hey", "oh", "um",
                          "uh", "the", "a", "so", "now", "just", "okay", "well"})  # fmt: skip


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens; apostrophes stay inside words ("what's")."""
    return _TOKEN.findall(text.lower().replace("\u2019", "'"))
