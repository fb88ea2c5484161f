"""The user's side of turn-taking: where the user's speech stands, frame by frame.

The front end's VAD reports speech with markers (`SpeechStarted` at the onset, `SpeechStopped`
``stop_secs`` after the end) and, per frame, ``in_speech`` (true from the onset through the
whole stop wait) and ``voiced`` (the frame itself is speech). `UserSpeech` follows them and
says what each frame means for the assistant's turn (`Heard`):

- ``LONG``: the user has been speaking for ``barge_in_min_ms`` since the onset; while the
  assistant talks, that is a barge-in (the session decides, it knows the turn state).
- ``RESUMED``: the backend ended the user's turn early (`events.UserTurnEnded`: a complete
  request, before the stop marker) and the user spoke again in the stop wait for
  ``barge_in_min_ms`` of voiced frames: the user had not finished, the early answer must go.

After an early end, the rest of the stop wait is the VAD's hangover, not the user talking, so
``in_speech`` no longer counts as speech then: only voiced frames do (raw voice activity,
which is why the front end reports it). Pure: no clock, no I/O.
"""

from __future__ import annotations

import enum

from sonicwire.server.core.ports import FrontEndFrameLike
from sonicwire.server.dsp.frames import SAMPLE_RATE

__all__ = ["Heard", "UserSpeech"]

_BYTES_PER_MS = SAMPLE_RATE * 2 // 1000


class Heard(enum.Enum):
    """What one frame of the user's side says (see the module docstring)."""

    NOTHING = "nothing"
    LONG = "long"
    RESUMED = "resumed"


class UserSpeech:
    """The user's speech between the VAD's markers, and an early end of the user's turn."""

    def __init__(self, barge_in_min_ms: int) -> None:
        self._min_ms = barge_in_min_ms
        self.onset: int | None = None
        """Mic offset (samples) of the speech in progress; None between utterances."""
        self._voiced = False  # the last frame was voiced
        self._ended_early: int | None = None  # voiced ms since the early end, while it stands

    @property
    def ended_early(self) -> bool:
        """The backend ended this utterance's turn early and the user has not resumed."""
        return self._ended_early is not None

    def started(self, offset: int) -> None:
        """The VAD's start marker."""
        self.onset = offset
        self._ended_early = None

    def stopped(self) -> None:
        """The VAD's stop marker: the utterance, and its stop wait, are over."""
        self.onset = None
        self._ended_early = None

    def end_early(self) -> bool:
        """The backend ends the user's turn now; True when taken: only in the VAD's stop wait
        of an utterance (its hangover), with the user silent on the last frame."""
        if self.onset is None or self._voiced or self._ended_early is not None:
            return False
        self._ended_early = 0
        return True

    def hear(self, frame: FrontEndFrameLike) -> Heard:
        """One frame (after its markers were handled): what it means, see `Heard`."""
        self._voiced = voiced = frame.voiced
        if self._ended_early is not None:
            if voiced:
                self._ended_early += len(frame.pcm) // _BYTES_PER_MS
                if self._ended_early >= self._min_ms:
                    self._ended_early = None
                    return Heard.RESUMED
            return Heard.NOTHING
        if frame.in_speech and self.onset is not None:
            end = frame.offset + len(frame.pcm) // 2
            if (end - self.onset) * 1000 // SAMPLE_RATE >= self._min_ms:
                return Heard.LONG
        return Heard.NOTHING
