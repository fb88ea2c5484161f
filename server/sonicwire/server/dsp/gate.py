"""Echo gate: keeps residual echo from starting speech while the far end plays.

While far-end audio is being cancelled, compare each cleaned frame with the raw mic frame it
came from. Echo alone loses a lot (the front end's echo attenuation, 20-60 dB once converged);
a user talking over the assistant loses little (only the echo share of the mix). A frame may
count as speech only if its loss stays under a threshold that adapts to the attenuation this
stream actually achieves: a low quantile of the loss on frames known not to be speech, minus
a margin, clamped to ``[floor_db, ceiling_db]``. It starts at ``floor_db`` (strict) and opens
up as the canceller proves itself, so a quiet user can still barge in on a well-cancelled
stream while a reverberant room with a loud loudspeaker keeps it strict.

"Known not to be speech" is decided in hindsight: a frame the caller offers for learning is
queued, and only enters the statistics once :meth:`EchoGate.settle` says it did not belong to
speech. Without that, the first frames of a user barging in (quiet, unvoiced, not yet
confirmed by the VAD, losing only a few dB) would be learned as echo and pull the threshold
down by ~2 dB each, exactly while the onset is being timed: one later frame of the onset in
which the user dips under the echo is then refused, which breaks the onset run and dates
the speech 100-150 ms late.
"""

from __future__ import annotations

import math
from collections import deque

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
        max_pending: int = 16,
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
        self._pending: deque[float] = deque()
        self._max_pending = max_pending

    def allow(self, mic_ms: float, out_ms: float, *, learn: bool) -> bool:
        """Whether a frame with raw mean square ``mic_ms`` and cleaned ``out_ms`` may be speech.

        ``mic_ms`` is 0 when no far-end audio was within reach (always allowed). With
        ``learn`` the frame is offered as echo-only: its loss is queued for the statistics
        (see :meth:`settle`); the decision uses the threshold learned so far.
        """
        if mic_ms < _QUIET_MS:
            return True
        loss = 10.0 * math.log10(mic_ms / max(out_ms, 1e-3))
        if learn:
            self._pending.append(loss)
            while len(self._pending) > self._max_pending:
                self._learn(self._pending.popleft())
        return loss <= self.threshold_db

    def settle(self, speech: bool | None) -> None:
        """Decide the queued frames: ``False`` they were not speech (learn them), ``True`` they
        were the start of speech (forget them), ``None`` still open (keep them; beyond
        ``max_pending`` the oldest are learned anyway)."""
        if speech is None:
            return
        if not speech:
            for loss in self._pending:
                self._learn(loss)
        self._pending.clear()

    @property
    def pending(self) -> int:
        """Frames offered for learning and not yet settled."""
        return len(self._pending)

    def _learn(self, loss: float) -> None:
        # stochastic quantile tracking: settles where P(loss < q) = quantile
        if loss < self._q:
            self._q -= self._step * (1.0 - self._quantile)
        else:
            self._q += self._step * self._quantile
        self.threshold_db = min(self.ceiling_db, max(self.floor_db, self._q - self.margin_db))
