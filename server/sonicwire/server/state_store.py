"""Where conversation state lives between streams: in this process, or in Redis.

A `Store` keeps opaque bytes (``core.snapshot.encode_state``) per session id with a time to
live, tagged with the digest of the conversation's current resume token. ``--state-store
memory`` (the default) serves one process; ``--state-store redis://host:port/db`` lets any
replica resume any conversation. A store that fails raises `StoreUnavailable`; the runtime
then carries on without resume (a log line and a metric), never failing a live conversation
because of it.

Saves are compare-and-set on that tag: a stream saves only while the stored conversation is
still tagged with the token it holds (or is absent). When a conversation is resumed, the new
stream's first save re-tags it; from then on the old stream's saves are refused, on every
replica, so its final save cannot put back the old token and history (which would make the
new token unknown), and of two streams resuming with the same token only the first wins.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["MemoryStore", "RedisStore", "Store", "StoreUnavailable", "open_store"]

# v2: a hash {token, state} (v1 was a plain string; a new prefix keeps the two apart).
_KEY_PREFIX = "sonicwire:conversation:v2:"


class StoreUnavailable(Exception):
    """The store could not be reached or answered with an error."""


class Store(Protocol):
    """Bytes per session id, each with a time to live and a tag (the current token's digest)."""

    name: str

    async def get(self, session_id: str) -> bytes | None:
        """The stored bytes, or None when absent or expired. Raises `StoreUnavailable`."""
        ...

    async def put(
        self, session_id: str, data: bytes, ttl_s: float, *, tag: str = "", expect: str = ""
    ) -> bool:
        """Store ``data`` tagged ``tag`` for ``ttl_s`` seconds from now, atomically, unless
        ``expect`` is given and the stored entry is tagged otherwise. An absent (or expired)
        entry is always written: nobody can resume it, so nobody else holds it.

        Returns:
            False (nothing written) when another tag holds the entry.

        Raises:
            StoreUnavailable: the store could not be reached.
        """
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
        self._entries: OrderedDict[str, tuple[float, str, bytes]] = OrderedDict()
        self._max_entries = max_entries
        self._clock = clock

    async def get(self, session_id: str) -> bytes | None:
        entry = self._entries.get(session_id)
        if entry is None:
            return None
        expires, _tag, data = entry
        if expires <= self._clock():
            del self._entries[session_id]
            return None
        return data

    async def put(
        self, session_id: str, data: bytes, ttl_s: float, *, tag: str = "", expect: str = ""
    ) -> bool:
        # No await between the check and the write: atomic on the event loop.
        now = self._clock()
        current = self._entries.get(session_id)
        if expect and current is not None and current[0] > now and current[1] != expect:
            return False
        self._entries.pop(session_id, None)
        self._entries[session_id] = (now + ttl_s, tag, data)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
        return True

    async def aclose(self) -> None:
        self._entries.clear()


# KEYS[1] the conversation; ARGV: expected tag ('' = any), new tag, state, TTL in ms.
# One script, so the check and the write are atomic in Redis (no WATCH/MULTI round trips).
_PUT_SCRIPT = """
local current = redis.call('HGET', KEYS[1], 'token')
if ARGV[1] ~= '' and current and current ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'token', ARGV[2], 'state', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
"""


class RedisStore:
    """Conversations in Redis (redis-py's asyncio client): a hash ``{token, state}`` per
    conversation with a TTL, written by a compare-and-set Lua script (`_PUT_SCRIPT`)."""

    name = "redis"

    def __init__(self, url: str, *, timeout_s: float = 1.0) -> None:
        import redis.asyncio as redis  # optional dependency: only with --state-store redis://

        self._redis: Any = redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        # EVALSHA, loading the script again after a NOSCRIPT (a restarted or failed-over Redis).
        self._put = self._redis.register_script(_PUT_SCRIPT)

    async def get(self, session_id: str) -> bytes | None:
        try:
            data = await self._redis.hget(_KEY_PREFIX + session_id, "state")
        except self._errors as error:
            raise StoreUnavailable(f"redis: {type(error).__name__}: {error}") from None
        return bytes(data) if data is not None else None

    async def put(
        self, session_id: str, data: bytes, ttl_s: float, *, tag: str = "", expect: str = ""
    ) -> bool:
        ttl_ms = max(1, round(ttl_s * 1000))
        try:
            written = await self._put(
                keys=[_KEY_PREFIX + session_id], args=[expect, tag, data, ttl_ms]
            )
        except self._errors as error:
            raise StoreUnavailable(f"redis: {type(error).__name__}: {error}") from None
        return bool(written)

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
