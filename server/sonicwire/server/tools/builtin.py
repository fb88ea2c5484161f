"""The built-in tools: ``get_date_time`` and ``track_order``.

Both are built by :func:`builtin_tools`, which takes their dependencies (the order store, the
default time zone, a clock) so tests and deployments can choose them.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from .orders import OrderStore, normalize_order_id
from .spec import ToolExecutor, ToolSpec
from .tool import Tool, ToolContext, ToolError
from .zones import canonical_zone

__all__ = [
    "GET_DATE_TIME",
    "TRACK_ORDER",
    "builtin_tools",
    "describe_moment",
    "resolve_timezone",
]

#: Zones the offline engine can hear by their city ("what time is it in tokyo"): the schema's
#: ``examples``, which it learns as the values of the ``timezone`` slot.
_SPOKEN_ZONES = [
    "Europe/London", "Europe/Paris", "Europe/Berlin", "Europe/Madrid", "Europe/Rome",
    "Europe/Moscow", "Asia/Dubai", "Asia/Kolkata", "Asia/Singapore", "Asia/Hong_Kong",
    "Asia/Shanghai", "Asia/Tokyo", "Australia/Sydney", "America/New_York", "America/Toronto",
    "America/Chicago", "America/Denver", "America/Los_Angeles", "UTC",
]  # fmt: skip

#: How people ask for the built-ins: the offline engine learns them (ToolSpec.examples).
_CLOCK_EXAMPLES = (
    "what time is it",
    "what's the time",
    "what is the time",
    "tell me the time",
    "do you know what time it is",
    "can you tell me the time",
    "what time is it now",
    "what's the time right now",
    "do you have the time",
    "the time please",
    "current time",
    "what's the current time",
    "what time do you have",
    "what time is it in {timezone}",
    "what's the time in {timezone}",
    "what is the time in {timezone}",
    "time in {timezone}",
    "tell me the time in {timezone}",
    "what's the date",
    "what is the date",
    "what's the date today",
    "what is today's date",
    "what's today's date",
    "what day is it",
    "what day is it today",
    "what day of the week is it",
    "which day is it",
    "what's the day today",
    "tell me the date",
    "what is the date today",
    "what month is it",
    "what year is it",
    "what's today",
)
_ORDER_EXAMPLES = (
    "where is my order {order_id}",
    "where's my order {order_id}",
    "track order {order_id}",
    "track my order {order_id}",
    "what's the status of order {order_id}",
    "what is the status of order {order_id}",
    "check order {order_id}",
    "check on my order {order_id}",
    "can you check on my order {order_id}",
    "has my order {order_id} shipped",
    "when will my order {order_id} arrive",
    "order {order_id}",
    "order number {order_id}",
    "my order number is {order_id}",
    "status of my order {order_id}",
    "track my package {order_id}",
    "where is my package {order_id}",
    "can you track order {order_id}",
    "i want to track order {order_id}",
    "where is order {order_id}",
    "the order number is {order_id}",
    "where is my order",
    "where's my order",
    "track my order",
    "track my package",
    "where is my package",
    "i want to track my order",
    "check my order status",
    "order status",
    "has my order shipped",
    "where is my delivery",
    "track a package",
)

GET_DATE_TIME = ToolSpec(
    name="get_date_time",
    description=(
        "Get the current date, time and weekday. Use it whenever the user asks what time or "
        "day it is, here or in another place."
    ),
    parameters={
        "type": "object",
        "properties": {
            "timezone": {
                "type": "string",
                "description": (
                    'IANA time zone name such as "Europe/Paris" or "America/New_York". '
                    "Omit it for the assistant's default time zone."
                ),
                "examples": _SPOKEN_ZONES,
            }
        },
        "additionalProperties": False,
    },
    executor=ToolExecutor.SERVER,
    timeout_s=2.0,
    keywords=("time", "date", "clock", "today"),
    examples=_CLOCK_EXAMPLES,
    answer="It's {time}. Today is {date}.",
)

TRACK_ORDER = ToolSpec(
    name="track_order",
    description=(
        "Look up an order by its order number and report its status, carrier, tracking "
        "number and expected (or actual) delivery date."
    ),
    parameters={
        "type": "object",
        "properties": {
            "order_id": {
                "type": "string",
                "minLength": 1,
                "maxLength": 64,
                "description": 'The order number the user gave, e.g. "1001".',
                "title": "order number",
                "examples": ["1001", "A-2001"],
            }
        },
        "required": ["order_id"],
        "additionalProperties": False,
    },
    executor=ToolExecutor.SERVER,
    timeout_s=5.0,
    keywords=("order", "track", "package", "parcel", "delivery", "shipment"),
    examples=_ORDER_EXAMPLES,
    answer=(
        "Order {order_id} is {status}. The carrier is {carrier}. It should arrive on {eta}. "
        "It was delivered on {delivered_on}."
    ),
)


def resolve_timezone(name: str) -> zoneinfo.ZoneInfo:
    """The zone for an IANA name; case-insensitive as a fallback ("europe/paris").

    Raises:
        ToolError: (type ``invalid_timezone``) when no such zone exists.
    """
    canonical = canonical_zone(name)
    if canonical is not None:
        return zoneinfo.ZoneInfo(canonical)
    raise ToolError(
        f"Unknown time zone {name!r}. Use an IANA name such as 'Europe/Paris' or "
        "'America/New_York'.",
        type="invalid_timezone",
    )


def describe_moment(moment: datetime, zone: zoneinfo.ZoneInfo) -> dict[str, Any]:
    """The ``get_date_time`` result for ``moment`` (aware) in ``zone``."""
    local = moment.astimezone(zone)
    offset = local.strftime("%z")  # "+0200"
    return {
        "timezone": zone.key,
        "datetime": local.isoformat(timespec="seconds"),
        "date": local.date().isoformat(),
        "time": local.strftime("%H:%M"),
        "weekday": local.strftime("%A"),
        "utc_offset": f"{offset[:3]}:{offset[3:]}",
        "abbreviation": local.tzname() or "",
    }


def builtin_tools(
    *,
    order_store: OrderStore | None = None,
    default_timezone: str = "UTC",
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> list[Tool]:
    """Build ``get_date_time`` and ``track_order``.

    Args:
        order_store: where ``track_order`` looks; default ``OrderStore()`` (see its path rules).
        default_timezone: IANA zone used when the model passes no ``timezone``.
        now: returns the current time as an aware datetime (tests pass a fixed one).

    Raises:
        ToolError: ``default_timezone`` is not a known zone.
    """
    default_zone = resolve_timezone(default_timezone)
    store = order_store if order_store is not None else OrderStore()

    async def get_date_time(args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
        # The model's zone, else the user's (the session's `time_zone`), else the server's.
        name = args.get("timezone") or ctx.extras.get("time_zone")
        zone = resolve_timezone(name) if name else default_zone
        return describe_moment(now(), zone)

    async def track_order(args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
        order_id = normalize_order_id(args["order_id"])
        if not order_id:
            raise ToolError("The order number is empty.", type="invalid_order_id")
        order = await store.aget(order_id)
        if order is None:
            return {
                "found": False,
                "order_id": order_id,
                "message": f"There is no order with the number {order_id}.",
            }
        return {"found": True, **order.to_dict()}

    return [
        Tool(spec=GET_DATE_TIME, handler=get_date_time),
        Tool(spec=TRACK_ORDER, handler=track_order),
    ]
