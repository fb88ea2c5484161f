"""Scriptable in-process backends for tests (STYLE: test helpers are part of the code base).

`ToolCallingBackend` turns a typed user turn of the form ``call NAME {json arguments}`` into a
tool call, then speaks the tool's result: enough to drive tool round trips end to end over a
real gRPC stream without a model.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator

from sonicwire.server.backends.base import BackendOptions, VoiceInfo
from sonicwire.server.core import events as ev

__all__ = ["ToolCallingBackend", "ToolCallingSession"]

_ids = itertools.count(1)


class ToolCallingSession:
    def __init__(self, options: BackendOptions) -> None:
        self.options = options
        self.commands: list[ev.BackendCommand] = []
        self._events: asyncio.Queue[ev.BackendEvent | None] = asyncio.Queue()
        self._open_calls = 0

    async def send(self, command: ev.BackendCommand) -> None:
        if not isinstance(command, ev.SendAudio):
            self.commands.append(command)
        match command:
            case ev.SendText(text) if text.startswith("call "):
                name, _, arguments = text[5:].partition(" ")
                call_id = f"call-{next(_ids)}"
                self._open_calls += 1
                self._events.put_nowait(ev.AssistantText(f"Calling {name}.", False))
                self._events.put_nowait(ev.ToolRequested(call_id, name, arguments or "{}"))
            case ev.SendText(text):
                self._events.put_nowait(ev.AssistantText(f"You said: {text}", True))
                self._events.put_nowait(ev.AssistantTurnEnded(ev.StopReason.END_TURN))
            case ev.SendToolResult(call_id, name, result_json, status):
                self._open_calls -= 1
                reply = json.dumps({"tool": name, "status": status.value, "result": result_json})
                self._events.put_nowait(ev.AssistantText(reply, True))
                if not self._open_calls:
                    self._events.put_nowait(ev.AssistantTurnEnded(ev.StopReason.END_TURN))
            case ev.EndSession():
                self._events.put_nowait(None)

    async def events(self) -> AsyncIterator[ev.BackendEvent]:
        while (event := await self._events.get()) is not None:
            yield event

    async def aclose(self) -> None:
        self._events.put_nowait(None)


class ToolCallingBackend:
    name = "tool-calling-test"

    def __init__(self) -> None:
        self.sessions: list[ToolCallingSession] = []

    def voices(self) -> list[VoiceInfo]:
        return [VoiceInfo("test", "en-US", default=True)]

    async def open(self, options: BackendOptions) -> ToolCallingSession:
        session = ToolCallingSession(options)
        self.sessions.append(session)
        return session

    async def aclose(self) -> None:
        return None
