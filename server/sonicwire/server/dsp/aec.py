"""Echo cancel stage: speex echo canceller and preprocessor fed with the aligned far end.

Speex's MDF filter only cancels echo whose delay lies inside its tail (``echo_tail_ms``), so
the stage feeds it the far-end timeline shifted by an *alignment offset*: for the mic frame at
position ``t`` the reference is the timeline at ``t - offset``. The offset places the echo's
bulk delay ``lead`` into the tail, leaving the rest of the tail for the room's reverberation.

Alignment moves only when the delay belief leaves a *zone* inside the tail (hysteresis), so
slow drift is absorbed by the adaptive filter itself. Each move trains a fresh filter on the
last ``retrain_secs`` of buffered mic and far-end audio (``retrain_passes`` times), so it
converges in far less wall-clock time than a cold start. The price is CPU, one canceller call
per replayed frame: 8-10 ms in one burst, which would hold the event loop and every other
stream's frames. So the replay runs ``replay_frames_per_call`` calls per live frame (`_Replay`);
its last pass follows the live frames, the previous filter keeps cleaning them meanwhile, and
the replayed filter takes over once it has caught up (about 7 frames, 140 ms, by default).

The preprocessor (noise suppression, optional AGC) is linked to the echo state for residual
echo suppression. Speex applies residual echo suppression only when denoising is on, so with
noise suppression disabled the stage keeps denoising on at a 0 dB noise floor: noise passes,
residual echo is still suppressed. The preprocessor delays its output by one frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from .convergence import SILENT_ENERGY, ConvergenceMeter, FrameEnergy
from .frames import FRAME_BYTES, FRAME_SAMPLES, SAMPLE_RATE
from .settings import AlignmentPolicy
from .speex import EchoCanceller, Preprocessor, frame_pointer
from .timeline import FarEndTimeline, SampleLog

__all__ = ["AlignmentPolicy", "EchoStage"]

_DIVERGED_FLOOR = 320 * 30.0**2  # output energy below about -60 dBFS never counts
_SINC_TAPS = 16
_SINC_INDEX = np.arange(_SINC_TAPS) - (_SINC_TAPS // 2 - 1)
_SINC_WINDOW = np.blackman(_SINC_TAPS + 2)[1:-1]


def replay_history_frames(policy: AlignmentPolicy, tail: int) -> int:
    """Frames of history beyond ``retrain_secs`` that the mic and far-end logs keep for a
    replay spread over live frames: its last pass reads the oldest frame only after the
    earlier passes (and their flushes), while the live frames move on meanwhile."""
    per_call = policy.replay_frames_per_call
    if per_call <= 0:
        return 0
    frames = int(policy.retrain_secs * SAMPLE_RATE) // FRAME_SAMPLES
    # each pass before the last: its frames, the step to the next pass (a unit of the
    # budget without a canceller call, see _replay_some) and the flush
    before_last = (policy.retrain_passes - 1) * (frames + 1 + tail // FRAME_SAMPLES + 1)
    return -(-before_last // per_call) + 1


@dataclass(eq=False, slots=True)
class _Replay:
    """A replay in progress: a fresh canceller trained on ``passes`` passes over the mic
    frames from ``start`` (the last pass runs on to the live position), and the alignment the
    live frames keep until it takes over."""

    canceller: EchoCanceller
    start: int
    end: int
    """One past the last frame of the passes before the last (the realignment's position)."""
    half: int
    """Frames from here on, in the last pass, measure what the new filter removes."""
    passes: int
    live_base: float
    live_origin: int
    live_skew: float
    earlier_lines: list[tuple[int, float, int, float]] = field(default_factory=list)
    """Alignment lines a skew replaced during the replay, oldest first: ``(until, base,
    origin, skew)``, in effect for mic positions before ``until``. The at-once replay read
    every buffered frame with the line of the realignment and the live frames with the line
    of their time; this one reads each frame with the same line, so it trains the same
    filter."""
    pass_index: int = 0
    next: int = 0
    flush_left: int = 0
    measured: int = 0
    mic_energy: float = 0.0
    out_energy: float = 0.0

    def live_offset_at(self, position: int) -> float:
        return self.live_base + self.live_skew * (position - self.live_origin)

    def earlier_offset_at(self, position: int) -> float | None:
        """The offset of a line that a skew replaced, if one was in effect at ``position``."""
        for until, base, origin, skew in self.earlier_lines:
            if position < until:
                return base + skew * (position - origin)
        return None


class EchoStage:
    """Aligned speex echo cancellation + preprocessing, one 20 ms frame at a time.

    ``process(frame, position)`` returns the cleaned frame (one frame late when the
    preprocessor runs: see :attr:`latency`). ``set_delay(delay, position)`` gives the current
    bulk-delay belief (samples); it realigns and retrains when needed and returns whether it
    did. Call :meth:`close` to free the C states.
    """

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
        self._timeline = timeline
        self._mic_log = mic_log
        self.policy = policy
        self._meter = ConvergenceMeter(policy.converged_db)
        self._energy = FrameEnergy()
        self._tail = max(FRAME_SAMPLES, echo_tail_ms * SAMPLE_RATE // 1000)
        self._ms = SAMPLE_RATE // 1000
        self._echo: EchoCanceller | None = None
        self._pre: Preprocessor | None = None
        if echo_cancellation:
            self._echo = EchoCanceller(FRAME_SAMPLES, self._tail, SAMPLE_RATE)
        self._res = echo_cancellation and residual_echo_suppression
        if noise_suppression or agc or self._res:
            self._pre = Preprocessor(
                FRAME_SAMPLES,
                SAMPLE_RATE,
                denoise=noise_suppression or self._res,
                noise_suppress_db=noise_suppress_db if noise_suppression else 0,
                agc=agc,
            )
        self._linked = False
        self._out = bytearray(FRAME_BYTES)
        self._out_ptr = frame_pointer(self._out)
        self.out_samples = np.frombuffer(self._out, dtype=np.int16)
        """The last frame :meth:`process` returned, as int16 (a view: valid until the next
        call; the buffer is never resized)."""
        self._scratch = bytearray(FRAME_BYTES)
        self._zero = bytes(FRAME_BYTES)
        self.offset = 0
        """Alignment offset in samples: the reference for mic position t is timeline[t - offset]
        (rounded; with clock skew the offset moves along a line, see :meth:`set_skew`)."""
        self._base = 0.0  # the offset at mic position _origin
        self._origin = 0
        self._skew = 0.0  # offset change per mic sample
        self._ref_f32 = np.zeros(FRAME_SAMPLES + _SINC_TAPS - 1, dtype=np.float32)
        self._ref_out = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        self.delay: int | None = None
        self.far_active = False
        """Whether the last frame went through the canceller (far-end audio within reach)."""
        self.mic_energy = 0.0
        """Energy (sum of squares) of the last mic frame when ``far_active``, else 0."""
        self.out_energy = 0.0
        """Energy of the linear filter's output for that frame (the mic's when the filter
        diverged), else 0: with ``mic_energy``, how much echo the filter removes now."""
        self.converged = False
        """Whether the linear filter, trained on the current alignment, removes
        ``policy.converged_db`` of echo (cleared by every realignment)."""
        self._trained = False
        self._replay: _Replay | None = None
        self._closed = False
        self.realignments = 0
        self.retrained_frames = 0
        self.diverged_frames = 0
        """Frames where the filter's output was louder than its input (the mic passed)."""

    @property
    def latency(self) -> int:
        """Samples by which the output lags the input (one frame with the preprocessor)."""
        return FRAME_SAMPLES if self._pre is not None else 0

    @property
    def echo_cancellation(self) -> bool:
        return self._echo is not None

    def offset_at(self, position: int) -> float:
        """The alignment offset for the mic frame at ``position`` (fractional with skew)."""
        return self._base + self._skew * (position - self._origin)

    def set_skew(self, skew: float, position: int) -> None:
        """Follow a clock skew between loudspeaker and mic: from ``position`` on the offset
        moves by ``skew`` samples per mic sample (the echo's drift), so the adaptive filter
        sees a still echo path instead of chasing a moving one."""
        replay = self._replay
        if replay is not None:
            # the frames before ``position`` keep the line they had (the replay reads them
            # late), and the live frames cleaned by the previous filter drift the same way
            replay.earlier_lines.append((position, self._base, self._origin, self._skew))
            replay.live_base = replay.live_offset_at(position)
            replay.live_origin = position
            replay.live_skew = skew
        self._base = self.offset_at(position)
        self._origin = position
        self._skew = skew

    def _reference(self, position: int, offset: float) -> npt.NDArray[np.int16]:
        """The far-end frame aligned with the mic frame at ``position``: a view of the
        timeline, or a fractional delay of it (16-tap windowed sinc: linear interpolation
        would smear the high band differently at every fraction, which the adaptive filter
        cannot learn) when the offset is fractional."""
        start = position - offset
        whole = math.floor(start)
        frac = start - whole
        log = self._timeline.log
        if frac < 1e-3 or frac > 1 - 1e-3:
            return log.read(whole + round(frac), FRAME_SAMPLES)
        half = _SINC_TAPS // 2 - 1
        x = self._ref_f32
        np.copyto(x, log.read(whole - half, FRAME_SAMPLES + _SINC_TAPS - 1))
        # np.sinc's own arithmetic (sin(pi x) / (pi x); x is never 0 here: 1e-3 < frac <
        # 1 - 1e-3) without its wrapper, and rint/clip in place: this runs on every frame of
        # a stream with skew, where the wrappers cost more than the filtering
        t = np.pi * (frac - _SINC_INDEX)
        taps = np.sin(t)
        taps /= t
        taps *= _SINC_WINDOW
        y = np.correlate(x, taps.astype(np.float32), "valid")
        np.rint(y, out=y)
        np.maximum(y, -32768, out=y)
        np.minimum(y, 32767, out=y)
        np.copyto(self._ref_out, y, casting="unsafe")
        return self._ref_out

    def _far_active(self, position: int, offset: float) -> bool:
        # the reference frame or the tail behind it still holds queued far-end audio
        ref_start = position - round(offset)
        return ref_start - self._tail < self._timeline.queue_end and (self._timeline.queue_end > 0)

    @property
    def replaying(self) -> bool:
        """Whether a replay is still catching up (the previous filter cleans meanwhile)."""
        return self._replay is not None

    def process(
        self, frame: bytes, position: int, samples: npt.NDArray[np.int16] | None = None
    ) -> bytes:
        """Cancel echo in (and clean) the mic frame that starts at ``position``
        (``samples``: the same frame as int16, when the caller has it)."""
        if self._closed:  # the C states are freed: running them would crash the process
            raise ValueError("echo stage is closed")
        out = self._out
        replay = self._replay
        if replay is not None and self._replay_some(replay, position):
            replay = None
        echo = self._echo
        if replay is None:
            offset = self.offset_at(position)
            self.offset = round(offset)
        else:
            offset = replay.live_offset_at(position)
        self.far_active = echo is not None and self._far_active(position, offset)
        self.mic_energy = self.out_energy = 0.0
        if self.far_active:
            assert echo is not None
            if not self._linked and self._res and self._pre is not None:
                self._pre.link_echo(echo)
                self._linked = True
            echo.cancel_to(frame, self._reference(position, offset), self._out_ptr)
            mic_energy = self._energy(frame if samples is None else samples)
            out_energy = self._energy(self.out_samples)
            self.mic_energy = mic_energy
            self.out_energy = out_energy
            # 1 dB of slack: rounding, and the filter's own noise on a near-silent mic
            if out_energy > 1.26 * mic_energy + _DIVERGED_FLOOR:
                # the filter added energy: it subtracted an echo estimate from a mic that holds
                # none (a line without echo, a filter that adapted on the user's voice).
                # Cancelling cannot make a frame louder, so the mic passes instead; otherwise
                # the estimate alone reads as speech (the assistant cutting itself off).
                out[:] = frame
                self.out_energy = mic_energy
                self.diverged_frames += 1
            elif self._trained and not self.converged and replay is None:
                self.converged = self._meter.update(mic_energy, out_energy)
        else:
            if self._linked and self._pre is not None:
                # nothing to cancel: skip the filter and keep stale residual-echo estimates
                # away from the suppressor
                self._pre.link_echo(None)
                self._linked = False
            out[:] = frame
        if self._pre is not None:
            self._pre.run_at(self._out_ptr)
        return bytes(out)

    def target_offset(self, delay: int) -> int:
        return max(0, delay - self.policy.lead_ms * self._ms)

    def needs_realign(self, delay: int) -> bool:
        """Whether ``delay`` falls outside the zone the current alignment covers."""
        place = delay - self.offset
        low = self.policy.zone_low_ms * self._ms
        high = self.policy.zone_high_ms * self._ms
        return (place < low and self.offset > 0) or place > high

    def set_delay(self, delay: int, position: int, *, exact: bool = False) -> bool:
        """Take a new bulk-delay belief at mic ``position`` (the next frame's start).

        Realigns (and retrains on buffered audio) when the delay left the zone, or always with
        ``exact`` (used when the estimator first confirms a delay: the replay then also
        speeds up the cold start); returns True if it did.
        """
        if self._closed:
            raise ValueError("echo stage is closed")
        self.delay = delay
        if self._echo is None:
            return False
        if not exact and not self.needs_realign(delay):
            return False
        live = self._replay
        if live is None:
            live_base, live_origin, live_skew = self._base, self._origin, self._skew
        else:  # a replay still catching up is dropped; the live frames keep their alignment
            live_base, live_origin, live_skew = live.live_base, live.live_origin, live.live_skew
            live.canceller.close()
            self._replay = None
        self.offset = self.target_offset(delay)
        self._base = float(self.offset)
        self._origin = position
        self.realignments += 1
        self._trained = True
        self._meter.reset()
        self.converged = False
        n = FRAME_SAMPLES
        span = int(self.policy.retrain_secs * SAMPLE_RATE) // n * n
        start = max(0, position - span)
        start -= start % n
        frames = range(start, position - n + 1, n)
        if not frames or self.policy.retrain_passes <= 0:
            self._echo.reset()  # nothing buffered to learn from: a cold start
            return True
        replay = _Replay(
            EchoCanceller(FRAME_SAMPLES, self._tail, SAMPLE_RATE),
            start=start,
            end=position,
            half=frames[len(frames) // 2],
            passes=self.policy.retrain_passes,
            live_base=live_base,
            live_origin=live_origin,
            live_skew=live_skew,
            next=start,
        )
        if self.policy.replay_frames_per_call <= 0:
            self._replay_some(replay, position)  # all of it, before the next live frame
        else:
            self._replay = replay
        return True

    def _replay_some(self, replay: _Replay, position: int) -> bool:
        """Run the replay on (``replay_frames_per_call`` canceller calls, or all of it when
        that is 0) up to the live frame at ``position``; when it has caught up, its filter
        takes over and the result of its last pass decides ``converged``. Returns whether it
        took over."""
        n = FRAME_SAMPLES
        echo = replay.canceller
        out = self._scratch
        zero = self._zero
        budget = self.policy.replay_frames_per_call or -1
        last = replay.passes - 1
        while budget:
            budget -= 1
            if replay.flush_left:
                # flush the filter's reference history so the next pass starts consistent
                echo.cancel_into(zero, zero, out)
                replay.flush_left -= 1
                continue
            p = replay.pass_index
            pos = replay.next
            if pos + n > (position if p == last else replay.end):
                if p == last:
                    self._take_over(replay)
                    return True
                replay.pass_index += 1
                replay.next = replay.start
                replay.flush_left = self._tail // n + 1
                continue
            mic = self._mic_log.read(pos, n)
            offset = replay.earlier_offset_at(pos)
            ref = self._reference(pos, self.offset_at(pos) if offset is None else offset)
            echo.cancel_into(mic, np.ascontiguousarray(ref), out)
            self.retrained_frames += 1
            replay.next = pos + n
            if p == last and pos >= replay.half:
                power = self._energy(mic)
                if power > SILENT_ENERGY:
                    replay.measured += 1
                    replay.mic_energy += power
                    replay.out_energy += self._energy(out)
        return False

    def _take_over(self, replay: _Replay) -> None:
        """The replayed filter becomes the live one. Its last pass shows what it removes: a
        filter that already cancels the buffered echo needs no live frames to prove it
        (waiting for them would hold a user who talks over the reply until the echo is alone
        again); at least 0.5 s of non-silent mic audio must have been measured."""
        old = self._echo
        self._echo = replay.canceller
        self._replay = None
        if self._linked and self._pre is not None:
            self._pre.link_echo(self._echo)
        if old is not None:
            old.close()
        enough = replay.measured * FRAME_SAMPLES >= SAMPLE_RATE // 2
        self.converged = enough and self._meter.removes_enough(replay.mic_energy, replay.out_energy)

    def close(self) -> None:
        """Free the speex states (preprocessor first: it may point at the echo state).
        Idempotent; the stage takes no frame after it."""
        self._closed = True
        if self._pre is not None:
            self._pre.close()
        if self._echo is not None:
            self._echo.close()
        if self._replay is not None:
            self._replay.canceller.close()
            self._replay = None
