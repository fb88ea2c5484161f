"""The DSP limit: the C kernels of the front end called directly, one 20 ms frame at a time.

Per frame: webrtcvad's decision, speex echo cancellation (200 ms tail, the server's default)
and the speex preprocessor (noise suppression at -30 dB, linked to the echo state for residual
echo suppression) — exactly the kernels ``FrontEnd`` runs, with no Python around them but the
call itself. Input is the benchmark's real speech (the mic) against another clip (the far end).
The figure is process CPU time (``time.process_time``), so it does not depend on load.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import webrtcvad

from bench.speech import load_corpus
from sonicwire.server.dsp.speex import EchoCanceller, Preprocessor

__all__ = ["measure_kernels"]

FRAMES_PER_SECOND = 50


def _time_per_call(fn: Any, frames: list[bytes], repeats: int) -> float:
    """Seconds of CPU per call of ``fn(frame)``, best of ``repeats`` passes over ``frames``."""
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        for frame in frames:
            fn(frame)
        best = min(best, (time.process_time() - start) / len(frames))
    return best


def measure_kernels(frames: int = 3000, repeats: int = 3, tail_ms: int = 200) -> dict[str, Any]:
    """Measure each kernel's CPU per 20 ms frame; return microseconds and ms per stream-second."""
    corpus = load_corpus()
    speech = [i for clip in corpus.clips for i in clip]
    mic = [corpus.frames[speech[k % len(speech)]] for k in range(frames)]
    far = [corpus.frames[speech[(k + len(speech) // 2) % len(speech)]] for k in range(frames)]
    far_iter = {id(m): f for m, f in zip(mic, far, strict=True)}

    vad = webrtcvad.Vad(3)
    echo = EchoCanceller(320, tail_ms * 16, 16000)
    pre = Preprocessor(320, 16000, denoise=True, noise_suppress_db=-30)
    pre.link_echo(echo)
    try:
        vad_s = _time_per_call(lambda f: vad.is_speech(f, 16000), mic, repeats)
        # far-end frames looked up by identity keep the loop body to the kernel call
        aec_s = _time_per_call(lambda f: echo.cancel(f, far_iter[id(f)]), mic, repeats)
        pre_s = _time_per_call(pre.run, mic, repeats)
    finally:
        pre.close()
        echo.close()
    total = vad_s + aec_s + pre_s
    return {
        "frames": frames,
        "echo_tail_ms": tail_ms,
        "webrtcvad_us_per_frame": vad_s * 1e6,
        "speex_echo_us_per_frame": aec_s * 1e6,
        "speex_preprocess_us_per_frame": pre_s * 1e6,
        "total_us_per_frame": total * 1e6,
        "cpu_ms_per_stream_s": total * FRAMES_PER_SECOND * 1000,
        "streams_per_core": 1.0 / (total * FRAMES_PER_SECOND),
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.kernels [--frames N] [--out FILE]``: print (or write) the figures; the
    paired floor (``bench.paired_floor``) runs it pinned to the server's core this way."""
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="python -m bench.kernels")
    parser.add_argument("--frames", type=int, default=3000)
    parser.add_argument("--out", type=Path, help="write the JSON here instead of printing it")
    args = parser.parse_args(argv)
    text = json.dumps(measure_kernels(frames=args.frames), indent=1)
    if args.out:
        args.out.write_text(text + "\n")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
