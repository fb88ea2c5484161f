"""Fixed text for the recognisers: the reply sentences, and the common-word background.

Tests and the benchmark check what the assistant *said* by recognising its audio; a general
model heard 32 of 120 spoken times wrong ("one oh five" -> "won all five"). `reply_sentences`
is the training text of a small model for that check (``harness.load_reply_recognizer``). What
users say is not here: the engine learns it from the session's tools (``toolmodel.py``).
"""

from __future__ import annotations

import calendar
from datetime import time
from pathlib import Path

from .numbers import DIGIT_WORDS, say_number, say_ordinal
from .saying import say_time

__all__ = ["background_sentences", "reply_sentences"]

#: The 1,000 most frequent words of pocketsphinx's general en-US model (by unigram
#: probability in its ``en-us.lm.bin``; lower-case words only), one per line.
_COMMON_WORDS = Path(__file__).parent / "data" / "common_words.txt"
#: How often each common word is in the training text: enough probability mass (about 8%)
#: that speech outside the commands is heard as ordinary words rather than forced into
#: command words (chosen on the tuning voices, see docs/LOCAL_ENGINE.md).
_BACKGROUND_REPEATS = 3


def background_sentences() -> list[str]:
    """Common English words, each a one-word sentence, repeated: mixed into every command
    language model, they let the recogniser hear words no tool example has ("been", "yet")
    and hear out-of-domain speech as what it is, so the dialogue can reject it."""
    words = _COMMON_WORDS.read_text(encoding="utf-8").split()
    return words * _BACKGROUND_REPEATS


# How the reply recogniser spells what piper spells out letter by letter.
_CARRIERS = ("u p s", "fedex", "d h l", "u s p s")


def reply_sentences() -> list[str]:
    """What the assistant says, as a recogniser writes it: the training text of a model that
    checks replies (tests, benchmark). Its vocabulary is the replies', so a wrong minute or
    order number is still a wrong word, but "won all five" cannot stand in for "one oh five".
    """
    out: list[str] = []
    for hour in range(24):
        for minute in range(60):
            spoken = say_time(time(hour, minute))[1].lower().replace("-", " ")
            out += [
                f"it's {spoken}",
                f"it's {spoken.replace(' am', ' a m').replace(' pm', ' p m')}",
            ]
    days = [day.lower() for day in calendar.day_name]
    months = [month.lower() for month in calendar.month_name[1:]]
    dates = [f"{d} {m} {say_ordinal(n).replace('-', ' ')}" for d in days for m in months
             for n in range(1, 32)]  # fmt: skip
    years = [f"twenty {say_number(y).replace('-', ' ')}" for y in range(20, 40)]
    out += [f"today is {date} {year}" for date in dates[:: len(days)] for year in years[:4]]
    out += [f"today is {date}" for date in dates]
    out += [f"it should arrive on {date}" for date in dates]
    out += [f"the carrier is {c}" for c in _CARRIERS]
    out += [f"it was delivered on {date}" for date in dates]
    ids = [" ".join(DIGIT_WORDS[int(d)] for d in str(n)) for n in range(1000, 1100)]
    for order in ids:
        out += [f"order {order} is {status}" for status in (
            "shipped", "out for delivery", "processing", "delivered", "cancelled", "returned",
        )]  # fmt: skip
        out += [f"there is no order with the number {order}"]
    out += [
        "sorry i didn't catch that", "hello how can i help", "sure what's the order number",
        "you're welcome", "goodbye", "i can help with questions like these",
        "sorry track order didn't work", "sorry get date time didn't work",
    ]  # fmt: skip
    return out
