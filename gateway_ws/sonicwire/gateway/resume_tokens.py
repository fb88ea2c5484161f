"""Which resume token is current, for conversations the gateway moved between replicas.

When the gateway resumes a conversation upstream (its server replica went away), the server
issues a new resume token and the one the browser holds is spent. The browser learns the new
one from the ``resumed`` event, but a client that ignores that event (the bundled page keeps
the token of ``session_started``) would later fail to resume with ``SESSION_NOT_FOUND``. So the
gateway remembers, per conversation, the tokens it spent and the current one: a ``config``
that resumes with a token this gateway spent is sent upstream with the current token. Only a
holder of one of that conversation's earlier tokens gets this, and only tokens are compared
(by SHA-256 digest). Pure and bounded: no I/O.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

__all__ = ["TokenLedger"]


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class TokenLedger:
    """Current resume token per moved conversation; the oldest entries go past ``max_entries``."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self._max = max_entries
        self._entries: OrderedDict[str, tuple[str, frozenset[bytes]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def moved(self, session_id: str, spent: str, current: str) -> None:
        """The conversation ``session_id`` was resumed: ``spent`` no longer resumes it."""
        if not session_id or not current:
            return
        _, spent_before = self._entries.pop(session_id, ("", frozenset()))
        spent_now = spent_before | ({_digest(spent)} if spent else set())
        self._entries[session_id] = (current, spent_now)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def current(self, session_id: str, token: str) -> str:
        """The token to resume ``session_id`` with, given the one a client offered."""
        entry = self._entries.get(session_id)
        if entry is None or not token:
            return token
        latest, spent = entry
        return latest if _digest(token) in spent else token
