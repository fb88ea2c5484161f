"""The evaluation's utterances (bench.local_eval): what each must be understood as, and its split.

The held-out phrasings here are in no training text, and nothing is tuned on them: development
work uses bench/local_dev_eval.py's sets. Kept apart from the evaluation's machinery so the set
itself is easy to read and to check (`local_eval.check_splits`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Command:
    """A test utterance: what it must be understood as (a tool, a small-talk intent,
    "ask" = the tool asks for a missing argument, or "unknown") and its split."""

    text: str
    intent: str
    arguments: dict[str, Any] | None = None  # the tool call it must produce
    split: str = "held_out"


def _c(text: str, intent: str, arguments: dict[str, Any] | None = None,
       split: str = "held_out") -> Command:  # fmt: skip
    return Command(text, intent, arguments, split)


_T, _O, _W = "get_date_time", "track_order", "get_weather"
COMMANDS: tuple[Command, ...] = (
    # in-training phrasings (sentences of the training text)
    _c("what time is it", _T, {}, "in_training"),
    _c("what time is it in tokyo", _T, {"timezone": "Asia/Tokyo"}, "in_training"),
    _c("what's the date today", _T, {}, "in_training"),
    _c("where is my order one zero zero one", _O, {"order_id": "1001"}, "in_training"),
    _c("track order ten oh two", _O, {"order_id": "1002"}, "in_training"),
    _c("what's the weather in london", _W, {"city": "London"}, "in_training"),
    _c("weather in paris", _W, {"city": "Paris"}, "in_training"),
    _c("hello", "greeting", None, "in_training"),
    _c("what can you do", "help", None, "in_training"),
    # held-out phrasings: in no training text
    _c("could you tell me what time it is", _T, {}),
    _c("tell me the current time in london", _T, {"timezone": "Europe/London"}),
    _c("what time is it over in sydney", _T, {"timezone": "Australia/Sydney"}),
    _c("which day of the week is it", _T, {}),
    _c("what is the date right now", _T, {}),
    _c("i need the status of order one zero zero four", _O, {"order_id": "1004"}),
    _c("has order ten oh five been shipped yet", _O, {"order_id": "1005"}),
    _c("please find order one oh oh three for me", _O, {"order_id": "1003"}),
    _c("where is my package right now", "ask"),
    _c("tell me the weather in berlin", _W, {"city": "Berlin"}),
    _c(
        "what's the weather going to be in tokyo tomorrow", _W, {"city": "Tokyo", "day": "tomorrow"}
    ),
    _c("is it raining in seattle", _W, {"city": "Seattle"}),
    _c("give me the forecast for boston", _W, {"city": "Boston"}),
    _c("how is the weather today in madrid", _W, {"city": "Madrid", "day": "today"}),
    _c("thank you very much", "thanks"),
    # out of domain
    _c("play some music", "unknown", None, "out_of_domain"),
    _c("turn on the kitchen lights", "unknown", None, "out_of_domain"),
    _c("set an alarm for seven", "unknown", None, "out_of_domain"),
    _c("book me a taxi to the airport", "unknown", None, "out_of_domain"),
)
