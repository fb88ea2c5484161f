"""Far-end alignment: where the assistant's audio lands on the microphone timeline.

The echo canceller needs, for each microphone frame, the far-end samples that were playing
(plus its filter tail). Three pieces find them:

* :class:`.timeline.FarEndTimeline` models the client's playback queue on the *mic* sample clock.
  Audio the server releases at mic position ``M`` is scheduled to start at
  ``max(M, end of the audio queued before it)``: the client plays released audio back to
  back. The echo of scheduled position ``s`` reaches the microphone at ``s + D``, where ``D``
  (network, client buffer, device latency) is unknown and drifts.
* :class:`DelayEstimator` estimates ``D`` from the signals alone: GCC-PHAT between the
  decimated timeline and the raw microphone, accumulated over blocks with forgetting, so it
  tracks slow drift and ignores blocks with nothing to correlate.
* :class:`DelayTracker` turns playback reports (``PlaybackUpdate``) and estimator output into
  one belief about ``D`` with confidence and hysteresis. A report gives a *floor*: the
  client's queue position, to which the device adds an output latency no report shows
  (Bluetooth, OS mixers, telephony jitter buffers: 0-1000 ms). Until the estimator confirms
  ``D`` from the signals, the belief is the floor plus the latency the client says it has
  (``output_latency_ms``, a prior); the estimator never searches below the floor and always
  searches everything above it, so a report can speed the lock but never hide the echo.

Everything here is synchronous and reads no clock: positions are sample counts on the mic
stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import median

import numpy as np
import numpy.fft  # numpy loads it lazily: load it at server start, not in a stream
import numpy.typing as npt

from .median import median as array_median

__all__ = [
    "DelayEstimate",
    "DelayEstimator",
    "DelayTracker",
]

Int16Array = npt.NDArray[np.int16]
Float32Array = npt.NDArray[np.float32]
Complex64Array = npt.NDArray[np.complex64]


@dataclass(frozen=True, slots=True)
class DelayEstimate:
    """One estimator reading: echo of scheduled position ``s`` appears at ``s + delay``."""

    delay: int
    """Bulk delay in samples (earliest strong arrival)."""
    confidence: float
    """Peak of the GCC-PHAT curve over its standard deviation within the searched range."""
    peak: float = 0.0
    """Delay of the strongest arrival in samples, to a fraction of the decimation step
    (parabolic interpolation): what clock drift moves (see :class:`.skew.SkewTracker`)."""


class DelayEstimator:
    """GCC-PHAT bulk-delay estimator over blocks, with exponential forgetting.

    Call :meth:`update` with the last ``window`` raw mic samples and the last
    ``window + max_delay`` timeline samples ending at the same position. Each informative
    block (both sides above an energy floor) adds its cross-spectrum to a running sum that
    decays by ``forget`` per block; the PHAT-weighted correlation of the sum gives the delay.
    Works on a ``decimation``-times decimated band of 100 Hz to 0.95x the new Nyquist.
    """

    def __init__(
        self,
        *,
        max_delay: int = 16000,
        window: int = 8000,
        decimation: int = 4,
        forget: float = 0.85,
        sample_rate: int = 16000,
        floor_dbfs: float = -55.0,
        early_window: int = 480,
    ) -> None:
        if max_delay % decimation or window % decimation:
            raise ValueError("max_delay and window must be multiples of decimation")
        self.max_delay = max_delay
        self.window = window
        self.decimation = decimation
        self.forget = forget
        self._far_len = (window + max_delay) // decimation
        self._mic_len = window // decimation
        self._max_lag = max_delay // decimation
        n = 1
        while n < self._far_len:
            n *= 2
        self._nfft = n
        self._rate = sample_rate
        rate = sample_rate / decimation
        lo = max(1, round(100.0 * n / rate))
        hi = round(0.95 * (rate / 2) * n / rate)
        self._band = slice(lo, hi)
        self._band_lo, self._band_hi = lo, hi
        self._cross: Complex64Array = np.zeros(n // 2 + 1, dtype=np.complex64)
        self._weight = 0.0
        # mean-square floor per decimated sample (sum of `decimation` samples, int16 scale)
        self._floor = (10 ** (floor_dbfs / 20) * 32768 * decimation) ** 2
        self._early = early_window // decimation
        self._ones: Float32Array = np.ones(decimation, dtype=np.float32)
        # the only spectrum kept between calls (32 kB at the default sizes): the PHAT
        # scratch of each reading is allocated per reading, a few times a second, rather
        # than held by every stream
        self._last_block: Complex64Array | None = None
        self._hanning: dict[int, Float32Array] = {}  # coherence windows by segment length
        # One frame's windows, decimated (and transformed), for every call that names the
        # same mic position ``at``: a frame that runs an estimate and an echo-hold probe, or
        # an estimate and its coherence checks, decimates and transforms its windows once.
        # Dropped by drop_windows at the end of that frame, so no stream holds them between
        # frames (see _last_block).
        self._at = -1
        self._m: Float32Array | None = None
        self._mic_power = 0.0
        self._f: Float32Array | None = None
        self._far_power = 0.0
        self._spec_m: Complex64Array | None = None
        self._spec_f: Complex64Array | None = None
        self.block_estimate: DelayEstimate | None = None
        """The reading from the last informative block alone (fast, noisier)."""
        self.informative = False
        """Whether the last :meth:`update` added a block (both sides above the floor)."""
        self.blocks = 0

    def reset(self) -> None:
        self._cross[:] = 0
        self._weight = 0.0
        self.blocks = 0

    def _decimate(self, x: Int16Array) -> Float32Array:
        # block sums: a crude anti-alias filter, enough for a correlation peak (and ~10x
        # cheaper than reshape().sum(axis=1) for a short inner axis)
        out: Float32Array = x.astype(np.float32).reshape(-1, self.decimation) @ self._ones
        return out

    def update(
        self,
        mic: Int16Array,
        far: Int16Array,
        search: tuple[int, int] | None = None,
        *,
        block_estimate: bool = True,
        estimate: bool = True,
        at: int = -1,
    ) -> DelayEstimate | None:
        """Add one block and return the current estimate: None if nothing is known yet,
        or if this block added nothing (either side too quiet).

        A block that adds nothing leaves the accumulated cross-spectrum as it was, so its
        reading would repeat the previous one: returned, it read as a second, independent
        confirmation of that delay (the tracker locks on two agreeing readings). That is how
        the load generator's echo backend locked a bogus 1.47 s "echo" on 9 streams of 10:
        one weak peak (the user's next clip starts with the same recorded word as the reply
        played before it) and the silent block after it (docs/FRONTEND.md, design notes).

        ``search`` limits the answer to delays in ``[lo, hi]`` samples (e.g. around a
        playback report); the accumulated cross-spectrum is unaffected. Without
        ``block_estimate`` the single-block reading is skipped, without ``estimate`` the
        accumulated one (each costs an inverse FFT). ``at``: see :meth:`echo_coherence`.
        """
        if len(mic) != self.window or len(far) != self.window + self.max_delay:
            raise ValueError("mic/far block sizes do not match the estimator")
        self._windows_at(at)
        self.informative = False
        self._last_block = None
        self.block_estimate = None
        m, mic_power = self._mic_window(mic)
        if mic_power <= self._floor:
            return None  # a quiet mic (a silent line, a headset): the far end is not needed
        # far-end energy that could have reached this mic window, for any searched delay
        f, far_power = self._far_window(far)
        if far_power > self._floor:
            # no mean removal: DC lies outside the band the PHAT weighting keeps
            spec_f, spec_m = self._spectra(f, m)
            block = spec_f * np.conj(spec_m)
            # normalise each block so one loud block does not drown the others. numpy divides
            # complex64 by a real as by a complex: (re * s, im * s) with s = 1 / divisor in
            # float32, in ~4x the instructions of scaling the float32 view by that s (the
            # same bits)
            scale = np.float32(1.0) / np.float32(np.sqrt(mic_power * far_power) * len(m))
            np.multiply(block.view(np.float32), scale, out=block.view(np.float32))
            block64 = block.astype(np.complex64, copy=False)  # rfft of float32: complex64
            self._cross *= np.float32(self.forget)
            self._cross += block64
            self._weight = self._weight * self.forget + 1.0
            self.blocks += 1
            self._last_block = block64
            self.informative = True
            self.block_estimate = self._peak(search, block64) if block_estimate else None
        if not self.informative or self._weight < 1.5 or not estimate:
            return None
        return self._peak(search, self._cross)

    def echo_coherence(
        self,
        mic: Int16Array,
        far: Int16Array,
        search: tuple[int, int] | None = None,
        *,
        at: int = -1,
    ) -> float | None:
        """How well this one mic window is explained by the far end (0..1), without touching
        the accumulated state: the coherence (:meth:`coherence`) at the delay of the block's
        GCC-PHAT peak. None when either side is too quiet to tell.

        ``at`` (>= 0): the mic position the windows end at. Calls naming the same ``at``
        must pass the same windows (the front end's, within one frame): they share one
        decimation and one pair of FFTs, the same numbers each call would compute, until
        :meth:`drop_windows` or a call at another position.
        """
        m, f = self._informative(mic, far, at)
        if m is None or f is None:
            return None
        spec_f, spec_m = self._spectra(f, m)
        block = spec_f * np.conj(spec_m)
        # rfft of float32 is complex64 already: no copy (this runs on every echo-hold probe)
        reading = self._peak(search, block.astype(np.complex64, copy=False))
        if reading is None:
            return None
        return self._coherence(m, f, reading.delay)

    def coherence_at(
        self, mic: Int16Array, far: Int16Array, delay: int, *, at: int = -1
    ) -> float | None:
        """:meth:`echo_coherence` at a known ``delay`` (samples): no correlation needed."""
        m, f = self._informative(mic, far, at)
        if m is None or f is None:
            return None
        return self._coherence(m, f, min(max(delay, 0), self.max_delay))

    def drop_windows(self) -> None:
        """Forget the windows kept for calls at the same position (see
        :meth:`echo_coherence`): the caller is done with that position."""
        if self._at >= 0:
            self._at = -1
            self._m = self._f = None
            self._spec_m = self._spec_f = None

    def _windows_at(self, at: int) -> None:
        """Keep the windows computed so far only for a call at the same position."""
        if at < 0 or at != self._at:
            self._at = at
            self._m = self._f = None
            self._spec_m = self._spec_f = None

    def _mic_window(self, mic: Int16Array) -> tuple[Float32Array, float]:
        """The decimated mic window and its mean square (per decimated sample)."""
        m = self._m
        if m is None:
            m = self._m = self._decimate(mic)
            self._mic_power = float(np.dot(m, m)) / len(m)
        return m, self._mic_power

    def _far_window(self, far: Int16Array) -> tuple[Float32Array, float]:
        """The decimated far-end window and its mean square (per decimated sample)."""
        f = self._f
        if f is None:
            f = self._f = self._decimate(far)
            self._far_power = float(np.dot(f, f)) / len(f)
        return f, self._far_power

    def _spectra(self, f: Float32Array, m: Float32Array) -> tuple[Complex64Array, Complex64Array]:
        """The windows' spectra, ``nfft`` points.

        Both in one call, as the two rows of one zero-padded array: numpy builds its FFT plan
        on every call (it keeps none), so one call builds it once for both, and transforms
        the rows as it would each array alone (the same bits): ~320,000 of the ~1,480,000
        instructions of two calls (docs/server_cpu.md).
        """
        spec_f, spec_m = self._spec_f, self._spec_m
        if spec_f is None or spec_m is None:
            rows = np.empty((2, self._nfft), dtype=np.float32)
            rows[0, : len(f)] = f
            rows[0, len(f) :] = 0.0  # only the padding zeroed: 2/3 of the 64 kB are data
            rows[1, : len(m)] = m
            rows[1, len(m) :] = 0.0
            spec = np.fft.rfft(rows, axis=1)
            spec_f = self._spec_f = spec[0]
            spec_m = self._spec_m = spec[1]
        return spec_f, spec_m

    def _informative(
        self, mic: Int16Array, far: Int16Array, at: int
    ) -> tuple[Float32Array | None, Float32Array | None]:
        """Both sides decimated, or Nones when either is too quiet to tell anything."""
        if len(mic) != self.window or len(far) != self.window + self.max_delay:
            raise ValueError("mic/far block sizes do not match the estimator")
        self._windows_at(at)
        m, mic_power = self._mic_window(mic)
        f, far_power = self._far_window(far)
        if mic_power <= self._floor or far_power <= self._floor:
            return None, None
        return m, f

    def _coherence(
        self, m: Float32Array, f_all: Float32Array, delay: int, segments: int = 8
    ) -> float:
        """Magnitude-squared coherence between the (decimated) mic window and the far end
        shifted by ``delay`` samples, averaged over the bins where both carry signal;
        ``segments`` sub-blocks.

        A GCC peak alone cannot tell echo from two unrelated voices (their pitch structure
        gives spurious peaks of similar height); coherence can: a linear echo path keeps it
        near 1 wherever the echo dominates, unrelated signals average out near
        ``1 / segments`` (measured on speech: at most 0.57 unrelated, 0.99 echo).
        """
        lag = self._max_lag - delay // self.decimation
        f = f_all[lag : lag + len(m)]
        seg = len(m) // segments
        if seg < 16 or len(f) < len(m):
            return 0.0
        win = self._hanning.get(seg)
        if win is None:
            win = self._hanning[seg] = np.hanning(seg).astype(np.float32)
        # both sides' segments in one call (see _spectra): one plan, the same bits
        rows = np.empty((2, segments, seg), dtype=np.float32)
        np.multiply(m[: seg * segments].reshape(segments, seg), win, out=rows[0])
        np.multiply(f[: seg * segments].reshape(segments, seg), win, out=rows[1])
        spec = np.fft.rfft(rows, axis=2)
        ms, fs = spec[0], spec[1]
        lo = max(1, round(100.0 * seg * self.decimation / self._rate))
        cross = np.abs(np.sum(fs[:, lo:] * np.conj(ms[:, lo:]), axis=0)) ** 2
        pf = np.sum(np.abs(fs[:, lo:]) ** 2, axis=0)
        pm = np.sum(np.abs(ms[:, lo:]) ** 2, axis=0)
        msc = cross / (pf * pm + 1e-12)
        # only bins where both sides carry signal: noise-only bins say nothing either way
        keep = (pm >= array_median(pm)) & (pf >= array_median(pf))
        if not keep.any():
            return 0.0
        return float(_mean(msc[keep]))

    def drop_last_block(self) -> None:
        """Forget the last block's spectrum (when the caller will not restart from it):
        it is kept only for :meth:`restart_from_last_block` right after :meth:`update`."""
        self._last_block = None

    def restart_from_last_block(self) -> None:
        """Forget the accumulated history but the last block (after a confirmed delay jump)."""
        last = self._last_block
        self.reset()
        if last is not None:
            self._cross[:] = last
            self._weight = 1.0
            self.blocks = 1

    def _peak(self, search: tuple[int, int] | None, cross: Complex64Array) -> DelayEstimate | None:
        band = cross[self._band]
        mag = np.abs(band)
        mag += np.float32(1e-12)
        phat = np.empty(len(cross), dtype=np.complex64)
        phat[: self._band_lo] = 0  # outside the band: zero (a tenth of the bins)
        phat[self._band_hi :] = 0
        np.divide(band, mag, out=phat[self._band])
        corr = np.fft.irfft(phat, self._nfft)
        # corr[k] pairs mic[n] with far[n + k]; delay d (decimated) sits at k = max_lag - d
        lags = corr[: self._max_lag + 1][::-1]  # index = delay in decimated samples
        lo, hi = 0, self._max_lag
        if search is not None:
            lo = max(0, search[0] // self.decimation)
            hi = min(self._max_lag, -(-search[1] // self.decimation))
            if hi - lo < 8:
                return None
        seg = lags[lo : hi + 1]
        i = int(np.argmax(seg))
        peak = float(seg[i])
        spread = float(_std(seg)) + 1e-12
        fine = float(i)
        if 0 < i < len(seg) - 1:
            a, b, c = float(seg[i - 1]), peak, float(seg[i + 1])
            curve = a - 2 * b + c
            if curve < 0:
                fine += 0.5 * (a - c) / curve
        # prefer the earliest strong arrival (direct path) over a later, stronger reflection
        first = max(0, i - self._early)
        early = np.nonzero(seg[first:i] >= 0.5 * peak)[0]
        if len(early):
            i = first + int(early[0])
        return DelayEstimate(
            delay=(lo + i) * self.decimation,
            confidence=peak / spread,
            peak=(lo + fine) * self.decimation,
        )


def _mean(x: npt.NDArray[np.floating]) -> np.floating:
    """``np.mean`` of a non-empty 1-D float array, the same value without its wrapper
    (the pairwise sum in the array's type, divided by the count, rounded to that type)."""
    total = np.add.reduce(x)
    return total.dtype.type(total / len(x))  # type: ignore[no-any-return]


def _std(x: Float32Array) -> np.float32:
    """``np.std`` of a non-empty 1-D float32 array (ddof 0), the same arithmetic as numpy's
    ``_var`` without its wrapper: about 10 us of Python on each GCC-PHAT reading."""
    n = len(x)
    mean = np.add.reduce(x, keepdims=True)
    np.true_divide(mean, n, out=mean)
    dev = np.subtract(x, mean)
    np.square(dev, out=dev)
    var = np.float32(np.add.reduce(dev) / n)
    return np.sqrt(var)  # type: ignore[no-any-return]


class DelayTracker:
    """One belief about the echo delay, from playback reports and estimator readings.

    * Reports: :meth:`on_report` takes the delay a ``PlaybackUpdate`` implies (mic position
      minus the scheduled position of the reported sample) and the output latency the client
      claims. Reports miss the device's own output/input latency, so they give a floor: the
      estimator then searches ``[report - report_margin_low, max_delay]``; the claimed
      latency only places the belief until the estimator confirms one.
    * Estimates: a reading counts when its confidence reaches ``lock_confidence``; the belief
      moves to it after ``agree`` consecutive readings within ``agree_tolerance`` samples
      (one reading suffices at twice the confidence).

    ``delay`` is None until something is known; ``locked`` says the estimator confirmed it.
    """

    def __init__(
        self,
        *,
        lock_confidence: float = 9.0,
        agree: int = 2,
        agree_tolerance: int = 48,
        report_margin_low: int = 800,
        report_jump: int = 320,
        max_delay: int = 16000,
    ) -> None:
        self.lock_confidence = lock_confidence
        self.agree = agree
        self.agree_tolerance = agree_tolerance
        self.report_margin_low = report_margin_low
        self.report_jump = report_jump
        self.max_delay = max_delay
        self.delay: int | None = None
        self.locked = False
        self._reports: list[int] = []
        self._report_delay: int | None = None
        self._prior = 0
        self._candidate: int | None = None
        self._count = 0
        self._jump: int | None = None

    @property
    def report_delay(self) -> int | None:
        """Median delay implied by the recent playback reports (None without reports)."""
        return self._report_delay

    def search_range(self) -> tuple[int, int] | None:
        """Delays the estimator should consider, or None for its whole range."""
        if self._report_delay is None:
            return None
        # A report misses the device's own output latency (Bluetooth, OS mixers, jitter
        # buffers: 100-1000 ms that no report shows), which only ever adds to the delay. The
        # window therefore never closes above the report: narrowing it there made the
        # estimator blind to the very echo it had to find (issue 13).
        lo = max(0, self._report_delay - self.report_margin_low)
        return (lo, self.max_delay)

    def on_report(self, delay: int, output_latency: int = 0) -> None:
        """Take the delay implied by one playback report, and the output latency (samples)
        the client says its device adds (a prior for the belief, never a bound)."""
        delay = min(max(delay, 0), self.max_delay)
        self._prior = min(max(output_latency, 0), self.max_delay - delay)
        self._reports.append(delay)
        del self._reports[:-5]
        new = round(median(self._reports))
        old = self._report_delay
        self._report_delay = new
        if old is None:
            if self.delay is None or not self.locked:
                self.delay = new + self._prior
            return
        if abs(new - old) >= self.report_jump:
            # the client's queue changed (e.g. its jitter buffer grew): follow at once
            self._reports = [delay]
            self._report_delay = delay
            if self.delay is not None and self.locked:
                self.delay = min(max(self.delay + (delay - old), 0), self.max_delay)
            else:
                self.delay = delay + self._prior
            self._candidate = None
            self._count = 0

    @property
    def jump_pending(self) -> bool:
        """Whether the last single-block reading disagreed with the locked delay (strongly
        enough to move it if the next one agrees)."""
        return self._jump is not None

    def on_rejected(self) -> None:
        """A reading that looked confident was found not to be echo (coherence under
        ``FrontEnd.ECHO_COHERENCE``): it breaks the run of agreeing readings."""
        self._candidate = None
        self._count = 0

    def on_block(self, estimate: DelayEstimate | None) -> bool:
        """Take a single-block reading; return True when it moved a locked ``delay``.

        The accumulated estimate follows a sudden jump of the delay only after its history
        has decayed; two consecutive strong single-block readings that agree with each other
        and not with the belief move it at once (the caller then restarts the estimator).
        """
        if (
            not self.locked
            or self.delay is None
            or estimate is None
            or estimate.confidence < 2 * self.lock_confidence
            or abs(estimate.delay - self.delay) <= self.agree_tolerance
        ):
            self._jump = None
            return False
        if self._jump is not None and abs(estimate.delay - self._jump) <= self.agree_tolerance:
            self._jump = None
            self.delay = estimate.delay
            self._candidate = estimate.delay
            self._count = self.agree
            return True
        self._jump = estimate.delay
        return False

    def on_estimate(self, estimate: DelayEstimate | None) -> bool:
        """Take one estimator reading; return True when ``delay`` changed."""
        if estimate is None or estimate.confidence < self.lock_confidence:
            return False
        if self._candidate is not None and abs(estimate.delay - self._candidate) <= (
            self.agree_tolerance
        ):
            self._count += 1
        else:
            self._count = 1
        self._candidate = estimate.delay
        strong = estimate.confidence >= 2 * self.lock_confidence
        if self._count < self.agree and not strong:
            return False
        changed = self.delay != estimate.delay
        self.delay = estimate.delay
        self.locked = True
        return changed
