"""Conversation history: what was said, as the user heard it.

Used by the session (for transcripts of interrupted turns) and by backends that must replay the
conversation into a fresh model session (Nova Sonic continuation, reconnects).
"""

from __future__ import annotations

from dataclasses import dataclass

from sonicwire.server.core.events import Role

__all__ = ["History", "Message", "truncate_to_heard"]


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    text: str


class History:
    """An append-only list of messages; consecutive messages of one role are merged."""

    def __init__(self, messages: list[Message] | None = None) -> None:
        self._messages: list[Message] = []
        for message in messages or []:
            self.add(message.role, message.text)

    def add(self, role: Role, text: str) -> None:
        text = text.strip()
        if not text:
            return
        if self._messages and self._messages[-1].role is role:
            merged = f"{self._messages[-1].text} {text}"
            self._messages[-1] = Message(role, merged)
        else:
            self._messages.append(Message(role, text))

    def replace_last_assistant(self, text: str) -> None:
        """Replace the last assistant message (after a barge-in cut it short)."""
        for index in range(len(self._messages) - 1, -1, -1):
            if self._messages[index].role is Role.ASSISTANT:
                if text.strip():
                    self._messages[index] = Message(Role.ASSISTANT, text.strip())
                else:
                    del self._messages[index]
                return

    @property
    def messages(self) -> tuple[Message, ...]:
        return tuple(self._messages)

    def __len__(self) -> int:
        return len(self._messages)


def truncate_to_heard(text: str, played_ms: int, total_ms: int) -> str:
    """Cut ``text`` to the share of it the user heard, at a word boundary.

    Speech rate is close enough to uniform over a sentence that the played fraction of the
    audio is a fair estimate of the fraction of words heard.
    """
    if total_ms <= 0 or played_ms >= total_ms:
        return text
    if played_ms <= 0:
        return ""
    words = text.split()
    heard = round(len(words) * played_ms / total_ms)
    return " ".join(words[:heard])
