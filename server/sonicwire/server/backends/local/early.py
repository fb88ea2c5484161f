"""Start recognising before the VAD's stop marker: the ``stop_secs`` wait is dead time.

The front end's VAD sends `UserSpeechStopped` only after ``stop_secs`` (0.5 s by default) of
silence, and recognition takes 60-200 ms after that. `EarlyCut` watches the same audio for
the silence itself: once the frames have been quiet (well below the utterance's loudest frame)
for ``silence_ms``, it hands out the utterance so far as a `Guess`, which the session starts
recognising at once. When the stop marker comes and its offset (where the silence began) is
the guess's (within ``tolerance_ms``, or up to ``late_ms`` before it), the guess's transcript
is used and the marker finds recognition already done.
Speech that resumes after a guess voids it; so does a marker that disagrees. A wrong guess
only costs one wasted recognition, never a wrong answer.

Quiet has two meanings. In a quiet room a frame is quiet when it is far below the utterance's
peak and below an absolute floor. In a noisy room no frame gets below that floor, so the room's
own level is measured from the audio before the utterance (`room_db`, before the VAD's onset
and its pad), and a frame is also quiet when it is within a margin of that level and still well
below the peak: the silence after speech is the room again. Noise suppression in the front
end then lowers the room some frames after the speech ended, so the quiet often starts later
than the VAD's silence: a guess whose silence starts up to ``late_ms`` after the marker's still
holds all the speech the VAD heard, and stands.

Pure and synchronous: audio and markers in, guesses out.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

__all__ = ["LATE_MS", "ROOM_DROP_DB", "ROOM_MARGIN_DB", "EarlyCut", "Guess"]

_BYTES_PER_SAMPLE = 2
#: Noisy rooms, chosen on the noisy development set (`bench.local_dev_noise --sweep`): a frame
#: within this many dB of the room's level before the utterance...
ROOM_MARGIN_DB = 3.0
#: ...and this many dB below the utterance's peak is quiet (20 made twice as many guesses inside
#: the speech, in its pauses, where masked consonants sink to the room's level).
ROOM_DROP_DB = 25.0
#: A guess stands when the marker's silence starts up to this long before the guess's (it then
#: holds all the speech the VAD heard, and a little more room): the front end's noise
#: suppression lowers a steady room over the first second or two, so in a noisy room the level
#: falls below any threshold only some frames after the speech has ended.
LATE_MS = 300


@dataclass(frozen=True, slots=True)
class Guess:
    """The utterance up to ``silence_ms`` past ``silence_start`` (a stream offset), with the
    same leading pad the utterance collector gives it."""

    number: int
    pcm: bytes
    silence_start: int
    tail: int = 0
    """Samples of silence at the end of ``pcm`` (from ``silence_start`` on)."""

    def padded(self, tail_samples: int, repeat_samples: int = 1600) -> bytes:
        """The audio lengthened to end ``tail_samples`` after the silence start, by repeating
        its last ``repeat_samples`` (the room's noise after the speech). The collector's
        utterance ends ``speech_pad_ms`` (300 ms) after the speech, the guess about 100 ms
        after it, and the recogniser reads a short tail worse: on the development set 0.683
        of 120 utterances with 100 ms, 0.717 with it lengthened to 300 ms so, 0.725 with 300
        ms of real audio (`bench.local_dev_levers`)."""
        pcm, tail = self.pcm, min(self.tail, len(self.pcm) // 2)
        missing = 2 * max(0, tail_samples - tail)
        if not missing or tail <= 0:
            return pcm
        repeat = pcm[-2 * min(repeat_samples, tail) :]
        return pcm + (repeat * (missing // len(repeat) + 1))[:missing]


class EarlyCut:
    """Feed audio and markers in stream order (as to `UtteranceCollector`).

    Args:
        pad_ms: leading pad before the VAD's onset, as the session's utterance collector uses.
        silence_ms: quiet this long after speech makes a guess.
        drop_db: a frame is quiet this far below the loudest frame of the utterance...
        floor_dbfs: ...and below this absolute level (noisy rooms make no guesses with it).
        room_margin_db: or a frame is quiet within this of the room's level before the
            utterance (None: the absolute floor only, as before noisy rooms were guessed)...
        room_drop_db: ...and this far below the utterance's peak (so a room as loud as the
            speech makes no guess).
        room_ms: how much audio before the utterance measures the room.
        tolerance_ms: how far the marker's silence start may be from the guess's...
        late_ms: ...or how far before it (the guess then holds all the speech the VAD heard;
            at most ``tolerance_ms``: as before noisy rooms were guessed).
        max_ms: utterances longer than this are not guessed (bounded memory).
    """

    def __init__(
        self,
        *,
        sample_rate: int = 16_000,
        pad_ms: int = 300,
        silence_ms: int = 200,
        drop_db: float = 30.0,
        floor_dbfs: float = -35.0,
        room_margin_db: float | None = ROOM_MARGIN_DB,
        room_drop_db: float = ROOM_DROP_DB,
        room_ms: int = 500,
        tolerance_ms: int = 100,
        late_ms: int = LATE_MS,
        max_ms: int = 30_000,
    ) -> None:
        self._rate = sample_rate
        self._pad = sample_rate * pad_ms // 1000
        self._silence = sample_rate * silence_ms // 1000
        self._drop_db = drop_db
        self._floor_db = floor_dbfs
        self._room_margin_db = room_margin_db
        self._room_drop_db = room_drop_db
        self._room_samples = sample_rate * room_ms // 1000
        self._room_db = -math.inf  # the room's level before this utterance (-inf: unknown)
        self._tolerance = sample_rate * tolerance_ms // 1000
        self._late = sample_rate * max(late_ms, tolerance_ms) // 1000
        self._max = sample_rate * max_ms // 1000
        # Recent audio, for the leading pad: the start marker comes after the onset.
        self._history: deque[tuple[int, bytes]] = deque()
        # pad plus a second of start delay, plus the room before the pad
        self._history_len = self._pad + sample_rate + self._room_samples
        self._position = 0
        self._start: int | None = None  # utterance start (onset - pad) while in an utterance
        self._audio = bytearray()
        self._peak_db = -math.inf
        self._quiet_since: int | None = None
        self._guess: Guess | None = None
        self._guesses = 0

    @property
    def current(self) -> Guess | None:
        """The guess that still stands: None once speech resumed or the utterance ended."""
        return self._guess

    def push_audio(self, pcm: bytes) -> Guess | None:
        """Take the next audio; returns a new guess when the speech seems to have ended."""
        offset = self._position
        self._position += len(pcm) // _BYTES_PER_SAMPLE
        self._remember(offset, pcm)
        if self._start is None:
            return None
        if len(self._audio) // _BYTES_PER_SAMPLE > self._max:
            self._start = None  # too long to guess; the ordinary path handles it
            return None
        self._audio += pcm
        level = _dbfs(pcm)
        if level > self._peak_db:
            self._peak_db = level
        # A quiet room's silence, or a noisy room's own level (its -inf when unmeasured or off).
        quiet = level < min(self._peak_db - self._drop_db, self._floor_db) or (
            level < self._room_db + (self._room_margin_db or 0.0)
            and level < self._peak_db - self._room_drop_db
        )
        if not quiet:
            self._quiet_since = None
            self._guess = None  # speech resumed: an earlier guess is void
            return None
        if self._quiet_since is None:
            self._quiet_since = offset
        if self._guess is None and self._position - self._quiet_since >= self._silence:
            self._guesses += 1
            self._guess = Guess(
                self._guesses,
                bytes(self._audio),
                self._quiet_since,
                self._position - self._quiet_since,
            )
            return self._guess
        return None

    def speech_started(self, offset: int) -> None:
        """The VAD's start marker; a start inside an utterance (speech resumed) is ignored."""
        if self._start is not None:
            return
        self._start = max(0, offset - self._pad)
        self._audio = bytearray(self._since(self._start))
        self._peak_db = max(
            (_dbfs(pcm) for at, pcm in self._history if at >= self._start), default=-math.inf
        )
        self._room_db = self._room_level(self._start)
        self._quiet_since = None
        self._guess = None

    @property
    def room_db(self) -> float:
        """The room's level (dBFS) measured before the current or last utterance."""
        return self._room_db

    def speech_stopped(self, offset: int) -> Guess | None:
        """The VAD's stop marker: the guess that stands for this utterance, if one does."""
        guess, self._guess = self._guess, None
        self._start = None
        self._audio = bytearray()
        if guess is not None and -self._tolerance <= guess.silence_start - offset <= self._late:
            return guess
        return None

    def _remember(self, offset: int, pcm: bytes) -> None:
        self._history.append((offset, pcm))
        while self._history and self._history[0][0] + self._history_len < self._position:
            self._history.popleft()

    def _room_level(self, start: int) -> float:
        """The median frame level of the ``room_ms`` before ``start`` (the utterance's pad):
        the median, not the mean, so a click or a cough in it does not raise the room; -inf
        with less than 100 ms of it (a stream that starts with speech) or with the rule off."""
        if self._room_margin_db is None:
            return -math.inf
        frames = [
            pcm
            for at, pcm in self._history
            if start - self._room_samples <= at and at + len(pcm) // _BYTES_PER_SAMPLE <= start
        ]
        if sum(len(pcm) for pcm in frames) // _BYTES_PER_SAMPLE < self._rate // 10:
            return -math.inf
        levels = [_dbfs(pcm) for pcm in frames]
        return float(np.median(levels))

    def _since(self, start: int) -> bytes:
        parts = []
        for offset, pcm in self._history:
            end = offset + len(pcm) // _BYTES_PER_SAMPLE
            if end > start:
                parts.append(pcm[max(0, start - offset) * _BYTES_PER_SAMPLE :])
        return b"".join(parts)


def _dbfs(pcm: bytes) -> float:
    samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype=np.int16).astype(np.float64)
    if not samples.size:
        return -math.inf
    mean_square = float(np.mean(samples * samples))
    return 10 * math.log10(mean_square / 32768**2) if mean_square > 0 else -math.inf
