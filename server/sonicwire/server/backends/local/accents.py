"""Pronunciation variants for accents the en-US dictionary does not foresee (pure).

pocketsphinx's dictionary (CMUdict) is rhotic American English: "order" is ``AO R D ER``. A
non-rhotic speaker (most of England, the Caribbean, Australia) says ``AO D AH``: no R after a
vowel unless another vowel follows, and "-er" as a schwa. The dictionary has no stress marks,
so every ``ER`` becomes ``AH``, a stressed one ("her", "bird") too. `non_rhotic` derives that
reading of a pronunciation by rule, and `with_variants` adds it to a dictionary's entries as
another pronunciation of the word ("order(2)"), so the decoder may pick either.

Whether the session dictionaries carry them is `stt.ACCENT_VARIANTS`, decided on the
development set (bench/local_dev_decoder.py, docs/LOCAL_ENGINE.md).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence

__all__ = ["non_rhotic", "with_variants"]

# ARPAbet vowels as pocketsphinx's en-US dictionary writes them (no stress marks).
_VOWELS = frozenset(
    {"AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"}
)


def non_rhotic(phones: Sequence[str]) -> tuple[str, ...]:
    """``phones`` as a non-rhotic speaker says them: ``ER`` -> ``AH``; ``R`` after a vowel
    dropped unless a vowel follows it ("for" F AO R -> F AO, "tomorrow" keeps its R)."""
    out: list[str] = []
    for index, phone in enumerate(phones):
        if phone == "ER":
            out.append("AH")
            continue
        if phone == "R" and index > 0 and phones[index - 1] in _VOWELS:
            following = phones[index + 1] if index + 1 < len(phones) else None
            if following not in _VOWELS:
                continue
        out.append(phone)
    return tuple(out)


def with_variants(entries: Iterable[str], only: Collection[str] | None = None) -> list[str]:
    """Dictionary lines (``word phone phone ...``, variants as ``word(2)``) with each word's
    non-rhotic pronunciations added after its own, numbered on from the word's last variant;
    a pronunciation the word already has is not added again. ``only``: the words that get
    them (e.g. the tools' slot values); None: every word."""
    words: dict[str, list[tuple[str, ...]]] = {}
    for line in entries:
        parts = line.split()
        if parts:
            words.setdefault(parts[0].split("(", 1)[0], []).append(tuple(parts[1:]))
    out: list[str] = []
    for word, pronunciations in words.items():
        known = list(pronunciations)
        for phones in pronunciations if only is None or word in only else ():
            variant = non_rhotic(phones)
            if variant and variant not in known:
                known.append(variant)
        for number, phones in enumerate(known, start=1):
            name = word if number == 1 else f"{word}({number})"
            out.append(f"{name} {' '.join(phones)}\n")
    return out
