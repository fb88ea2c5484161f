"""Typed, validated access to the fields of a JSON message (private to ``inbound``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import InvalidMessage, Reason

__all__ = ["Fields", "json_type"]


class Fields:
    """Typed access to a message's fields; every failure is an :class:`InvalidMessage`."""

    def __init__(self, message: Mapping[str, Any], prefix: str = "") -> None:
        self._message = message
        self._prefix = prefix

    def _name(self, key: str) -> str:
        return f"{self._prefix}{key}"

    def has(self, key: str) -> bool:
        return self._message.get(key) is not None

    def raw(self, key: str) -> Any:
        if key not in self._message or self._message[key] is None:
            raise InvalidMessage(Reason.MISSING_FIELD, f"missing field {self._name(key)!r}")
        return self._message[key]

    def _typed(self, key: str, kind: type | tuple[type, ...], label: str) -> Any:
        value = self.raw(key)
        # bool is an int in Python but not in JSON: reject it where a number is expected.
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise InvalidMessage(
                Reason.INVALID_FIELD,
                f"{self._name(key)!r} must be {label}, got {json_type(value)}",
            )
        return value

    def string(self, key: str, default: str | None = None, *, max_chars: int = 256) -> str:
        if default is not None and not self.has(key):
            return default
        value: str = self._typed(key, str, "a string")
        if len(value) > max_chars:
            raise InvalidMessage(
                Reason.INVALID_FIELD, f"{self._name(key)!r} is longer than {max_chars} characters"
            )
        return value

    def boolean(self, key: str, default: bool) -> bool:
        if not self.has(key):
            return default
        value: bool = self._typed(key, bool, "true or false")
        return value

    def integer(self, key: str, default: int | None = None, *, lo: int = 0, hi: int) -> int:
        if default is not None and not self.has(key):
            return default
        value = self._typed(key, (int, float), "an integer")
        if isinstance(value, float):
            if not value.is_integer():
                raise InvalidMessage(
                    Reason.INVALID_FIELD, f"{self._name(key)!r} must be an integer"
                )
            value = int(value)
        if not lo <= value <= hi:
            raise InvalidMessage(
                Reason.INVALID_FIELD, f"{self._name(key)!r} must be between {lo} and {hi}"
            )
        return int(value)

    def number(self, key: str, *, lo: float, hi: float) -> float:
        if not self.has(key):
            return 0.0
        value = float(self._typed(key, (int, float), "a number"))
        if not lo <= value <= hi:
            raise InvalidMessage(
                Reason.INVALID_FIELD, f"{self._name(key)!r} must be between {lo:g} and {hi:g}"
            )
        return value

    def choice(self, key: str, choices: tuple[str, ...]) -> str | None:
        if not self.has(key):
            return None
        value = self.string(key)
        if value not in choices:
            raise InvalidMessage(
                Reason.INVALID_FIELD,
                f"{self._name(key)!r} must be one of {', '.join(choices)}, got {value[:40]!r}",
            )
        return value

    def obj(self, key: str) -> Fields | None:
        if not self.has(key):
            return None
        value = self._typed(key, dict, "an object")
        return Fields(value, f"{self._name(key)}.")

    def array(self, key: str, *, max_items: int) -> list[Any]:
        if not self.has(key):
            return []
        value: list[Any] = self._typed(key, list, "an array")
        if len(value) > max_items:
            raise InvalidMessage(
                Reason.INVALID_FIELD, f"{self._name(key)!r} has more than {max_items} items"
            )
        return value

    def only(self, allowed: frozenset[str]) -> None:
        unknown = sorted(set(self._message) - allowed)
        if unknown:
            raise InvalidMessage(
                Reason.UNKNOWN_FIELD,
                f"unknown field {self._name(unknown[0][:40])!r}; "
                f"expected: {', '.join(sorted(allowed))}",
            )


def json_type(value: Any) -> str:
    match value:
        case None:
            return "null"
        case bool():
            return "a boolean"
        case int() | float():
            return "a number"
        case str():
            return "a string"
        case list():
            return "an array"
        case dict():
            return "an object"
        case _:
            return type(value).__name__
