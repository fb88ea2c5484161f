"""Scriptable in-process backends for fault injection (they implement ``backends/base.py``).

`ScriptedBackend` opens one `ScriptedSession` per conversation. A session records every
command the server sent it (audio bytes separately, in order) and yields whatever the test
pushes: backend events, an exception to raise from the events iterator, or the end. Behaviour
on commands comes from a `Script`:

* `Replies`: answers typed text like the echo backend ("You said: ...") and otherwise waits
  for the test to push events (`ScriptedSession.push`, `fail_with`, `finish`);
* `Hang`: never answers anything and ignores `EndSession` (a backend stuck mid-stream);
* `Flood`: answers ``flood`` with an endless stream of transcript events, as fast as the loop
  allows (a backend far faster than the client reads);
* `Burst`: answers ``burst`` with a finite turn far larger than a flow-control window, at once,
  and optionally ends its events stream right after it (a backend that ends the session).

`HangingOpenBackend.open` never returns (a backend whose connect hangs).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from sonicwire.server.backends.base import BackendOptions, VoiceInfo
from sonicwire.server.core import events as ev

__all__ = [
    "Burst",
    "Flood",
    "Hang",
    "HangingOpenBackend",
    "Replies",
    "Script",
    "ScriptedBackend",
    "ScriptedSession",
]

_END = object()


class Script:
    """What a session does when a command arrives (default: nothing)."""

    def on_command(self, session: ScriptedSession, command: ev.BackendCommand) -> None:
        if isinstance(command, ev.EndSession):
            session.finish()


class Replies(Script):
    """Typed text gets an immediate reply; audio is only recorded.

    With ``close_on_end=False`` the session answers but never ends its events stream, even
    after `EndSession` (a backend that does not close its side).
    """

    def __init__(self, *, close_on_end: bool = True) -> None:
        self.close_on_end = close_on_end

    def on_command(self, session: ScriptedSession, command: ev.BackendCommand) -> None:
        match command:
            case ev.SendText(text):
                session.push(ev.AssistantText(f"You said: {text}", True))
                session.push(ev.AssistantTurnEnded(ev.StopReason.END_TURN))
            case ev.EndSession() if self.close_on_end:
                session.finish()


class Hang(Script):
    """Never answers, never ends: not even `EndSession` closes the events stream."""

    def on_command(self, session: ScriptedSession, command: ev.BackendCommand) -> None:
        return None


class Flood(Script):
    """``flood`` starts an endless burst of 1 KB interim transcripts (one per ``pace_s`` if
    given: a backend that produces steadily rather than as fast as the loop runs)."""

    TEXT = "x" * 1024

    def __init__(self, pace_s: float = 0.0) -> None:
        self.pace_s = pace_s

    def on_command(self, session: ScriptedSession, command: ev.BackendCommand) -> None:
        match command:
            case ev.SendText("flood"):
                session.flooding = True
                session.wake()
            case ev.EndSession():
                session.finish()


class Burst(Script):
    """``burst`` gets ``count`` interim transcripts of ``size`` characters and the end of the
    turn, all at once; with ``end_session`` the events stream then ends (the backend closed the
    session on its own), otherwise it ends on `EndSession`."""

    def __init__(self, count: int = 1000, size: int = 16384, *, end_session: bool = False) -> None:
        self.count = count
        self.text = "x" * size
        self.end_session = end_session

    def on_command(self, session: ScriptedSession, command: ev.BackendCommand) -> None:
        match command:
            case ev.SendText("burst"):
                for _ in range(self.count):
                    session.push(ev.AssistantText(self.text, False))
                session.push(ev.AssistantTurnEnded(ev.StopReason.END_TURN))
                if self.end_session:
                    session.finish()
            case ev.EndSession():
                session.finish()


class ScriptedSession:
    """One conversation: records commands, yields what the test or the script pushes."""

    def __init__(self, options: BackendOptions, script: Script) -> None:
        self.options = options
        self.script = script
        self.commands: list[ev.BackendCommand] = []
        self.audio = bytearray()
        self.closed = asyncio.Event()
        self.flooding = False
        self.flooded = 0
        self.events_ended = False  # the events stream ended (the backend closed its side)
        self._queue: asyncio.Queue[object] = asyncio.Queue()

    # --- the test's side --------------------------------------------------------------------

    def push(self, event: ev.BackendEvent) -> None:
        """Yield ``event`` from `events` next."""
        self._queue.put_nowait(event)

    def fail_with(self, error: BaseException) -> None:
        """Raise ``error`` from the events iterator (a connection dropped, a bug)."""
        self._queue.put_nowait(error)

    def finish(self) -> None:
        """End the events iterator (the backend closed its stream)."""
        self._queue.put_nowait(_END)

    def wake(self) -> None:
        self._queue.put_nowait(None)

    @property
    def ended_by_server(self) -> bool:
        return any(isinstance(c, ev.EndSession) for c in self.commands)

    # --- BackendSession ---------------------------------------------------------------------

    async def send(self, command: ev.BackendCommand) -> None:
        if isinstance(command, ev.SendAudio):
            self.audio += command.pcm
        else:
            self.commands.append(command)
        self.script.on_command(self, command)

    async def events(self) -> AsyncIterator[ev.BackendEvent]:
        while True:
            if self.flooding and self._queue.empty():
                self.flooded += 1
                yield ev.AssistantText(Flood.TEXT, False)
                if pace_s := getattr(self.script, "pace_s", 0.0):
                    await asyncio.sleep(pace_s)
                elif self.flooded % 50 == 0:
                    await asyncio.sleep(0)  # let the rest of the server run
                continue
            item = await self._queue.get()
            if item is _END:
                self.events_ended = True
                return
            if isinstance(item, BaseException):
                raise item
            if item is not None:
                yield item  # type: ignore[misc]

    async def aclose(self) -> None:
        self.flooding = False
        self.closed.set()
        self.finish()


class ScriptedBackend:
    """A backend whose sessions follow ``script``; ``sessions`` lists them in order."""

    name = "scripted"

    def __init__(self, script: Script | None = None) -> None:
        self.script = script or Replies()
        self.sessions: list[ScriptedSession] = []
        self.opened = asyncio.Event()

    def voices(self) -> list[VoiceInfo]:
        return [VoiceInfo("test", "en-US", default=True)]

    async def open(self, options: BackendOptions) -> ScriptedSession:
        session = ScriptedSession(options, self.script)
        self.sessions.append(session)
        self.opened.set()
        return session

    async def aclose(self) -> None:
        return None


class HangingOpenBackend(ScriptedBackend):
    """`open` never returns; ``opening`` counts calls in progress."""

    def __init__(self) -> None:
        super().__init__()
        self.opening = 0
        self.cancelled = 0

    async def open(self, options: BackendOptions) -> ScriptedSession:
        self.opening += 1
        self.opened.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.opening -= 1
        raise AssertionError("unreachable")
