"""Nova Sonic's output events -> Sonicwire's core events. Pure: no I/O, no clock, no SDK.

The output half of the protocol (``codec.py`` builds the input events). An `OutputDecoder`
per stream: feed it every parsed event (`decode_json` parses one output chunk) with `decode`;
it returns the core events to hand to the session (zero, one or several). It also tracks
whether an assistant turn is open, because Nova spreads one spoken answer over many content
blocks and the core must hear ``AssistantTurnEnded`` exactly once, when the turn is over.

Nova's output order for one answer (per sentence, possibly several sentences)::

    USER TEXT FINAL (transcript) -> [TOOL (toolUse)] -> ASSISTANT TEXT SPECULATIVE
    -> ASSISTANT AUDIO -> ASSISTANT TEXT FINAL -> ... -> usageEvent / completionEnd

The turn is over when an assistant block ended with END_TURN and every SPECULATIVE block has
had its FINAL counterpart (or at ``completionEnd``, or when the user's next transcript starts).
Barge-in is an assistant ``textOutput`` of ``{ "interrupted" : true }`` and/or a
``contentEnd`` with ``stopReason`` INTERRUPTED.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass
from typing import Any

from sonicwire.server.core import events as ev

__all__ = ["OutputDecoder", "decode_json", "tool_arguments"]

_log = logging.getLogger(__name__)


def tool_arguments(content: Any) -> str:
    """A toolUse's ``content`` as JSON text. Nova 1 has been seen sending an object, and Nova
    sometimes double-encodes (a JSON string whose text is JSON): both are normalized to the
    JSON object text the tool's schema validation expects."""
    if not isinstance(content, str):
        return json.dumps(content, ensure_ascii=False)
    try:
        value = json.loads(content)
    except ValueError:
        return content  # not JSON: the tool layer reports it as invalid arguments
    if isinstance(value, str):
        try:
            inner = json.loads(value)
        except ValueError:
            return content
        if isinstance(inner, dict):
            return value
    return content


def decode_json(data: bytes) -> dict[str, Any] | None:
    """Parse one output chunk; None (and a debug log) for anything that is not a JSON object."""
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        _log.debug("nova: undecodable output chunk of %d bytes", len(data))
        return None
    return value if isinstance(value, dict) else None


@dataclass(slots=True)
class _Block:
    kind: str  # TEXT | AUDIO | TOOL
    role: str  # USER | ASSISTANT | TOOL
    stage: str  # FINAL | SPECULATIVE


def _stage(fields: dict[str, Any]) -> str:
    extra = fields.get("additionalModelFields")
    if isinstance(extra, str):
        try:
            parsed = json.loads(extra)
        except ValueError:
            return "FINAL"
        if isinstance(parsed, dict):
            return str(parsed.get("generationStage", "FINAL")).upper()
    return "FINAL"


def _is_interrupted_marker(text: str) -> bool:
    stripped = text.strip()
    if not stripped.startswith("{"):
        return False
    try:
        value = json.loads(stripped)
    except ValueError:
        return False
    return isinstance(value, dict) and value.get("interrupted") is True


class OutputDecoder:
    """Turns one stream's Nova output events into core events (see the module docstring).

    Call `decode` for each event; `cancel_response` when the core reports a barge-in;
    `turn_open` / `close_turn` when the stream is abandoned mid-turn (continuation).
    """

    def __init__(self, output_sample_rate: int) -> None:
        self._rate = output_sample_rate
        self._blocks: dict[str, _Block] = {}
        self._current: _Block | None = None
        self._turn_open = False
        self._end_seen = False
        self._speculative = 0
        self._final = 0
        # After a barge-in, what Nova still sends of the cut answer is dropped until the
        # user's next turn starts.
        self._suppressing = False
        self.usage: tuple[int, int, int] = (0, 0, 0)

    @property
    def turn_open(self) -> bool:
        """True while an assistant answer has started and not ended."""
        return self._turn_open

    def decode(self, event: dict[str, Any]) -> list[ev.BackendEvent]:
        body = event.get("event")
        if not isinstance(body, dict) or len(body) != 1:
            _log.debug("nova: ignoring malformed output event %.200r", event)
            return []
        ((name, fields),) = body.items()
        if not isinstance(fields, dict):
            fields = {}
        match name:
            case "contentStart":
                return self._content_start(fields)
            case "textOutput":
                return self._text(fields)
            case "audioOutput":
                return self._audio(fields)
            case "toolUse":
                return self._tool(fields)
            case "contentEnd":
                return self._content_end(fields)
            case "completionEnd":
                return self.close_turn(ev.StopReason.END_TURN)
            case "usageEvent":
                return self._usage(fields)
            case "completionStart":
                return []
            case _:
                _log.debug("nova: ignoring output event %r", name)
                return []

    def _content_start(self, fields: dict[str, Any]) -> list[ev.BackendEvent]:
        block = _Block(
            str(fields.get("type", "")).upper(),
            str(fields.get("role", "")).upper(),
            _stage(fields),
        )
        content_id = str(fields.get("contentId", ""))
        self._blocks[content_id] = block
        self._current = block
        out: list[ev.BackendEvent] = []
        if block.role == "USER":
            # The user's next turn: whatever answer was open is over, and a cut answer's
            # leftovers can no longer arrive.
            out += self.close_turn(ev.StopReason.END_TURN)
            self._suppressing = False
        elif block.role == "ASSISTANT" and not self._suppressing:
            self._turn_open = True
            if block.kind == "TEXT" and block.stage == "SPECULATIVE":
                self._speculative += 1
        return out

    def _block(self, fields: dict[str, Any]) -> _Block:
        block = self._blocks.get(str(fields.get("contentId", "")), self._current)
        if block is None:
            role = str(fields.get("role", "ASSISTANT")).upper()
            block = _Block("TEXT", role, "FINAL")
        return block

    def _text(self, fields: dict[str, Any]) -> list[ev.BackendEvent]:
        block = self._block(fields)
        text = str(fields.get("content", ""))
        role = str(fields.get("role", block.role)).upper()
        if role == "USER":
            return [ev.UserTranscript(text, block.stage != "SPECULATIVE")] if text else []
        if _is_interrupted_marker(text):
            return self._interrupted()
        if self._suppressing or not text:
            return []
        self._turn_open = True
        return [ev.AssistantText(text, block.stage != "SPECULATIVE")]

    def _audio(self, fields: dict[str, Any]) -> list[ev.BackendEvent]:
        if self._suppressing:
            return []
        try:
            pcm = base64.b64decode(str(fields.get("content", "")), validate=True)
        except ValueError:
            _log.debug("nova: ignoring audioOutput with invalid base64")
            return []
        if not pcm:
            return []
        self._turn_open = True
        return [ev.AssistantAudio(pcm, self._rate)]

    def _tool(self, fields: dict[str, Any]) -> list[ev.BackendEvent]:
        arguments = tool_arguments(fields.get("content", "{}"))
        self._suppressing = False
        self._turn_open = True
        return [
            ev.ToolRequested(
                str(fields.get("toolUseId", "")), str(fields.get("toolName", "")), arguments
            )
        ]

    def _content_end(self, fields: dict[str, Any]) -> list[ev.BackendEvent]:
        block = self._blocks.pop(str(fields.get("contentId", "")), None) or self._current
        self._current = None
        reason = str(fields.get("stopReason", "")).upper()
        if block is None or block.role != "ASSISTANT":
            return []
        if reason == "INTERRUPTED":
            return self._interrupted()
        if self._suppressing:
            return []
        if block.kind == "TEXT" and block.stage == "FINAL":
            self._final += 1
        if reason == "END_TURN":
            self._end_seen = True
        if self._end_seen and self._final >= self._speculative:
            return self.close_turn(ev.StopReason.END_TURN)
        return []

    def _interrupted(self) -> list[ev.BackendEvent]:
        if self._suppressing:
            return []  # one barge-in, however many ways Nova reports it
        self._suppressing = True
        self._reset_turn()
        return [ev.AssistantInterrupted()]

    def _usage(self, fields: dict[str, Any]) -> list[ev.BackendEvent]:
        def number(key: str) -> int:
            value = fields.get(key, 0)
            return int(value) if isinstance(value, int | float) else 0

        self.usage = (
            number("totalInputTokens"),
            number("totalOutputTokens"),
            number("totalTokens"),
        )
        return [ev.UsageReported(*self.usage)]

    def user_turn_sent(self) -> None:
        """A typed turn or a tool result went to Nova: whatever Nova says next answers it.

        Neither produces a USER contentStart, so without this the answer to it would still be
        suppressed as leftovers of an earlier cut answer until the user speaks.
        """
        self._suppressing = False

    def cancel_response(self) -> list[ev.BackendEvent]:
        """The core cut the answer short (server-side barge-in): drop the rest of it.

        Returns ``AssistantTurnEnded(INTERRUPTED)`` if an answer was open, so the core stops
        waiting for it; nothing if Nova had already finished generating it.
        """
        if not self._turn_open:
            return []
        self._suppressing = True
        self._reset_turn()
        return [ev.AssistantTurnEnded(ev.StopReason.INTERRUPTED)]

    def close_turn(self, reason: ev.StopReason) -> list[ev.BackendEvent]:
        """End the open assistant turn, if any, with ``reason``."""
        if not self._turn_open:
            return []
        self._reset_turn()
        return [ev.AssistantTurnEnded(reason)]

    def _reset_turn(self) -> None:
        self._turn_open = False
        self._end_seen = False
        self._speculative = 0
        self._final = 0
