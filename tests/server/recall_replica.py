"""A real `sonicwire serve` replica whose echo backend shows what it remembers.

Run as a script by tests/server/test_multi_replica.py: the command line is the server's own
(`sonicwire serve` flags, signals, drain, state store); only the backend differs. Typed text is
answered with the replica's name and every earlier user turn the backend was given (resumed
history plus this stream's turns), so a client can check that a resumed conversation's history
is intact and see which replica served each stream.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from sonicwire.server import app
from sonicwire.server.backends.base import BackendOptions
from sonicwire.server.backends.echo import EchoBackend, EchoSession
from sonicwire.server.cli import main
from sonicwire.server.core import events as ev
from sonicwire.server.core.events import Role

__all__ = ["RecallBackend", "parse_reply"]

SEPARATOR = "|"


class RecallSession(EchoSession):
    def __init__(self, options: BackendOptions, replica: str) -> None:
        super().__init__(options)
        self._replica = replica
        self._said = [m.text for m in options.history if m.role is Role.USER]

    def _reply_text(self, text: str) -> None:
        before = SEPARATOR.join(self._said)
        self._said.append(text)
        self._events.put_nowait(
            ev.AssistantText(f"replica={self._replica};said={text};before={before}", True)
        )
        self._events.put_nowait(ev.AssistantTurnEnded(ev.StopReason.END_TURN))


class RecallBackend(EchoBackend):
    def __init__(self, replica: str) -> None:
        super().__init__()
        self.replica = replica

    async def open(self, options: BackendOptions) -> RecallSession:
        return RecallSession(options, self.replica)


def parse_reply(text: str) -> tuple[str, str, list[str]]:
    """(replica, said, earlier user turns) from a `RecallSession` reply."""
    fields = dict(part.split("=", 1) for part in text.split(";"))
    before = fields["before"].split(SEPARATOR) if fields["before"] else []
    return fields["replica"], fields["said"], before


def _backend(_name: str, **_options: Any) -> RecallBackend:
    return RecallBackend(os.environ["SONICWIRE_TEST_REPLICA"])


if __name__ == "__main__":
    app.create_backend = _backend  # type: ignore[assignment]
    sys.exit(main(sys.argv[1:]))
