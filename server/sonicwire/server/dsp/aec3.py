"""Echo cancel stage on WebRTC AEC3 (LiveKit's binding of libwebrtc's AudioProcessing).

The alternative to :mod:`.aec` (speex) behind the same alignment: for the mic frame at
position ``t`` the reference is the far-end timeline at ``t - offset``, with the offset
placing the echo's bulk delay ``lead`` milliseconds after the reference. What AEC3 sees is
therefore a short, nearly constant delay that its own delay estimator (which covers a few
hundred milliseconds only) finds at once, whatever the device delay (up to
``max_echo_delay_ms``): our estimator and playback reports do the long-range part.

Differences from the speex stage, all due to AEC3:

* a wider zone (``ZONE_HIGH_MS``): AEC3 follows small moves of the delay by itself, so the
  reference is moved only when the echo would leave its reach, and a realignment replaces
  the AudioProcessing with a fresh one trained once on the buffered audio at the new
  alignment (AEC3 keeps time and takes each stretch of audio once; a second pass, as speex
  gets, would look like a jump back). Without the replay AEC3 re-adapts by itself within
  about half a second, long enough for an echo burst to reach the VAD;
* residual echo suppression is always on (AEC3's suppressor is part of the canceller), and
  noise suppression is WebRTC's (its fixed default level: the binding exposes no level), so
  ``noise_suppress_db`` and ``residual_echo_suppression`` do not apply;
* AudioProcessing works in place on 10 ms frames (two per 20 ms frame), the far end of each
  half handed to it (``process_reverse_stream``) just before the mic half. Its output lags
  its input by some milliseconds inside the frame (AEC3's 4 ms blocks, the noise
  suppressor's overlap: the evaluation measures the lag), which :attr:`latency`, a whole
  number of frames, does not report: onsets are dated that much late.

The binding (``livekit``, the ``aec3`` extra) is imported when a stage is built, so a server
that keeps the default speex engine does not need it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from .convergence import ConvergenceMeter, FrameEnergy
from .frames import FRAME_BYTES, FRAME_SAMPLES, SAMPLE_RATE
from .settings import AlignmentPolicy
from .timeline import FarEndTimeline, SampleLog

if TYPE_CHECKING:
    from livekit.rtc import AudioFrame, AudioProcessingModule

__all__ = ["Aec3Stage", "aec3_available"]

_HALF = FRAME_SAMPLES // 2  # AudioProcessing takes exactly 10 ms per call
_HALF_BYTES = FRAME_BYTES // 2


def aec3_available() -> bool:
    """Whether the AEC3 binding (``pip install 'sonicwire[aec3]'``) can be imported."""
    try:
        import livekit.rtc  # noqa: F401
    except ImportError:
        return False
    return True


def _binding() -> tuple[type[AudioProcessingModule], type[AudioFrame]]:
    try:
        from livekit.rtc import AudioFrame, AudioProcessingModule
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError(
            "echo_engine 'aec3' needs the livekit package: pip install 'sonicwire[aec3]'"
        ) from exc
    return AudioProcessingModule, AudioFrame


class Aec3Stage:
    """Aligned AEC3 echo cancellation (+ WebRTC noise suppression), one 20 ms frame at a time.

    Same call protocol as :class:`~.aec.EchoStage`: ``process(frame, position)`` returns the
    cleaned frame (no frame of latency), ``set_delay(delay, position)`` takes the bulk-delay
    belief and realigns (and retrains) when it left the zone, :meth:`close` frees the native
    state.
    """

    ZONE_HIGH_MS = 200
    """Largest delay left between reference and echo before realigning: well inside what
    AEC3's estimator finds by itself (the evaluation shows it cancelling a 400 ms echo given
    the raw reference, and failing at 800 ms)."""

    def __init__(
        self,
        timeline: FarEndTimeline,
        mic_log: SampleLog,
        *,
        echo_cancellation: bool = True,
        echo_tail_ms: int = 200,
        noise_suppression: bool = True,
        noise_suppress_db: int = -30,
        agc: bool = False,
        residual_echo_suppression: bool = True,
        policy: AlignmentPolicy = AlignmentPolicy(),
    ) -> None:
        del noise_suppress_db, residual_echo_suppression  # not adjustable in AEC3 (docstring)
        self._timeline = timeline
        self._mic_log = mic_log
        self._config = (echo_cancellation, noise_suppression, agc)
        self.policy = policy
        self._meter = ConvergenceMeter(policy.converged_db)
        self._energy = FrameEnergy()
        # reach of the far end past the reference frame: the same window as the speex tail,
        # so far_active (and the pipeline's echo gate) mean the same for both engines
        self._tail = max(FRAME_SAMPLES, echo_tail_ms * SAMPLE_RATE // 1000)
        self._ms = SAMPLE_RATE // 1000
        self._echo_on = echo_cancellation
        self._apm: AudioProcessingModule | None = None
        # two reusable 10 ms frames over our own buffers: the binding works in place
        self._near_buf = bytearray(_HALF_BYTES)
        self._far_buf = bytearray(_HALF_BYTES)
        if echo_cancellation or noise_suppression or agc:
            self._apm_cls, frame_cls = _binding()
            self._near = frame_cls(self._near_buf, SAMPLE_RATE, 1, _HALF)
            self._far = frame_cls(self._far_buf, SAMPLE_RATE, 1, _HALF)
            self._apm = self._new_apm()
        self._out = bytearray(FRAME_BYTES)
        self.out_samples = np.frombuffer(self._out, dtype=np.int16)
        """The last frame :meth:`process` returned, as int16 (a view: valid until the next
        call)."""
        self._closed = False
        self.offset = 0
        """Alignment offset in samples: the reference for mic position t is timeline[t - offset]."""
        self.delay: int | None = None
        self.far_active = False
        """Whether far-end audio was within reach of the last frame."""
        self.mic_energy = 0.0
        """Energy (sum of squares) of the last mic frame when ``far_active``, else 0."""
        self.out_energy = 0.0
        """Energy of the stage's output for that frame when ``far_active``, else 0."""
        self.converged = False
        """Whether the stage, on the current alignment, removes ``policy.converged_db`` of
        echo (cleared by every realignment). Unlike speex, AEC3 may get there before our
        estimator confirms a delay (its own estimator covers short ones), so no
        confirmation is required."""
        self.realignments = 0
        self.retrained_frames = 0
        self.replaying = False
        """Always False: this stage's replay runs at once, inside ``set_delay``."""

    def _new_apm(self) -> AudioProcessingModule:
        echo, ns, agc = self._config
        apm = self._apm_cls(
            echo_cancellation=echo,
            noise_suppression=ns,
            high_pass_filter=True,
            auto_gain_control=agc,
        )
        if echo:
            # a hint AEC3 does not use (its own estimator finds the short aligned delay);
            # set once, as AudioProcessing expects with echo processing on
            apm.set_stream_delay_ms(0)
        return apm

    @property
    def latency(self) -> int:
        """Whole frames by which the output lags the input: none (see the module docstring)."""
        return 0

    @property
    def echo_cancellation(self) -> bool:
        return self._echo_on and self._apm is not None

    def _far_active(self, position: int) -> bool:
        ref_start = position - self.offset
        return ref_start - self._tail < self._timeline.queue_end and (self._timeline.queue_end > 0)

    def process(
        self, frame: bytes, position: int, samples: npt.NDArray[np.int16] | None = None
    ) -> bytes:
        """Cancel echo in (and clean) the mic frame that starts at ``position``
        (``samples``: the same frame as int16, when the caller has it)."""
        if self._closed:
            raise ValueError("echo stage is closed")
        apm = self._apm
        if apm is None:
            self._out[:] = frame
            return bytes(frame)
        echo = self._echo_on
        self.far_active = echo and self._far_active(position)
        if self.far_active:
            self.mic_energy = self._energy(frame if samples is None else samples)
        else:
            self.mic_energy = 0.0
        out = self._out
        near_buf, far_buf = self._near_buf, self._far_buf
        ref = None
        if echo:
            far = self._timeline.log.read(position - self.offset, FRAME_SAMPLES)
            ref = memoryview(far).cast("B")
        for h in (0, 1):
            lo, hi = h * _HALF_BYTES, (h + 1) * _HALF_BYTES
            if ref is not None:
                # AEC3 wants the render stream continuously (silence included): its delay
                # estimator and filters assume one render frame per capture frame
                far_buf[:] = ref[lo:hi]
                apm.process_reverse_stream(self._far)
            near_buf[:] = frame[lo:hi]
            apm.process_stream(self._near)
            out[lo:hi] = near_buf
        if self.far_active:
            self.out_energy = self._energy(out)
            if not self.converged:
                self.converged = self._meter.update(self.mic_energy, self.out_energy)
        else:
            self.out_energy = 0.0
        return bytes(out)

    def target_offset(self, delay: int) -> int:
        return max(0, delay - self.policy.lead_ms * self._ms)

    def needs_realign(self, delay: int) -> bool:
        """Whether ``delay`` falls outside the zone the current alignment covers.

        The zone is wider than speex's: it ends where AEC3's own delay estimator stops being
        sure to cover the echo (``ZONE_HIGH_MS``), so small moves of our belief (a report
        that misses the device latency, then the estimator's confirmation) do not shift
        the reference under AEC3 and cost it a re-adaptation.
        """
        place = delay - self.offset
        low = self.policy.zone_low_ms * self._ms
        high = max(self.policy.zone_high_ms, self.ZONE_HIGH_MS) * self._ms
        return (place < low and self.offset > 0) or place > high

    def set_delay(self, delay: int, position: int, *, exact: bool = False) -> bool:
        """Take a new bulk-delay belief at mic ``position``; True if the alignment moved.

        ``exact`` (the estimator's first confirmation) makes speex realign inside its zone
        to speed up its cold start; AEC3 needs no such help, so it realigns only when the
        delay left the zone.
        """
        del exact  # see above
        self.delay = delay
        if not self.echo_cancellation:
            return False
        if not self.needs_realign(delay):
            return False
        target = self.target_offset(delay)
        if target == self.offset:
            return False  # AEC3's state still matches this alignment
        self.offset = target
        self.realignments += 1
        self._retrain(position)
        self.converged = False
        self._meter.reset()
        return True

    def _retrain(self, position: int) -> None:
        # a fresh AudioProcessing trained on the buffered audio at the new alignment, once
        # (AEC3 tracks time: it cannot take the same audio twice)
        old, self._apm = self._apm, self._new_apm()
        if old is not None:
            old._ffi_handle.dispose()
        apm = self._apm
        n = FRAME_SAMPLES
        span = int(self.policy.retrain_secs * SAMPLE_RATE) // n * n
        start = max(0, position - span)
        start -= start % n
        log = self._timeline.log
        near_buf, far_buf = self._near_buf, self._far_buf
        for pos in range(start, position - n + 1, n):
            mic = memoryview(self._mic_log.read(pos, n)).cast("B")
            ref = memoryview(log.read(pos - self.offset, n)).cast("B")
            for lo in (0, _HALF_BYTES):
                far_buf[:] = ref[lo : lo + _HALF_BYTES]
                apm.process_reverse_stream(self._far)
                near_buf[:] = mic[lo : lo + _HALF_BYTES]
                apm.process_stream(self._near)
            self.retrained_frames += 1

    def close(self) -> None:
        """Release the native AudioProcessing state. Idempotent."""
        self._closed = True
        apm, self._apm = self._apm, None
        if apm is not None:
            # the binding frees the native module when its handle is dropped
            apm._ffi_handle.dispose()
