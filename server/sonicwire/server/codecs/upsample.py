"""The telephone band into the front end: 8 kHz -> 16 kHz with a few milliseconds of delay.

Why not soxr, which converts every other rate (`dsp.resample.Resampler`): soxr's streaming
resampler works on internal blocks. From 8 to 16 kHz at its HQ setting it returns nothing for
five 20 ms frames and then 1660 samples at once, so the front end sees a caller's audio up to
~100 ms late (~50 ms on average, varying frame to frame), and the VAD's end-of-speech marker,
hence the answer, comes that much later. Measured on the three benchmark questions: the stop
marker came 40-80 ms later for 8 kHz mu-law than for the same speech at 16 kHz.

`Upsampler2x` is a plain linear-phase FIR interpolator (Kaiser-windowed sinc, polyphase): every
call returns exactly twice its input, so each 20 ms frame of the caller's comes out as one
whole 20 ms frame for the front end at once. The price is the filter's group delay,
`DELAY_SAMPLES` (2 ms), by which the 16 kHz stream lags its input: trimming it as soxr does
would hold back 2 ms of every frame and so hold each front-end frame until the caller's next
one (20 ms). The response is flat to 3.4 kHz (G.711 carries 300-3400 Hz) and the images of
that band are 70 dB or more down (`tests/codecs/test_upsample.py`).

Pure numpy, no I/O. The server's driver hands it to the session core as the input resampler
of 8 kHz streams (``runtime.input_resampler``); every other conversion stays with soxr.
"""

from __future__ import annotations

import numpy as np

__all__ = ["DELAY_SAMPLES", "Upsampler2x"]

# Taps per polyphase branch (the 16 kHz filter has 2 * 32 + 1). Short on purpose: the delay
# shifts the caller's audio against the VAD's 20 ms frames. With 48 (3 ms) the recorded
# "Front Center" clip's 440 ms pause became an end of speech that the same clip at 16 kHz did
# not make (tests/server/test_codecs_e2e.py), under the VAD of the time; the VAD has since
# stopped ending an utterance on a pause in which the user resumes, and 32 keeps 2 ms anyway.
_HALF_TAPS = 32
DELAY_SAMPLES = _HALF_TAPS
"""The filter's group delay in output (16 kHz) samples: 2 ms."""
_KAISER_BETA = 6.0  # flat to 3.4 kHz, images ~75 dB down


def _design() -> tuple[np.ndarray, np.ndarray]:
    """The two polyphase branches of a 2x interpolation lowpass (cutoff 4 kHz at 16 kHz)."""
    length = 2 * _HALF_TAPS + 1
    n = np.arange(length) - _HALF_TAPS
    # Ideal lowpass at a quarter of the output rate, gain 2 (zero stuffing halves the level).
    taps = np.sinc(n / 2.0) * np.kaiser(length, _KAISER_BETA)
    taps *= 2.0 / taps.sum()
    # Output sample 2m + p is sum_k taps[2k + p] * x[m - k] (p = 0: even taps, p = 1: odd);
    # the odd branch has one tap fewer, padded with a zero so both see the same inputs.
    even, odd = taps[0::2], np.append(taps[1::2], 0.0)
    return even.astype(np.float32), odd.astype(np.float32)


_EVEN, _ODD = _design()


class Upsampler2x:
    """Streaming 8 kHz -> 16 kHz of s16le mono; the `ResamplerPort` the core needs.

    ``process`` returns twice its input's samples, delayed by `DELAY_SAMPLES`; ``flush``
    returns the filter's tail (`DELAY_SAMPLES` samples). An odd trailing byte is kept for the
    next call, as `dsp.resample.Resampler` does.
    """

    in_rate = 8000
    out_rate = 16000

    def __init__(self) -> None:
        # The last inputs each output still needs: len(_EVEN) - 1 samples of history.
        self._history = np.zeros(len(_EVEN) - 1, dtype=np.float32)
        self._odd = b""

    def process(self, pcm: bytes) -> bytes:
        """Upsample the next piece of the stream."""
        if self._odd:
            pcm = self._odd + pcm
            self._odd = b""
        if len(pcm) % 2:
            self._odd = pcm[-1:]
            pcm = pcm[:-1]
        if not pcm:
            return b""
        return self._run(np.frombuffer(pcm, dtype="<i2"))

    def flush(self) -> bytes:
        """End the stream: the filter's tail. A dangling byte is dropped."""
        self._odd = b""
        out = self._run(np.zeros((DELAY_SAMPLES + 1) // 2, dtype="<i2"))
        return out[: 2 * DELAY_SAMPLES]  # bytes: DELAY_SAMPLES samples

    def _run(self, samples: np.ndarray) -> bytes:
        # float32 throughout (24-bit mantissa: exact for 16-bit input, ~140 dB of headroom
        # for the products): it runs once per 20 ms frame of every call, so cost matters.
        data = np.concatenate((self._history, samples), dtype=np.float32)
        out = np.empty(2 * len(samples), dtype=np.float32)
        out[0::2] = np.convolve(data, _EVEN, mode="valid")
        out[1::2] = np.convolve(data, _ODD, mode="valid")
        self._history = data[len(samples) :]
        np.clip(out, -32768, 32767, out=out)
        return np.rint(out, out=out).astype("<i2").tobytes()
