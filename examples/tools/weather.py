"""An example plugin tool: the weather forecast for a city (offline demo data).

Load it with ``--tools examples.tools.weather:TOOLS`` (from the repository root, or with the
folder on ``PYTHONPATH``). It works on every backend: Nova Sonic reads the description and the
schema; the offline engine learns how people ask for it from ``examples`` (the ``{city}`` slot
takes the values in the schema's ``examples``, so "what's the weather in lyon" fills
``city="Lyon"``) and speaks the result with ``answer``.

The forecast is made up (a deterministic function of the city and the day) so the example runs
anywhere without a network or an API key; a real tool would call a weather service here.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sonicwire.server.tools import ToolContext, ToolError, tool

__all__ = ["CITIES", "TOOLS", "get_weather"]

#: The cities the offline engine can hear (any other name is still accepted when typed).
CITIES = (
    "London", "Paris", "Lyon", "Berlin", "Madrid", "Rome", "Tokyo", "Sydney", "New York",
    "Chicago", "Toronto", "Seattle", "Boston", "Dublin", "Amsterdam", "Vienna",
)  # fmt: skip
_SKIES = ("sunny", "partly cloudy", "cloudy", "rainy", "windy", "foggy", "snowy")
_DAYS = ("today", "tomorrow")


@tool(
    description=(
        "Get the weather forecast for a city, today or tomorrow. Use it when the user asks "
        "about the weather, rain, temperature or what to wear."
    ),
    parameters={
        "type": "object",
        "properties": {
            "city": {
                "type": "string",
                "minLength": 1,
                "maxLength": 80,
                "description": 'City name, e.g. "Lyon".',
                "examples": list(CITIES),
            },
            "day": {"enum": list(_DAYS), "description": "Which day; default today."},
        },
        "required": ["city"],
        "additionalProperties": False,
    },
    timeout_s=5,
    keywords=("weather", "forecast", "temperature"),
    examples=(
        "what's the weather in {city}",
        "what is the weather like in {city}",
        "weather in {city}",
        "what's the forecast for {city}",
        "what's the weather in {city} {day}",
        "what will the weather be in {city} {day}",
        "is it going to rain in {city}",
        "how warm is it in {city}",
        "weather forecast for {city} {day}",
    ),
    answer="In {city} {day} it will be {sky}, {temperature_c} degrees.",
)
async def get_weather(args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    city = " ".join(args["city"].split()).title()
    if city.lower() == "atlantis":
        raise ToolError("No forecast exists for Atlantis.", type="unknown_city")
    day = args.get("day", "today")
    seed = hashlib.sha256(f"{city.lower()}|{day}".encode()).digest()
    return {
        "city": city,
        "day": day,
        "sky": _SKIES[seed[0] % len(_SKIES)],
        "temperature_c": 2 + seed[1] % 27,
    }


TOOLS = [get_weather]
