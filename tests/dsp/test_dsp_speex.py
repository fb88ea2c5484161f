from __future__ import annotations

import gc

import numpy as np
import pytest

from sonicwire.server.dsp import speex
from sonicwire.server.dsp.speex import EchoCanceller, Preprocessor, frame_pointer

from .dsp_testsignals import FS, bursts, room, to_int16

N = 320


def test_ctl_constants_match_headers() -> None:
    # the request numbers of /usr/include/speex/speex_echo.h and speex_preprocess.h
    assert speex.SPEEX_ECHO_SET_SAMPLING_RATE == 24
    assert speex.SPEEX_PREPROCESS_SET_DENOISE == 0
    assert speex.SPEEX_PREPROCESS_SET_AGC == 2
    assert speex.SPEEX_PREPROCESS_SET_NOISE_SUPPRESS == 18
    assert speex.SPEEX_PREPROCESS_SET_ECHO_SUPPRESS == 20
    assert speex.SPEEX_PREPROCESS_SET_ECHO_SUPPRESS_ACTIVE == 22
    assert speex.SPEEX_PREPROCESS_SET_ECHO_STATE == 24


def test_echo_canceller_removes_synthetic_echo() -> None:
    far = to_int16(bursts(6.0, seed=3))
    echo = np.convolve(np.concatenate([np.zeros(400), far / 32768]), room(4))[: len(far)]
    mic = to_int16(echo * 0.5)
    out = np.zeros_like(mic)
    with EchoCanceller(N, 3200) as ec:
        assert ec.get_sampling_rate() == FS
        assert ec.get_frame_size() == N
        for i in range(0, len(mic) - N + 1, N):
            cleaned = ec.cancel(mic[i : i + N].tobytes(), far[i : i + N].tobytes())
            out[i : i + N] = np.frombuffer(cleaned, dtype=np.int16)
    tail = slice(3 * FS, None)
    erle = 10 * np.log10(
        np.sum(mic[tail].astype(float) ** 2) / np.sum(out[tail].astype(float) ** 2)
    )
    assert erle > 20.0


def test_echo_outside_tail_is_not_cancelled() -> None:
    far = to_int16(bursts(4.0, seed=5))
    delay = 6400  # 400 ms, beyond a 200 ms tail
    mic = to_int16(np.concatenate([np.zeros(delay), far / 32768])[: len(far)] * 0.5)
    out = np.zeros_like(mic)
    with EchoCanceller(N, 3200) as ec:
        for i in range(0, len(mic) - N + 1, N):
            ec.cancel_into(mic[i : i + N], far[i : i + N], memoryview(out)[i : i + N].cast("B"))
    tail = slice(2 * FS, None)
    erle = 10 * np.log10(
        np.sum(mic[tail].astype(float) ** 2) / np.sum(out[tail].astype(float) ** 2)
    )
    assert erle < 3.0


def test_preprocessor_reduces_stationary_noise() -> None:
    rng = np.random.default_rng(0)
    noise = to_int16(rng.standard_normal(3 * FS) * 0.01)
    with Preprocessor(N, FS, denoise=True, noise_suppress_db=-30) as pre:
        assert pre.get_denoise()
        assert pre.get_noise_suppress() == -30
        assert not pre.get_agc()
        out = b"".join(pre.run(noise[i : i + N].tobytes()) for i in range(0, len(noise) - N + 1, N))
    y = np.frombuffer(out, dtype=np.int16).astype(float)[FS:]
    x = noise[FS : FS + len(y)].astype(float)
    assert 10 * np.log10(np.sum(x**2) / np.sum(y**2)) > 10.0


def test_preprocessor_links_echo_state_and_settings() -> None:
    ec = EchoCanceller(N, 1600)
    pre = Preprocessor(N, FS, agc=True)
    assert pre.get_agc()
    pre.set_echo_suppress(-45, -20)
    assert pre.get_echo_suppress() == (-45, -20)
    pre.link_echo(ec)
    frame = bytes(2 * N)
    assert len(pre.run(frame)) == 2 * N
    pre.link_echo(None)
    pre.close()
    ec.close()


def test_close_is_idempotent_and_guards_use() -> None:
    ec = EchoCanceller(N, 1600)
    ec.close()
    ec.close()
    assert ec.closed
    with pytest.raises(ValueError):
        ec.cancel(bytes(2 * N), bytes(2 * N))
    pre = Preprocessor(N)
    pre.close()
    pre.close()
    with pytest.raises(ValueError):
        pre.run(bytes(2 * N))


def test_finalizer_frees_forgotten_state() -> None:
    ec = EchoCanceller(N, 1600)
    finalizer = ec._finalizer
    del ec
    gc.collect()
    assert not finalizer.alive


def test_wrong_frame_size_raises() -> None:
    with EchoCanceller(N, 1600) as ec, pytest.raises(ValueError):
        ec.cancel(bytes(100), bytes(2 * N))
    with Preprocessor(N) as pre, pytest.raises(ValueError):
        pre.run(bytes(2 * N + 2))


def test_bound_pointer_calls_give_the_same_frames_as_the_buffer_calls() -> None:
    rng = np.random.default_rng(5)
    far = [(rng.standard_normal(160) * 4000).astype(np.int16).tobytes() for _ in range(60)]
    mic = [(rng.standard_normal(160) * 2000).astype(np.int16).tobytes() for _ in range(60)]
    outs: list[list[bytes]] = []
    for bound in (False, True):
        ec, pp = EchoCanceller(160, 1600), Preprocessor(160, noise_suppress_db=-30)
        pp.link_echo(ec)
        buf = bytearray(320)
        ptr = frame_pointer(buf)
        got = []
        for m, f in zip(mic, far, strict=True):
            if bound:
                ec.cancel_to(m, f, ptr)
                pp.run_at(ptr)
            else:
                ec.cancel_into(m, f, buf)
                pp.run_inplace(buf)
            got.append(bytes(buf))
        outs.append(got)
        pp.close()
        ec.close()
    assert outs[0] == outs[1]
    assert any(o != m for o, m in zip(outs[1], mic, strict=True))  # it did process
