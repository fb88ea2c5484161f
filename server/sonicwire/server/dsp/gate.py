"""Echo gate: keeps residual echo from starting speech while the far end plays.

While far-end audio is being cancelled, compare each cleaned frame with the raw mic frame it
came from. Echo alone loses a lot (the front end's echo attenuation, 20-60 dB once converged);
a user talking over the assistant loses little (only the echo share of the mix). A frame may
count as speech only if its loss stays under a threshold that adapts to the attenuation this
stream actually achieves: a low quantile of the loss on frames known not to be speech, minus
a margin, clamped to ``[floor_db, ceiling_db]``. It starts at ``floor_db`` (strict) and opens
up as the canceller proves itself, so a quiet user can still barge in on a well-cancelled
stream while a reverberant room with a loud loudspeaker keeps it strict.
"""

from __future__ import annotations

import math

__all__ = ["EchoGate"]

_QUIET_MS = 100.0**2  # mic frames below about -50 dBFS are left to the VAD's volume gate


class EchoGate:
    """Per-frame speech permission from mic vs cleaned energy (see the module docstring)."""

    def __init__(
        self,
        floor_db: float = 15.0,
        ceiling_db: float = 25.0,
        margin_db: float = 10.0,
        quantile: float = 0.1,
        step_db: float = 2.0,
    ) -> None:
        if floor_db > ceiling_db:
            raise ValueError("floor_db must not exceed ceiling_db")
        self.floor_db = floor_db
        self.ceiling_db = ceiling_db
        self.margin_db = margin_db
        self._quantile = quantile
        self._step = step_db
        self._q = floor_db + margin_db
        self.threshold_db = floor_db

    def allow(self, mic_ms: float, out_ms: float, *, learn: bool) -> bool:
        """Whether a frame with raw mean square ``mic_ms`` and cleaned ``out_ms`` may be speech.

        ``mic_ms`` is 0 when no far-end audio was within reach (always allowed). With
        ``learn`` the frame is taken as echo-only and updates the loss statistics.
        """
        if mic_ms < _QUIET_MS:
            return True
        loss = 10.0 * math.log10(mic_ms / max(out_ms, 1e-3))
        if learn:
            # stochastic quantile tracking: settles where P(loss < q) = quantile
            if loss < self._q:
                self._q -= self._step * (1.0 - self._quantile)
            else:
                self._q += self._step * self._quantile
            self.threshold_db = min(self.ceiling_db, max(self.floor_db, self._q - self.margin_db))
        return loss <= self.threshold_db
