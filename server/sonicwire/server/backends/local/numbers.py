"""Numbers between words and digits, both ways.

Speech recognisers write numbers as words, and people say order numbers in many ways:
"one zero zero one", "ten oh one", "one double oh one", "one thousand and one". `parse_number`
reads all of these back into digits. The other direction (`say_number`, `say_digits`,
`say_ordinal`) writes the words the synthesiser speaks, so replies are pronounced the way the
recogniser and the user expect rather than the way a phonemiser happens to expand "1001".

Pure functions, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = [
    "DIGIT_WORDS",
    "NUMBER_WORDS",
    "number_spans",
    "parse_number",
    "parse_numbers",
    "say_digits",
    "say_number",
    "say_ordinal",
    "spoken_id_forms",
]

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_TEENS = (
    "ten", "eleven", "twelve", "thirteen", "fourteen",
    "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
)  # fmt: skip
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")

_DIGIT_VALUE = {word: i for i, word in enumerate(DIGIT_WORDS)} | {"oh": 0, "o": 0, "nought": 0}
_TEEN_VALUE = {word: 10 + i for i, word in enumerate(_TEENS)}
_TENS_VALUE = {word: 10 * i for i, word in enumerate(_TENS) if word}
_SCALES = {"hundred": 100, "thousand": 1000}
# "a thousand and one": "a" and "and" only count inside a number.
_JOINERS = frozenset({"and", "a"})

#: Every word `parse_number` understands (the recogniser's vocabulary needs them).
NUMBER_WORDS = frozenset(
    [*_DIGIT_VALUE, *_TEEN_VALUE, *_TENS_VALUE, *_SCALES, "double", "triple", "and"]
)

_ORDINALS = {
    "one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
    "nine": "ninth", "twelve": "twelfth",
}  # fmt: skip


def _is_number_word(word: str) -> bool:
    return word in NUMBER_WORDS or word.isdigit()


def parse_number(words: Sequence[str]) -> str | None:
    """Read one spoken number from ``words`` (lower-case tokens) as a digit string.

    The first run of number words is used; joiners ("and", "a") only count between number
    words. Returns None when there is no number.

    Two readings are supported:
    - cardinal, when the run has "hundred" or "thousand": "one thousand and three" -> "1003",
      "twelve hundred" -> "1200";
    - digit by digit otherwise, where each word contributes its digits: "one zero zero one" and
      "ten oh one" -> "1001", "one double oh two" -> "1002", "twenty twenty five" -> "2025".
    Digits typed as digits ("1001") pass through.
    """
    numbers = parse_numbers(words)
    return numbers[0] if numbers else None


def parse_numbers(words: Sequence[str]) -> list[str]:
    """Every spoken number in ``words``, in order (see `parse_number` for the readings)."""
    return [number for _, _, number in number_spans(words)]


def number_spans(words: Sequence[str]) -> list[tuple[int, int, str]]:
    """Every spoken number in ``words`` as ``(start, end, digits)``: ``words[start:end]``
    says ``digits``."""
    out: list[tuple[int, int, str]] = []
    for start, end, run in _runs(words):
        number = _cardinal(run) if any(w in _SCALES for w in run) else _digit_by_digit(run)
        if number is not None:
            out.append((start, end, number))
    return out


def _runs(words: Sequence[str]) -> list[tuple[int, int, list[str]]]:
    runs: list[tuple[int, int, list[str]]] = []
    run: list[str] = []
    start = 0
    for i, word in enumerate(words):
        if _is_number_word(word) and word not in _JOINERS:
            if not run:
                start = i
            run.append(word)
        elif run and word in _JOINERS and i + 1 < len(words) and _is_number_word(words[i + 1]):
            continue  # "one thousand and one": the joiner belongs to the number
        elif run:
            runs.append((start, i, run))
            run = []
    if run:
        runs.append((start, len(words), run))
    return runs


def _cardinal(run: list[str]) -> str | None:
    total = 0
    current = 0
    for word in run:
        if word in _SCALES:
            scale = _SCALES[word]
            current = max(current, 1) * scale
            if scale == 1000:
                total += current
                current = 0
        elif word.isdigit():
            current += int(word)
        elif word in _DIGIT_VALUE:
            current += _DIGIT_VALUE[word]
        elif word in _TEEN_VALUE:
            current += _TEEN_VALUE[word]
        elif word in _TENS_VALUE:
            current += _TENS_VALUE[word]
        else:  # "double"/"triple" make no sense in a cardinal: not a number we can read
            return None
    return str(total + current)


def _digit_by_digit(run: list[str]) -> str | None:
    digits: list[str] = []
    repeat = 1
    i = 0
    while i < len(run):
        word = run[i]
        if word in ("double", "triple"):
            repeat = 2 if word == "double" else 3
            i += 1
            continue
        if word.isdigit():
            part = word
        elif word in _DIGIT_VALUE:
            part = str(_DIGIT_VALUE[word])
        elif word in _TEEN_VALUE:
            part = str(_TEEN_VALUE[word])
        else:  # a tens word, maybe followed by a unit: "twenty five" -> "25", "twenty" -> "20"
            tens = _TENS_VALUE[word]
            nxt = run[i + 1] if i + 1 < len(run) else ""
            if nxt in _DIGIT_VALUE and _DIGIT_VALUE[nxt] > 0 and nxt not in ("oh", "o"):
                part = str(tens + _DIGIT_VALUE[nxt])
                i += 1
            else:
                part = str(tens)
        digits.append(part * repeat)
        repeat = 1
        i += 1
    return "".join(digits) or None


def say_number(n: int) -> str:
    """Words for ``0 <= n < 1_000_000``: 47 -> "forty-seven", 1003 -> "one thousand three"."""
    if not 0 <= n < 1_000_000:
        raise ValueError(f"{n} is out of range")
    if n < 10:
        return DIGIT_WORDS[n]
    if n < 20:
        return _TEENS[n - 10]
    if n < 100:
        tens, unit = divmod(n, 10)
        return _TENS[tens] + (f"-{DIGIT_WORDS[unit]}" if unit else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return f"{DIGIT_WORDS[hundreds]} hundred" + (f" {say_number(rest)}" if rest else "")
    thousands, rest = divmod(n, 1000)
    return f"{say_number(thousands)} thousand" + (f" {say_number(rest)}" if rest else "")


def say_ordinal(n: int) -> str:
    """Ordinal words: 1 -> "first", 22 -> "twenty-second", 30 -> "thirtieth"."""
    words = say_number(n)
    head, sep, last = words.rpartition("-") if "-" in words else ("", "", words)
    if " " in last:
        head, sep, last = words.rpartition(" ")
    if last in _ORDINALS:
        last = _ORDINALS[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return f"{head}{sep}{last}"


_NON_DIGIT = re.compile(r"\D")


def say_digits(text: str) -> str:
    """Digits one by one, other characters dropped: "1001" -> "one zero zero one"."""
    return " ".join(DIGIT_WORDS[int(d)] for d in _NON_DIGIT.sub("", text))


def spoken_id_forms(number: int) -> list[str]:
    """Ways to say an identifier: 1001 -> "one zero zero one", "one oh oh one",
    "ten oh one", "one thousand and one", "one thousand one"."""
    digits = str(number)
    forms = [
        " ".join(DIGIT_WORDS[int(d)] for d in digits),
        " ".join("oh" if d == "0" else DIGIT_WORDS[int(d)] for d in digits),
    ]
    if len(digits) == 4:
        head, tail = int(digits[:2]), int(digits[2:])
        if tail:
            said_tail = f"oh {DIGIT_WORDS[tail]}" if tail < 10 else say_number(tail)
            forms.append(f"{say_number(head)} {said_tail}".replace("-", " "))
        if digits[1] == "0":
            cardinal = say_number(number).replace("-", " ")
            forms.append(cardinal)
            if " thousand " in cardinal:
                forms.append(cardinal.replace(" thousand ", " thousand and "))
    return forms
