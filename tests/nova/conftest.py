"""Helpers for the Nova Sonic tests: the fake endpoint, counted audio frames, event collection."""

from __future__ import annotations

import asyncio
import json
import re
import struct
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from sonicwire.server.backends.base import BackendOptions
from sonicwire.server.backends.nova_sonic.backend import NovaSonicBackend
from sonicwire.server.backends.nova_sonic.connection import NovaSonicSession
from sonicwire.server.core import events as ev
from sonicwire.server.testing.fake_bedrock import FakeBedrock, RecordedEvent
from tests.golden import updating_golden

GOLDEN = Path(__file__).parent / "golden"
FRAME_SAMPLES = 320  # 20 ms at 16 kHz
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def frame(counter: int) -> bytes:
    """A 20 ms frame whose every sample is ``counter + 1`` (so frames can be counted)."""
    return struct.pack("<h", counter + 1) * FRAME_SAMPLES


def counters(chunks: Iterable[bytes]) -> list[int]:
    """The counters of frames received as audioInput chunks (one frame per chunk)."""
    out = []
    for chunk in chunks:
        assert len(chunk) == FRAME_SAMPLES * 2, f"unexpected chunk of {len(chunk)} bytes"
        (value,) = struct.unpack_from("<h", chunk)
        assert chunk == struct.pack("<h", value) * FRAME_SAMPLES, "frame was altered"
        out.append(value - 1)
    return out


class Collector:
    """Reads a session's events in the background; tests wait for what they expect."""

    def __init__(self, session: NovaSonicSession) -> None:
        self.session = session
        self.events: list[ev.BackendEvent] = []
        self.ended = False
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for event in self.session.events():
            self.events.append(event)
            self._changed.set()
        self.ended = True
        self._changed.set()

    async def wait(
        self, predicate: Callable[[list[ev.BackendEvent]], bool], timeout: float = 10
    ) -> None:
        async with asyncio.timeout(timeout):
            while not predicate(self.events):
                if self.ended:
                    raise AssertionError(f"events ended early: {self.events!r}")
                self._changed.clear()
                await self._changed.wait()

    async def wait_for(self, kind: type, count: int = 1, timeout: float = 10) -> list[Any]:
        await self.wait(lambda es: sum(isinstance(e, kind) for e in es) >= count, timeout)
        return [e for e in self.events if isinstance(e, kind)]

    async def wait_end(self, timeout: float = 10) -> None:
        async with asyncio.timeout(timeout):
            await self._task

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


async def open_session(
    fake: FakeBedrock, options: BackendOptions | None = None, **backend_options: Any
) -> tuple[NovaSonicBackend, NovaSonicSession, Collector]:
    # Retries back off for milliseconds, not seconds, in tests.
    defaults = {"retry_backoff_s": 0.01}
    backend = NovaSonicBackend.from_options(
        **{**defaults, **fake.backend_options(), **backend_options}
    )
    session = await backend.open(options or BackendOptions(session_id="test"))
    return backend, session, Collector(session)


async def send_frames(session: NovaSonicSession, start: int, count: int, pace: float = 0.0) -> int:
    """Send ``count`` counted frames from ``start``; returns the next counter."""
    for i in range(start, start + count):
        await session.send(ev.SendAudio(frame(i)))
        await asyncio.sleep(pace)
    return start + count


def normalized(events: Iterable[RecordedEvent]) -> list[dict[str, Any]]:
    """Recorded events with UUID names numbered by first appearance and audio summarized."""
    names: dict[str, str] = {}

    def fix(value: Any) -> Any:
        if isinstance(value, str):
            return _UUID.sub(
                lambda m: names.setdefault(m.group(0), f"name-{len(names) + 1}"), value
            )
        if isinstance(value, dict):
            return {k: fix(v) for k, v in value.items()}
        if isinstance(value, list):
            return [fix(v) for v in value]
        return value

    out = []
    for event in events:
        body = fix(event.body)
        if event.name == "audioInput":
            body["content"] = f"<{len(body['content'])} base64 chars>"
        out.append({"stream": event.stream, event.name: body})
    return out


def check_golden(name: str, lines: list[dict[str, Any]]) -> None:
    """Compare with ``golden/<name>``; SONICWIRE_UPDATE_GOLDEN=1 rewrites it."""
    path = GOLDEN / name
    text = "".join(json.dumps(line, sort_keys=True) + "\n" for line in lines)
    if updating_golden():
        path.write_text(text)
    assert path.exists(), f"missing golden file {path}; run with SONICWIRE_UPDATE_GOLDEN=1"
    assert text.splitlines() == path.read_text().splitlines()


async def assert_no_leaked_tasks() -> None:
    """Every task but the caller's is finished (give callbacks one loop turn first)."""
    for _ in range(3):
        await asyncio.sleep(0)
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert not others, f"leaked tasks: {[t.get_name() for t in others]}"
