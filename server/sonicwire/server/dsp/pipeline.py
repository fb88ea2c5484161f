"""The per-stream audio front end: framing -> aligned echo cancel -> preprocess -> VAD.

One :class:`FrontEnd` per stream, driven by the session core with four inputs:

* ``process(pcm)``: microphone audio, 16 kHz mono s16le, any length; returns the cleaned
  20 ms frames now complete, each with its mic-stream offset, VAD state and events;
* ``push_far_end(pcm)``: assistant audio exactly as released to the client, in order, at
  the current mic position (what the client will play);
* ``report_playback(played)``: the client's total of far-end samples played, as of now;
* ``truncate_far_end(played)``: barge-in, the client dropped everything after ``played``.

Output does not depend on how the mic audio is split into calls (far-end calls made at the
same mic positions). Frames come out one frame late when the preprocessor runs (its
overlap-add delay); their ``offset`` is the offset of the audio they carry.

Synchronous and clock-free: suitable for the sans-I/O session core.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from .aec import EchoStage, replay_history_frames
from .aec3 import Aec3Stage
from .convergence import SILENT_ENERGY
from .delay import DelayEstimate, DelayEstimator, DelayTracker
from .frames import FRAME_SAMPLES, SAMPLE_RATE, FrameChunker
from .front_end_output import FrontEndFrame, FrontEndStats
from .gate import EchoGate
from .settings import FrontEndSettings, SpeechStarted
from .skew import SkewTracker
from .timeline import FarEndTimeline, SampleLog
from .vad import Vad, VadState, min_mean_square

__all__ = ["FrontEnd", "FrontEndFrame", "FrontEndSettings", "FrontEndStats"]

_MS = SAMPLE_RATE // 1000


class FrontEnd:
    """Per-stream audio front end (see the module docstring for the call protocol)."""

    # Final: constants to mypyc (sonicwire.server.native), readable on the class as before
    ESTIMATE_WINDOW_MS: Final = 500
    # estimation cadence: frames between two delay estimates (see _next_hop)
    ACQUIRE_HOP_FRAMES: Final = 10
    IDLE_HOP_FRAMES: Final = 50
    IDLE_AFTER_MISSES: Final = 10
    RELOOK_MISSES: Final = 3
    TRACK_HOP_FRAMES: Final = 50
    SKEW_HOP_FRAMES: Final = 20
    SETTLED_HOP_FRAMES: Final = 150
    SETTLE_AFTER_AGREEING: Final = 5
    SETTLE_WITHOUT_SKEW: Final = 20
    QUALITY_DB: Final = 10.0
    QUALITY_FRAMES: Final = 5
    MIN_SKEW: Final = 5e-6
    PROBE_HOP_FRAMES: Final = 2
    MAX_PROBE_HOP_FRAMES: Final = 16
    ECHO_COHERENCE: Final = 0.75
    NOT_ECHO_COHERENCE: Final = 0.45
    CONFIRM_COHERENCE: Final = 0.6
    FAR_SLACK_SAMPLES: Final = SAMPLE_RATE  # far-end log room beyond its history (see __init__)
    MIC_SLACK_SAMPLES: Final = SAMPLE_RATE // 2
    TRIM_HOP_FRAMES: Final = 50  # how often the far end's segment list is trimmed

    def __init__(self, settings: FrontEndSettings | None = None) -> None:
        self.settings = settings = settings or FrontEndSettings()
        self._chunker = FrameChunker()
        self._received = 0  # mic bytes received, including a pending partial frame
        self._position = 0  # offset of the next complete mic frame
        max_delay = settings.max_echo_delay_ms * _MS
        max_delay -= max_delay % 8
        window = self.ESTIMATE_WINDOW_MS * _MS
        retrain = int(settings.alignment.retrain_secs * SAMPLE_RATE)
        tail = settings.echo_tail_ms * _MS
        # a replay catching up reads history from where it began, live frames later
        margin = (4 + replay_history_frames(settings.alignment, tail)) * FRAME_SAMPLES
        self._keep_far = max(window, retrain + tail) + max_delay + margin
        self._keep_mic = max(window, retrain) + margin
        # Both logs forget what is older than they need on every frame, so they are sized
        # to that history plus some slack (the far end also holds the audio queued ahead of
        # the mic: the release lead, 120 ms by default): a compaction then copies the kept
        # history about once a second. They grow if more is queued ahead (a muted mic). Per
        # stream this is ~200 kB of int16 instead of the ~470 kB that twice the history plus
        # 5 s cost (docs/FRONTEND.md, memory).
        self._timeline = FarEndTimeline(
            self._keep_far, capacity=self._keep_far + self.FAR_SLACK_SAMPLES
        )
        self._mic_log = SampleLog(self._keep_mic + self.MIC_SLACK_SAMPLES)
        stage = Aec3Stage if settings.echo_engine == "aec3" else EchoStage
        self._echo: EchoStage | Aec3Stage = stage(
            self._timeline,
            self._mic_log,
            echo_cancellation=settings.echo_cancellation,
            echo_tail_ms=settings.echo_tail_ms,
            noise_suppression=settings.noise_suppression,
            noise_suppress_db=settings.noise_suppress_db,
            agc=settings.agc,
            residual_echo_suppression=settings.residual_echo_suppression,
            policy=settings.alignment,
        )
        self._aec = settings.echo_cancellation
        self._estimator = DelayEstimator(max_delay=max_delay, window=window)
        self._tracker = DelayTracker(max_delay=max_delay)
        self._skew = SkewTracker()
        self._vad = Vad(settings.vad)
        self._latency = self._echo.latency
        self._skip = self._latency // FRAME_SAMPLES
        self._until_estimate = self.ACQUIRE_HOP_FRAMES
        self._misses = 0  # informative blocks in a row without a candidate delay (unlocked)
        self._agreeing = 0  # confident block readings in a row at the locked delay
        self._skew_known = False  # as of the last reading (see _count_readings)
        self._far_gone = True  # no far-end audio was within reach at the last estimate
        self._quality_ratio = 10.0 ** (self.QUALITY_DB / 10.0)
        self._q_mic = 0.0  # smoothed mic and canceller output energies (settled lines)
        self._q_out = 0.0
        self._q_low = 0
        self._verdict_until = 0  # the last probe's verdict stands until this position
        self._verdict_not_echo = False
        self._probe_hop = self.PROBE_HOP_FRAMES
        self._min_speech_ms = min_mean_square(settings.vad.min_volume)
        self._ms_scratch = np.zeros(FRAME_SAMPLES, dtype=np.float32)
        gate_db = settings.echo_vad_gate_db
        self._gate: EchoGate | None = None
        if gate_db is not None and self._aec:
            self._gate = EchoGate(floor_db=gate_db, ceiling_db=max(gate_db, 25.0))
        self._prev_mic_ms = 0.0
        self.stats = FrontEndStats()
        self._closed = False

    # -- introspection -------------------------------------------------------------------

    @property
    def latency(self) -> int:
        """Samples by which output frames lag the input."""
        return self._latency

    @property
    def mic_position(self) -> int:
        """Mic samples received so far (the position far-end pushes are scheduled at)."""
        return self._received // 2

    @property
    def echo_delay(self) -> int | None:
        """Current bulk-delay belief in samples (None until reports or the estimator give one)."""
        return self._tracker.delay

    @property
    def delay_locked(self) -> bool:
        """Whether the estimator has confirmed the delay from the signals."""
        return self._tracker.locked

    @property
    def alignment_offset(self) -> int:
        return self._echo.offset

    @property
    def vad(self) -> Vad:
        return self._vad

    # -- inputs --------------------------------------------------------------------------

    def process(self, pcm: bytes) -> list[FrontEndFrame]:
        """Feed mic audio; return the cleaned frames completed by it (possibly none)."""
        if self._closed:
            raise ValueError("front end is closed")
        self._received += len(pcm)
        out: list[FrontEndFrame] = []
        scratch = self._ms_scratch
        far_log = self._timeline.log
        echo, gate, vad, stats = self._echo, self._gate, self._vad, self.stats
        estimated = False  # this frame ran an estimate: its windows are kept until the probe
        for frame in self._chunker.push(pcm):
            position = self._position
            if self._aec:
                self._mic_log.write_bytes(position, frame)
            replaying = echo.replaying
            # no int16 view of the frame here: the stage makes one only when it cancels echo
            cleaned = echo.process(frame, position)
            if replaying:  # its last calls run in the frame where it takes over
                stats.retrained_frames = echo.retrained_frames
            # the stage measured the raw mic frame already (0 when no far end was in reach)
            mic_ms = echo.mic_energy / FRAME_SAMPLES if gate is not None else 0.0
            if self._latency:
                # the cleaned frame carries the previous input frame
                mic_ms, self._prev_mic_ms = self._prev_mic_ms, mic_ms
            t = self._position = position + FRAME_SAMPLES
            stats.frames += 1
            # what the estimator, the probes and a retrain can still read (see __init__)
            far_log.forget_before(t - self._keep_far)
            if self._aec:
                self._mic_log.forget_before(t - self._keep_mic)
                if self._agreeing and echo.far_active:
                    self._watch_quality(echo.mic_energy, echo.out_energy)
                self._until_estimate -= 1
                if self._until_estimate <= 0:
                    self._estimate()
                    estimated = True
            elif stats.frames % self.TRIM_HOP_FRAMES == 0:
                self._timeline.forget_before(t - self._keep_far)  # _estimate does it with AEC
            if self._skip:
                self._skip -= 1
                if estimated:
                    self._estimator.drop_windows()
                    estimated = False
                continue
            np.copyto(scratch, echo.out_samples)  # the samples of `cleaned`
            mean_square = float(scratch.dot(scratch)) / FRAME_SAMPLES
            # an echo-hold probe in the frame of an estimate reuses its windows' FFTs
            hold = self._echo_hold(mean_square)
            if estimated:
                self._estimator.drop_windows()  # held by no stream between frames
                estimated = False
            allow = not hold
            if allow and gate is not None and mic_ms > 0.0:
                learn = vad.state is VadState.QUIET and echo.converged
                allow = gate.allow(mic_ms, mean_square, learn=learn)
            events = vad.process(cleaned, mean_square, allow_speech=allow, undecided=hold)
            if gate is not None and gate.pending:
                # the gate learns echo from frames that turned out not to be speech: frames
                # of an onset still being confirmed stay queued, the user's own are dropped
                if any(isinstance(e, SpeechStarted) for e in events):
                    gate.settle(True)
                elif not vad.onset_pending:
                    gate.settle(False)
            out.append(
                FrontEndFrame(
                    cleaned,
                    position - self._latency,
                    vad.in_speech,
                    tuple(events) if events else (),
                    vad.last_speech,
                )
            )
        return out

    def push_far_end(self, pcm: bytes) -> None:
        """Schedule assistant audio released to the client now (16 kHz mono s16le)."""
        if self._closed:
            raise ValueError("front end is closed")
        self._timeline.push(pcm, self.mic_position)

    def report_playback(self, played_samples: int, output_latency: int = 0) -> None:
        """The client has played ``played_samples`` far-end samples in total, as of now.

        The reported sample left the client's queue at the current mic position: a floor for
        the bulk delay, to which the device adds its own output latency (``output_latency``
        samples when the client knows it: a prior, see :class:`DelayTracker`). Reports of
        everything released (queue drained) carry no timing and are ignored.
        """
        if self._closed:
            raise ValueError("front end is closed")
        if played_samples >= self._timeline.far_total:
            return
        scheduled = self._timeline.scheduled(played_samples)
        if scheduled is None:
            return
        self.stats.reports += 1
        self._tracker.on_report(self.mic_position - scheduled, output_latency)
        self._apply_delay()

    def truncate_far_end(self, played_samples: int) -> None:
        """Barge-in: far-end audio past ``played_samples`` was flushed and will never play."""
        if self._closed:
            raise ValueError("front end is closed")
        self._timeline.truncate(played_samples, self.mic_position)

    def close(self) -> None:
        """Free the C states. Idempotent."""
        if not self._closed:
            self._closed = True
            self._echo.close()
            self._vad.close()

    def __enter__(self) -> FrontEnd:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals -----------------------------------------------------------------------

    def _echo_reach(self) -> int:
        """Mic position up to which far-end audio already queued can still be heard: its
        end plus the confirmed delay (the largest searched one until confirmed) plus the
        room's tail."""
        delay = self._tracker.delay if self._tracker.locked else None
        if delay is None:
            delay = self._estimator.max_delay
        return self._timeline.queue_end + delay + self.settings.echo_tail_ms * _MS

    def _echo_hold(self, mean_square: float) -> bool:
        """Whether this frame must not count as speech because it may be echo the filter
        cannot cancel yet (the assistant interrupting itself).

        Nothing is held once the canceller, trained on a delay the signals confirmed, removes
        most of the echo (``EchoStage.converged``: the echo gate takes over), nor where no
        queued far-end audio can still be heard. Before that the decision follows evidence,
        not a timer: a loud frame counts only when the last half second of mic audio is not
        explained by the far end (coherence under ``NOT_ECHO_COHERENCE``) at the likeliest of
        every delay still possible (the window's own GCC-PHAT peak). So a
        user talking over the first reply on a line without echo (headphones, a phone
        handset), or louder than the echo, is heard at once; an echo arriving later than any
        report said, before the filter has learnt it, is not.
        """
        if not self._aec or self._echo.converged or self._timeline.queue_end <= 0:
            return False
        if self._position >= self._echo_reach():
            return False
        if mean_square < self._min_speech_ms:
            return True  # too quiet to be speech: nothing to decide
        return not self._probe_not_echo()

    def _probe_not_echo(self) -> bool:
        t = self._position
        if t < self._verdict_until:
            return self._verdict_not_echo
        est = self._estimator
        mic = self._mic_log.read(t - est.window, est.window)
        far = self._timeline.log.read(t - est.window - est.max_delay, est.window + est.max_delay)
        # at the likeliest delay of this very window, not at the belief: a belief knocked
        # off by a jittery report would find no echo where it looks and let it through
        coherence = est.echo_coherence(mic, far, self._tracker.search_range(), at=t)
        est.drop_windows()  # the last reader of this frame's windows
        self.stats.probes += 1
        if coherence is None:
            not_echo = True  # no far-end audio within reach of this window
        else:
            not_echo = coherence < self.NOT_ECHO_COHERENCE
            if coherence >= self.ECHO_COHERENCE:
                self.stats.echo_probes += 1
        # a line that keeps showing no echo (headphones, a handset) is probed less and less
        # often, up to every MAX_PROBE_HOP_FRAMES: each probe is three FFTs of 8192 points,
        # which on a talking user's every other frame cost more than the whole canceller
        if not_echo and self._verdict_not_echo:
            self._probe_hop = min(2 * self._probe_hop, self.MAX_PROBE_HOP_FRAMES)
        else:
            self._probe_hop = self.PROBE_HOP_FRAMES
        self._verdict_not_echo = not_echo
        self._verdict_until = t + self._probe_hop * FRAME_SAMPLES
        return not_echo

    def _next_hop(self) -> int:
        """Frames until the next estimate: full rate while something is to be found, less
        often once the line is settled.

        * Unlocked: every ``ACQUIRE_HOP_FRAMES`` (200 ms), until ``IDLE_AFTER_MISSES``
          informative blocks in a row (mic and far end both above the floor) showed no echo
          (a headset, a handset, a user talking over a far end that never comes back):
          then every ``IDLE_HOP_FRAMES``. A candidate delay, or a far end that starts after
          silence (``RELOOK_MISSES`` more blocks at full rate), brings the full rate back.
          A quiet mic is not a miss: the echo may still be on its way (up to the largest
          searched delay), and such a block costs only the mic's decimation.
        * Locked: every ``SKEW_HOP_FRAMES`` until the clock skew is known, then
          ``TRACK_HOP_FRAMES``; once ``SETTLE_AFTER_AGREEING`` confident single-block
          readings in a row confirmed the delay after that (``SETTLE_WITHOUT_SKEW`` when
          no skew fits the readings), ``SETTLED_HOP_FRAMES``. A reading that
          disagrees (a jump to confirm) or a canceller that stops removing echo
          (:meth:`_watch_quality`) ends the settled state at once.
        """
        tracker = self._tracker
        if not tracker.locked:
            if self._misses < self.IDLE_AFTER_MISSES:
                return self.ACQUIRE_HOP_FRAMES
            return self.IDLE_HOP_FRAMES
        settle = self.SETTLE_AFTER_AGREEING if self._skew_known else self.SETTLE_WITHOUT_SKEW
        if self._agreeing >= settle:
            return self.SETTLED_HOP_FRAMES
        if self.stats.skew_ppm is None:
            return self.SKEW_HOP_FRAMES  # denser readings until skew is known
        return self.TRACK_HOP_FRAMES

    def _watch_quality(self, mic_energy: float, out_energy: float) -> None:
        """On a settled line, return to full rate when the canceller stops removing echo.

        A delay change (the client's buffer grew, another device) shows first as echo the
        filter no longer removes, long before a settled cadence would look again. Smoothed
        like :class:`.convergence.ConvergenceMeter`: ``QUALITY_FRAMES`` frames in a row
        under ``QUALITY_DB`` of reduction, on a stage that converged on this alignment. A
        user talking over the echo does the same (their voice is not removed): that costs
        a few estimates at full rate, never a wrong belief.
        """
        if mic_energy <= SILENT_ENERGY or not self._echo.converged:
            return
        self._q_mic = 0.9 * self._q_mic + 0.1 * mic_energy
        self._q_out = 0.9 * self._q_out + 0.1 * out_energy
        if self._q_mic > self._quality_ratio * self._q_out:
            self._q_low = 0
            return
        self._q_low += 1
        if self._q_low >= self.QUALITY_FRAMES:
            self._unsettle()

    def _unsettle(self) -> None:
        self._agreeing = 0
        self._q_low = 0
        self._q_mic = self._q_out = 0.0
        self._until_estimate = min(self._until_estimate, self.ACQUIRE_HOP_FRAMES)

    def _estimate(self) -> None:
        tracker = self._tracker
        # the cadence of the state before this reading: the first one after a lock keeps
        # the acquisition's (the readings' phase decides what the first skew fit sees)
        self._until_estimate = self._next_hop()
        t = self._position
        est = self._estimator
        self._timeline.forget_before(t - self._keep_far)
        self._mic_log.forget_before(t - self._keep_mic)
        if self._timeline.queue_end <= t - est.window - est.max_delay:
            self._far_gone = True  # no far-end audio could have reached this mic window
            return
        if self._far_gone:
            # the far end starts after silence (a new reply, maybe through another path):
            # its first blocks are looked at at full rate, whatever the line showed before
            self._far_gone = False
            self._misses = min(self._misses, self.IDLE_AFTER_MISSES - self.RELOOK_MISSES)
        mic = self._mic_log.read(t - est.window, est.window)
        far = self._timeline.log.read(t - est.window - est.max_delay, est.window + est.max_delay)
        # locked: the single-block reading watches for jumps every time, the accumulated
        # one (slow drift) every other time; idle: the single block says when echo appears
        self.stats.estimates += 1
        idle = not tracker.locked and self._misses >= self.IDLE_AFTER_MISSES
        reading = est.update(
            mic,
            far,
            tracker.search_range(),
            block_estimate=tracker.locked or idle,
            estimate=not tracker.locked or self.stats.estimates % 2 == 0,
            at=t,
        )
        reading = self._confirmed(reading, mic, far)
        was_locked = tracker.locked
        self._follow_skew(est.block_estimate)
        if tracker.on_estimate(reading):
            # the first confirmation from the signals places the echo exactly at the lead
            self._apply_delay(exact=not was_locked)
        elif tracker.on_block(self._jump_reading(est.block_estimate, mic, far)):
            # the delay jumped (e.g. the client's buffer grew): follow now, forget the past
            est.restart_from_last_block()
            self._skew.reset()  # a jump is not drift
            self._agreeing = 0
            self._until_estimate = self.ACQUIRE_HOP_FRAMES
            self._apply_delay()
        self._count_readings(reading, was_locked)
        if idle and not tracker.locked and est.informative:
            # the history is many blocks without echo: kept, it would hold an echo that
            # appears (a headset swapped for the loudspeaker) down for seconds at the idle
            # cadence, so each idle block starts it afresh; one that shows echo brings the
            # full rate back
            est.restart_from_last_block()
            if self._echo_appeared(est.block_estimate, mic, far):
                self._misses = 0
                self._until_estimate = self.ACQUIRE_HOP_FRAMES
        est.drop_last_block()  # needed only by the restarts above

    def _confirmed(
        self, reading: DelayEstimate | None, mic: npt.NDArray[np.int16], far: npt.NDArray[np.int16]
    ) -> DelayEstimate | None:
        """The reading, or None when it would move the belief but the block it came from is
        not explained by the far end at that delay.

        A GCC-PHAT peak says where the block correlates best, not that the mic holds echo:
        a user repeating a word the far end played (the load generator's echo backend
        plays each utterance back, and every clip of its corpus starts with the same
        recorded word) gives a peak as high as a faint echo's (confidence 9-17 against a
        lock threshold of 9), and the accumulated spectrum keeps reporting it for blocks
        that hold nothing like it. Echo keeps the coherence at its delay at 0.84-0.98
        (eval sweep, RT60 0.3-0.6 s); those peaks showed 0.00-0.70, so a reading counts
        only at ``CONFIRM_COHERENCE`` (0.6, under the probes' ``ECHO_COHERENCE``: the
        ranges overlap, and a rare such peak passes).
        Costs two short FFTs per candidate until the lock, and per reading that disagrees
        with it.
        """
        tracker = self._tracker
        if reading is None or reading.confidence < tracker.lock_confidence:
            return reading
        if (
            tracker.locked
            and tracker.delay is not None
            and abs(reading.delay - tracker.delay) <= tracker.agree_tolerance
        ):
            return reading  # confirms what the canceller already works with
        coherence = self._estimator.coherence_at(mic, far, reading.delay, at=self._position)
        if coherence is None or coherence < self.CONFIRM_COHERENCE:
            tracker.on_rejected()
            return None
        return reading

    def _jump_reading(
        self, block: DelayEstimate | None, mic: npt.NDArray[np.int16], far: npt.NDArray[np.int16]
    ) -> DelayEstimate | None:
        """The single-block reading for the jump rule (`DelayTracker.on_block`), or None when
        it is strong enough to start or confirm a jump but its block is not explained by the
        far end at that delay (see :meth:`_confirmed`): two blocks of a user repeating what
        the far end played, 200 ms apart, moved a locked echo onto the repeat."""
        tracker = self._tracker
        if (
            block is None
            or tracker.delay is None
            or block.confidence < 2 * tracker.lock_confidence
            or abs(block.delay - tracker.delay) <= tracker.agree_tolerance
        ):
            return block  # no jump in it: on_block only clears a pending one
        coherence = self._estimator.coherence_at(mic, far, block.delay, at=self._position)
        if coherence is None or coherence < self.CONFIRM_COHERENCE:
            return None
        return block

    def _echo_appeared(
        self, block: DelayEstimate | None, mic: npt.NDArray[np.int16], far: npt.NDArray[np.int16]
    ) -> bool:
        """Whether a single block of an idle line shows echo: a peak half as confident as a
        lock needs (one block of a faint echo reads 5-7 where the accumulated readings at full
        rate soon pass 9), and the block explained by the far end at its delay (see
        :meth:`_confirmed`; the user's voice alone peaks as high, incoherent)."""
        if block is None or block.confidence < 0.5 * self._tracker.lock_confidence:
            return False
        coherence = self._estimator.coherence_at(mic, far, block.delay, at=self._position)
        return coherence is not None and coherence >= self.CONFIRM_COHERENCE

    def _count_readings(self, reading: DelayEstimate | None, was_locked: bool) -> None:
        """Update the evidence the cadence follows (see :meth:`_next_hop`)."""
        tracker = self._tracker
        est = self._estimator
        if not tracker.locked:
            if est.informative:
                found = reading is not None and reading.confidence >= tracker.lock_confidence
                self._misses = 0 if found else self._misses + 1
            return
        if not was_locked:
            self._misses = 0
        skew_known = self.stats.skew_ppm is not None or not isinstance(self._echo, EchoStage)
        if skew_known != self._skew_known:
            # count again from the skew's first fit: over 3 s of readings it can be off by
            # several ppm, and the readings after it correct it
            self._skew_known = skew_known
            self._agreeing = 0
        block = est.block_estimate
        if tracker.jump_pending:
            self._unsettle()  # the next reading confirms or dismisses it while it is fresh
        elif (
            block is not None
            and tracker.delay is not None
            and block.confidence >= tracker.lock_confidence
            and abs(block.delay - tracker.delay) <= 2 * tracker.agree_tolerance
        ):
            self._agreeing += 1

    def _follow_skew(self, block: DelayEstimate | None) -> None:
        """Feed confident single-block readings near the locked delay to the skew tracker and
        let the speex stage follow the drift it finds (AEC3 tracks drift itself)."""
        tracker = self._tracker
        if (
            block is None
            or not tracker.locked
            or tracker.delay is None
            or block.confidence < tracker.lock_confidence
            or abs(block.delay - tracker.delay) > 2 * tracker.agree_tolerance
        ):
            return
        skew = self._skew.add(self._position, block.peak)
        if skew is not None and abs(skew) < self.MIN_SKEW:
            skew = 0.0  # the filter keeps up by itself (43 dB at 10 ppm), interpolation costs
        if skew is not None and isinstance(self._echo, EchoStage):
            self._echo.set_skew(skew, self._position)
            self.stats.skew_ppm = round(skew * 1e6, 1)

    def _apply_delay(self, *, exact: bool = False) -> None:
        delay = self._tracker.delay
        if delay is None or not self._aec:
            return
        if self._echo.set_delay(delay, self._position, exact=exact):
            # a realignment restarts the filter: the echo hold applies again until it
            # reconverges (see _echo_hold)
            self.stats.realignments = self._echo.realignments
            self.stats.retrained_frames = self._echo.retrained_frames
