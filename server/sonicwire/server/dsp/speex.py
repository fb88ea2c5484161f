"""A thin binding of our own over the SpeexDSP C library (echo canceller and preprocessor).

PyPI ``speexdsp`` does not import on Python >= 3.12 and has no preprocessor (DESIGN.md §2), so
this module talks to Debian's ``libspeexdsp.so.1`` through cffi in ABI mode: no compiler is
needed at install time, only the shared library (``apt-get install libspeexdsp1``).

Both wrappers own one C state each and free it deterministically: call :meth:`close` (or use
them as context managers); a ``weakref.finalize`` frees what a forgotten object still holds.
All audio is 16-bit signed little-endian PCM, one frame of ``frame_size`` samples per call.

Raises :class:`SpeexUnavailableError` when the library cannot be loaded, and
:class:`ValueError` for frames of the wrong size.
"""

from __future__ import annotations

import ctypes.util
import functools
import weakref
from collections.abc import Buffer
from typing import Any, Self

from cffi import FFI

__all__ = [
    "EchoCanceller",
    "Preprocessor",
    "SpeexUnavailableError",
    "frame_pointer",
    "load_library",
]

# Request numbers, checked against /usr/include/speex/speex_echo.h and speex_preprocess.h.
SPEEX_ECHO_GET_FRAME_SIZE = 3
SPEEX_ECHO_SET_SAMPLING_RATE = 24
SPEEX_ECHO_GET_SAMPLING_RATE = 25
SPEEX_PREPROCESS_SET_DENOISE = 0
SPEEX_PREPROCESS_GET_DENOISE = 1
SPEEX_PREPROCESS_SET_AGC = 2
SPEEX_PREPROCESS_GET_AGC = 3
SPEEX_PREPROCESS_SET_VAD = 4
SPEEX_PREPROCESS_GET_VAD = 5
SPEEX_PREPROCESS_SET_AGC_LEVEL = 6
SPEEX_PREPROCESS_SET_DEREVERB = 8
SPEEX_PREPROCESS_SET_NOISE_SUPPRESS = 18
SPEEX_PREPROCESS_GET_NOISE_SUPPRESS = 19
SPEEX_PREPROCESS_SET_ECHO_SUPPRESS = 20
SPEEX_PREPROCESS_GET_ECHO_SUPPRESS = 21
SPEEX_PREPROCESS_SET_ECHO_SUPPRESS_ACTIVE = 22
SPEEX_PREPROCESS_GET_ECHO_SUPPRESS_ACTIVE = 23
SPEEX_PREPROCESS_SET_ECHO_STATE = 24
SPEEX_PREPROCESS_SET_AGC_MAX_GAIN = 30
SPEEX_PREPROCESS_GET_PROB = 45
SPEEX_PREPROCESS_SET_AGC_TARGET = 46

_CDEF = """
typedef int16_t spx_int16_t;
typedef int32_t spx_int32_t;
typedef struct SpeexEchoState_ SpeexEchoState;
typedef struct SpeexPreprocessState_ SpeexPreprocessState;

SpeexEchoState *speex_echo_state_init(int frame_size, int filter_length);
void speex_echo_state_destroy(SpeexEchoState *st);
void speex_echo_cancellation(SpeexEchoState *st, const spx_int16_t *rec,
                             const spx_int16_t *play, spx_int16_t *out);
void speex_echo_state_reset(SpeexEchoState *st);
int speex_echo_ctl(SpeexEchoState *st, int request, void *ptr);

SpeexPreprocessState *speex_preprocess_state_init(int frame_size, int sampling_rate);
void speex_preprocess_state_destroy(SpeexPreprocessState *st);
int speex_preprocess_run(SpeexPreprocessState *st, spx_int16_t *x);
int speex_preprocess_ctl(SpeexPreprocessState *st, int request, void *ptr);
"""

_LIBRARY_NAME = "libspeexdsp.so.1"

ffi = FFI()
ffi.cdef(_CDEF)


class SpeexUnavailableError(RuntimeError):
    """The SpeexDSP shared library could not be loaded (install Debian ``libspeexdsp1``)."""


@functools.cache
def load_library() -> Any:
    """Load libspeexdsp once per process and return the cffi library object.

    Tries the Debian soname first, then whatever ``ctypes.util.find_library`` finds.
    Raises :class:`SpeexUnavailableError` if neither loads.
    """
    errors: list[str] = []
    candidates = [_LIBRARY_NAME]
    found = ctypes.util.find_library("speexdsp")
    if found and found != _LIBRARY_NAME:
        candidates.append(found)
    for name in candidates:
        try:
            return ffi.dlopen(name)
        except OSError as exc:
            errors.append(f"{name}: {exc}")
    raise SpeexUnavailableError("cannot load SpeexDSP: " + "; ".join(errors))


def frame_pointer(buffer: Buffer) -> Any:
    """A C pointer to a writable frame buffer, for :meth:`EchoCanceller.cancel_to` and
    :meth:`Preprocessor.run_at`: made once per buffer instead of once per call. The buffer
    must outlive the pointer and keep its size (a ``bytearray`` then cannot be resized)."""
    return ffi.from_buffer("spx_int16_t[]", buffer, require_writable=True)


def _check_frame(data: Buffer, frame_bytes: int, what: str) -> None:
    size = memoryview(data).nbytes
    if size != frame_bytes:
        raise ValueError(f"{what} frame is {size} bytes, expected {frame_bytes}")


class EchoCanceller:
    """Speex MDF acoustic echo canceller (``speex_echo_state_init``).

    ``frame_size`` samples per call; ``filter_length`` samples of echo tail. The canceller only
    removes echo whose delay relative to the reference lies inside that tail: callers align
    the reference first (see :mod:`sonicwire.server.dsp.delay`).
    """

    def __init__(self, frame_size: int, filter_length: int, sample_rate: int = 16000) -> None:
        if frame_size <= 0 or filter_length <= 0:
            raise ValueError("frame_size and filter_length must be positive")
        lib = load_library()
        state = lib.speex_echo_state_init(frame_size, filter_length)
        if state == ffi.NULL:
            raise MemoryError("speex_echo_state_init failed")
        self._lib = lib
        self._state: Any = state
        self._finalizer = weakref.finalize(self, lib.speex_echo_state_destroy, state)
        self.frame_size = frame_size
        self.filter_length = filter_length
        self.sample_rate = sample_rate
        self._frame_bytes = 2 * frame_size
        self._out = ffi.new("spx_int16_t[]", frame_size)
        self._out_buffer = ffi.buffer(self._out)
        rate = ffi.new("spx_int32_t *", sample_rate)
        lib.speex_echo_ctl(state, SPEEX_ECHO_SET_SAMPLING_RATE, rate)

    @property
    def state(self) -> Any:
        """The raw ``SpeexEchoState *`` (for :meth:`Preprocessor.link_echo`)."""
        self._ensure_open()
        return self._state

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def _ensure_open(self) -> None:
        if not self._finalizer.alive:
            raise ValueError("echo canceller is closed")

    def cancel(self, mic: Buffer, far: Buffer) -> bytes:
        """Return ``mic`` with the echo of ``far`` removed (one frame each, s16le)."""
        if not self._finalizer.alive:
            raise ValueError("echo canceller is closed")
        _check_frame(mic, self._frame_bytes, "mic")
        _check_frame(far, self._frame_bytes, "far-end")
        self._lib.speex_echo_cancellation(
            self._state,
            ffi.from_buffer("spx_int16_t[]", mic),
            ffi.from_buffer("spx_int16_t[]", far),
            self._out,
        )
        return bytes(self._out_buffer[:])

    def cancel_into(self, mic: Buffer, far: Buffer, out: Buffer) -> None:
        """Like :meth:`cancel` but writes into ``out`` (a writable frame-sized buffer).

        No size checks: the hot path of :class:`~sonicwire.server.dsp.aec.EchoStage` uses it
        with buffers it sized itself.
        """
        self._lib.speex_echo_cancellation(
            self._state,
            ffi.from_buffer("spx_int16_t[]", mic),
            ffi.from_buffer("spx_int16_t[]", far),
            ffi.from_buffer("spx_int16_t[]", out, require_writable=True),
        )

    def cancel_to(self, mic: Buffer, far: Buffer, out: Any) -> None:
        """Like :meth:`cancel_into` with ``out`` a :func:`frame_pointer` made once (the
        per-frame path: one cffi buffer conversion fewer per call)."""
        self._lib.speex_echo_cancellation(
            self._state,
            ffi.from_buffer("spx_int16_t[]", mic),
            ffi.from_buffer("spx_int16_t[]", far),
            out,
        )

    def reset(self) -> None:
        """Forget the adapted filter (``speex_echo_state_reset``)."""
        self._ensure_open()
        self._lib.speex_echo_state_reset(self._state)

    def get_sampling_rate(self) -> int:
        self._ensure_open()
        value = ffi.new("spx_int32_t *")
        self._lib.speex_echo_ctl(self._state, SPEEX_ECHO_GET_SAMPLING_RATE, value)
        return int(value[0])

    def get_frame_size(self) -> int:
        self._ensure_open()
        value = ffi.new("spx_int32_t *")
        self._lib.speex_echo_ctl(self._state, SPEEX_ECHO_GET_FRAME_SIZE, value)
        return int(value[0])

    def close(self) -> None:
        """Free the C state now. Idempotent."""
        self._finalizer()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Preprocessor:
    """Speex preprocessor: noise suppression, optional AGC, residual echo suppression.

    Speex's own VAD is switched off: :mod:`sonicwire.server.dsp.vad` decides speech.
    Call :meth:`link_echo` with the :class:`EchoCanceller` whose output this preprocessor
    receives to enable residual echo suppression (``SPEEX_PREPROCESS_SET_ECHO_STATE``).
    """

    def __init__(
        self,
        frame_size: int,
        sample_rate: int = 16000,
        *,
        denoise: bool = True,
        noise_suppress_db: int = -15,
        agc: bool = False,
        agc_level: float = 8000.0,
    ) -> None:
        if frame_size <= 0:
            raise ValueError("frame_size must be positive")
        lib = load_library()
        state = lib.speex_preprocess_state_init(frame_size, sample_rate)
        if state == ffi.NULL:
            raise MemoryError("speex_preprocess_state_init failed")
        self._lib = lib
        self._state: Any = state
        self._finalizer = weakref.finalize(self, _destroy_preprocess, lib, state)
        self.frame_size = frame_size
        self.sample_rate = sample_rate
        self._frame_bytes = 2 * frame_size
        self._buf = ffi.new("spx_int16_t[]", frame_size)
        self._buffer = ffi.buffer(self._buf)
        self._echo: EchoCanceller | None = None
        # Speex's VAD and dereverb are off by default; setting SET_VAD at all prints a warning
        # from the C library ("The VAD has been replaced by a hack"), so leave both alone.
        self.set_denoise(denoise)
        self.set_noise_suppress(noise_suppress_db)
        self.set_agc(agc)
        if agc:
            self.set_agc_level(agc_level)

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def _ensure_open(self) -> None:
        if not self._finalizer.alive:
            raise ValueError("preprocessor is closed")

    def _set_int(self, request: int, value: int) -> None:
        self._ensure_open()
        self._lib.speex_preprocess_ctl(self._state, request, ffi.new("spx_int32_t *", value))

    def _get_int(self, request: int) -> int:
        self._ensure_open()
        value = ffi.new("spx_int32_t *")
        self._lib.speex_preprocess_ctl(self._state, request, value)
        return int(value[0])

    def set_denoise(self, on: bool) -> None:
        self._set_int(SPEEX_PREPROCESS_SET_DENOISE, int(on))

    def get_denoise(self) -> bool:
        return bool(self._get_int(SPEEX_PREPROCESS_GET_DENOISE))

    def set_noise_suppress(self, db: int) -> None:
        """Maximum noise attenuation in dB (a negative number)."""
        self._set_int(SPEEX_PREPROCESS_SET_NOISE_SUPPRESS, -abs(int(db)))

    def get_noise_suppress(self) -> int:
        return self._get_int(SPEEX_PREPROCESS_GET_NOISE_SUPPRESS)

    def set_agc(self, on: bool) -> None:
        self._set_int(SPEEX_PREPROCESS_SET_AGC, int(on))

    def get_agc(self) -> bool:
        return bool(self._get_int(SPEEX_PREPROCESS_GET_AGC))

    def set_agc_level(self, level: float) -> None:
        self._ensure_open()
        value = ffi.new("float *", level)
        self._lib.speex_preprocess_ctl(self._state, SPEEX_PREPROCESS_SET_AGC_LEVEL, value)

    def get_vad(self) -> bool:
        return bool(self._get_int(SPEEX_PREPROCESS_GET_VAD))

    def set_echo_suppress(self, db: int, active_db: int) -> None:
        """Residual echo attenuation in dB, alone and while the near end talks (negative)."""
        self._set_int(SPEEX_PREPROCESS_SET_ECHO_SUPPRESS, -abs(int(db)))
        self._set_int(SPEEX_PREPROCESS_SET_ECHO_SUPPRESS_ACTIVE, -abs(int(active_db)))

    def get_echo_suppress(self) -> tuple[int, int]:
        return (
            self._get_int(SPEEX_PREPROCESS_GET_ECHO_SUPPRESS),
            self._get_int(SPEEX_PREPROCESS_GET_ECHO_SUPPRESS_ACTIVE),
        )

    def get_speech_probability(self) -> int:
        """Speex's own speech probability of the last frame, in percent."""
        return self._get_int(SPEEX_PREPROCESS_GET_PROB)

    def link_echo(self, echo: EchoCanceller | None) -> None:
        """Enable residual echo suppression against ``echo`` (``None`` disables it).

        Keeps ``echo`` alive for as long as it is linked; close the preprocessor (or link
        ``None``) before closing the echo canceller.
        """
        self._ensure_open()
        pointer = ffi.NULL if echo is None else echo.state
        self._lib.speex_preprocess_ctl(self._state, SPEEX_PREPROCESS_SET_ECHO_STATE, pointer)
        self._echo = echo

    def run(self, frame: Buffer) -> bytes:
        """Process one frame and return the cleaned frame."""
        self._ensure_open()
        _check_frame(frame, self._frame_bytes, "preprocess")
        ffi.memmove(self._buf, frame, self._frame_bytes)
        self._lib.speex_preprocess_run(self._state, self._buf)
        return bytes(self._buffer[:])

    def run_inplace(self, frame: Buffer) -> None:
        """Process one frame in place (``frame`` must be writable and frame-sized; unchecked)."""
        self._lib.speex_preprocess_run(
            self._state, ffi.from_buffer("spx_int16_t[]", frame, require_writable=True)
        )

    def run_at(self, frame: Any) -> None:
        """Like :meth:`run_inplace` on a :func:`frame_pointer` made once (unchecked)."""
        self._lib.speex_preprocess_run(self._state, frame)

    def close(self) -> None:
        """Unlink the echo state and free the C state now. Idempotent."""
        self._finalizer()
        self._echo = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _destroy_preprocess(lib: Any, state: Any) -> None:
    # Unlink first so the preprocessor never touches an echo state freed before it.
    lib.speex_preprocess_ctl(state, SPEEX_PREPROCESS_SET_ECHO_STATE, ffi.NULL)
    lib.speex_preprocess_state_destroy(state)
