"""`sonicwire serve --workers 2`: real worker processes on one port under a supervisor."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2
from prometheus_client.multiprocess import MultiProcessCollector

from sonicwire.server.config import parse_server_args, parse_workers
from sonicwire.v1 import voice_service_pb2_grpc as pb_grpc

from .helpers import config_request, health_status, process_gone, wait_health

STREAMS = 12


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def supervisor(
    metrics_dir: Path, *args: str
) -> AsyncIterator[tuple[asyncio.subprocess.Process, str, list[int]]]:
    env = {
        **os.environ,
        "SONICWIRE_LOG_LEVEL": "WARNING",
        # The test reads each worker's own files to count streams per worker.
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sonicwire.server",
        "--port",
        "0",
        "--workers",
        "2",
        "--backend",
        "echo",
        *args,
        stdout=subprocess.PIPE,
        env=env,
        # Its own process group: whatever happens in the test, the supervisor, its workers and
        # multiprocessing's resource tracker are killed together at the end.
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 90)).decode()
        match = re.search(r"gRPC on (\S+) .*pids ([\d ]+)\)", line)
        assert match, f"unexpected banner: {line!r}"
        yield proc, match.group(1), [int(pid) for pid in match.group(2).split()]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        # Bounded: asyncio's wait() also waits for the stdout pipe, which a surviving worker
        # would hold open.
        await asyncio.wait_for(proc.wait(), 10)


def streams_by_pid(metrics_dir: Path) -> dict[int, float]:
    counts: dict[int, float] = {}
    for path in metrics_dir.glob("counter_*.db"):
        pid = int(path.stem.split("_")[1])
        for metric in MultiProcessCollector.merge([str(path)], accumulate=True):
            for sample in metric.samples:
                if sample.name == "sonicwire_streams_total":
                    counts[pid] = counts.get(pid, 0) + sample.value
    return counts


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def metric_value(text: str, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} missing from the metrics"
    return float(match.group(1))


def test_workers_flag() -> None:
    assert parse_workers("3") == 3
    assert parse_workers("auto") == len(os.sched_getaffinity(0))
    with pytest.raises(argparse.ArgumentTypeError):
        parse_workers("0")
    with pytest.raises(argparse.ArgumentTypeError):
        parse_workers("many")
    assert parse_server_args(["--workers", "2"]).workers == 2
    assert parse_server_args([]).workers == 1


async def test_workers_share_the_port_count_together_and_drain_on_sigterm(
    tmp_path: Path,
) -> None:
    metrics_port, health_port = free_port(), free_port()
    async with supervisor(
        tmp_path,
        "--metrics-port",
        str(metrics_port),
        "--health-port",
        str(health_port),
        "--drain-grace-seconds",
        "1.5",
    ) as (proc, target, pids):
        assert len(pids) == 2
        assert await health_status(f"127.0.0.1:{health_port}") == 1  # SERVING
        # One connection per stream (no shared subchannel): the kernel picks a worker for each.
        channels = [
            grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
            for _ in range(STREAMS)
        ]
        try:
            calls = []
            for channel in channels:
                call = pb_grpc.VoiceServiceStub(channel).Converse()
                await asyncio.wait_for(call.write(config_request()), 10)
                assert (await asyncio.wait_for(call.read(), 10)).HasField("session_started")
                calls.append(call)

            by_pid = await asyncio.to_thread(streams_by_pid, tmp_path)
            assert sum(by_pid.values()) == STREAMS
            # The supervisor's own (zero) metric files are there too: every stream counted
            # was counted by a worker.
            assert {pid for pid, count in by_pid.items() if count} <= set(pids)
            # Both workers took streams (all 12 on one of two: p = 2^-11).
            assert all(by_pid.get(pid, 0) > 0 for pid in pids), by_pid
            metrics = await asyncio.to_thread(scrape, metrics_port)
            assert metric_value(metrics, "sonicwire_streams_total") == STREAMS
            assert metric_value(metrics, "sonicwire_active_streams") == STREAMS

            proc.send_signal(signal.SIGTERM)
            # Forwarded: every live stream, on either worker, is told to go away.
            for call in calls:
                message = await asyncio.wait_for(call.read(), 10)
                assert message.HasField("going_away")
            assert await asyncio.wait_for(proc.wait(), 40) == 0
            for pid in pids:
                assert not await asyncio.to_thread(Path(f"/proc/{pid}").exists), (
                    f"worker {pid} outlived the supervisor"
                )
        finally:
            for channel in channels:
                await channel.close()


async def test_a_dead_worker_turns_health_off_until_it_is_restarted(tmp_path: Path) -> None:
    health_port = free_port()
    async with supervisor(tmp_path, "--health-port", str(health_port)) as (proc, target, pids):
        health_target = f"127.0.0.1:{health_port}"
        assert await health_status(health_target) == 1
        os.kill(pids[0], signal.SIGKILL)
        await wait_health(health_target, health_pb2.HealthCheckResponse.NOT_SERVING)
        # Restarted (a new process on the same port), then SERVING again.
        await wait_health(health_target, health_pb2.HealthCheckResponse.SERVING)
        async with grpc.aio.insecure_channel(target) as channel:
            call = pb_grpc.VoiceServiceStub(channel).Converse()
            await asyncio.wait_for(call.write(config_request()), 10)
            assert (await asyncio.wait_for(call.read(), 10)).HasField("session_started")
            await asyncio.wait_for(call.done_writing(), 10)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 40) == 0


async def test_workers_do_not_outlive_a_killed_supervisor(tmp_path: Path) -> None:
    """SIGKILL gives the supervisor no chance to forward anything: the kernel signals the
    workers (PR_SET_PDEATHSIG), they drain and exit, and the supervisor's stdout pipe, which
    they inherited, closes (a survivor holding it made this test's predecessor hang)."""
    async with supervisor(tmp_path, "--drain-grace-seconds", "1") as (proc, _target, pids):
        proc.kill()
        # Not killpg: only the supervisor. wait() returns once the pipe is closed by all.
        assert await asyncio.wait_for(proc.wait(), 30) == -signal.SIGKILL
        for _ in range(100):
            if all(await asyncio.to_thread(lambda: [process_gone(pid) for pid in pids])):
                break
            await asyncio.sleep(0.1)
        assert all(process_gone(pid) for pid in pids), f"workers {pids} outlived the supervisor"


async def test_up_takes_workers(capsys: pytest.CaptureFixture[str]) -> None:
    """`sonicwire up --workers 2`: this process supervises two server workers and runs the
    gateway; a browser turn goes through; stopping drains and reaps both workers."""
    import json

    import psutil
    from websockets.asyncio.client import connect

    from sonicwire.gateway.config import GatewayConfig
    from sonicwire.gateway.up import run_up
    from sonicwire.server.config import ServerConfig

    from ..gateway.helpers import events_until

    before = {child.pid for child in psutil.Process().children()}
    ready: asyncio.Future[tuple[str, str]] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_up(
            ServerConfig(host="127.0.0.1", port=0, backend="echo", workers=2, drain_grace_s=1),
            GatewayConfig(port=0),
            ready=ready,
            stop=stop,
        )
    )
    try:
        url, _target = await asyncio.wait_for(ready, 90)
        workers = [
            child
            for child in psutil.Process().children()
            if child.pid not in before and "spawn_main" in " ".join(child.cmdline())
        ]
        assert len(workers) == 2
        async with connect(url.replace("http", "ws") + "ws", open_timeout=10) as ws:
            await ws.send(json.dumps({"action": "text", "text": "up?"}))
            events = await events_until(ws, lambda e: e["event"] == "turn_complete")
        assert any(e.get("text") == "You said: up?" for e in events)
    finally:
        stop.set()
        await asyncio.wait_for(task, 40)
    assert "backend echo, 2 workers" in capsys.readouterr().out
    assert not any(worker.is_running() and worker.status() != "zombie" for worker in workers)
