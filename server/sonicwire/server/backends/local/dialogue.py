"""The local engine's dialogue: what the user wants, and what to say back.

Pure and synchronous (no I/O, no clock): `Dialogue.respond` takes what the recogniser heard and
returns either a `Reply` to speak or a `ToolCall` to run; after the tool ran,
`Dialogue.answer` turns its JSON result into a `Reply`. The only state is whether the assistant
just asked for an order number, so "where is my order?" -> "what's your order number?" ->
"ten oh one" works over two turns.

Replies are `Line`s: ``text`` is what the transcript shows ("It's 3:47 PM."), ``spoken`` is
what the synthesiser reads ("It's three forty-seven PM."), written out so the voice says
numbers the way people (and the recogniser) expect.

Intents are found by keywords and a spoken-number parser rather than by exact phrases, because
the recogniser's output is noisy; a transcript that names no intent gets an honest "Sorry, I
didn't catch that" instead of a guess.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from .numbers import parse_numbers, say_digits, say_number, say_ordinal

__all__ = [
    "GET_DATE_TIME",
    "PLACES",
    "TRACK_ORDER",
    "Dialogue",
    "Intent",
    "Line",
    "Reply",
    "ToolCall",
    "Understanding",
    "say_time",
    "tokenize",
    "understand",
]

GET_DATE_TIME = "get_date_time"
TRACK_ORDER = "track_order"


class Intent(enum.Enum):
    TIME = "time"
    DATE = "date"
    ORDER = "order"
    GREETING = "greeting"
    HELP = "help"
    THANKS = "thanks"
    GOODBYE = "goodbye"
    UNKNOWN = "unknown"


#: Places the assistant can tell the time in, as spoken -> IANA zone.
PLACES: Mapping[str, str] = {
    "london": "Europe/London",
    "paris": "Europe/Paris",
    "berlin": "Europe/Berlin",
    "madrid": "Europe/Madrid",
    "rome": "Europe/Rome",
    "moscow": "Europe/Moscow",
    "dubai": "Asia/Dubai",
    "india": "Asia/Kolkata",
    "singapore": "Asia/Singapore",
    "hong kong": "Asia/Hong_Kong",
    "beijing": "Asia/Shanghai",
    "tokyo": "Asia/Tokyo",
    "sydney": "Australia/Sydney",
    "new york": "America/New_York",
    "toronto": "America/Toronto",
    "chicago": "America/Chicago",
    "denver": "America/Denver",
    "los angeles": "America/Los_Angeles",
    "california": "America/Los_Angeles",
    "utc": "UTC",
}

_ORDER_WORDS = frozenset(
    {"order", "orders", "package", "parcel", "shipment", "delivery", "track", "tracking"}
)
_TIME_WORDS = frozenset({"time", "clock"})
_DATE_WORDS = frozenset({"date", "today's", "weekday"})
# "day", "month" and "year" only ask for the date in a question ("what day is it"): alone
# they are what the recogniser makes of much out-of-domain speech ("rear" -> "year").
_CALENDAR_WORDS = frozenset({"day", "month", "year"})
_QUESTION_WORDS = frozenset({"what", "what's", "which", "today"})
_GREETING_WORDS = frozenset({"hello", "hi", "hey", "howdy", "greetings"})
_HELP_PHRASES = (
    "help", "what can you", "can you do", "what can i ask", "what do you do", "how can you",
    "what are you", "who are you",
)  # fmt: skip
_THANKS_WORDS = frozenset({"thank", "thanks"})
_GOODBYE_WORDS = frozenset({"bye", "goodbye"})

# An order number: three or more digits when spoken; typed ones may also carry letters
# ("A-17B") but must contain a digit.
_MIN_SPOKEN_ID_DIGITS = 3
_TYPED_ID = re.compile(r"#?(?:[A-Za-z]+-?)?\d[A-Za-z0-9-]*")
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


@dataclass(frozen=True, slots=True)
class Line:
    """One sentence of a reply: ``text`` to show, ``spoken`` to synthesise."""

    text: str
    spoken: str

    @classmethod
    def plain(cls, text: str) -> Line:
        return cls(text, text)


@dataclass(frozen=True, slots=True)
class Reply:
    """What the assistant says, sentence by sentence (short first line: it is heard first)."""

    intent: Intent
    lines: tuple[Line, ...]

    @property
    def text(self) -> str:
        return " ".join(line.text for line in self.lines)


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool the dialogue needs before it can answer; ``place`` is the spoken place name."""

    intent: Intent
    name: str
    arguments: Mapping[str, str] = field(default_factory=dict)
    place: str | None = None

    @property
    def arguments_json(self) -> str:
        return json.dumps(dict(self.arguments), separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class Understanding:
    """What `understand` made of one user turn."""

    intent: Intent
    order_id: str | None = None
    place: str | None = None
    timezone: str | None = None


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens; apostrophes stay inside words ("what's")."""
    return _TOKEN.findall(text.lower().replace("\u2019", "'"))


def understand(text: str, *, expecting_order_id: bool = False) -> Understanding:
    """Find the intent of ``text`` and its slots (order id, place).

    With ``expecting_order_id`` (the assistant just asked for it) a bare number is an order id.
    """
    words = tokenize(text)
    joined = " ".join(words)
    order_id = _order_id(text, words)
    wants_order = bool(_ORDER_WORDS.intersection(words))
    if wants_order or (expecting_order_id and order_id is not None):
        return Understanding(Intent.ORDER, order_id=order_id)
    if _TIME_WORDS.intersection(words) or "what hour" in joined:
        place = _place(joined)
        return Understanding(Intent.TIME, place=place, timezone=PLACES.get(place or ""))
    asks_calendar = _CALENDAR_WORDS.intersection(words) and _QUESTION_WORDS.intersection(words)
    if _DATE_WORDS.intersection(words) or asks_calendar or joined in ("what's today", "today"):
        return Understanding(Intent.DATE)
    if any(_has_phrase(joined, phrase) for phrase in _HELP_PHRASES):
        return Understanding(Intent.HELP)
    if (
        _GREETING_WORDS.intersection(words)
        or "good morning" in joined
        or ("good afternoon" in joined or "good evening" in joined)
    ):
        return Understanding(Intent.GREETING)
    if _THANKS_WORDS.intersection(words):
        return Understanding(Intent.THANKS)
    if _GOODBYE_WORDS.intersection(words):
        return Understanding(Intent.GOODBYE)
    return Understanding(Intent.UNKNOWN)


def _has_phrase(joined: str, phrase: str) -> bool:
    return re.search(rf"\b{re.escape(phrase)}\b", joined) is not None


def _place(joined: str) -> str | None:
    for place in PLACES:
        if _has_phrase(joined, place):
            return place
    return None


def _order_id(text: str, words: list[str]) -> str | None:
    # Typed input first ("#1001", "A-17B"), then spoken numbers; the longest number wins so a
    # stray "oh" before the id ("oh, where's order ten oh one") does not.
    typed = [m.group().lstrip("#").upper() for m in _TYPED_ID.finditer(text)]
    typed = [t for t in typed if not t.isdigit() or len(t) >= _MIN_SPOKEN_ID_DIGITS]
    if typed:
        return max(typed, key=len)
    spoken = [n for n in parse_numbers(words) if len(n) >= _MIN_SPOKEN_ID_DIGITS]
    return max(spoken, key=len) if spoken else None


# --- replies ----------------------------------------------------------------------------------

_DIDNT_CATCH = Line.plain("Sorry, I didn't catch that.")
_SUGGEST = Line.plain("You can ask me for the time, the date, or where your order is.")


def _reply(intent: Intent, *lines: Line) -> Reply:
    return Reply(intent, tuple(lines))


class Dialogue:
    """One conversation's dialogue state; see the module docstring for the protocol.

    Args:
        tools: names of the tools this conversation may use; the dialogue only asks for those
            and says honestly that it cannot help when one is missing.
    """

    def __init__(self, tools: Collection[str] = (GET_DATE_TIME, TRACK_ORDER)) -> None:
        self._tools = frozenset(tools)
        self._expecting_order_id = False

    def respond(self, text: str) -> Reply | ToolCall:
        """Answer one user turn (``text`` is what was heard; "" when nothing was)."""
        if not tokenize(text):
            return _reply(Intent.UNKNOWN, _DIDNT_CATCH)
        meaning = understand(text, expecting_order_id=self._expecting_order_id)
        self._expecting_order_id = False
        match meaning.intent:
            case Intent.TIME | Intent.DATE:
                if GET_DATE_TIME not in self._tools:
                    return _reply(meaning.intent, Line.plain("Sorry, I can't check the clock."))
                args = {"timezone": meaning.timezone} if meaning.timezone else {}
                return ToolCall(meaning.intent, GET_DATE_TIME, args, meaning.place)
            case Intent.ORDER:
                if TRACK_ORDER not in self._tools:
                    return _reply(Intent.ORDER, Line.plain("Sorry, I can't look up orders."))
                if meaning.order_id is None:
                    self._expecting_order_id = True
                    return _reply(Intent.ORDER, Line.plain("Sure. What's your order number?"))
                return ToolCall(Intent.ORDER, TRACK_ORDER, {"order_id": meaning.order_id})
            case Intent.GREETING:
                return _reply(Intent.GREETING, Line.plain("Hello! How can I help?"))
            case Intent.HELP:
                return _reply(
                    Intent.HELP,
                    Line.plain("I can tell you the time and the date, and track your orders."),
                    Line(
                        "Try: what time is it in Tokyo, or where is my order 1001?",
                        "Try: what time is it in Tokyo, or where is my order one zero zero one?",
                    ),
                )
            case Intent.THANKS:
                return _reply(Intent.THANKS, Line.plain("You're welcome!"))
            case Intent.GOODBYE:
                return _reply(Intent.GOODBYE, Line.plain("Goodbye!"))
            case _:
                return _reply(Intent.UNKNOWN, _DIDNT_CATCH, _SUGGEST)

    def answer(self, call: ToolCall, result_json: str) -> Reply:
        """Turn the tool's result (its JSON, or ``{"error": {...}}``) into what to say."""
        try:
            result = json.loads(result_json)
        except (TypeError, ValueError):
            result = None
        if not isinstance(result, dict):
            result = {"error": {"message": "no result"}}
        if call.name == TRACK_ORDER:
            return _order_reply(call.arguments.get("order_id", ""), result)
        return _clock_reply(call, result)


def _clock_reply(call: ToolCall, result: dict[str, Any]) -> Reply:
    where = f" in {_title(call.place)}" if call.place else ""
    moment = None if "error" in result else _local_moment(result)
    if call.intent is Intent.DATE and moment is not None and moment[0] is not None:
        text, spoken = _say_date(moment[0], year=True)
        return _reply(Intent.DATE, Line(f"Today is {text}{where}.", f"Today is {spoken}{where}."))
    if call.intent is Intent.TIME and moment is not None and moment[1] is not None:
        text, spoken = say_time(moment[1])
        return _reply(Intent.TIME, Line(f"It's {text}{where}.", f"It's {spoken}{where}."))
    what = "the date" if call.intent is Intent.DATE else "the time"
    return _reply(call.intent, Line.plain(f"Sorry, I couldn't get {what}{where}."))


def _order_reply(asked_id: str, result: dict[str, Any]) -> Reply:
    order_id = str(result.get("order_id") or asked_id)
    shown, said = f"Order {order_id}", f"Order {_say_id(order_id)}"
    if "error" in result:
        return _reply(
            Intent.ORDER,
            Line(f"Sorry, I couldn't look up order {order_id}.", f"Sorry, I couldn't look up "
                 f"order {_say_id(order_id)}."),
        )  # fmt: skip
    if result.get("found") is False or not result.get("status"):
        return _reply(
            Intent.ORDER,
            Line(
                f"I couldn't find an order with the number {order_id}.",
                f"I couldn't find an order with the number {_say_id(order_id)}.",
            ),
        )
    status = str(result["status"]).lower().replace(" ", "_")
    carrier = str(result.get("carrier") or "")
    first = {
        "processing": "is being prepared",
        "shipped": "has shipped",
        "out_for_delivery": "is out for delivery",
        "delivered": "was delivered",
        "cancelled": "was cancelled",
        "returned": "was returned",
    }.get(status, f"is {status.replace('_', ' ')}")
    # The status alone first: it is the answer, and a short sentence is heard soonest.
    lines = [Line(f"{shown} {first}.", f"{said} {first}.")]
    delivered_on = _parse_date(result.get("delivered_on"))
    eta = _parse_date(result.get("eta"))
    if status == "delivered" and (delivered_on or eta):
        text, spoken = _say_date(delivered_on or eta)  # type: ignore[arg-type]
        lines.append(Line(f"It arrived on {text}.", f"It arrived on {spoken}."))
    elif status in ("processing", "shipped", "out_for_delivery"):
        on_the_way = status != "processing" and carrier
        with_carrier = f"It's with {carrier}" if on_the_way else ""
        if eta:
            text, spoken = _say_date(eta)
            arrive = "and should arrive" if with_carrier else "It should arrive"
            lines.append(
                Line(
                    f"{with_carrier} {arrive} on {text}.".lstrip(),
                    f"{with_carrier} {arrive} on {spoken}.".lstrip(),
                )
            )
        elif with_carrier:
            lines.append(Line.plain(f"{with_carrier}."))
    return _reply(Intent.ORDER, *lines)


def _title(place: str) -> str:
    return place.upper() if place == "utc" else place.title()


def _say_id(order_id: str) -> str:
    # Digits one by one: "one zero zero one" is how people read order numbers back, and it
    # cannot be misheard as an amount.
    if order_id.isdigit():
        return say_digits(order_id)
    return " ".join(say_digits(c) if c.isdigit() else c for c in order_id)


def _local_moment(result: dict[str, Any]) -> tuple[date | None, time | None]:
    """The local date and time in a ``get_date_time`` result, whatever its exact shape.

    An ISO ``datetime`` (or a few other usual keys) wins; else ``date`` ("2026-05-05") and
    ``time`` ("15:47", "3:47 PM") separately. Either part is None when absent.
    """
    for key in ("datetime", "local_datetime", "iso", "now", "local_time"):
        value = result.get(key)
        if isinstance(value, str):
            try:
                moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
            return moment.date(), moment.time()
    return _parse_date(result.get("date")), _parse_time(result.get("time"))


def _parse_time(value: object) -> time | None:
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


def _parse_date(value: object) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


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


def _say_date(day: date, *, year: bool = False) -> tuple[str, str]:
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
