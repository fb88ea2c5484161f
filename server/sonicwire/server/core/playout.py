"""The assistant's audio on its way out: one turn's queues, their real-time pacing, and the
resamplers that fill them. Pure: no clock (``now`` comes from the caller), no I/O.

Assistant audio arrives from the backend at its own rate and pace. Each chunk is converted
twice: to 16 kHz for the echo reference (``ref_queue``) and to the client's output format
(``out_queue``). `AssistantTurn.take_due` releases both in step, up to real time since the
turn started playing plus a small lead (``playback_lead_ms``), in whole 20 ms steps and, but
for a turn's first and last release, at least ``batch_ms`` at a time (fewer, larger messages);
the session sends the client part and pushes the reference into the front end.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sonicwire.server.core import events as ev
from sonicwire.server.core.ports import ResamplerFactory, ResamplerPort
from sonicwire.server.dsp.frames import SAMPLE_RATE

__all__ = ["RELEASE_STEP_MS", "AssistantTurn", "TurnResamplers", "release_batch_ms"]

RELEASE_STEP_MS = 20
"""Audio is released in whole steps of this length (one client frame)."""


def release_batch_ms(batch_ms: int, lead_ms: int) -> int:
    """The smallest release for a configured batch: whole steps, at least one, at most the
    lead's whole steps (a batch above the lead could never fall due)."""
    steps = min(batch_ms, lead_ms) // RELEASE_STEP_MS
    return max(1, steps) * RELEASE_STEP_MS


@dataclass(slots=True)
class AssistantTurn:
    """Bookkeeping of the open assistant turn."""

    turn_id: str
    far_end_start: int  # far-end (16 kHz) samples pushed before this turn
    ref_queue: bytearray = field(default_factory=bytearray)  # 16 kHz, for the echo reference
    out_queue: bytearray = field(default_factory=bytearray)  # client output format
    received_ms: float = 0.0
    released_ms: int = 0
    released_out_bytes: int = 0
    play_start: float | None = None
    generation_ended: ev.StopReason | None = None
    final_text: list[str] = field(default_factory=list)
    reported_played_ms: int | None = None
    first_audio_at: float | None = None
    tools_ms: int = 0

    def queue(self, ref: bytes, out: bytes, audio_ms: float, now: float) -> None:
        """Take ``audio_ms`` of the backend's audio, already converted both ways."""
        if self.play_start is not None and not self.ref_queue:
            played_ms = (now - self.play_start) * 1000
            if self.released_ms < played_ms:
                # The backend fell behind and the client's buffer ran dry: its playback
                # resumes now, so re-anchor the pacing clock instead of bursting to catch up.
                self.play_start = now - self.released_ms / 1000
        self.ref_queue += ref
        self.out_queue += out
        self.received_ms += audio_ms

    def take_due(
        self, now: float, lead_ms: int, out_rate: int, batch_ms: int = RELEASE_STEP_MS
    ) -> tuple[bytes, bytes, int] | None:
        """The audio due by ``now``: (16 kHz reference, client output, the output's offset in
        the turn, ms), or None when nothing is due. Due means at least ``batch_ms`` (a
        `release_batch_ms`) fits within real time plus the lead; once generation has ended a
        rest shorter than that goes as soon as it fits (the client plays it back to back)."""
        if not self.ref_queue:
            return None
        if self.play_start is None:
            self.play_start = now
        elapsed_ms = (now - self.play_start) * 1000
        allowed_ms = int(elapsed_ms + lead_ms) - self.released_ms
        step_ms = (allowed_ms // RELEASE_STEP_MS) * RELEASE_STEP_MS
        final = self.generation_ended is not None
        ref_bytes = step_ms * SAMPLE_RATE // 1000 * 2
        # Short of a batch: only a turn's last release may be, once all of its rest fits.
        if step_ms < batch_ms and (step_ms <= 0 or not final or ref_bytes < len(self.ref_queue)):
            return None
        out_bytes = step_ms * out_rate // 1000 * 2
        if final and ref_bytes >= len(self.ref_queue):
            ref_bytes, out_bytes = len(self.ref_queue), len(self.out_queue)
        ref = bytes(self.ref_queue[:ref_bytes])
        out = bytes(self.out_queue[:out_bytes])
        if not ref and not out:
            return None
        del self.ref_queue[:ref_bytes]
        del self.out_queue[:out_bytes]
        offset_ms = self.released_out_bytes * 1000 // (2 * out_rate)
        self.released_out_bytes += len(out)
        self.released_ms += len(ref) // 2 * 1000 // SAMPLE_RATE
        if self.first_audio_at is None:
            self.first_audio_at = now
        return ref, out, offset_ms

    def next_due(self, lead_ms: int, batch_ms: int = RELEASE_STEP_MS) -> float | None:
        """When the next release falls due (None when nothing is queued or playing): a whole
        batch, or the final rest if that is shorter."""
        if not self.ref_queue or self.play_start is None:
            return None
        step_ms = batch_ms
        if self.generation_ended is not None:
            rest_ms = len(self.ref_queue) * 500 // SAMPLE_RATE  # 16 kHz s16le: 32 bytes a ms
            rest_ms = -(-rest_ms // RELEASE_STEP_MS) * RELEASE_STEP_MS
            step_ms = max(RELEASE_STEP_MS, min(step_ms, rest_ms))
        due_ms = self.released_ms + step_ms - lead_ms
        return self.play_start + max(due_ms, 0) / 1000

    def played_ms(self, now: float) -> int:
        """How much of the turn the user has heard: the client's word, else the pacing clock."""
        if self.reported_played_ms is not None:
            return self.reported_played_ms
        if self.play_start is None:
            return 0
        return max(0, min(self.released_ms, round((now - self.play_start) * 1000)))


class TurnResamplers:
    """The backend's audio to 16 kHz (echo reference) and to the client's rate, one stream
    per backend rate; ended at each turn's end, so filter tails stay with their turn."""

    def __init__(self, factory: ResamplerFactory, out_rate: int) -> None:
        self._new = factory
        self._out_rate = out_rate
        self._ref: dict[int, ResamplerPort] = {}
        self._out: dict[int, ResamplerPort] = {}

    def convert(self, pcm: bytes, rate: int) -> tuple[bytes, bytes]:
        """(16 kHz reference, client output) of a chunk at ``rate``."""
        ref = self._stream(self._ref, rate, SAMPLE_RATE).process(pcm)
        out = self._stream(self._out, rate, self._out_rate).process(pcm)
        return ref, out

    def flush(self, turn: AssistantTurn | None) -> None:
        """End the streams; their filter tails go to ``turn``'s queues (dropped with None)."""
        if turn is not None:
            for resampler in self._ref.values():
                turn.ref_queue += resampler.flush()
            for resampler in self._out.values():
                turn.out_queue += resampler.flush()
        self._ref.clear()
        self._out.clear()

    def _stream(self, cache: dict[int, ResamplerPort], rate: int, target: int) -> ResamplerPort:
        resampler = cache.get(rate)
        if resampler is None:
            resampler = cache[rate] = self._new(rate, target)
        return resampler
