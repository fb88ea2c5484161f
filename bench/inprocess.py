"""One stream's server path in one process, without the network: CPU per stream-second by part.

    python -m bench.inprocess [--seconds 60] [--streams 20] [--repeats 3]
    python -m bench.inprocess --digest --streams 12 --seconds 20  # output identity: a sha256

``--digest`` runs the conversations once and prints a sha256 of every serialized response, in
order: a change that must not alter behaviour leaves it the same (the clock is simulated and
the interleaving of the streams on the loop is deterministic, so it repeats run to run).

The bench's server steps measure the whole process under load, transport included, on a
machine other work shares. This loop takes the transport out and splits the rest, with
process CPU time (``time.process_time``) so the other work on the machine does not count:

* the same speech as the load generator (`bench.speech`), as serialized ``ConverseRequest``
  bytes, decoded as the servicer decodes them (``FromString`` + ``servicer._client_events``);
* the real driver (`Conversation`), session core, front end (`FrontEnd`, the default
  settings: speex AEC + preprocessor + webrtcvad) and echo backend, as the runtime wires them;
* every output converted (``convert.response_from_output``) and serialized, as grpc.aio
  would before writing it.

The clock is simulated: it advances 20 ms per message, so pacing, turns and replies happen
as they would at real time, but the loop runs as fast as the CPU allows. Each request waits
one event-loop turn (``asyncio.sleep(0)``) before it is handed over, as a read from grpc.aio
suspends the input task once per message. ``--streams`` conversations run concurrently on one
loop, interleaved as on a server.

Reported per stream-second of audio: the total, the front end (``FrontEnd.process`` and
``push_far_end``, timed around each call), the DSP kernels alone (`bench.kernels`, measured in
the same process), and what is left: decoding, driver, core, backend, encoding. The timing
calls themselves are in the total (about 1 us a frame).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

__all__ = ["main", "measure"]

_FRAME_S = 0.02


class _Clock:
    """Simulated monotonic time, advanced by the request feeder."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class _Timed:
    """Accumulates the process CPU time spent in the wrapped front-end calls."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0


def _timed_front_end(timed: _Timed) -> type:
    from sonicwire.server.dsp.pipeline import FrontEnd

    cpu = time.process_time

    # A wrapper, not a subclass: the front end is a compiled (mypyc) class when the package
    # was built with it, and interpreted classes cannot inherit from those.
    class TimedFrontEnd:
        def __init__(self, settings: Any) -> None:
            self._inner = FrontEnd(settings)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._inner, name)

        def process(self, pcm: bytes) -> Any:
            start = cpu()
            out = self._inner.process(pcm)
            timed.seconds += cpu() - start
            timed.calls += 1
            return out

        def push_far_end(self, pcm: bytes) -> None:
            start = cpu()
            self._inner.push_far_end(pcm)
            timed.seconds += cpu() - start

    return TimedFrontEnd


async def _one_stream(
    index: int,
    seconds: float,
    clock: _Clock,
    timed: _Timed,
    frames_per_message: int,
    digest: Any = None,
) -> dict[str, int]:
    from bench.speech import StreamProgram, load_corpus
    from sonicwire.server import convert, servicer
    from sonicwire.server.backends.base import BackendOptions
    from sonicwire.server.backends.echo import EchoBackend
    from sonicwire.server.conversation import Conversation
    from sonicwire.server.core.session import Session
    from sonicwire.server.dsp.resample import Resampler
    from sonicwire.server.metrics import StreamMetrics
    from sonicwire.v1 import voice_service_pb2 as pb

    corpus = _CORPUS.get("c") or _CORPUS.setdefault("c", load_corpus())
    program = StreamProgram(corpus, seed=index + 1)
    payloads = _PAYLOADS.get(frames_per_message)
    if payloads is None:
        payloads = _PAYLOADS[frames_per_message] = {}
    fmt = pb.AudioFormat(encoding=pb.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=16000, channels=1)
    config = pb.SessionConfig(input_format=fmt, output_format=fmt)
    settings = convert.settings_from_config(config)
    backend = await EchoBackend().open(
        BackendOptions(
            session_id=f"s{index}",
            voice="echo",
            system_prompt="",
            inference=settings.inference,
            tools=[],
            output_sample_rate=settings.output_sample_rate,
            speech_pad_ms=settings.front_end.vad.speech_pad_ms,
        )
    )
    front_end = _timed_front_end(timed)(settings.front_end)
    session = Session(f"s{index}", settings, front_end=front_end, resampler=Resampler)
    conversation = Conversation(session, backend, clock=clock, metrics=StreamMetrics())
    messages = round(seconds / (_FRAME_S * frames_per_message))
    parse = pb.ConverseRequest.FromString

    async def requests() -> AsyncIterator[pb.ConverseRequest]:
        for _ in range(messages):
            key = tuple(program.next_index() for _ in range(frames_per_message))
            data = payloads.get(key)
            if data is None:
                audio = b"".join(corpus.frames[i] for i in key)
                data = pb.ConverseRequest(audio=pb.AudioInput(audio=audio)).SerializeToString()
                payloads[key] = data
            await asyncio.sleep(0)  # a grpc.aio read suspends the reader once per message
            clock.now += _FRAME_S * frames_per_message / _STREAMS[0]
            yield parse(data)
        finished.set()
        await asyncio.Event().wait()  # no half-close: the replies still owed are not waited for

    finished = asyncio.Event()
    counts = {"messages_in": messages, "messages_out": 0}
    to_response = convert.response_from_output

    async def consume() -> None:
        async with contextlib.aclosing(
            conversation.outputs(servicer._client_events(requests()))
        ) as outputs:
            async for output in outputs:
                data = to_response(output).SerializeToString()
                if digest is not None:
                    digest.update(data)
                counts["messages_out"] += 1

    consumer = asyncio.create_task(consume())
    await finished.wait()
    consumer.cancel()
    await asyncio.gather(consumer, return_exceptions=True)
    return counts


_CORPUS: dict[str, Any] = {}
_PAYLOADS: dict[int, dict[tuple[int, ...], bytes]] = {}
_STREAMS = [1]


def measure(
    seconds: float, streams: int, frames_per_message: int = 1, digest: Any = None
) -> dict[str, Any]:
    """Run ``streams`` conversations of ``seconds`` of audio each; CPU per stream-second.
    ``digest`` (a ``hashlib`` object): updated with every serialized response, in order."""
    from bench.speech import load_corpus

    _CORPUS.setdefault("c", load_corpus())
    _STREAMS[0] = streams
    clock = _Clock()
    timed = _Timed()

    async def run() -> list[dict[str, int]]:
        return list(
            await asyncio.gather(
                *(
                    _one_stream(i, seconds, clock, timed, frames_per_message, digest)
                    for i in range(streams)
                )
            )
        )

    start = time.process_time()
    counts = asyncio.run(run())
    total = time.process_time() - start
    stream_s = seconds * streams
    return {
        "streams": streams,
        "seconds_per_stream": seconds,
        "frames_per_message": frames_per_message,
        "messages_in": sum(c["messages_in"] for c in counts),
        "messages_out": sum(c["messages_out"] for c in counts),
        "total_ms_per_stream_s": 1000 * total / stream_s,
        "front_end_ms_per_stream_s": 1000 * timed.seconds / stream_s,
        "rest_ms_per_stream_s": 1000 * (total - timed.seconds) / stream_s,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.inprocess")
    parser.add_argument("--seconds", type=float, default=60.0, help="audio per stream")
    parser.add_argument("--streams", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--frames-per-message", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--digest",
        action="store_true",
        help="only run the conversations once and print a sha256 of every response, in order "
        "(an output identity check: the same before and after a change that must not alter "
        "behaviour; --streams 12 --seconds 20 is the check docs/server_cpu.md cites)",
    )
    args = parser.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.WARNING)
    if args.digest:
        import hashlib

        digest = hashlib.sha256()
        r = measure(args.seconds, args.streams, args.frames_per_message, digest)
        print(f"{r['messages_out']} responses to {r['messages_in']} messages: {digest.hexdigest()}")
        return 0
    from bench.kernels import measure_kernels

    measure(min(args.seconds, 5.0), 2, args.frames_per_message)  # imports, caches: not counted
    runs = [
        measure(args.seconds, args.streams, args.frames_per_message) for _ in range(args.repeats)
    ]
    kernels = measure_kernels(frames=3000)["cpu_ms_per_stream_s"]
    keys = ("total_ms_per_stream_s", "front_end_ms_per_stream_s", "rest_ms_per_stream_s")
    summary: dict[str, Any] = {k: statistics.median(r[k] for r in runs) for k in keys}
    summary.update(
        kernels_ms_per_stream_s=kernels,
        front_end_beyond_kernels_ms_per_stream_s=summary["front_end_ms_per_stream_s"] - kernels,
        messages_in=runs[0]["messages_in"],
        messages_out=runs[0]["messages_out"],
        loadavg=list(os.getloadavg()),
        runs=runs,
    )
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        for r in runs:
            print(
                f"total {r['total_ms_per_stream_s']:.3f}  front end "
                f"{r['front_end_ms_per_stream_s']:.3f}  rest {r['rest_ms_per_stream_s']:.3f}"
                " ms/stream-s"
            )
        print(
            f"median: total {summary['total_ms_per_stream_s']:.3f}, front end "
            f"{summary['front_end_ms_per_stream_s']:.3f} (kernels {kernels:.3f}, beyond "
            f"{summary['front_end_beyond_kernels_ms_per_stream_s']:.3f}), driver+core+backend+"
            f"codec {summary['rest_ms_per_stream_s']:.3f} ms/stream-s; "
            f"{runs[0]['messages_in']} in / {runs[0]['messages_out']} out; "
            f"load {os.getloadavg()[0]:.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
