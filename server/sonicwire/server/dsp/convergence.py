"""When an echo canceller counts as converged: one rule for the speex and AEC3 stages.

The echo reduction of the stage's output (mic energy over output energy), smoothed over about
200 ms, must reach ``converged_db`` on 10 frames in a row that are not near-silent. Sustained,
so that a lucky frame at the end of a word does not count.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .frames import FRAME_SAMPLES

__all__ = ["SILENT_ENERGY", "ConvergenceMeter", "FrameEnergy"]

SILENT_ENERGY = FRAME_SAMPLES * 100.0**2  # frame energy of about -50 dBFS
_FRAMES = 10


class FrameEnergy:
    """Energy (sum of squares) of 20 ms s16le frames, through one reusable float buffer."""

    def __init__(self) -> None:
        self._buf: npt.NDArray[np.float32] = np.zeros(FRAME_SAMPLES, dtype=np.float32)

    def __call__(self, frame: bytes | bytearray | npt.NDArray[np.int16]) -> float:
        buf = self._buf
        np.copyto(buf, frame if isinstance(frame, np.ndarray) else np.frombuffer(frame, np.int16))
        return float(buf.dot(buf))  # the method: np.dot's dispatch costs as much as the sum


class ConvergenceMeter:
    """Feed each cancelled frame's mic and output energies; :meth:`update` says when the
    canceller removes ``converged_db`` of echo (see the module docstring)."""

    def __init__(self, converged_db: float) -> None:
        self.ratio = float(10.0 ** (converged_db / 10.0))
        self.reset()

    def reset(self) -> None:
        self._mic = 0.0
        self._out = 0.0
        self._frames = 0

    def update(self, mic_energy: float, out_energy: float) -> bool:
        """Take one frame; return whether the canceller has now converged."""
        self._mic = 0.9 * self._mic + 0.1 * mic_energy
        self._out = 0.9 * self._out + 0.1 * out_energy
        if self._mic <= SILENT_ENERGY:
            return False
        if self._mic > self.ratio * self._out:
            self._frames += 1
        else:
            self._frames = 0
        return self._frames >= _FRAMES

    def removes_enough(self, mic_energy: float, out_energy: float) -> bool:
        """Whether totals over many frames show ``converged_db`` removed (the replay's test)."""
        return mic_energy > self.ratio * out_energy
