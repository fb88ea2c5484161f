"""The median of a 1-D float array, as ``numpy.median`` computes it, without its cost.

``numpy.median`` imports ``numpy.ma`` on its first call (for a masked-array check of its NaN
handling): about 1.3 MB of resident memory that a server would otherwise take on in its
first stream's first echo probe, and a few microseconds of Python per call. This is the same
computation for the plain 1-D float arrays the front end has (partition at the middle, the
mean of the middle one or two values, NaN if any value is NaN), so its results are
bit-identical (``tests/dsp/test_dsp_delay.py``).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["median"]


def median(values: npt.NDArray[np.floating]) -> np.floating:
    """Median of a non-empty 1-D float array (``numpy.median``'s value and dtype)."""
    size = len(values)
    half = size // 2
    if size % 2:
        part = np.partition(values, (half, -1))
        middle = part[half : half + 1]
    else:
        part = np.partition(values, (half - 1, half, -1))
        middle = part[half - 1 : half + 1]
    last = part[-1]
    if np.isnan(last):
        return last  # type: ignore[no-any-return]
    return middle.mean()
