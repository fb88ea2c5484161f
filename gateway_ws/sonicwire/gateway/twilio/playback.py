"""The call's outbound side, with no I/O: assistant audio -> 20 ms ``media`` frames and marks;
marks echoed by Twilio -> playback positions; an interruption -> ``clear``.

    out = Playback(stream_sid)
    messages = out.audio("t1", mulaw, offset_ms=0)   # media frames, then one mark
    messages = out.turn_complete("t1")               # the padded last frame and its mark
    position = out.mark_played("t1:120")             # ("t1", 120): report as PlaybackUpdate
    messages = out.interrupt("t1")                   # [clear]; pending marks are void

Twilio plays a ``mark`` back when everything sent before it has been played, and returns every
pending mark at once when a ``clear`` drops the audio before them; those marks say nothing
about what was heard, so `interrupt` voids them and `mark_played` ignores their echoes.
"""

from __future__ import annotations

from collections import OrderedDict

from .codec import clear_message, mark_message, media_message

__all__ = ["FRAME_BYTES", "FRAME_MS", "MULAW_SILENCE", "Playback"]

FRAME_MS = 20
FRAME_BYTES = 160  # 20 ms of 8 kHz mu-law, what Twilio itself sends
MULAW_SILENCE = 0xFF  # mu-law code of linear 0
_BYTES_PER_MS = 8
_MAX_PENDING_MARKS = 4096  # ~80 s of 20 ms chunks: more means Twilio stopped echoing


class Playback:
    """Framing and mark bookkeeping of one call's assistant audio."""

    def __init__(self, stream_sid: str) -> None:
        self.stream_sid = stream_sid
        self._turn_id = ""
        self._residual = b""  # the last partial frame of the current turn
        self._sent_ms = 0  # end offset (ms in the turn) of what has been framed so far
        self._pending: OrderedDict[str, tuple[str, int]] = OrderedDict()
        self._interrupted: set[str] = set()
        self.frames_sent = 0
        self.marks_sent = 0
        self.clears_sent = 0

    @property
    def pending_marks(self) -> int:
        """Marks sent and not yet echoed."""
        return len(self._pending)

    def audio(self, turn_id: str, mulaw: bytes, offset_ms: int) -> list[str]:
        """Frame one chunk of a turn; returns its ``media`` messages and one ``mark``."""
        if turn_id in self._interrupted or not mulaw:
            return []  # audio of a cut turn that was already in flight
        messages: list[str] = []
        if turn_id != self._turn_id:
            messages += self._flush()
            self._turn_id = turn_id
            self._residual = b""
        data = self._residual + mulaw
        whole = len(data) - len(data) % FRAME_BYTES
        for start in range(0, whole, FRAME_BYTES):
            messages.append(media_message(self.stream_sid, data[start : start + FRAME_BYTES]))
        self.frames_sent += whole // FRAME_BYTES
        self._residual = data[whole:]
        self._sent_ms = offset_ms + len(mulaw) // _BYTES_PER_MS - len(self._residual) // 8
        if whole:
            messages.append(self._mark(turn_id, self._sent_ms))
        return messages

    def turn_complete(self, turn_id: str) -> list[str]:
        """The turn's last partial frame, padded with silence to 20 ms, and its mark."""
        if turn_id != self._turn_id:
            return []
        return self._flush()

    def interrupt(self, turn_id: str) -> list[str]:
        """Stop playback now: ``clear``, and forget the turn's unsent audio and pending marks."""
        if len(self._interrupted) >= 64:
            self._interrupted.clear()  # old turns never send audio again; keep the set small
        self._interrupted.add(turn_id)
        self._residual = b""
        self._pending.clear()
        self.clears_sent += 1
        return [clear_message(self.stream_sid)]

    def mark_played(self, name: str) -> tuple[str, int] | None:
        """The (turn id, played ms) a mark echo reports, or None for a void or unknown mark.

        Twilio echoes marks in order, so an echo also settles every mark sent before it.
        """
        if name not in self._pending:
            return None
        while self._pending:
            key, position = self._pending.popitem(last=False)
            if key == name:
                return position
        return None  # pragma: no cover - the name was present

    def _flush(self) -> list[str]:
        if not self._residual:
            return []
        padding = bytes([MULAW_SILENCE]) * (FRAME_BYTES - len(self._residual))
        frame = self._residual + padding
        self._residual = b""
        self.frames_sent += 1
        self._sent_ms += FRAME_MS
        return [media_message(self.stream_sid, frame), self._mark(self._turn_id, self._sent_ms)]

    def _mark(self, turn_id: str, end_ms: int) -> str:
        name = f"{turn_id}:{end_ms}"
        self._pending[name] = (turn_id, end_ms)
        if len(self._pending) > _MAX_PENDING_MARKS:
            self._pending.popitem(last=False)
        self.marks_sent += 1
        return mark_message(self.stream_sid, name)
