"""The load generator: N concurrent conversations pacing real speech at real time in 20 ms frames.

Run as its own process by the benchmark (so its CPU never counts as the server's)::

    python -m bench.loadgen --mode grpc --target 127.0.0.1:PORT --n 50 --duration 10 \\
        --server-pid PID --out result.json --times-out times.npz

Modes:

* ``grpc``: `VoiceService.Converse` streams (Sonicwire or the bare echo), one connection per
  stream as independent callers would open. Requests are serialised once up front.
* ``ws``: WebSocket streams speaking the seed protocol (``{"action": "audiostream",
  "audioData": <base64>}`` in, ``{"event": "media", "data": <base64>}`` out): the gateway and
  the pipecat peer.

Every stream starts at a staggered moment within ``--ramp`` seconds; the measurement window is
``--duration`` seconds after a further ``--warmup``. The generator samples the server
processes' CPU times at the window's edges and their RSS at its end, and stops every stream
shortly after the window (a bounded wait for the last replies, then cancel). Everything
happens within a hard deadline.

The pieces: the streams and what each records (late and dropped frames defined there) in
`bench.loadgen_streams`; the process sampling and the run's summary in `bench.loadgen_measure`;
here, the run's schedule and the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import os
import sys
import time
from typing import Any

import psutil

from bench.loadgen_measure import (
    cpu_seconds,
    machine_busy_seconds,
    main_thread_cpu_seconds,
    rss_bytes,
    save_times,
    summarise,
)
from bench.loadgen_streams import (
    LoadSettings,
    StreamStats,
    grpc_payloads,
    grpc_stream,
    ws_payloads,
    ws_stream,
)
from bench.speech import StreamProgram, load_corpus

__all__ = ["main", "run_load"]


async def run_load(settings: LoadSettings) -> tuple[dict[str, Any], list[StreamStats]]:
    """Run the load and return (summary, per-stream stats)."""
    corpus = load_corpus()
    # The generator's own full collections would stall its sends (a 10-100 ms pause reads as
    # server latency): what it has built so far lives until it exits (see sonicwire.server.heap).
    gc.collect()
    gc.freeze()
    begin = time.monotonic()
    window_start = begin + settings.window_start
    window_end = window_start + settings.duration_s
    stats = [StreamStats(i) for i in range(settings.n)]
    programs = [StreamProgram(corpus, settings.seed * 100_003 + i) for i in range(settings.n)]
    starts = [begin + settings.ramp_s * i / max(1, settings.n) for i in range(settings.n)]
    channels: list[Any] = []
    tasks: list[asyncio.Task[None]] = []
    if settings.mode == "grpc":
        import grpc

        payloads = grpc_payloads(corpus)
        for i in range(settings.n):
            target = settings.targets[i % len(settings.targets)]
            # A local subchannel pool: every channel is its own TCP connection, as independent
            # callers' would be (and so SO_REUSEPORT can spread them over processes).
            channel = grpc.aio.insecure_channel(
                target, options=[("grpc.use_local_subchannel_pool", 1)]
            )
            channels.append(channel)
            tasks.append(
                asyncio.create_task(
                    grpc_stream(
                        stats[i], channel, programs[i], payloads, starts[i], window_end, settings
                    )
                )
            )
    else:
        ws_texts = ws_payloads(corpus)
        for i in range(settings.n):
            url = settings.targets[i % len(settings.targets)]
            tasks.append(
                asyncio.create_task(
                    ws_stream(stats[i], url, programs[i], ws_texts, starts[i], window_end, settings)
                )
            )

    me = psutil.Process()
    await asyncio.sleep(max(0.0, window_start - time.monotonic()))
    cpu0, me0, t0 = cpu_seconds(settings.server_pids), me.cpu_times(), time.monotonic()
    main0 = main_thread_cpu_seconds(settings.server_pids)
    sys0 = machine_busy_seconds()
    await asyncio.sleep(max(0.0, window_end - time.monotonic()))
    cpu1, me1, t1 = cpu_seconds(settings.server_pids), me.cpu_times(), time.monotonic()
    main1 = main_thread_cpu_seconds(settings.server_pids)
    sys1 = machine_busy_seconds()
    rss = rss_bytes(settings.server_pids)
    try:
        async with asyncio.timeout(max(1.0, begin + settings.hard_deadline_s - time.monotonic())):
            await asyncio.gather(*tasks, return_exceptions=True)
    except TimeoutError:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        for channel in channels:
            with contextlib.suppress(Exception):
                await channel.close(None)

    window = t1 - t0
    server_cpu = {pid: cpu1[pid] - cpu0[pid] for pid in cpu1 if pid in cpu0}
    summary = summarise(settings, stats, window_start, window_end, window)
    summary.update(
        server_cpu_s=server_cpu,
        server_rss=rss,
        client_cpu_s=(me1.user + me1.system) - (me0.user + me0.system),
        system_busy_cpu_s=sys1 - sys0,
        server_main_thread_cpu_s=sum(main1[p] - main0[p] for p in main1 if p in main0),
        clip_seconds_mean=corpus.mean_clip_s,
    )
    return summary, stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen")
    parser.add_argument("--mode", choices=("grpc", "ws"), default="grpc")
    parser.add_argument("--target", action="append", required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--ramp", type=float, default=1.0)
    parser.add_argument("--drain", type=float, default=4.0)
    parser.add_argument("--server-pid", type=int, action="append", default=[])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--ws-subprotocol", default="")
    parser.add_argument("--lead-ms", type=int, default=120, help="the server's pacing lead")
    parser.add_argument(
        "--ws-first-message",
        default="",
        help='JSON text sent first on each WebSocket, e.g. \'{"action": "config", ...}\'',
    )
    parser.add_argument(
        "--frames-per-message",
        type=int,
        default=1,
        choices=range(1, 11),
        metavar="K",
        help="20 ms frames per AudioInput message (gRPC): 2 = 40 ms, 5 = 100 ms client frames",
    )
    parser.add_argument("--cpus", default="")
    parser.add_argument("--out", required=True)
    parser.add_argument("--times-out", default="")
    args = parser.parse_args(argv)
    if args.cpus:
        os.sched_setaffinity(0, {int(c) for c in args.cpus.split(",")})
    settings = LoadSettings(
        mode=args.mode,
        targets=tuple(args.target),
        n=args.n,
        duration_s=args.duration,
        warmup_s=args.warmup,
        ramp_s=args.ramp,
        drain_s=args.drain,
        server_pids=tuple(args.server_pid),
        seed=args.seed,
        ws_subprotocol=args.ws_subprotocol,
        lead_ms=args.lead_ms,
        ws_first_message=args.ws_first_message,
        frames_per_message=args.frames_per_message,
    )
    if settings.mode != "grpc" and settings.frames_per_message != 1:
        parser.error("--frames-per-message is for --mode grpc only")
    if settings.ws_first_message:
        if settings.mode != "ws":
            parser.error("--ws-first-message is for --mode ws only")
        try:
            json.loads(settings.ws_first_message)
        except ValueError as error:
            parser.error(f"--ws-first-message is not JSON: {error}")
    summary, stats = asyncio.run(run_load(settings))
    summary = {
        k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in summary.items()
    }
    summary["server_cpu_s"] = {str(k): v for k, v in summary["server_cpu_s"].items()}
    summary["server_rss"] = {str(k): v for k, v in summary["server_rss"].items()}
    with open(args.out, "w") as f:
        json.dump(summary, f, indent=1)
    if args.times_out:
        save_times(args.times_out, stats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
