"""What users say to the local assistant: the text its recogniser's language model learns from.

A general English model (pocketsphinx's default) hears a few hundred thousand words, and it
mishears short commands in unfamiliar voices ("what time is it" -> "well i"). A small model
trained on the sentences below only expects what the dialogue understands, which measured far
better on the command set and decodes about four times faster (docs/LOCAL_ENGINE.md has the
numbers). The sentences follow the intents of `dialogue` and the number readings of `numbers`;
when the dialogue learns something new, teach it here too.

Pure: `training_sentences` returns lower-case sentences of dictionary words.
"""

from __future__ import annotations

import calendar
from datetime import time

from .dialogue import PLACES, say_time
from .numbers import DIGIT_WORDS, say_number, say_ordinal

__all__ = ["reply_sentences", "spoken_order_ids", "training_sentences"]

_TIME = (
    "what time is it", "what's the time", "what is the time", "tell me the time",
    "do you know what time it is", "can you tell me the time", "what time is it now",
    "what's the time right now", "do you have the time", "the time please", "current time",
    "what's the current time", "what time do you have",
)  # fmt: skip
_TIME_IN = ("what time is it in {}", "what's the time in {}", "what is the time in {}",
            "time in {}", "tell me the time in {}")  # fmt: skip
_DATE = (
    "what's the date", "what is the date", "what's the date today", "what is today's date",
    "what's today's date", "what day is it", "what day is it today", "what day of the week is it",
    "which day is it", "what's the day today", "tell me the date", "what is the date today",
    "what month is it", "what year is it", "what's today",
)  # fmt: skip
_ORDER_WITH_ID = (
    "where is my order {}", "where's my order {}", "track order {}", "track my order {}",
    "what's the status of order {}", "what is the status of order {}", "check order {}",
    "check on my order {}", "can you check on my order {}", "has my order {} shipped",
    "when will my order {} arrive", "order {}", "order number {}", "my order number is {}",
    "it's {}", "it is {}", "{}", "status of my order {}", "track my package {}",
    "where is my package {}", "can you track order {}", "i want to track order {}",
    "where is order {}", "the order number is {}",
)  # fmt: skip
_ORDER = (
    "where is my order", "where's my order", "track my order", "track my package",
    "where is my package", "i want to track my order", "check my order status", "order status",
    "has my order shipped", "where is my delivery", "track a package",
)  # fmt: skip
_OTHER = (
    "hello", "hi", "hey", "hi there", "hello there", "good morning", "good afternoon",
    "good evening", "hey there", "howdy", "help", "what can you do", "what can i ask you",
    "what can you help me with", "how can you help", "what do you do", "help me",
    "what are you", "who are you", "thank you", "thanks", "thanks a lot", "goodbye", "bye",
    "okay", "yes", "no",
)  # fmt: skip


def spoken_order_ids(number: int) -> list[str]:
    """Ways to say an order number: 1001 -> "one zero zero one", "one oh oh one",
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


def _order_numbers() -> list[int]:
    # The demo orders (1001-1010) and a deterministic spread over other four-digit numbers, so
    # every digit follows every other somewhere and unseen ids are still easy to say.
    return [*range(1000, 1011), *(1000 + (137 * k) % 9000 for k in range(1, 40))]


# People wrap requests in politeness; the model should expect that around any request.
_PREFIXES = ("please", "can you", "could you", "hey")
_SUFFIXES = ("please", "for me", "thanks")


def training_sentences() -> list[str]:
    """The language model's training text: one lower-case sentence per item."""
    requests = [*_TIME, *_DATE, *_ORDER]
    out = [*requests, *_OTHER]
    out += [f"{prefix} {r}" for prefix in _PREFIXES for r in requests]
    out += [f"{r} {suffix}" for suffix in _SUFFIXES for r in requests]
    places = [place for place in PLACES if place != "utc"]
    out += [template.format(place) for template in _TIME_IN for place in places]
    ids = [form for number in _order_numbers() for form in spoken_order_ids(number)]
    out += [template.format(form).strip() for template in _ORDER_WITH_ID for form in ids]
    demo_ids = [form for number in range(1000, 1011) for form in spoken_order_ids(number)]
    out += [
        f"{wrap} order {form}" for wrap in ("please track", "can you track") for form in demo_ids
    ]
    out += [f"track order {form} {suffix}" for suffix in _SUFFIXES for form in demo_ids]
    return out


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
    places = [place for place in PLACES if place != "utc"]
    out += [f"it's {say_number(h)} {say_number(m).replace('-', ' ')} pm in {place}"
            for place in places for h in (1, 12) for m in (15, 45)]  # fmt: skip
    days = [day.lower() for day in calendar.day_name]
    months = [month.lower() for month in calendar.month_name[1:]]
    dates = [f"{d} {m} {say_ordinal(n).replace('-', ' ')}" for d in days for m in months
             for n in range(1, 32)]  # fmt: skip
    years = [f"twenty {say_number(y).replace('-', ' ')}" for y in range(20, 40)]
    out += [f"today is {date} {year}" for date in dates[:: len(days)] for year in years[:4]]
    out += [f"today is {date}" for date in dates]
    out += [f"it should arrive on {date}" for date in dates]
    out += [f"it's with {c} and should arrive on {d}" for c in _CARRIERS for d in dates]
    out += [f"it's with {c}" for c in _CARRIERS]
    out += [f"it arrived on {date}" for date in dates]
    ids = [" ".join(DIGIT_WORDS[int(d)] for d in str(n)) for n in range(1000, 1100)]
    for order in ids:
        out += [f"order {order} {status}" for status in (
            "has shipped", "is out for delivery", "is being prepared", "was delivered",
            "was cancelled", "was returned",
        )]  # fmt: skip
        out += [f"i couldn't find an order with the number {order}",
                f"sorry i couldn't look up order {order}"]  # fmt: skip
    out += [
        "sorry i didn't catch that", "you can ask me for the time the date or where your order is",
        "hello how can i help", "sure what's your order number", "you're welcome", "goodbye",
        "i can tell you the time and the date and track your orders",
        "try what time is it in tokyo or where is my order one zero zero one",
        "sorry i can't check the clock", "sorry i can't look up orders",
    ]  # fmt: skip
    return out
