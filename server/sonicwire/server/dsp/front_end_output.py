"""What the front end hands out: its cleaned frames and its counters (`pipeline.FrontEnd`)."""

from __future__ import annotations

from dataclasses import dataclass

from .settings import SpeechStarted, SpeechStopped

__all__ = ["FrontEndFrame", "FrontEndStats"]


# Not frozen: a frozen dataclass's __init__ sets each field through object.__setattr__, 4x the
# cost of a plain slots one (0.8 vs 0.2 us for these five fields), and one is built for every
# 20 ms frame of every stream. Nothing writes to a frame after the front end returns it.
@dataclass(slots=True)
class FrontEndFrame:
    pcm: bytes
    """640 bytes of cleaned audio."""
    offset: int
    """Mic-stream sample offset of this frame's first sample."""
    in_speech: bool
    """VAD state is SPEAKING or STOPPING after this frame."""
    events: tuple[SpeechStarted | SpeechStopped, ...]
    voiced: bool = False
    """This frame itself counted as speech (the VAD's ``last_speech``): unlike ``in_speech``,
    false during the VAD's stop wait unless the user resumed."""


@dataclass(slots=True)
class FrontEndStats:
    """Counters for metrics and the evaluation harness."""

    frames: int = 0
    estimates: int = 0
    reports: int = 0
    realignments: int = 0
    retrained_frames: int = 0
    skew_ppm: float | None = None
    """Clock skew between the client's loudspeaker and mic the canceller follows."""
    probes: int = 0
    """Echo-hold checks run (coherence of the mic with the far end, before convergence)."""
    echo_probes: int = 0
    """...of which found the mic explained by the far end."""
