"""What the session core needs from the audio front end and the resamplers, as protocols.

The core drives these; it never builds the C-backed ones itself unless none is given (see
`Session`): the driver injects them, and a test can inject plain-Python stand-ins, so the core
runs and is tested without libspeexdsp, webrtcvad, numpy or soxr
(``tests/core/test_core_without_c_libraries.py``). The production implementations are
`sonicwire.server.dsp.pipeline.FrontEnd` and `sonicwire.server.dsp.resample.Resampler`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from sonicwire.server.dsp.settings import FrontEndSettings, SpeechEvent

__all__ = [
    "FrontEndFactory",
    "FrontEndFrameLike",
    "FrontEndPort",
    "ResamplerFactory",
    "ResamplerPort",
]


class FrontEndFrameLike(Protocol):
    """One cleaned 20 ms frame out of the front end."""

    @property
    def pcm(self) -> bytes:
        """640 bytes of cleaned audio (16 kHz mono s16le)."""

    @property
    def offset(self) -> int:
        """Mic-stream sample offset of the frame's first sample."""

    @property
    def in_speech(self) -> bool:
        """The VAD is SPEAKING or STOPPING after this frame."""

    @property
    def events(self) -> Sequence[SpeechEvent]:
        """VAD events this frame produced."""

    @property
    def voiced(self) -> bool:
        """This frame itself counted as speech: false in the VAD's stop wait (where
        ``in_speech`` holds) unless the user speaks again."""


class FrontEndPort(Protocol):
    """Echo cancellation, noise suppression and VAD for one stream (16 kHz mono s16le)."""

    @property
    def mic_position(self) -> int:
        """Mic samples taken so far."""

    def process(self, pcm: bytes) -> Sequence[FrontEndFrameLike]:
        """Microphone audio in; the cleaned frames now complete out."""

    def push_far_end(self, pcm: bytes) -> None:
        """Assistant audio as released to the client (the echo reference)."""

    def report_playback(self, played_samples: int, output_latency: int = 0) -> None:
        """The client's total of far-end samples played, as of now, and the samples its
        device adds before the loudspeaker (0 = unknown; a prior, never trusted)."""

    def truncate_far_end(self, played_samples: int) -> None:
        """Barge-in: the client dropped everything after ``played_samples``."""

    def close(self) -> None:
        """Free native state; the front end is not used afterwards."""


class ResamplerPort(Protocol):
    """A streaming resampler of s16le mono audio."""

    def process(self, pcm: bytes) -> bytes: ...

    def flush(self) -> bytes:
        """The filter's tail: the end of the stream."""


#: Builds the front end of one session from its settings.
FrontEndFactory = Callable[[FrontEndSettings], FrontEndPort]
#: Builds a resampler from an input rate to an output rate (Hz).
ResamplerFactory = Callable[[int, int], ResamplerPort]
