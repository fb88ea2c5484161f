"""Clock skew between the client's loudspeaker and microphone, from the echo's drift.

Fed with :attr:`.delay.DelayEstimate.peak` readings by the front end; its slope lets the
speex stage move its alignment along with the drift (:meth:`.aec.EchoStage.set_skew`).
Synchronous and clock-free, like the rest of the alignment.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .median import median

__all__ = ["SkewTracker"]


class SkewTracker:
    """Clock skew between the client's loudspeaker and microphone, from the echo's drift.

    Two devices (or a device and a network clock) never run at exactly the same rate: at
    100 ppm the echo moves by 1.6 samples a second, which the adaptive filter chases and
    loses (ERLE falls from 60 dB to 17 dB within seconds). Confident readings of the
    strongest arrival's delay (:attr:`DelayEstimate.peak`) are fitted with a line over the
    last ``span_secs``; its slope (samples of delay per mic sample) is the skew once the
    readings span ``min_span_secs`` and, outliers left out (at most 30%), fit within
    ``max_residual`` samples.
    """

    def __init__(
        self,
        *,
        sample_rate: int = 16000,
        span_secs: float = 20.0,
        min_span_secs: float = 3.0,
        min_points: int = 6,
        max_residual: float = 3.0,
        max_skew: float = 300e-6,
    ) -> None:
        self._span = int(span_secs * sample_rate)
        self._min_span = int(min_span_secs * sample_rate)
        self._min_points = min_points
        self._max_residual = max_residual
        self.max_skew = max_skew
        self._points: list[tuple[int, float]] = []

    def reset(self) -> None:
        """Forget the readings (the path changed: a jump, not drift)."""
        self._points.clear()

    def add(self, position: int, peak_delay: float) -> float | None:
        """Take one reading at mic ``position``; return the skew estimate (or None)."""
        self._points.append((position, peak_delay))
        while self._points and self._points[0][0] < position - self._span:
            self._points.pop(0)
        return self.skew()

    def skew(self) -> float | None:
        points = self._points
        if len(points) < self._min_points or points[-1][0] - points[0][0] < self._min_span:
            return None
        x = np.array([p for p, _ in points], dtype=np.float64)
        y = np.array([d for _, d in points], dtype=np.float64)
        x -= x[0]
        slope, intercept = _line(x, y)
        # one refit without the outliers (a reflection that won one block's peak)
        error = np.abs(y - (slope * x + intercept))
        keep = error <= max(2.0, 3.0 * float(median(error)))
        if int(np.sum(keep)) < max(self._min_points, int(0.7 * len(points))):
            return None
        slope, intercept = _line(x[keep], y[keep])
        residual = float(np.std(y[keep] - (slope * x[keep] + intercept)))
        if residual > self._max_residual or abs(slope) > self.max_skew:
            return None
        return float(slope)


def _line(x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> tuple[float, float]:
    """Least-squares line through the points (closed form: np.polyfit costs 10x more)."""
    xm = float(np.mean(x))
    ym = float(np.mean(y))
    dx = x - xm
    spread = float(np.dot(dx, dx))
    slope = float(np.dot(dx, y - ym)) / spread if spread > 0 else 0.0
    return slope, ym - slope * xm
