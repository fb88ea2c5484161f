"""What the ``sonicwire`` command prints: event lines for people (with a progress line on a
terminal) or JSON lines for scripts, and plain tables. Kept apart from the commands
(:mod:`.cli`) so each reads on its own: the commands decide what happens, this module only
how it looks.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

from google.protobuf import json_format

from .events import (
    AudioOutput,
    Event,
    GoingAway,
    Interruption,
    Resumed,
    SessionStarted,
    SpeechActivity,
    ToolCall,
    ToolCallResult,
    Transcript,
    TurnComplete,
    Usage,
    Warning,
)

__all__ = ["Output", "event_record", "print_table"]


class Output:
    """Prints event lines (human or JSON) with timings, and a progress line on a TTY."""

    def __init__(self, *, json_mode: bool, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self.json_mode = json_mode
        self.start = time.monotonic()
        self.progress_enabled = not json_mode and self.stream.isatty()
        self._progress_shown = False
        self._audio_turns: set[str] = set()
        self.reply_ms = 0
        self.sent_ms = 0
        self.total_ms = 0
        self.out_rate = 16000

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def _clear_progress(self) -> None:
        if self._progress_shown:
            self.stream.write("\r\x1b[K")
            self._progress_shown = False

    def _draw_progress(self) -> None:
        if not self.progress_enabled or not self.total_ms:
            return
        width = 24
        done = min(self.sent_ms / self.total_ms, 1.0)
        bar = "#" * round(done * width) + "-" * (width - round(done * width))
        self.stream.write(
            f"\r\x1b[K[{self.elapsed():7.3f}s] sending [{bar}] "
            f"{self.sent_ms / 1000:.1f}/{self.total_ms / 1000:.1f} s   "
            f"reply {self.reply_ms / 1000:.1f} s"
        )
        self.stream.flush()
        self._progress_shown = True

    def progress(self, sent_ms: int, total_ms: int) -> None:
        # Redraw every 100 ms of audio, not every 20 ms chunk.
        if sent_ms // 100 != self.sent_ms // 100 or sent_ms == total_ms:
            self.sent_ms, self.total_ms = sent_ms, total_ms
            self._draw_progress()
        self.sent_ms, self.total_ms = sent_ms, total_ms

    def line(self, text: str) -> None:
        self._clear_progress()
        print(f"[{self.elapsed():7.3f}s] {text}", file=self.stream, flush=True)
        self._draw_progress()

    def record(self, record: dict[str, Any]) -> None:
        self._clear_progress()
        payload = {"t": round(self.elapsed(), 3), **record}
        print(json.dumps(payload, separators=(",", ":")), file=self.stream, flush=True)

    def finish(self) -> None:
        self._clear_progress()
        self.progress_enabled = False

    def event(self, event: Event) -> None:
        if isinstance(event, SessionStarted):
            self.out_rate = event.output_sample_rate_hz
        elif isinstance(event, AudioOutput):
            self.reply_ms += len(event.audio) * 1000 // 2 // self.out_rate
        if self.json_mode:
            self.record(event_record(event))
            return
        text = self._describe(event)
        if text is not None:
            self.line(text)
        elif self._progress_shown:
            self._draw_progress()

    def _describe(self, event: Event) -> str | None:
        match event:
            case SessionStarted():
                tools = ",".join(event.tools) or "-"
                return f"session {event.session_id} backend={event.backend} tools={tools}"
            case AudioOutput(turn_id=turn_id):
                if turn_id in self._audio_turns:
                    return None
                self._audio_turns.add(turn_id)
                return f"assistant audio started (turn {turn_id})"
            case Transcript():
                who = "you" if event.role.name == "USER" else event.role.name.lower()
                mark = "" if event.final else " …"
                return f"{who}: {event.text}{mark}"
            case SpeechActivity():
                what = "started" if event.started else "stopped"
                return f"speech {what} at {event.offset_ms / 1000:.2f} s"
            case Interruption():
                return (
                    f"interrupted turn {event.turn_id} after {event.played_ms} ms "
                    f"({event.source.name.lower()})"
                )
            case ToolCall():
                return (
                    f"tool call {event.name} {event.arguments_json or '{}'} "
                    f"({event.executor.name.lower()})"
                )
            case ToolCallResult():
                return (
                    f"tool result {event.name}: {event.status.name.lower()} in "
                    f"{event.duration_ms} ms {event.result_json}"
                )
            case TurnComplete():
                latency = event.latency.first_audio_ms
                extra = f", first audio after {latency} ms" if latency else ""
                return (
                    f"turn {event.turn_id} complete: {event.stop_reason.name.lower()}, "
                    f"{event.audio_ms / 1000:.1f} s of audio{extra}"
                )
            case Usage():
                return (
                    f"usage: {event.input_tokens} in, {event.output_tokens} out, "
                    f"{event.total_tokens} total tokens"
                )
            case GoingAway():
                return f"server going away: {event.reason} (grace {event.grace_ms} ms)"
            case Resumed():
                return (
                    f"resumed session {event.session_id} on a new stream ({event.reason}, "
                    f"attempt {event.attempt}): {event.audio_resent_ms} ms of microphone "
                    f"audio sent again, {event.audio_lost_ms} ms lost"
                )
            case Warning():
                return f"warning {event.reason}: {event.message}"
            case _:
                return None


def _jsonable(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def event_record(event: Event) -> dict[str, Any]:
    """A JSON-ready dict for an event: ``type`` plus its fields (audio as a byte count)."""
    record: dict[str, Any] = {"type": _snake(type(event).__name__)}
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        if f.name == "audio" and isinstance(value, bytes):
            record["audio_bytes"] = len(value)
        elif f.name == "config":
            record["config"] = json_format.MessageToDict(value)
        elif f.name == "session":
            continue  # Resumed.session repeats the SessionStarted the stream began with
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            record[f.name] = _jsonable(dataclasses.asdict(value))
        else:
            record[f.name] = _jsonable(value)
    return record


def print_table(rows: Sequence[Sequence[str]], stream: TextIO) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
        print("  ".join(cells).rstrip(), file=stream)
