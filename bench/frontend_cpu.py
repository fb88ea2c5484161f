"""The CPU case's set-up, shared by ``frontend_cases.evaluate_cpu`` and the echo engines'
CPU comparison (``frontend_engines``): the stream both time, and speex's C kernels alone.

Both compare the whole front end per 20 ms frame with the sum of its C kernels run alone on
the same frames; they must time the same stream, or the two figures in docs/FRONTEND.md
would not be comparable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench import frontend_signals as sig
from bench.frontend_harness import FS, NEAR_DBFS, NOISE_DBFS, Float, Int16, N, make_echo_clip
from sonicwire.server.dsp.frames import FRAME_BYTES
from sonicwire.server.dsp.settings import AlignmentPolicy
from sonicwire.server.dsp.speex import EchoCanceller, Preprocessor

__all__ = ["CPU_DELAY_MS", "CpuStream", "SpeexKernels", "cpu_stream"]

#: The CPU stream's bulk echo delay.
CPU_DELAY_MS = 300
_SEED = 77


@dataclass(frozen=True)
class CpuStream:
    """The microphone (echo, pink noise and user bursts) and the far end, whole for the
    front end (``mic``, ``far16``) and cut into 20 ms frames for the kernels (``frames``,
    ``refs``: the reference aligned as the front end aligns it)."""

    mic: Int16
    far16: Int16
    frames: list[bytes]
    refs: list[bytes]


def cpu_stream(far: Float, near: Float, seconds: float) -> CpuStream:
    """``seconds`` of assistant speech echoed at `CPU_DELAY_MS`, with a 2 s user burst every
    8 s from 5 s on, over pink noise."""
    n = int(seconds * FS)
    d = CPU_DELAY_MS
    _mic, far16, echo, _o = make_echo_clip(far, d, _SEED, seconds)
    talk = np.zeros(n)
    for k, start in enumerate(range(5 * FS, n - 3 * FS, 8 * FS)):
        piece = sig.set_level(near[k * 2 * FS : k * 2 * FS + 2 * FS], NEAR_DBFS)
        talk[start : start + len(piece)] = piece
    noise = sig.noise(n, _SEED, "pink") * 10 ** (NOISE_DBFS / 20)
    mic = sig.to_int16(echo + noise + talk)
    frames = [mic[i : i + N].tobytes() for i in range(0, n - N + 1, N)]
    offset = d * 16 - AlignmentPolicy().lead_ms * 16
    ref = np.concatenate([np.zeros(offset, dtype=np.int16), far16])[:n]
    ref = np.pad(ref, (0, n - len(ref)))  # the far end may end before the stream
    refs = [ref[i : i + N].tobytes() for i in range(0, n - N + 1, N)]
    return CpuStream(mic, far16, frames, refs)


class SpeexKernels:
    """speex's echo canceller (200 ms tail) and preprocessor (noise suppression -30 dB, linked
    to the echo state, as the front end runs them), alone on a stream's frames; each call
    runs one of them over every frame. `close` frees them."""

    def __init__(self, stream: CpuStream) -> None:
        self._frames, self._refs = stream.frames, stream.refs
        self._outs = [bytearray(FRAME_BYTES) for _ in self._frames]
        self._ec = EchoCanceller(N, 3200)
        self._pre = Preprocessor(N, denoise=True, noise_suppress_db=-30)
        self._pre.link_echo(self._ec)
        # The preprocessor is timed on what the canceller leaves, as in the front end.
        self.cancel_echo()
        self._bufs = [bytearray(o) for o in self._outs]
        self.cleaned = [bytes(b) for b in self._bufs]
        """The canceller's output frames (what the VAD hears in the front end)."""

    def cancel_echo(self) -> None:
        for f, r_, o in zip(self._frames, self._refs, self._outs, strict=True):
            self._ec.cancel_into(f, r_, o)

    def preprocess(self) -> None:
        for b in self._bufs:
            self._pre.run_inplace(b)

    def close(self) -> None:
        self._pre.close()
        self._ec.close()
