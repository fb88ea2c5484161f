"""A conversation's state as plain data, so it can outlive the process that ran it.

What a resumed conversation needs and nothing else: who owns it, the configuration it started
with (opaque bytes to the core: the driver's serialised ``SessionConfig``), the history as the
user heard it, and the turn counters (so turn ids go on where they stopped). The runtime saves
it through a `Store` at turn boundaries and when the stream ends; the core never does I/O.

This module is the one place that turns state into bytes and back (JSON, versioned).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from sonicwire.server.core.events import Role
from sonicwire.server.core.history import Message

__all__ = ["ConversationState", "SnapshotError", "decode_state", "encode_state"]

_VERSION = 1


class SnapshotError(ValueError):
    """Stored bytes that are not a conversation state of a known version."""


@dataclass(frozen=True, slots=True)
class ConversationState:
    """Everything needed to continue a conversation on any replica.

    Attributes:
        session_id: the conversation's id (kept across resumes).
        owner: the API key id that started it (``"anonymous"`` without keys).
        token_sha256: hex SHA-256 of the current resume token (the token itself is never stored).
        config: the serialised ``SessionConfig`` the conversation started with.
        history: what was said, truncated to what the user heard.
        turn_count: assistant turns so far (the next one is ``t{turn_count + 1}``).
        user_turn: user turns so far.
        saved_at: wall-clock seconds of the save (set by the runtime).
    """

    session_id: str
    owner: str
    token_sha256: str
    config: bytes
    history: tuple[Message, ...] = ()
    turn_count: int = 0
    user_turn: int = 0
    saved_at: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def encode_state(state: ConversationState) -> bytes:
    """The bytes a `Store` keeps for ``state``."""
    return json.dumps(
        {
            "v": _VERSION,
            "session_id": state.session_id,
            "owner": state.owner,
            "token_sha256": state.token_sha256,
            "config": base64.b64encode(state.config).decode(),
            "history": [[m.role.value, m.text] for m in state.history],
            "turn_count": state.turn_count,
            "user_turn": state.user_turn,
            "saved_at": state.saved_at,
            "extra": state.extra,
        },
        separators=(",", ":"),
    ).encode()


def decode_state(data: bytes) -> ConversationState:
    """The state in ``data``. Raises `SnapshotError` for anything else."""
    try:
        raw = json.loads(data)
        if raw.get("v") != _VERSION:
            raise SnapshotError(f"unknown state version {raw.get('v')!r}")
        return ConversationState(
            session_id=str(raw["session_id"]),
            owner=str(raw["owner"]),
            token_sha256=str(raw["token_sha256"]),
            config=base64.b64decode(raw["config"], validate=True),
            history=tuple(Message(Role(role), str(text)) for role, text in raw["history"]),
            turn_count=int(raw["turn_count"]),
            user_turn=int(raw["user_turn"]),
            saved_at=float(raw["saved_at"]),
            extra=dict(raw.get("extra") or {}),
        )
    except SnapshotError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise SnapshotError(f"not a conversation state: {type(error).__name__}") from None
