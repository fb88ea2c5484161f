"""Predict a tool's result, so the answer's first sentence can be synthesised before the tool
runs (pure: the caller passes the clock).

The session prepares an answer from `EarlyCut`'s guess during the VAD's stop wait, but it may
not request a tool then: a tool call opens an assistant turn in the session core, and the core
would take the user's own trailing silence (the VAD still reports speech until the stop marker)
for a barge-in and cancel it. For ``get_date_time`` the result is predictable: the built-in's
own description of the current moment in the zone the tool reports. The prediction only
chooses which sentence to synthesise early; the reply is always built from the real result,
and the early audio is used only when the real reply's sentence is the predicted one word for
word (a different zone, a minute that turned over, a tool of another shape: the sentence is
synthesised as usual).

Which zone ``get_date_time`` uses without a ``timezone`` argument is the server's setting, so
`learn` records the zone each call reported (per arguments) and `predict` uses it.
"""

from __future__ import annotations

import json
import zoneinfo
from collections.abc import Mapping, MutableMapping
from datetime import datetime

from sonicwire.server.tools.builtin import GET_DATE_TIME, describe_moment

from .dialogue import ToolCall

__all__ = ["learn", "predict"]


def predict(call: ToolCall, now: datetime, zones: Mapping[str, str]) -> str | None:
    """The JSON ``call`` would likely return at ``now`` (aware), or None when unpredictable."""
    if call.name != GET_DATE_TIME.name:
        return None
    name = zones.get(call.arguments_json) or call.arguments.get("timezone")
    if not name or not isinstance(name, str):
        return None  # the server's default zone: not known until a call reported it
    try:
        zone = zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None
    return json.dumps(describe_moment(now, zone))


def learn(call: ToolCall, result_json: str, zones: MutableMapping[str, str]) -> None:
    """Remember the zone a ``get_date_time`` result names, for `predict`."""
    if call.name != GET_DATE_TIME.name:
        return
    try:
        result = json.loads(result_json)
    except (TypeError, ValueError):
        return
    zone = result.get("timezone") if isinstance(result, dict) else None
    if isinstance(zone, str) and zone:
        if len(zones) >= 64 and call.arguments_json not in zones:
            zones.pop(next(iter(zones)))  # bounded: arguments come from speech
        zones[call.arguments_json] = zone
