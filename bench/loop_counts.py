"""Event-loop work per client message: loop iterations, callbacks and task wake-ups.

    python -m bench.loop_counts [--kind sonicwire|bare-echo] [--n 20] [--duration 6]
        [--frame-ms 20] [--json]

CPU time says how much a stream costs; this says how often the event loop is woken for it,
which is what "fewer task hops per frame" is about. It runs the real server (Sonicwire with
the echo backend, as the benchmark does, or the bare grpc.aio echo) in this process on
loopback, drives it with ``bench.loadgen`` in a child process (the benchmark's speech, paced
at real time), and counts, over a window after the warm-up:

* loop iterations (``BaseEventLoop._run_once`` calls),
* callbacks run (``asyncio.Handle._run``: every ``call_soon``/``call_at`` callback, a task's
  first step, a task woken by a future it awaited, grpc.aio's completion-queue reader, timers),
  split by kind and, for task wake-ups, by the task's coroutine,
* the client's audio messages in, and the server's messages out,
* the completion-queue reader's calls that completed nothing (scheduled no callback): grpc.aio
  writes a byte per finished operation and its reader reads one byte but completes every
  queued operation, so each byte after the first of a batch wakes the loop for nothing,
* the main thread's CPU time (``time.thread_time``) in each kind of callback, and the loop's
  own (whole iterations minus their callbacks: select/epoll, timers, the ready queue), with
  the process's and the main thread's CPU over the window, all per message in.

The counters are wrappers installed in this process only (bench, never production); they
add their own clock reads (about 3 per callback) to the figures, so the CPU here is for
attribution, not the server's cost (``bench.cpu_ab`` measures that, without them).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import functools
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["LoopCounter", "main"]


class LoopCounter:
    """Counts loop iterations and callbacks (by kind) while `counting` is set."""

    def __init__(self) -> None:
        self.counting = False
        self.iterations = 0
        self.handles: collections.Counter[str] = collections.Counter()
        # Main-thread CPU seconds: in each kind of callback, in whole loop iterations, and in
        # the counters' own classification (taken out of the loop's share).
        self.cpu: collections.defaultdict[str, float] = collections.defaultdict(float)
        self.loop_cpu = 0.0
        self.overhead_cpu = 0.0
        self.messages_in = 0
        self.messages_out = 0
        # `loop.call_soon` calls (a finished future waking its task is one), and the
        # completion-queue reader's calls that made none: their operations were completed by
        # an earlier call, which drains grpc's whole queue (docs/server_cpu.md)
        self.scheduled = 0
        self.empty_cq_calls = 0

    def watch_call_soon(self, loop: asyncio.AbstractEventLoop) -> None:
        """Count ``loop.call_soon`` calls (an instance attribute: asyncio's C futures look the
        method up on the loop, so their callbacks are counted too)."""
        call_soon = loop.call_soon
        counter = self

        def counted_call_soon(*args: Any, **kwargs: Any) -> asyncio.Handle:
            counter.scheduled += 1
            return call_soon(*args, **kwargs)

        loop.call_soon = counted_call_soon  # type: ignore[method-assign,assignment]

    @contextlib.contextmanager
    def installed(self) -> Iterator[LoopCounter]:
        """Count in every event loop of this process while the block runs."""
        base = asyncio.base_events.BaseEventLoop
        run_once = base._run_once  # type: ignore[attr-defined]
        handle_run = asyncio.events.Handle._run
        counter = self
        clock = time.thread_time

        def counted_run_once(loop: Any) -> None:
            if not counter.counting:
                run_once(loop)
                return
            counter.iterations += 1
            start = clock()
            run_once(loop)
            counter.loop_cpu += clock() - start

        def counted_run(handle: asyncio.Handle) -> None:
            if not counter.counting:
                handle_run(handle)
                return
            start = clock()
            kind = _kind(handle)  # before the run: a finished task may drop its coroutine
            scheduled = counter.scheduled
            began = clock()
            handle_run(handle)
            ended = clock()
            if kind == _CQ_READER and counter.scheduled == scheduled:
                counter.empty_cq_calls += 1
            counter.handles[kind] += 1
            counter.cpu[kind] += ended - began
            counter.overhead_cpu += began - start

        base._run_once = counted_run_once  # type: ignore[attr-defined]
        asyncio.events.Handle._run = counted_run  # type: ignore[method-assign,assignment]
        try:
            yield self
        finally:
            base._run_once = run_once  # type: ignore[attr-defined]
            asyncio.events.Handle._run = handle_run  # type: ignore[method-assign]

    def snapshot(self) -> dict[str, Any]:
        n_in = max(1, self.messages_in)
        handles = sum(self.handles.values())
        in_callbacks = sum(self.cpu.values())
        return {
            "messages_in": self.messages_in,
            "messages_out": self.messages_out,
            "iterations": self.iterations,
            "handles": handles,
            "iterations_per_message_in": self.iterations / n_in,
            "handles_per_message_in": handles / n_in,
            "empty_cq_reader_calls_per_message_in": self.empty_cq_calls / n_in,
            "by_kind_per_message_in": {
                k: round(v / n_in, 3) for k, v in self.handles.most_common()
            },
            "cpu_us_by_kind_per_message_in": {
                k: round(v / n_in * 1e6, 2)
                for k, v in sorted(self.cpu.items(), key=lambda kv: -kv[1])
            },
            # select/epoll, timers, the ready queue; with the counters' clock reads (~3 per
            # callback, ~0.2 us each here) still in it
            "loop_own_cpu_us_per_message_in": round(
                (self.loop_cpu - in_callbacks - self.overhead_cpu) / n_in * 1e6, 2
            ),
        }


_CQ_READER = "PollerCompletionQueue._handle_events"


def _kind(handle: asyncio.Handle) -> str:
    callback = handle._callback  # type: ignore[attr-defined]
    if isinstance(callback, functools.partial):
        callback = callback.func  # grpc.aio schedules its callbacks as partials
    owner = getattr(callback, "__self__", None)
    timer = "timer " if isinstance(handle, asyncio.TimerHandle) else ""
    if isinstance(owner, asyncio.Task):
        how = "step" if type(callback).__name__ == "TaskStepMethWrapper" else "wakeup"
        coro = owner.get_coro()
        name = getattr(coro, "__qualname__", type(coro).__name__)
        return f"{timer}task {how}: {name}"
    name = getattr(callback, "__qualname__", None) or type(callback).__name__
    return f"{timer}{name}"


def _install_message_counts(counter: LoopCounter, kind: str) -> None:
    """Count audio messages in and responses out (module attributes the streams look up when
    they start, so this runs before the server does)."""
    if kind == "bare-echo":
        return  # the servicer's on_frame callback counts (one response per input)
    from sonicwire.server import convert
    from sonicwire.server.core import events as ev

    event_from_request = convert.event_from_request
    response_from_output = convert.response_from_output
    audio_type = ev.AudioReceived

    def counted_event(request: Any) -> Any:
        event = event_from_request(request)
        if counter.counting and type(event) is audio_type:
            counter.messages_in += 1
        return event

    def counted_response(output: Any) -> Any:
        if counter.counting:
            counter.messages_out += 1
        return response_from_output(output)

    convert.event_from_request = counted_event
    convert.response_from_output = counted_response


async def _serve(kind: str, counter: LoopCounter) -> tuple[Any, int]:
    """Start the server; return (an awaitable that stops it, its port)."""
    if kind == "bare-echo":
        import grpc

        from bench.bare_echo import BareEchoServicer
        from sonicwire.v1 import voice_service_pb2_grpc as pb_grpc

        def on_frame(_: str) -> None:
            if counter.counting:
                counter.messages_in += 1
                counter.messages_out += 1

        server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        pb_grpc.add_VoiceServiceServicer_to_server(BareEchoServicer(on_frame), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        return server.stop(None), port
    from sonicwire.server.app import start_server
    from sonicwire.server.config import ServerConfig

    config = ServerConfig(
        host="127.0.0.1",
        port=0,
        backend="echo",
        max_streams=0,
        idle_timeout_s=0.0,
        log_level="WARNING",
    )
    running = await start_server(config)
    return running.stop(), running.port


async def _run(args: argparse.Namespace, counter: LoopCounter) -> dict[str, Any]:
    _install_message_counts(counter, args.kind)
    counter.watch_call_soon(asyncio.get_running_loop())
    stop, port = await _serve(args.kind, counter)
    scratch = Path(tempfile.mkdtemp(prefix="sonicwire-loopcounts-"))
    warmup, ramp = 2.0, 1.0
    argv = [sys.executable, "-m", "bench.loadgen", "--mode", "grpc"]
    argv += ["--target", f"127.0.0.1:{port}", "--n", str(args.n)]
    argv += ["--duration", str(args.duration), "--warmup", str(warmup), "--ramp", str(ramp)]
    argv += ["--drain", "0.5", "--out", str(scratch / "load.json"), "--lead-ms", "120"]
    if args.frame_ms != 20:
        argv += ["--frames-per-message", str(args.frame_ms // 20)]
    client = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.DEVNULL)
    try:
        # The window: after the ramp and warm-up, for most of the measured duration.
        await asyncio.sleep(ramp + warmup + 0.5)
        load1 = os.getloadavg()[0]
        cpu0, main0 = time.process_time(), time.thread_time()
        counter.counting = True
        started = time.monotonic()
        await asyncio.sleep(args.duration - 1.0)
        counter.counting = False
        window = time.monotonic() - started
        process_cpu, main_cpu = time.process_time() - cpu0, time.thread_time() - main0
        await asyncio.wait_for(client.wait(), timeout=args.duration + 30)
    finally:
        if client.returncode is None:
            client.kill()
            await client.wait()
        await stop
        shutil.rmtree(scratch, ignore_errors=True)  # the load generator's report: not read
    result = counter.snapshot()
    n_in = max(1, counter.messages_in)
    result.update(
        process_cpu_us_per_message_in=round(process_cpu / n_in * 1e6, 2),
        main_thread_cpu_us_per_message_in=round(main_cpu / n_in * 1e6, 2),
    )
    result.update(
        kind=args.kind, n=args.n, frame_ms=args.frame_ms, window_s=round(window, 2), load1=load1
    )
    return result


def _print(r: dict[str, Any]) -> None:
    n_in = max(1, r["messages_in"])
    print(
        f"{r['kind']} N={r['n']} {r['frame_ms']} ms messages, {r['window_s']} s window, "
        f"load1 {r['load1']:.2f}: {r['messages_in']} audio messages in, "
        f"{r['messages_out']} out ({r['messages_out'] / n_in:.3f} per message in)"
    )
    print(
        f"  per message in: {r['iterations_per_message_in']:.3f} loop iterations, "
        f"{r['handles_per_message_in']:.3f} callbacks; completion-queue reader calls that "
        f"completed nothing: {r['empty_cq_reader_calls_per_message_in']:.3f}"
    )
    print(
        f"  CPU per message in (counters included): process "
        f"{r['process_cpu_us_per_message_in']:.1f} us, main thread "
        f"{r['main_thread_cpu_us_per_message_in']:.1f} us, of which the loop's own "
        f"{r['loop_own_cpu_us_per_message_in']:.1f} us and callbacks:"
    )
    cpu = r["cpu_us_by_kind_per_message_in"]
    for kind, per in r["by_kind_per_message_in"].items():
        if per >= 0.005:
            print(f"    {per:7.3f}  {cpu.get(kind, 0.0):7.2f} us  {kind}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.loop_counts")
    parser.add_argument("--kind", choices=("sonicwire", "bare-echo"), default="sonicwire")
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--duration", type=float, default=6.0)
    parser.add_argument("--frame-ms", type=int, default=20)
    parser.add_argument("--json", action="store_true", help="print the counts as JSON")
    args = parser.parse_args(argv)
    if args.frame_ms % 20 or args.duration < 2:
        parser.error("--frame-ms: a multiple of 20; --duration: at least 2 s")
    with contextlib.suppress(KeyboardInterrupt):
        with LoopCounter().installed() as counter:
            result = asyncio.run(_run(args, counter))
        if args.json:
            print(json.dumps(result, indent=1))
        else:
            _print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
