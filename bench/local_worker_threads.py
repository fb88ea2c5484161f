"""pocketsphinx's decode with Whisper's beside it (the session's speculation, `reading.py`), in
recogniser workers with one math thread (`stt_worker._one_math_thread`, the engine's) and in
workers set back to OpenBLAS's default (a thread per core), interleaved.

    nice -n 10 .venv/bin/python -m bench.local_worker_threads [--rounds 6 --pairs 8]

Each pair: `SpeechRecognizer.recognize` of one development utterance ("what is the capital of
france", the tuning voice espeak en-us) with `submit_open` of the same audio started once its
decode is queued; the wall time of the pocketsphinx decode is recorded. Prints p50 / p90 per
setting, the machine's load, and the OpenBLAS thread counts the workers reported.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Sequence
from concurrent.futures import Future, wait

from sonicwire.server.backends.local import stt_worker
from sonicwire.server.backends.local.stt import SpeechRecognizer
from sonicwire.server.testing.local_harness import speak


def _default_threads() -> list[int]:
    """In a worker: OpenBLAS back to a thread per core (what numpy does unless told)."""
    time.sleep(0.3)  # held, so that each worker of the pool takes one of these jobs
    for function in stt_worker._openblas_functions("set_num_threads"):
        function(os.cpu_count() or 1)
    return stt_worker.math_threads()


def _beside(recognizer: SpeechRecognizer, pcm: bytes, pairs: int) -> list[float]:
    times = []
    started: list[Future[str] | None] = []

    def beside() -> None:
        started.append(recognizer.submit_open(pcm))

    for _ in range(pairs):
        started.clear()
        begin = time.perf_counter()
        recognizer.recognize(pcm, on_submitted=beside)
        times.append((time.perf_counter() - begin) * 1000)
        if started and started[0] is not None:
            started[0].result()
    return times


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--pairs", type=int, default=8)
    args = parser.parse_args(argv)
    pcm = speak("what is the capital of france", "espeak:en-us")
    load_before = os.getloadavg()[:2]
    pinned = SpeechRecognizer.load("domain", processes=2, open_reading=True)
    default = SpeechRecognizer.load("domain", processes=2, open_reading=True)
    try:
        jobs = [default._pool.submit(_default_threads) for _ in range(2)]
        wait(jobs)
        counts = {
            "one_math_thread": pinned._pool.submit(stt_worker.math_threads).result(),
            "default": [job.result() for job in jobs],
        }
        results: dict[str, list[float]] = {"one_math_thread": [], "default": []}
        for round_ in range(args.rounds):
            order = [("one_math_thread", pinned), ("default", default)]
            for name, recognizer in order if round_ % 2 else order[::-1]:
                results[name] += _beside(recognizer, pcm, args.pairs)
    finally:
        pinned.close()
        default.close()
    for name, times in results.items():
        ordered = sorted(times)
        p90 = ordered[int(0.9 * (len(ordered) - 1))]
        print(f"{name}: pocketsphinx beside Whisper p50 {statistics.median(ordered):.0f} ms, "
              f"p90 {p90:.0f} ms (n={len(ordered)})")  # fmt: skip
    print(f"OpenBLAS threads reported: {counts}; load before {[round(x, 2) for x in load_before]}, "
          f"after {[round(x, 2) for x in os.getloadavg()[:2]]}")  # fmt: skip


if __name__ == "__main__":
    main()
