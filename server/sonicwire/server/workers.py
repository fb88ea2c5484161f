"""``sonicwire serve --workers N``: one supervisor, N full servers sharing one port.

One server process uses one core (the GIL). The supervisor starts N workers (each the
ordinary server, `sonicwire.server.app.serve`) bound to the same port with ``SO_REUSEPORT``,
so the kernel spreads new connections across them. A worker knows nothing of the others:
state that must be shared goes through the conversation state store (DESIGN.md §6).

The supervisor itself serves no gRPC traffic. It

- picks the port once (``--port 0`` would give every worker its own) and keeps it reserved;
- forwards SIGTERM/SIGINT to every worker and waits for all of them to drain;
- serves the metrics of all workers on the one ``--metrics-port`` (prometheus_client's
  multiprocess mode: workers write to ``PROMETHEUS_MULTIPROC_DIR``, the supervisor reads);
- asks every worker's grpc.health.v1 over a private Unix socket and serves the combined
  status on ``--health-port``: SERVING only while every worker is SERVING;
- restarts a worker that died while not draining (health says NOT_SERVING meanwhile).

Workers are started with multiprocessing's ``spawn`` (a fresh interpreter, no forked gRPC or
event-loop state) and receive their `ServerConfig` pickled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from sonicwire.server.config import ServerConfig
from sonicwire.server.side_streams import SideStreamLimit

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

__all__ = ["WorkerPool", "serve_workers", "start_workers"]

log = logging.getLogger(__name__)

_MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# How often the supervisor asks every worker's health, and how long one answer may take.
_HEALTH_INTERVAL_S = 0.5
_HEALTH_TIMEOUT_S = 2.0
# A worker that dies is started again after this pause (a crash loop stays slow).
_RESTART_PAUSE_S = 1.0
# On top of the drain grace: time a worker has to exit after SIGTERM before SIGKILL.
_EXIT_MARGIN_S = 15.0


def _die_with_parent(parent_pid: int) -> None:
    """Ask the kernel for SIGTERM when the supervisor dies (PR_SET_PDEATHSIG), so a worker
    never outlives it: a SIGKILLed supervisor would otherwise leave orphans on the port that
    also hold its stdout open (a caller waiting for that pipe to close then waits forever).
    SIGTERM, not SIGKILL: the orphan drains its conversations like on any other SIGTERM."""
    import ctypes

    pr_set_pdeathsig = 1
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the supervisor's own reaping must do
        return
    # The supervisor may have died before prctl took effect: then nobody will signal us.
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), signal.SIGTERM)


def _worker_main(config: ServerConfig, index: int, parent_pid: int) -> None:
    """A worker: the ordinary server, without a banner of its own (runs in the child)."""
    from sonicwire.server.app import serve
    from sonicwire.server.cli import run_until_drained, setup_logging

    setup_logging(config)
    logging.getLogger(__name__).info("worker %d (pid %d) starting", index, os.getpid())
    # A Ctrl-C in a terminal reaches the whole process group: the worker drains on it (serve()
    # handles SIGINT) and must not print a KeyboardInterrupt traceback if it lands earlier.
    with contextlib.suppress(KeyboardInterrupt):
        _die_with_parent(parent_pid)
        run_until_drained(serve(config, banner=False))


def _reserve_port(host: str, port: int) -> socket.socket:
    """Bind (without listening) a ``SO_REUSEPORT`` socket on ``host:port``: it fixes the port
    for ``--port 0`` and keeps anyone without SO_REUSEPORT off it while workers restart. A
    socket that does not listen never receives connections."""
    bare = host.strip("[]") or "0.0.0.0"
    family, _, _, _, address = socket.getaddrinfo(bare, port, type=socket.SOCK_STREAM)[0]
    reserved = socket.socket(family, socket.SOCK_STREAM)
    reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    reserved.bind(address)
    return reserved


@dataclass
class _Worker:
    index: int
    config: ServerConfig
    process: BaseProcess | None = None
    serving: bool = False
    restarts: int = 0


@dataclass
class WorkerPool:
    """N running workers and the supervisor's health, metrics and restart duties."""

    config: ServerConfig
    port: int
    workers: list[_Worker]
    health: health.aio.HealthServicer
    _reserved: socket.socket
    _runtime_dir: tempfile.TemporaryDirectory[str]
    _servers: list[grpc.aio.Server] = field(default_factory=list)
    _metrics_server: WSGIServer | None = None
    # PROMETHEUS_MULTIPROC_DIR as it was before this pool set it (None: unset), restored on
    # close: the directory it points to is removed with the runtime directory.
    _saved_multiproc_env: str | None = None
    _set_multiproc_env: bool = False
    _watch: asyncio.Task[None] | None = None
    draining: bool = False

    @property
    def target(self) -> str:
        return f"{self.config.host}:{self.port}"

    @property
    def pids(self) -> list[int]:
        return [w.process.pid for w in self.workers if w.process and w.process.pid]

    def all_serving(self) -> bool:
        return all(w.serving and w.process and w.process.is_alive() for w in self.workers)

    async def wait_serving(self, timeout_s: float) -> None:
        """Wait until every worker answers SERVING. Raises `RuntimeError` if a worker exits
        first (e.g. the port is taken) or the time runs out."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not self.all_serving():
            for worker in self.workers:
                if worker.process is not None and worker.process.exitcode is not None:
                    raise RuntimeError(
                        f"worker {worker.index} exited with {worker.process.exitcode} at start"
                    )
            if loop.time() > deadline:
                raise RuntimeError(f"workers not serving after {timeout_s:.0f} s")
            await asyncio.sleep(0.1)
        # Published now, not at the watch loop's next round: whoever is told "ready" may ask.
        await _set_health(self.health, serving=True)

    async def drain(self) -> None:
        """Forward SIGTERM to every worker and wait until all have drained and exited."""
        self.draining = True
        await self._stop_watch()
        await _set_health(self.health, serving=False)
        for worker in self.workers:
            if worker.process is not None and worker.process.pid is not None:
                with contextlib.suppress(ProcessLookupError):  # it may have just exited
                    os.kill(worker.process.pid, signal.SIGTERM)
        limit = self.config.drain_grace_s + _EXIT_MARGIN_S
        await asyncio.gather(*(self._wait_exit(w, limit) for w in self.workers))
        await self.close()

    async def _wait_exit(self, worker: _Worker, limit_s: float) -> None:
        process = worker.process
        if process is None:
            return
        await asyncio.to_thread(process.join, limit_s)
        if process.is_alive():
            log.error("worker %d did not exit %.0f s after SIGTERM: killed", worker.index, limit_s)
            process.kill()
            await asyncio.to_thread(process.join, 5.0)
        _mark_dead(process)

    async def close(self) -> None:
        """Kill what is left of the workers (`drain` first for a graceful stop) and stop the
        supervisor's own servers. Idempotent; every wait in it is bounded."""
        self.draining = True
        await self._stop_watch()
        for worker in self.workers:
            process = worker.process
            if process is not None and process.pid is not None and process.exitcode is None:
                process.kill()
                await asyncio.to_thread(process.join, 5.0)
                _mark_dead(process)
        for server in self._servers:
            await server.stop(None)
        self._servers.clear()
        if self._metrics_server is not None:
            await asyncio.to_thread(self._metrics_server.shutdown)
            self._metrics_server.server_close()
            self._metrics_server = None
        self._reserved.close()
        if self._set_multiproc_env:
            if self._saved_multiproc_env is None:
                os.environ.pop(_MULTIPROC_ENV, None)
            else:
                os.environ[_MULTIPROC_ENV] = self._saved_multiproc_env
            self._set_multiproc_env = False
        self._runtime_dir.cleanup()

    async def _stop_watch(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)

    def _start(self, worker: _Worker) -> None:
        context = multiprocessing.get_context("spawn")
        process = context.Process(
            target=_worker_main,
            args=(worker.config, worker.index, os.getpid()),
            name=f"sonicwire-worker-{worker.index}",
            daemon=False,
        )
        process.start()
        worker.process = process
        worker.serving = False
        log.info("worker %d started (pid %s)", worker.index, process.pid)

    async def _watch_workers(self) -> None:
        """Poll every worker's health; restart the dead; publish the combined status."""
        channels: dict[int, grpc.aio.Channel] = {}
        try:
            while not self.draining:
                for worker in self.workers:
                    await self._check(worker, channels)
                await _set_health(self.health, serving=self.all_serving() and not self.draining)
                await asyncio.sleep(_HEALTH_INTERVAL_S)
        finally:
            for channel in channels.values():
                await channel.close()

    async def _check(self, worker: _Worker, channels: dict[int, grpc.aio.Channel]) -> None:
        process = worker.process
        if process is not None and process.exitcode is not None and not self.draining:
            log.error(
                "worker %d (pid %s) exited with %s: restarting",
                worker.index,
                process.pid,
                process.exitcode,
            )
            _mark_dead(process)
            worker.serving = False
            worker.restarts += 1
            await asyncio.sleep(_RESTART_PAUSE_S)
            if self.draining:
                return
            self._start(worker)
            return
        channel = channels.get(worker.index)
        if channel is None:
            channel = grpc.aio.insecure_channel(f"unix:{worker.config.worker_health_socket}")
            channels[worker.index] = channel
        try:
            answer = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=_HEALTH_TIMEOUT_S
            )
            worker.serving = answer.status == health_pb2.HealthCheckResponse.SERVING
        except grpc.aio.AioRpcError:
            worker.serving = False


def _mark_dead(process: BaseProcess) -> None:
    # livesum gauges must stop counting a dead worker's last values.
    if process.pid is not None and os.environ.get(_MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(process.pid)  # type: ignore[no-untyped-call]


async def _set_health(servicer: health.aio.HealthServicer, *, serving: bool) -> None:
    from sonicwire.server.app import SERVICE_NAME

    status = (
        health_pb2.HealthCheckResponse.SERVING
        if serving
        else health_pb2.HealthCheckResponse.NOT_SERVING
    )
    for name in ("", SERVICE_NAME):
        await servicer.set(name, status)


def _serve_metrics(port: int, host: str, directory: str) -> WSGIServer:
    """The workers' metrics, merged, on one port (prometheus_client's multiprocess mode)."""
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server


async def start_workers(config: ServerConfig, *, start_timeout_s: float = 60.0) -> WorkerPool:
    """Start ``config.workers`` workers on one port and wait until all are SERVING.

    Raises:
        RuntimeError: a worker exited at start or did not become ready in time.
        OSError: the port cannot be reserved.
    """
    reserved = _reserve_port(config.host, config.port)
    port = reserved.getsockname()[1]
    runtime_dir = tempfile.TemporaryDirectory(prefix="sonicwire-workers-")
    # Workers inherit the environment at spawn: set before the first one starts. An operator's
    # own PROMETHEUS_MULTIPROC_DIR is kept (it must be emptied between runs, as documented).
    saved_env = os.environ.get(_MULTIPROC_ENV)
    if not saved_env:
        metrics_dir = Path(runtime_dir.name) / "metrics"
        metrics_dir.mkdir()
        os.environ[_MULTIPROC_ENV] = str(metrics_dir)
    workers = [
        _Worker(
            index,
            replace(
                config,
                port=port,
                workers=1,
                reuse_port=True,
                metrics_port=0,
                health_port=0,
                worker_health_socket=str(Path(runtime_dir.name) / f"worker-{index}.sock"),
            ),
        )
        for index in range(config.workers)
    ]
    health_servicer = health.aio.HealthServicer()
    pool = WorkerPool(config, port, workers, health_servicer, reserved, runtime_dir)
    pool._saved_multiproc_env, pool._set_multiproc_env = saved_env, not saved_env
    await _set_health(health_servicer, serving=False)
    try:
        if config.health_port:
            # No SO_REUSEPORT here: a second supervisor on the same health port must fail.
            server = grpc.aio.server(
                options=[("grpc.so_reuseport", 0)],
                interceptors=(SideStreamLimit(config.max_side_streams),),
            )
            health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
            server.add_insecure_port(f"{config.host}:{config.health_port}")
            await server.start()
            pool._servers.append(server)
        if config.metrics_port:
            pool._metrics_server = _serve_metrics(
                config.metrics_port, config.host, os.environ[_MULTIPROC_ENV]
            )
        for worker in workers:
            pool._start(worker)
        pool._watch = asyncio.create_task(pool._watch_workers(), name="worker watch")
        await pool.wait_serving(start_timeout_s)
    except BaseException:
        await pool.close()
        raise
    return pool


async def serve_workers(
    config: ServerConfig, *, on_ready: Callable[[WorkerPool], None] | None = None
) -> None:
    """Supervise until SIGTERM/SIGINT, then drain every worker."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    pool = await start_workers(config)
    print(
        f"sonicwire: gRPC on {pool.target} (backend {config.backend}, "
        f"{config.workers} workers, pids {' '.join(map(str, pool.pids))})",
        flush=True,
    )
    if on_ready is not None:
        on_ready(pool)
    await stop.wait()
    log.info("signal received: draining %d workers", len(pool.workers))
    await pool.drain()
