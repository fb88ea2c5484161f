"""IANA time zone names as people type them: exact first, then case-insensitive."""

from __future__ import annotations

import functools
import zoneinfo

__all__ = ["canonical_zone"]


@functools.cache
def _zones_by_folded_name() -> dict[str, str]:
    return {name.casefold(): name for name in zoneinfo.available_timezones()}


def canonical_zone(name: str) -> str | None:
    """The zone key for ``name`` ("europe/paris" -> "Europe/Paris"), or None if unknown.

    Paths and other non-names (``../../etc/passwd``, ``/etc/localtime``) are unknown.
    """
    key = name.strip()
    if not key or len(key) > 64:
        return None
    try:
        return zoneinfo.ZoneInfo(key).key
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return _zones_by_folded_name().get(key.casefold())
