"""Resumable conversations: tokens, loading a saved conversation, saving it at turn boundaries.

A conversation's state (`core.snapshot.ConversationState`) is saved through a `Store` when it
starts, after every assistant turn and when its stream ends, with a time to live counted from
the last save. A new stream with ``resume_session_id`` + ``resume_token`` continues it on any
replica that shares the store. Tokens are 128-bit random secrets, distinct from session ids;
only their SHA-256 is stored, and they are compared in constant time.

Every save is conditional on the token (`state_store.Store.put`'s ``expect``): a stream saves
only while the stored conversation carries the token it resumed with or was given. A resumed
stream's first save claims the conversation (re-tags it with its new token); the stream it took
over, on whatever replica, then finds its saves refused: it stops saving and, if it is still
live, ends with ``SESSION_RESUMED_ELSEWHERE`` at its next save (a turn boundary).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable

from sonicwire.server import metrics
from sonicwire.server.core.errors import ErrorCode, ResumeError
from sonicwire.server.core.snapshot import (
    ConversationState,
    SnapshotError,
    decode_state,
    encode_state,
)
from sonicwire.server.state_store import Store, StoreUnavailable

__all__ = ["Resumer", "SaveOutcome", "StateSaver", "new_token", "token_digest"]

log = logging.getLogger(__name__)


def new_token() -> str:
    """A fresh resume token (URL-safe, 128 bits)."""
    return secrets.token_urlsafe(16)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SaveOutcome(enum.Enum):
    SAVED = "saved"
    STORE_DOWN = "store_down"  # not saved; the conversation goes on
    TAKEN_OVER = "taken_over"  # not saved: another stream holds the conversation (newer token)


class Resumer:
    """Loads and saves conversation state in ``store``, kept ``ttl_s`` after the last save."""

    def __init__(
        self, store: Store, ttl_s: float, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self._clock = clock
        self._failing = False  # log a store outage once, not per save

    async def load(self, session_id: str, token: str, caller: str) -> ConversationState:
        """The saved conversation ``session_id`` if ``token`` is its token and ``caller`` owns it.

        Raises:
            ResumeError: NOT_FOUND ``SESSION_NOT_FOUND`` (unknown, expired or a wrong token:
                the same answer, so ids cannot be probed), PERMISSION_DENIED
                ``SESSION_OWNED_ELSEWHERE`` (another API key's conversation), UNAVAILABLE
                ``RESUME_UNAVAILABLE`` (the store is down).
        """
        not_found = ResumeError(
            "SESSION_NOT_FOUND",
            "no conversation to resume with that id and token (unknown, expired or ended)",
        )
        if not session_id or not token:
            raise not_found
        try:
            data = await self.store.get(session_id)
        except StoreUnavailable as error:
            self._store_failed(error)
            raise ResumeError(
                "RESUME_UNAVAILABLE",
                "conversations cannot be resumed right now (state store unavailable)",
                code=ErrorCode.UNAVAILABLE,
            ) from None
        self._store_ok()
        if data is None:
            raise not_found
        try:
            state = decode_state(data)
        except SnapshotError:
            log.warning("resume %s: stored state is unreadable; treated as absent", session_id)
            raise not_found from None
        if not hmac.compare_digest(token_digest(token), state.token_sha256):
            raise not_found
        if state.owner != caller:
            raise ResumeError(
                "SESSION_OWNED_ELSEWHERE",
                "that conversation belongs to another API key",
                code=ErrorCode.PERMISSION_DENIED,
            )
        return state

    async def save(self, state: ConversationState, *, expect: str = "") -> SaveOutcome:
        """Save ``state`` (best effort: STORE_DOWN, with one log line per outage, if the store
        is down; the conversation goes on either way). With ``expect`` (a token digest), only
        while the stored conversation carries that token: TAKEN_OVER when another does."""
        stamped = ConversationState(
            session_id=state.session_id,
            owner=state.owner,
            token_sha256=state.token_sha256,
            config=state.config,
            history=state.history,
            turn_count=state.turn_count,
            user_turn=state.user_turn,
            saved_at=self._clock(),
            extra=state.extra,
        )
        try:
            written = await self.store.put(
                state.session_id,
                encode_state(stamped),
                self.ttl_s,
                tag=state.token_sha256,
                expect=expect,
            )
        except StoreUnavailable as error:
            self._store_failed(error)
            return SaveOutcome.STORE_DOWN
        self._store_ok()
        return SaveOutcome.SAVED if written else SaveOutcome.TAKEN_OVER

    def _store_failed(self, error: StoreUnavailable) -> None:
        metrics.STATE_STORE_ERRORS.inc()
        metrics.STATE_STORE_UP.set(0)
        if not self._failing:
            log.warning("state store %s unavailable: %s; resume is off", self.store.name, error)
        self._failing = True

    def _store_ok(self) -> None:
        metrics.STATE_STORE_UP.set(1)
        if self._failing:
            log.info("state store %s is back; resume is on", self.store.name)
        self._failing = False


class StateSaver:
    """Saves one conversation's state when asked, one save at a time: a request during a save
    saves again once it finished (with the newest state), so saves never pile up.

    ``expect`` is the token digest the stored conversation carries now (the resumed token's,
    or for a new conversation its own); after a save it is this stream's own. A refused save
    (another stream resumed the conversation) stops the saver for good and, for saves made
    while the stream runs, calls ``on_taken_over``.
    """

    def __init__(
        self,
        resumer: Resumer,
        snapshot: Callable[[], ConversationState],
        *,
        expect: str = "",
        on_taken_over: Callable[[], None] | None = None,
    ) -> None:
        self._resumer = resumer
        self._snapshot = snapshot
        self._expect = expect
        self.on_taken_over = on_taken_over
        self._task: asyncio.Task[None] | None = None
        self._again = False
        self._closed = False
        self._superseded = False

    def request(self) -> None:
        """Save soon (at a turn boundary, on drain); returns at once."""
        if self._closed:
            return
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = asyncio.ensure_future(self._run())

    async def save_now(self) -> SaveOutcome:
        """Save the current state; after TAKEN_OVER this saver never saves again."""
        if self._superseded:
            return SaveOutcome.TAKEN_OVER
        state = self._snapshot()
        outcome = await self._resumer.save(state, expect=self._expect)
        if outcome is SaveOutcome.SAVED:
            self._expect = state.token_sha256
        elif outcome is SaveOutcome.TAKEN_OVER:
            self._closed = self._superseded = True
            log.info(
                "session %s: resumed by another stream; this one no longer saves", state.session_id
            )
        return outcome

    def supersede(self) -> None:
        """Another stream resumed this conversation: its state is the other stream's to save
        now, so stop at once (a later save here would put back this stream's token)."""
        self._closed = self._superseded = True
        if self._task is not None:
            self._task.cancel()

    async def close(self, timeout_s: float = 2.0) -> None:
        """The final save (none once superseded); waits at most ``timeout_s`` for the store."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._superseded:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self.save_now()

    async def _run(self) -> None:
        while True:
            self._again = False
            if await self.save_now() is SaveOutcome.TAKEN_OVER:
                if self.on_taken_over is not None:
                    self.on_taken_over()
                return
            if not self._again or self._closed:
                return
