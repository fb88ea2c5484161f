"""The front end's 16 kHz audio back down to the telephone rate: 16 kHz -> 8 kHz, frame by frame.

Why: a caller on the telephone network (G.711 mu-law/A-law, 8 kHz PCM) has no audio above
4 kHz. The front end (echo canceller, noise suppressor, VAD) runs at 16 kHz, so such a call is
upsampled on the way in (`upsample.Upsampler2x`); a backend that accepts 8 kHz (Nova Sonic)
can take the cleaned audio back at 8 kHz: half the bytes upstream and the band the caller has.

Why not soxr (`dsp.resample.Resampler`): its streaming resampler returns audio in internal
blocks (from 8 to 16 kHz nothing for five 20 ms frames, then 100 ms at once; see
`upsample.py`), which would hold the caller's audio back from the model and delay its
end-of-speech detection. `Downsampler2x` returns exactly half its input's samples on every
call, so each 20 ms frame leaves at once as one 10 ms-of-bytes frame.

It is the same Kaiser-windowed sinc lowpass as `Upsampler2x` (cutoff 4 kHz, 65 taps at
16 kHz, group delay `DELAY_SAMPLES` = 2 ms), at unit gain, evaluated at every other input
sample. Flat to 3.4 kHz (G.711's band); what lies above 4 kHz, which would alias, is 70 dB or
more down from 4.6 kHz (`tests/codecs/test_downsample.py`). Pure numpy, no I/O.
"""

from __future__ import annotations

import numpy as np

__all__ = ["DELAY_SAMPLES", "Downsampler2x"]

_HALF_TAPS = 32
DELAY_SAMPLES = _HALF_TAPS // 2
"""The filter's group delay in output (8 kHz) samples: 2 ms."""
_KAISER_BETA = 6.0


def _design() -> np.ndarray:
    """A lowpass at a quarter of the input rate (4 kHz at 16 kHz), unit gain."""
    length = 2 * _HALF_TAPS + 1
    n = np.arange(length) - _HALF_TAPS
    taps = np.sinc(n / 2.0) * np.kaiser(length, _KAISER_BETA)
    taps /= taps.sum()
    return taps.astype(np.float32)


_TAPS = _design()


class Downsampler2x:
    """Streaming 16 kHz -> 8 kHz of s16le mono (a `ResamplerPort`).

    ``process`` returns half its input's samples (an odd sample waits for the next call, so
    20 ms in gives exactly 10 ms-of-samples out), delayed by `DELAY_SAMPLES`; ``flush``
    returns the filter's tail. An odd trailing byte is kept for the next call, as
    `dsp.resample.Resampler` does.
    """

    in_rate = 16000
    out_rate = 8000

    def __init__(self) -> None:
        # The inputs the next output still needs: len(_TAPS) - 1 samples of history.
        self._history = np.zeros(len(_TAPS) - 1, dtype=np.float32)
        self._odd_byte = b""
        self._odd_sample = np.zeros(0, dtype=np.float32)

    def process(self, pcm: bytes) -> bytes:
        """Downsample the next piece of the stream."""
        if self._odd_byte:
            pcm = self._odd_byte + pcm
            self._odd_byte = b""
        if len(pcm) % 2:
            self._odd_byte = pcm[-1:]
            pcm = pcm[:-1]
        samples = np.concatenate(
            (self._odd_sample, np.frombuffer(pcm, dtype="<i2")), dtype=np.float32
        )
        even = len(samples) - len(samples) % 2
        self._odd_sample = samples[even:]
        if not even:
            return b""
        return self._run(samples[:even])

    def flush(self) -> bytes:
        """End the stream: the filter's tail (`DELAY_SAMPLES` samples). A dangling byte or
        sample is dropped."""
        self._odd_byte = b""
        self._odd_sample = np.zeros(0, dtype=np.float32)
        return self._run(np.zeros(2 * DELAY_SAMPLES, dtype=np.float32))

    def _run(self, samples: np.ndarray) -> bytes:
        # A plain convolution kept at every other sample: output m ends at input 2m, the
        # first of each pair, which keeps audio that came up from 8 kHz (`Upsampler2x`: its
        # even outputs are the original samples) on the original sample grid.
        data = np.concatenate((self._history, samples))
        out = np.convolve(data, _TAPS, mode="valid")[0::2]
        self._history = data[len(samples) :]
        np.clip(out, -32768, 32767, out=out)
        return np.rint(out).astype("<i2").tobytes()
