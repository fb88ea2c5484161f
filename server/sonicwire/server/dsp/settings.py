"""The front end's settings and the VAD's events: plain data, no C library.

Split from the engines (:mod:`.vad`, :mod:`.aec`, :mod:`.pipeline`, which load webrtcvad,
libspeexdsp and numpy) so the session core can import its settings and match on the VAD's
events without them: a core driven with an injected front end runs where the C libraries are
absent (``tests/core/test_core_without_c_libraries.py``). The engines' modules re-export
these names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .frames import SAMPLE_RATE

__all__ = [
    "AlignmentPolicy",
    "FrontEndSettings",
    "SpeechEvent",
    "SpeechStarted",
    "SpeechStopped",
    "VadSettings",
]


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    offset: int
    """Mic-stream sample offset of the onset of the speech."""


@dataclass(frozen=True, slots=True)
class SpeechStopped:
    offset: int
    """Mic-stream sample offset where the speech ended (start of the silence)."""


SpeechEvent = SpeechStarted | SpeechStopped


@dataclass(frozen=True, slots=True)
class VadSettings:
    """Per-session VAD knobs (defaults follow pipecat's, except the engine)."""

    engine: Literal["webrtc", "silero"] = "webrtc"
    confidence: float = 0.7
    """Minimum speech confidence (0..1) of a speech frame."""
    start_secs: float = 0.2
    """Speech must last this long from its onset before SpeechStarted."""
    stop_secs: float = 0.5
    """Silence must last this long before SpeechStopped."""
    min_volume: float = 0.6
    """Minimum normalised volume (0..1, see :func:`volume`) of a speech frame."""
    speech_pad_ms: int = 300
    """Padding consumers add around an utterance when they cut it (not used by the detector)."""
    webrtc_aggressiveness: int = 3
    """webrtcvad mode, 0 (least) to 3 (most aggressive in rejecting non-speech)."""
    webrtc_window: int = 3
    """Frames of webrtcvad decisions averaged into one confidence."""
    silero_model_path: str | None = None
    """Silero ONNX model file; None finds the packaged one (:func:`find_silero_model`)."""

    def __post_init__(self) -> None:
        if self.engine not in ("webrtc", "silero"):
            raise ValueError(f"unknown VAD engine {self.engine!r}")
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError("confidence must be within 0..1")
        if not 0.0 <= self.min_volume <= 1.0:
            raise ValueError("min_volume must be within 0..1")
        if self.start_secs < 0 or self.stop_secs < 0 or self.speech_pad_ms < 0:
            raise ValueError("start_secs, stop_secs and speech_pad_ms must not be negative")
        if self.webrtc_aggressiveness not in (0, 1, 2, 3):
            raise ValueError("webrtc_aggressiveness must be 0, 1, 2 or 3")
        if self.webrtc_window < 1:
            raise ValueError("webrtc_window must be at least 1")

    @property
    def pad_samples(self) -> int:
        return self.speech_pad_ms * SAMPLE_RATE // 1000


@dataclass(frozen=True, slots=True)
class AlignmentPolicy:
    """Where the echo should sit inside the canceller's tail (all in milliseconds)."""

    lead_ms: int = 10
    """Target position of the echo's first arrival inside the tail after a realignment."""
    zone_low_ms: int = 3
    """Realign when the first arrival comes earlier than this (risk of a non-causal path)."""
    zone_high_ms: int = 60
    """Realign when it comes later than this (too little tail left for the reverberation)."""
    retrain_secs: float = 1.5
    """Buffered audio replayed through the canceller after a realignment."""
    retrain_passes: int = 2
    """How many times that audio is replayed."""
    replay_frames_per_call: int = 24
    """Canceller calls of that replay made per live frame; 0: the whole replay at once. A
    replay is 150-170 canceller calls, 8-10 ms of CPU in one go on the benchmark machine: done
    at once it holds the event loop, and every other stream's frames wait behind it (the
    server's p99 latency). Spread, it costs at most about 1.2 ms per frame for 7 frames, while
    the previous filter keeps cleaning the live frames until the replayed one takes over."""
    converged_db: float = 18.0
    """Echo reduction of the linear filter at which it counts as converged (cold start)."""

    def __post_init__(self) -> None:
        if self.replay_frames_per_call == 1 or self.replay_frames_per_call < 0:
            # one call per live frame would never catch up with the live frames it must add
            raise ValueError("replay_frames_per_call must be 0 (at once) or at least 2")


@dataclass(frozen=True)
class FrontEndSettings:
    """Per-session front-end configuration."""

    echo_cancellation: bool = True
    echo_engine: Literal["speex", "aec3"] = "speex"
    """Canceller behind the alignment: speex (:mod:`.aec`) or WebRTC AEC3 (:mod:`.aec3`,
    needs the ``aec3`` extra). docs/FRONTEND.md compares the two."""
    echo_tail_ms: int = 200
    """Speex filter tail: room reverberation it can cancel after the aligned bulk delay."""
    noise_suppression: bool = True
    noise_suppress_db: int = -30
    agc: bool = False
    residual_echo_suppression: bool = True
    """Link the preprocessor to the echo state (speex residual echo suppression)."""
    vad: VadSettings = field(default_factory=VadSettings)
    echo_vad_gate_db: float | None = 15.0
    """While far-end audio is being cancelled, a frame counts as speech only if cleaning took
    less than a threshold off its energy (echo alone loses 20 dB or more, a user talking over
    it far less). The threshold starts here and adapts up to 25 dB as the stream's echo
    attenuation is measured (:mod:`.gate`). None disables the gate."""
    max_echo_delay_ms: int = 1500
    """Largest bulk delay (network + client buffer + device) the estimator searches: the
    release lead and network (100-300 ms) plus device output latency no report shows (up to
    1000 ms with Bluetooth or a telephony jitter buffer)."""
    alignment: AlignmentPolicy = field(default_factory=AlignmentPolicy)

    def __post_init__(self) -> None:
        if self.echo_engine not in ("speex", "aec3"):
            raise ValueError(f"unknown echo engine {self.echo_engine!r}")
        if self.echo_tail_ms < 20 or self.echo_tail_ms > 1000:
            raise ValueError("echo_tail_ms must be within 20..1000")
        if not -100 <= self.noise_suppress_db <= 0:
            raise ValueError("noise_suppress_db must be within -100..0")
        if not 100 <= self.max_echo_delay_ms <= 4000:
            raise ValueError("max_echo_delay_ms must be within 100..4000")
