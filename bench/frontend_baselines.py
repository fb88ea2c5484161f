"""Reference cancellers for the front-end evaluation.

* :func:`nlms` — a plain time-domain NLMS adaptive filter (numpy + BLAS, sample by sample),
  the textbook baseline.
* :func:`speex_plain` — the speex canceller alone with the raw (unaligned) reference: what a
  server gets when it feeds speex the audio it sent without alignment.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.linalg import blas

from sonicwire.server.dsp.speex import EchoCanceller

Float = npt.NDArray[np.float64]
Int16 = npt.NDArray[np.int16]


def nlms(mic: Float, ref: Float, taps: int, mu: float = 0.5, delta_db: float = -60.0) -> Float:
    """Error signal of an NLMS filter with ``taps`` taps predicting ``mic`` from ``ref``.

    ``mu`` is the normalised step (0 < mu < 2); the regulariser is ``taps`` times a power of
    ``delta_db`` dBFS per sample.
    """
    n = len(mic)
    pad = np.concatenate([np.zeros(taps - 1), ref[:n], np.zeros(max(0, n - len(ref)))])
    w = np.zeros(taps)  # reversed: w[j] multiplies pad[k + j], i.e. tap taps-1-j
    out = np.empty(n)
    delta = taps * 10 ** (delta_db / 10)
    energy = 0.0
    ddot = blas.ddot
    daxpy = blas.daxpy
    for k in range(n):
        newest = pad[k + taps - 1]
        energy += newest * newest
        if k:
            oldest = pad[k - 1]
            energy -= oldest * oldest
        seg = pad[k : k + taps]
        e = mic[k] - ddot(w, seg)
        out[k] = e
        daxpy(seg, w, a=mu * e / (energy + delta))
    return out


def speex_plain(mic: Int16, ref: Int16, tail: int, frame: int = 320) -> Int16:
    """Speex echo cancellation with the unaligned reference (``tail`` samples of filter)."""
    out = np.zeros_like(mic)
    with EchoCanceller(frame, tail) as ec:
        for i in range(0, len(mic) - frame + 1, frame):
            cleaned = ec.cancel(mic[i : i + frame].tobytes(), ref[i : i + frame].tobytes())
            out[i : i + frame] = np.frombuffer(cleaned, dtype=np.int16)
    return out
