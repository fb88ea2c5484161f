"""Where conversation state lives between streams: in this process, or in Redis.

A `Store` keeps opaque bytes (``core.snapshot.encode_state``) per session id with a time to
live. ``--state-store memory`` (the default) serves one process; ``--state-store
redis://host:port/db`` lets any replica resume any conversation. A store that fails raises
`StoreUnavailable`; the runtime then carries on without resume (a log line and a metric),
never failing a live conversation because of it.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["MemoryStore", "RedisStore", "Store", "StoreUnavailable", "open_store"]

_KEY_PREFIX = "sonicwire:conversation:"


class StoreUnavailable(Exception):
    """The store could not be reached or answered with an error."""


class Store(Protocol):
    """Bytes per session id, each with a time to live."""

    name: str

    async def get(self, session_id: str) -> bytes | None:
        """The stored bytes, or None when absent or expired. Raises `StoreUnavailable`."""
        ...

    async def put(self, session_id: str, data: bytes, ttl_s: float) -> None:
        """Store ``data`` for ``ttl_s`` seconds from now. Raises `StoreUnavailable`."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


class MemoryStore:
    """One process's conversations, bounded in count (the oldest are dropped first)."""

    name = "memory"

    def __init__(
        self, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._max_entries = max_entries
        self._clock = clock

    async def get(self, session_id: str) -> bytes | None:
        entry = self._entries.get(session_id)
        if entry is None:
            return None
        expires, data = entry
        if expires <= self._clock():
            del self._entries[session_id]
            return None
        return data

    async def put(self, session_id: str, data: bytes, ttl_s: float) -> None:
        self._entries.pop(session_id, None)
        self._entries[session_id] = (self._clock() + ttl_s, data)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    async def aclose(self) -> None:
        self._entries.clear()


class RedisStore:
    """Conversations in Redis (redis-py's asyncio client): ``SET key value PX ttl``."""

    name = "redis"

    def __init__(self, url: str, *, timeout_s: float = 1.0) -> None:
        import redis.asyncio as redis  # optional dependency: only with --state-store redis://

        self._redis: Any = redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)

    async def get(self, session_id: str) -> bytes | None:
        try:
            data = await self._redis.get(_KEY_PREFIX + session_id)
        except self._errors as error:
            raise StoreUnavailable(f"redis: {type(error).__name__}: {error}") from None
        return bytes(data) if data is not None else None

    async def put(self, session_id: str, data: bytes, ttl_s: float) -> None:
        try:
            await self._redis.set(_KEY_PREFIX + session_id, data, px=max(1, round(ttl_s * 1000)))
        except self._errors as error:
            raise StoreUnavailable(f"redis: {type(error).__name__}: {error}") from None

    async def aclose(self) -> None:
        await self._redis.aclose()


def open_store(spec: str) -> Store:
    """The store for a ``--state-store`` value: ``memory`` or a ``redis://``/``rediss://`` URL.

    Raises:
        ValueError: an unknown kind of store.
    """
    if spec in ("", "memory"):
        return MemoryStore()
    if spec.startswith(("redis://", "rediss://", "unix://")):
        return RedisStore(spec)
    raise ValueError(f"--state-store must be 'memory' or a redis:// URL, got {spec!r}")
