"""Values as the assistant shows and says them (pure).

Every reply sentence has two forms: ``text`` for the transcript ("It's 3:47 PM.") and
``spoken`` for the synthesiser ("It's three forty-seven PM."), written out so the voice says
numbers the way people (and the recogniser) expect rather than the way a phonemiser expands
"1001". `say_value` picks the reading from the value itself: an ISO date is a date, "15:47" a
time, a string of digits an identifier read digit by digit, an integer an amount.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time

from .numbers import say_digits, say_number, say_ordinal

__all__ = [
    "Line",
    "parse_date",
    "parse_time",
    "say_date",
    "say_id",
    "say_time",
    "say_value",
    "say_words",
]


@dataclass(frozen=True, slots=True)
class Line:
    """One sentence of a reply: ``text`` to show, ``spoken`` to synthesise."""

    text: str
    spoken: str

    @classmethod
    def plain(cls, text: str) -> Line:
        return cls(text, text)


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CLOCK = re.compile(r"^\d{1,2}:\d{2}(?::\d{2})?$")
_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
_DIGIT_RUN = re.compile(r"\d+")
_ID = re.compile(r"^#?[A-Za-z]*-?\d[A-Za-z0-9-]*$")


def say_time(moment: time) -> tuple[str, str]:
    """("3:47 PM", "three forty-seven PM") on a 12-hour clock, as US English speaks it."""
    hour = moment.hour % 12 or 12
    suffix = "AM" if moment.hour < 12 else "PM"
    minute = moment.minute
    if minute == 0:
        spoken_minute = " o'clock"
    elif minute < 10:
        spoken_minute = f" oh {say_number(minute)}"
    else:
        spoken_minute = f" {say_number(minute)}"
    return f"{hour}:{minute:02d} {suffix}", f"{say_number(hour)}{spoken_minute} {suffix}"


def say_date(day: date, *, year: bool = False) -> tuple[str, str]:
    """("Tuesday, May 5", "Tuesday, May fifth"), with ", 2026" / "twenty twenty-six"."""
    weekday, month = day.strftime("%A"), day.strftime("%B")
    text = f"{weekday}, {month} {day.day}"
    spoken = f"{weekday}, {month} {say_ordinal(day.day)}"
    if year:
        text += f", {day.year}"
        spoken += f", {_say_year(day.year)}"
    return text, spoken


def _say_year(year: int) -> str:
    century, rest = divmod(year, 100)
    if 2000 <= year < 2010 or not 1000 <= year < 10_000:
        return say_number(year)
    if rest == 0:
        return f"{say_number(century)} hundred"
    return f"{say_number(century)} {say_number(rest) if rest >= 10 else 'oh ' + say_number(rest)}"


def say_id(value: str) -> str:
    """An identifier digit by digit ("one zero zero one"): how people read order numbers
    back, and it cannot be misheard as an amount. Letters stay letters."""
    if value.isdigit():
        return say_digits(value)
    return " ".join(say_digits(c) if c.isdigit() else c for c in value.replace("-", " "))


def parse_time(value: object) -> time | None:
    """ "15:47", "3:47 PM", "15:47:12" -> a time; None when it is none of these."""
    if not isinstance(value, str):
        return None
    match = re.match(r"\s*(\d{1,2}):(\d{2})(?::\d{2})?\s*([ap]\.?m\.?)?", value, re.IGNORECASE)
    if not match:
        return None
    hour, minute = int(match[1]), int(match[2])
    meridiem = (match[3] or "").lower().replace(".", "")
    if meridiem == "pm" and hour < 12:
        hour += 12
    elif meridiem == "am" and hour == 12:
        hour = 0
    return time(hour, minute) if hour < 24 and minute < 60 else None


def parse_date(value: object) -> date | None:
    """An ISO date (or the date of an ISO datetime); None otherwise."""
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def say_value(value: object, style: str = "") -> tuple[str, str]:
    """(text, spoken) for one value of a tool result.

    ``style`` (a template field's format spec) forces a reading: ``date`` (with the year),
    ``time``, ``id`` (digit by digit), ``number``, ``text`` (as it is); otherwise it is
    chosen from the value.
    """
    if isinstance(value, bool):
        word = "yes" if value else "no"
        return word, word
    if isinstance(value, int) and style != "id":
        return str(value), (say_number(value) if 0 <= value < 1_000_000 else str(value))
    if isinstance(value, float):
        if value.is_integer():
            return say_value(int(value), style)
        return f"{value:g}", f"{value:g}".replace(".", " point ")
    text = str(value)
    if style == "text":
        return text, text
    if style == "id" or (style == "" and _ID.match(text) and len(_DIGIT_RUN.findall(text)) == 1
                         and not _ISO_DATE.match(text)):  # fmt: skip
        return text.lstrip("#"), say_id(text.lstrip("#"))
    if style in ("date", "") and _ISO_DATE.match(text):
        day = parse_date(text)
        if day is not None:
            return say_date(day, year=style == "date")
    if style in ("time", "") and (_CLOCK.match(text) or _ISO_DATETIME.match(text)):
        if _ISO_DATETIME.match(text):
            try:
                moment: time | None = datetime.fromisoformat(text.replace("Z", "+00:00")).time()
            except ValueError:
                moment = None
        else:
            moment = parse_time(text)
        if moment is not None:
            return say_time(moment)
    if style == "number" and text.isdigit():
        return text, say_number(int(text)) if int(text) < 1_000_000 else text
    return say_words(text)


def say_words(text: str) -> tuple[str, str]:
    """(text, spoken) for free text: machine values ("out_for_delivery") read as words,
    numbers inside as a person would."""
    # Machine values ("out_for_delivery") read as words; numbers inside text as a person
    # would: long digit runs (ids) digit by digit, short ones as amounts.
    shown = text.replace("_", " ")

    def spoken_number(match: re.Match[str]) -> str:
        digits = match.group()
        if len(digits) >= 3 and not (len(digits) == 4 and digits.startswith(("19", "20"))):
            return say_digits(digits)
        return say_number(int(digits)) if int(digits) < 1_000_000 else digits

    return shown, _DIGIT_RUN.sub(spoken_number, shown)
